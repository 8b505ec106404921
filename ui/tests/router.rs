//! The UI's router on a real loopback server, through a real HTTP client: every embedded asset
//! is served with its content type and the strict Content-Security-Policy, `/` and `/ui`
//! redirect to `/ui/`, unknown paths are 404 in Cairn's JSON error form, and nothing the page
//! loads comes from anywhere but this server.

use std::time::Duration;

use cairn_ui::assets::{ASSETS, INDEX};
use cairn_ui::{router, CONTENT_SECURITY_POLICY};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

/// The router served on 127.0.0.1 (an ephemeral port) and a client that does not follow
/// redirects.
async fn serve() -> (String, reqwest::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        axum::serve(listener, router::<()>().with_state(()))
            .await
            .expect("serves");
    });
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    (format!("http://{address}"), client)
}

fn assert_secured(response: &reqwest::Response) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("{} has no {name}", response.url()))
            .to_str()
            .expect("ASCII")
            .to_string()
    };
    assert_eq!(header("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_the_policy() {
    let (base, client) = serve().await;
    for asset in &ASSETS {
        let response = client
            .get(format!("{base}/ui/{}", asset.path))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
        assert_secured(&response);
        assert_eq!(
            response.headers()["content-type"],
            asset.content_type,
            "{}",
            asset.path
        );
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let body = response.bytes().await.expect("a body");
        assert_eq!(&body[..], asset.bytes, "{}", asset.path);
    }
    let page = client
        .get(format!("{base}/ui/"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(page.status(), StatusCode::OK);
    assert_secured(&page);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(&page.bytes().await.expect("a body")[..], INDEX.bytes);
}

#[tokio::test]
async fn the_root_and_the_bare_prefix_redirect_to_the_page() {
    let (base, client) = serve().await;
    for path in ["/", "/ui"] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/ui/", "{path}");
        assert_secured(&response);
    }
}

#[tokio::test]
async fn unknown_paths_are_404_in_cairns_json_error_form() {
    let (base, client) = serve().await;
    for path in [
        "/ui/nope.js",
        "/ui/assets/index.html",
        "/ui/..%2fCargo.toml",
        "/ui/index.html/",
        "/ui/%00",
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_secured(&response);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("a body")).expect("JSON");
        assert_eq!(body["error"], "not_found", "{path}");
    }
    let post = client
        .post(format!("{base}/ui/"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// The names a text asset loads by `src=`, `href=` or a JavaScript `import ... from '...'` /
/// `fetch('...')`.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for opener in ["src=\"", "href=\"", "from '", "fetch('"] {
        let mut rest = text;
        while let Some(start) = rest.find(opener) {
            rest = &rest[start + opener.len()..];
            let end = rest.find(['"', '\'']).expect("a closing quote");
            found.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    found
}

#[test]
fn the_page_loads_only_its_own_assets() {
    let mut loaded = 0;
    for asset in ASSETS.iter().filter(|asset| !asset.path.ends_with(".wasm")) {
        let text = std::str::from_utf8(asset.bytes).expect("text assets are UTF-8");
        for reference in references(text) {
            // In-page anchors.
            if reference.starts_with('#') {
                continue;
            }
            let name = reference.trim_start_matches("./");
            assert!(
                ASSETS.iter().any(|known| known.path == name),
                "{} loads {reference:?}, which is not an embedded asset",
                asset.path
            );
            loaded += 1;
        }
        // No address of another origin, but the SVG namespace (a name, never fetched).
        let without_namespace = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !without_namespace.contains("http://") && !without_namespace.contains("https://"),
            "{} names another origin",
            asset.path
        );
        assert!(!text.contains("innerHTML"), "{} writes markup", asset.path);
        assert!(
            !text.contains("style=\""),
            "{} has an inline style",
            asset.path
        );
    }
    assert!(
        loaded >= 9,
        "the page and its modules load each other ({loaded})"
    );
}
