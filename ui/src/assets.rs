//! The UI's files, embedded at compile time from `ui/assets/`, each with its content type.
//!
//! The list is closed: a request for anything else is 404, so no path of the server's disk is
//! ever read. Adding a file to `ui/assets/` means adding it here (a test checks that every file
//! of the directory is listed, and that every listed file is served).

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/ui/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const WASM: &str = "application/wasm";

/// The page (also served at `/ui/`).
pub static INDEX: &Asset = &ASSETS[0];

/// Every embedded file.
pub static ASSETS: [Asset; 12] = [
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("verify.js", JS),
    asset!("search.js", JS),
    asset!("event.js", JS),
    asset!("dropzone.js", JS),
    asset!("health.js", JS),
    asset!("monitor.js", JS),
    asset!("dom.js", JS),
    asset!("cairn_verify.wasm", WASM),
];

/// The asset named `path` (relative to `/ui/`), if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_assets_directory_is_listed_once() {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(directory)
            .expect("the assets directory")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8")
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|asset| asset.path.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn content_types_follow_the_extensions() {
        for asset in &ASSETS {
            let expected = match asset.path.rsplit('.').next() {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => "text/css; charset=utf-8",
                Some("wasm") => "application/wasm",
                other => panic!("no content type for {other:?}"),
            };
            assert_eq!(asset.content_type, expected, "{}", asset.path);
        }
        assert_eq!(INDEX.path, "index.html");
    }
}
