//! A real headless Chromium, driven over the Chrome DevTools Protocol through a pair of pipes
//! (`--remote-debugging-pipe`: the browser reads commands from its file descriptor 3 and writes
//! answers and events to its descriptor 4, each message a JSON object ended by a NUL byte), so
//! the test needs no WebDriver, no WebSocket client and no network port of the browser's.
//!
//! Only what the UI test needs: open a page at a fixed viewport, evaluate JavaScript in it
//! (awaiting promises), put a file into an `<input type=file>` the way a user choosing one does,
//! and capture what the page shows as a PNG. Every wait has a bound, and the browser is killed
//! when the [`Browser`] is dropped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one protocol command may take.
const COMMAND_BOUND: Duration = Duration::from_secs(30);
/// The largest message the browser may send (an evaluation result is small; a screenshot of
/// the viewport, base64-encoded, is well under a megabyte).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The Chromium binary, if this machine has one.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(move |dir| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium with one page open, killed when dropped.
pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and opens a blank page.
    pub fn start(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let (to_browser_read, to_browser_write) = std::io::pipe().expect("a pipe");
        let (from_browser_read, from_browser_write) = std::io::pipe().expect("a pipe");
        let (command_fd, answer_fd) = (to_browser_read.as_raw_fd(), from_browser_write.as_raw_fd());
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless=new",
                // As root (CI), Chromium's own sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2, close). The
        // ends are first moved above 10 so that neither is already 3 or 4 (dup2 onto itself
        // would keep close-on-exec); dup2 clears close-on-exec on 3 and 4.
        unsafe {
            command.pre_exec(move || {
                let high_command = libc::fcntl(command_fd, libc::F_DUPFD_CLOEXEC, 10);
                let high_answer = libc::fcntl(answer_fd, libc::F_DUPFD_CLOEXEC, 10);
                if high_command < 0
                    || high_answer < 0
                    || libc::dup2(high_command, 3) < 0
                    || libc::dup2(high_answer, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(high_command);
                libc::close(high_answer);
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        // The browser's ends live in the browser now; ours must close, or a dead browser would
        // never give end-of-file.
        drop(to_browser_read);
        drop(from_browser_write);

        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser_read);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if message.last() == Some(&0) {
                    message.pop();
                }
                if message.len() > MAX_MESSAGE_BYTES {
                    return;
                }
                let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                    return;
                };
                if sender.send(value).is_err() {
                    return;
                }
            }
        });

        let mut browser = Browser {
            child,
            commands: to_browser_write,
            messages,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("a target").to_owned();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        browser.page("Page.enable", json!({}));
        browser.page("Runtime.enable", json!({}));
        browser
    }

    /// Sends one command (to the browser, or to the page's session) and waits for its answer.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::String(session.to_owned());
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|error| panic!("{method}: the browser is gone: {error}"));
        let deadline = Instant::now() + COMMAND_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(answer) if answer["id"].as_u64() == Some(id) => {
                    if let Some(error) = answer.get("error") {
                        panic!("{method}: {error}");
                    }
                    return answer["result"].clone();
                }
                // An event, or the answer to an earlier command: not ours.
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{method}: no answer in {COMMAND_BOUND:?}")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: the browser exited"),
            }
        }
    }

    fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Opens `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        let answer = self.page("Page.navigate", json!({"url": url}));
        assert!(answer.get("errorText").is_none(), "{url}: {answer}");
    }

    /// The value of JavaScript `expression` in the page (a promise is awaited); panics on an
    /// exception, with its text.
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.page(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Waits (at most `bound`) until `expression` is a non-empty string in the page, and returns
    /// it; panics with `what` and the page's text when it never is.
    pub fn wait_for_text(&mut self, expression: &str, bound: Duration, what: &str) -> String {
        let deadline = Instant::now() + bound;
        loop {
            if let Value::String(text) = self.eval(expression) {
                if !text.is_empty() {
                    return text;
                }
            }
            if Instant::now() > deadline {
                let page = self.eval("document.body ? document.body.innerText : ''");
                panic!("{what}: not within {bound:?}; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the page a fixed viewport of `width` × `height` CSS pixels at one device pixel per
    /// CSS pixel, without scrollbars, so that its layout (and a screenshot of it) does not
    /// depend on the browser's window or the machine's screen.
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.page("Emulation.setScrollbarsHidden", json!({"hidden": true}));
    }

    /// What the page's viewport shows now, as the bytes of a PNG file.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let answer = self.page(
            "Page.captureScreenshot",
            json!({"format": "png", "fromSurface": true}),
        );
        let data = answer["data"].as_str().expect("the screenshot's data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("the screenshot is base64")
    }

    /// Chooses `file` in the `<input type=file>` that `selector` finds, as a user would (the
    /// page gets its `change` event).
    pub fn choose_file(&mut self, selector: &str, file: &Path) {
        let document = self.page("DOM.getDocument", json!({"depth": 0}));
        let root = document["root"]["nodeId"].as_u64().expect("a document");
        let found = self.page(
            "DOM.querySelector",
            json!({"nodeId": root, "selector": selector}),
        );
        let node = found["nodeId"].as_u64().expect("a node");
        assert_ne!(node, 0, "no element {selector}");
        self.page(
            "DOM.setFileInputFiles",
            json!({"nodeId": node, "files": [file.to_str().expect("a UTF-8 path")]}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
