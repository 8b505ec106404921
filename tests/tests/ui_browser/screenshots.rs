//! The screenshots of the UI's main views that README.md and docs/ui.md show, made by the
//! browser test itself so that they show what the page really does against a real sandbox.
//!
//! Every run captures them and checks each one: a complete PNG (signature, `IHDR` first, `IEND`
//! last) of exactly the viewport's size, and big enough to hold a page's text rather than a
//! blank one. They are written to `docs/screenshots/` only when `CAIRN_UPDATE_SCREENSHOTS=1`,
//! so that a run on a clean clone (CI) leaves the tree as it was; otherwise to a temporary
//! directory.

use std::path::{Path, PathBuf};

use crate::cdp::Browser;

/// The viewport every screenshot is taken at: a laptop screen, in CSS pixels.
pub const VIEWPORT: (u32, u32) = (1280, 800);

/// The environment variable that sends the screenshots to `docs/screenshots/`.
pub const UPDATE_VARIABLE: &str = "CAIRN_UPDATE_SCREENSHOTS";

/// The smallest PNG a page with content gives at [`VIEWPORT`]. A blank page compresses to 4.7 KB
/// there (Chromium's `about:blank`, measured); the views shot here to 35 to 100 KB.
const MIN_PNG_BYTES: usize = 15_000;
/// The largest one accepted: the committed screenshots must stay small.
const MAX_PNG_BYTES: usize = 400_000;

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// The last chunk of every PNG: length 0, type `IEND`, its CRC.
const PNG_END: &[u8; 12] = b"\0\0\0\0IEND\xae\x42\x60\x82";

/// Where the screenshots go, and which were taken.
pub struct Screenshots {
    dir: PathBuf,
    _temporary: Option<tempfile::TempDir>,
    taken: Vec<PathBuf>,
}

impl Screenshots {
    /// `docs/screenshots/` of this checkout when [`UPDATE_VARIABLE`] is `1`, else a temporary
    /// directory.
    pub fn new() -> Screenshots {
        if std::env::var(UPDATE_VARIABLE).as_deref() == Ok("1") {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
            std::fs::create_dir_all(&dir).expect("docs/screenshots");
            Screenshots {
                dir,
                _temporary: None,
                taken: Vec::new(),
            }
        } else {
            let temporary = tempfile::tempdir().expect("tempdir");
            Screenshots {
                dir: temporary.path().to_owned(),
                _temporary: Some(temporary),
                taken: Vec::new(),
            }
        }
    }

    /// Captures what the page shows as `<name>.png`, after checking that it is a real
    /// screenshot of the viewport.
    pub fn capture(&mut self, browser: &mut Browser, name: &str) {
        let png = browser.screenshot();
        let (width, height) =
            png_size(&png).unwrap_or_else(|reason| panic!("screenshot {name}: {reason}"));
        assert_eq!(
            (width, height),
            VIEWPORT,
            "screenshot {name}: the viewport's size"
        );
        assert!(
            (MIN_PNG_BYTES..=MAX_PNG_BYTES).contains(&png.len()),
            "screenshot {name}: {} bytes, outside {MIN_PNG_BYTES}..={MAX_PNG_BYTES} (a blank page, or too big to commit)",
            png.len()
        );
        let path = self.dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        self.taken.push(path);
    }

    /// The files written, in the order they were taken.
    pub fn taken(&self) -> &[PathBuf] {
        &self.taken
    }
}

/// The width and height of a complete PNG file, read from its `IHDR` chunk, or why it is not
/// one.
pub fn png_size(png: &[u8]) -> Result<(u32, u32), String> {
    let word = |at: usize| -> u32 {
        let bytes: [u8; 4] = png[at..at + 4].try_into().expect("four bytes");
        u32::from_be_bytes(bytes)
    };
    if png.len() < PNG_SIGNATURE.len() + 25 + PNG_END.len() {
        return Err(format!("{} bytes: too short for a PNG", png.len()));
    }
    if &png[..8] != PNG_SIGNATURE {
        return Err("no PNG signature".to_owned());
    }
    // The first chunk must be IHDR, 13 bytes: width, height, bit depth, colour type, ...
    if word(8) != 13 || &png[12..16] != b"IHDR" {
        return Err("the first chunk is not a 13-byte IHDR".to_owned());
    }
    if !png.ends_with(PNG_END) {
        return Err("no IEND chunk at the end: truncated".to_owned());
    }
    let (width, height) = (word(16), word(20));
    let (bit_depth, colour_type) = (png[24], png[25]);
    if width == 0 || height == 0 || bit_depth != 8 || ![2, 6].contains(&colour_type) {
        return Err(format!(
            "IHDR {width}x{height}, bit depth {bit_depth}, colour type {colour_type}: not an 8-bit RGB(A) image"
        ));
    }
    Ok((width, height))
}

#[test]
fn png_size_reads_the_header_and_refuses_what_is_not_a_png() {
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&1280u32.to_be_bytes());
    png.extend_from_slice(&800u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0]);
    png.extend_from_slice(&[0; 4]); // IHDR's CRC, not checked here
    png.extend_from_slice(PNG_END);
    assert_eq!(png_size(&png), Ok((1280, 800)));

    assert!(png_size(&png[..png.len() - 1]).is_err(), "truncated");
    let mut not_png = png.clone();
    not_png[1] = b'J';
    assert!(png_size(&not_png).is_err(), "signature");
    let mut grey = png.clone();
    grey[25] = 0;
    assert!(png_size(&grey).is_err(), "colour type");
    assert!(png_size(b"\x89PNG").is_err(), "short");
}
