//! # cairn-ui
//!
//! The auditor's web UI: sign in with a reader or admin token, search audit events, open one
//! and see its canonical form, receipt and a verdict computed in the browser, verify a dropped
//! receipt or export bundle offline against a policy the auditor chooses, and see the log's
//! health (tree size over time, checkpoint age, each witness's cosignature). `docs/ui.md`
//! describes the pages; this crate only serves them.
//!
//! Everything is embedded in the binary at compile time ([`assets`]): plain HTML, JavaScript
//! modules and CSS, and `cairn_verify.wasm`, cairn-spec's verification built for
//! `wasm32-unknown-unknown` from `ui/wasm` (package cairn-ui-wasm) by `ui/wasm/build.sh`. The
//! module is committed, and a test of this crate builds it again from source and fails unless
//! the two are byte-identical (`tests/wasm_is_fresh.rs`), so the verdict the browser shows is
//! the one this source computes. Nothing is fetched from anywhere but the server that serves the
//! page, at build time or at run time.
//!
//! [`router`] answers, for any state type, so that a server merges it into its own router:
//! - `GET /` and `GET /ui`: a redirect (303) to `/ui/`;
//! - `GET /ui/`: the page; `GET /ui/<asset>`: each asset, with its content type;
//! - `GET /ui/config.json`: what the page is told ([`UiOptions`]: the monitor whose status
//!   the health panel shows, if any);
//! - anything else under `/ui/`: 404 with the JSON error body of Cairn's APIs.
//!
//! Every answer carries a strict Content-Security-Policy ([`CONTENT_SECURITY_POLICY`]): scripts,
//! styles and connections only to the serving origin, WebAssembly allowed, no inline code, no
//! frames. The page talks only to the same origin: the log's public tree API (`/checkpoint`,
//! `/proof/consistency`) and its `/v1` events API with the token the auditor signed in with,
//! which the page keeps in the browser session (`sessionStorage`) only.

pub mod assets;
pub mod options;

pub use options::UiOptions;

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Where the UI lives on the server.
pub const UI_PREFIX: &str = "/ui/";

/// The Content-Security-Policy of every answer: only this origin, no inline script or style,
/// WebAssembly compilation allowed (`'wasm-unsafe-eval'`, which allows no JavaScript `eval`),
/// no plugins, no frames, no form posts, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' \
    'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The UI's routes, to merge into a server's router (`Router::merge`), without a monitor.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router_with(UiOptions::default())
}

/// The UI's routes with `options`.
pub fn router_with<S>(options: UiOptions) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let options = Arc::new(options);
    let on = |handler: fn(&UiOptions, Option<String>) -> Response| {
        let options = options.clone();
        move |path: Option<Path<String>>| {
            let options = options.clone();
            async move { handler(&options, path.map(|Path(path)| path)) }
        }
    };
    Router::new()
        .route("/", get(on(|options, _| to_ui(options))))
        .route("/ui", get(on(|options, _| to_ui(options))))
        .route("/ui/", get(on(|options, _| serve(options, assets::INDEX))))
        .route("/ui/config.json", get(on(|options, _| config(options))))
        .route("/ui/{*path}", get(on(asset)))
}

/// Headers every answer of the UI carries.
fn secured(options: &UiOptions, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        options.content_security_policy().clone(),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn to_ui(options: &UiOptions) -> Response {
    secured(options, Redirect::to(UI_PREFIX).into_response())
}

fn config(options: &UiOptions) -> Response {
    secured(
        options,
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            options.config_json(),
        )
            .into_response(),
    )
}

fn asset(options: &UiOptions, path: Option<String>) -> Response {
    let path = path.unwrap_or_default();
    match assets::find(&path) {
        Some(asset) => serve(options, asset),
        None => not_found(options, &path),
    }
}

fn serve(options: &UiOptions, asset: &'static assets::Asset) -> Response {
    secured(
        options,
        (
            [
                (header::CONTENT_TYPE, asset.content_type),
                // The assets change only with the binary: the browser revalidates each time.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.bytes,
        )
            .into_response(),
    )
}

/// 404 in the JSON form every error of Cairn's APIs has (`spec/docs/log-api.md`, "Errors").
fn not_found(options: &UiOptions, path: &str) -> Response {
    let shown: String = path
        .chars()
        .take(64)
        .filter(|character| !character.is_control())
        .collect();
    let body = format!(
        r#"{{"error":"not_found","detail":{}}}"#,
        json_string(&format!("no page {shown:?} in the web UI"))
    );
    secured(
        options,
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    )
}

/// `text` as a JSON string.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            character if (character as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", character as u32))
            }
            character => out.push(character),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_string_escapes_quotes_backslashes_and_controls() {
        assert_eq!(json_string("a\"b\\c\u{1}"), r#""a\"b\\c\u0001""#);
    }
}
