//! What the page is told about its surroundings: the URL of a monitor whose `GET /status`
//! (spec/docs/monitor-api.md) the health panel reads, from the server's configuration.
//!
//! The page may connect to this origin and to the monitor's origin only: the
//! Content-Security-Policy's `connect-src` names the monitor's origin exactly when one is
//! configured, and `GET /ui/config.json` tells the page its URL. A URL the user typed could not
//! be allowed by a policy fixed by the server, so the monitor is named in the configuration.

use axum::http::HeaderValue;

/// Longest monitor URL taken.
const MAX_URL_BYTES: usize = 2048;

/// The UI's options.
#[derive(Clone, Debug)]
pub struct UiOptions {
    monitor_url: Option<String>,
    csp: HeaderValue,
}

impl Default for UiOptions {
    fn default() -> UiOptions {
        UiOptions {
            monitor_url: None,
            csp: HeaderValue::from_static(crate::CONTENT_SECURITY_POLICY),
        }
    }
}

/// The Content-Security-Policy with `connect-src` allowing also `origin`.
pub fn policy_with_connect(origin: &str) -> String {
    crate::CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'",
        &format!("connect-src 'self' {origin}"),
    )
}

impl UiOptions {
    /// The options with the monitor at `url` (`http://` or `https://`, a host and an optional
    /// port and path; no user, query or fragment), or why it is refused.
    pub fn with_monitor(url: &str) -> Result<UiOptions, String> {
        let url = url.trim_end_matches('/');
        if url.len() > MAX_URL_BYTES {
            return Err(format!("longer than {MAX_URL_BYTES} bytes"));
        }
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or("must start with http:// or https://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
        if authority.is_empty() || !authority.chars().all(allowed) {
            return Err("needs a host (and optional port), without a user name".into());
        }
        let path_allowed = |c: char| c.is_ascii_graphic() && !"?#\"'\\<>`{}|^".contains(c);
        if !rest.chars().all(path_allowed) {
            return Err("may hold no query, fragment, space or quote".into());
        }
        let origin = &url[..url.len() - rest.len() + authority.len()];
        let csp = HeaderValue::from_str(&policy_with_connect(origin))
            .map_err(|error| format!("not a header value: {error}"))?;
        Ok(UiOptions {
            monitor_url: Some(url.to_string()),
            csp,
        })
    }

    /// The monitor's URL, if one is configured.
    pub fn monitor_url(&self) -> Option<&str> {
        self.monitor_url.as_deref()
    }

    /// The Content-Security-Policy every answer carries.
    pub fn content_security_policy(&self) -> &HeaderValue {
        &self.csp
    }

    /// `GET /ui/config.json`: `{"monitor_url": "…"}` or `{"monitor_url": null}`.
    pub fn config_json(&self) -> String {
        match &self.monitor_url {
            Some(url) => format!(r#"{{"monitor_url":{}}}"#, crate::json_string(url)),
            None => r#"{"monitor_url":null}"#.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitor_url_adds_its_origin_to_connect_src_only() {
        let options = UiOptions::with_monitor("http://127.0.0.1:8090/").expect("valid");
        assert_eq!(options.monitor_url(), Some("http://127.0.0.1:8090"));
        let csp = options.content_security_policy().to_str().expect("ASCII");
        assert!(
            csp.contains("connect-src 'self' http://127.0.0.1:8090;"),
            "{csp}"
        );
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
            "{csp}"
        );
        let with_path = UiOptions::with_monitor("https://mon.example/cairn").expect("valid");
        let csp = with_path.content_security_policy().to_str().expect("ASCII");
        assert!(
            csp.contains("connect-src 'self' https://mon.example;"),
            "{csp}"
        );
        assert_eq!(
            with_path.config_json(),
            r#"{"monitor_url":"https://mon.example/cairn"}"#
        );
        assert_eq!(
            UiOptions::default().config_json(),
            r#"{"monitor_url":null}"#
        );
    }

    #[test]
    fn a_bad_monitor_url_is_refused() {
        for bad in [
            "ftp://x",
            "127.0.0.1:8090",
            "http://",
            "http://user@host",
            "http://host/?q=1",
            "http://host/a b",
            "http://host; script-src *",
            "http://host/'x",
        ] {
            assert!(UiOptions::with_monitor(bad).is_err(), "{bad}");
        }
    }
}
