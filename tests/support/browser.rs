//! A headless Chromium driven over WebDriver, for the web UI's end-to-end
//! tests.
//!
//! Each [`Browser`] runs its own `chromedriver` on a free loopback port and
//! its own Chromium with a fresh profile directory, so tests can run in
//! parallel and never share cookies. Chromium runs as root in a container,
//! hence `--no-sandbox`; the window has no scrollbars and a device scale of
//! 1, so a screenshot's pixels are CSS pixels.
//!
//! The helpers panic with what they waited for and on which page: they are
//! a test harness, and a panic is a test failure with a reason.
//!
//! Debian packages: `chromium`, `chromium-driver` and `fonts-dejavu-core`
//! (`scripts/test` installs them). `JARVIS_CHROMIUM` and
//! `JARVIS_CHROMEDRIVER` name other binaries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::TempDir;

/// A phone's viewport (CSS pixels): an iPhone 12–15.
pub const PHONE: (u32, u32) = (390, 844);
/// A laptop's viewport (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);

/// How long the `wait_*` helpers wait unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tallest full-page screenshot taken; longer pages are cut there.
const MAX_SHOT_HEIGHT: u32 = 16_384;

/// One headless Chromium and the chromedriver that drives it.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    port: u16,
    session: Option<String>,
    /// What the window adds around the viewport (usually nothing headless).
    chrome: (i64, i64),
    timeout: Duration,
    /// Holds the profile and chromedriver's log; removed after `drop`.
    _dir: TempDir,
}

/// The program `var` names, or `default`.
fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// `name` as found on `PATH` (or as given, if it has a slash), if it exists.
fn find_program(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at [`DESKTOP`] size.
    ///
    /// Panics, naming the binary, if Chromium or chromedriver is missing.
    pub async fn start() -> Browser {
        let chromium = program("JARVIS_CHROMIUM", "/usr/bin/chromium");
        let chromium = find_program(&chromium).unwrap_or_else(|| {
            panic!(
                "Chromium not found at `{}`: install the Debian packages `chromium chromium-driver \
                 fonts-dejavu-core` (scripts/test does), or set JARVIS_CHROMIUM",
                chromium.display()
            )
        });
        let driver_name = program("JARVIS_CHROMEDRIVER", "chromedriver");
        let driver_bin = find_program(&driver_name).unwrap_or_else(|| {
            panic!(
                "`{}` not found on PATH: install the Debian package `chromium-driver` \
                 (scripts/test does), or set JARVIS_CHROMEDRIVER",
                driver_name.display()
            )
        });

        let dir = TempDir::new("browser");
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).expect("create the browser profile directory");
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).expect("create chromedriver's log");
        let port = free_port();
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone a file handle"))
            .stderr(log)
            // Its own process group, so Drop can end Chromium with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{}`: {e}", driver_bin.display()));

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            let exited = driver.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!(
                    "chromedriver did not listen on 127.0.0.1:{port} ({}); its log:\n{}",
                    exited.map_or("timed out".to_owned(), |s| s.to_string()),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }

        let (w, h) = DESKTOP;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={w},{h}"),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-sync".to_owned(),
            "--metrics-recording-only".to_owned(),
            "--password-store=basic".to_owned(),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
        let client = match connected {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!(
                    "chromedriver could not start `{}`: {e}; its log:\n{}",
                    chromium.display(),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let session = client.session_id().await.ok().flatten();
        let mut browser = Browser {
            client: Some(client),
            driver,
            port,
            session,
            chrome: (0, 0),
            timeout: DEFAULT_TIMEOUT,
            _dir: dir,
        };
        browser.set_size(w, h).await;
        browser
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the client lives until close() consumes the browser")
    }

    /// How long the `wait_*` helpers (and those that wait for their
    /// element) wait from now on; [`DEFAULT_TIMEOUT`] at first.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(unknown URL: {e})"))
    }

    /// Signs in through the web UI's form at `url` (a page that asks for
    /// it), as `user` with `password`, and waits for `landing` on the page
    /// it goes on to.
    pub async fn sign_in(&self, url: &str, user: &str, password: &str, landing: &str) {
        self.goto(url).await;
        self.wait_for("form#login").await;
        self.fill("input#username", user).await;
        self.fill("input#password", password).await;
        self.click("button#login-submit").await;
        self.wait_for(landing).await;
    }

    /// Loads `url` and waits for it to finish loading.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client().goto(url).await {
            panic!("loading {url}: {e}");
        }
    }

    /// Runs `script` in the page (a function body: `return …` gives the
    /// result) with `args` as `arguments`.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client().execute(script, args).await {
            Ok(v) => v,
            Err(e) => panic!("running script on {}: {e}\n{script}", self.url().await),
        }
    }

    /// The viewport's size in CSS pixels.
    pub async fn viewport(&self) -> (u32, u32) {
        let v = self
            .eval("return [window.innerWidth, window.innerHeight];", vec![])
            .await;
        let dim = |i: usize| {
            v[i].as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or_else(|| panic!("viewport size is not a number: {v}"))
        };
        (dim(0), dim(1))
    }

    /// Resizes the window so the viewport is `width` × `height` CSS pixels
    /// (see [`PHONE`] and [`DESKTOP`]).
    pub async fn set_size(&mut self, width: u32, height: u32) {
        self.resize_viewport(width, height).await;
        let (w, h) = self.viewport().await;
        if (w, h) != (width, height) {
            // The window has borders or a minimum: measure and correct once.
            self.chrome = (
                self.chrome.0 + i64::from(width) - i64::from(w),
                self.chrome.1 + i64::from(height) - i64::from(h),
            );
            self.resize_viewport(width, height).await;
            let got = self.viewport().await;
            assert_eq!(
                got,
                (width, height),
                "could not size the viewport to {width}x{height}"
            );
        }
    }

    async fn resize_viewport(&self, width: u32, height: u32) {
        let outer = |v: u32, extra: i64| u32::try_from(i64::from(v) + extra).unwrap_or(v);
        let (w, h) = (outer(width, self.chrome.0), outer(height, self.chrome.1));
        if let Err(e) = self.client().set_window_size(w, h).await {
            panic!("resizing the window to {w}x{h}: {e}");
        }
    }

    /// Waits (up to the timeout) for an element matching the CSS selector
    /// `css`, and returns the first.
    pub async fn wait_for(&self, css: &str) -> Element {
        let found = self
            .client()
            .wait()
            .at_most(self.timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => e,
            Err(e) => panic!(
                "no element `{css}` after {:?} on {}: {e}",
                self.timeout,
                self.url().await
            ),
        }
    }

    /// Waits (up to the timeout) until the first element matching `css`
    /// exists and its visible text contains `text`; returns it.
    pub async fn wait_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + self.timeout;
        let mut last = None;
        loop {
            if let Ok(el) = self.client().find(Locator::Css(css)).await {
                match el.text().await {
                    Ok(t) if t.contains(text) => return el,
                    Ok(t) => last = Some(t),
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "`{css}` did not contain {text:?} after {:?} on {}; {}",
                    self.timeout,
                    self.url().await,
                    match last {
                        Some(t) => format!("its text was {t:?}"),
                        None => "no such element".to_owned(),
                    }
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css` (waited for;
    /// found again if the page rendered it anew meanwhile, as for
    /// [`Browser::click`]).
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let el = self.wait_for(css).await;
            match el.text().await {
                Ok(t) => return t,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("reading the text of `{css}` on {}: {e}", self.url().await),
            }
        }
    }

    /// Clears the form field matching `css` (waited for) and types `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.wait_for(css).await;
        if let Err(e) = el.clear().await {
            panic!("clearing `{css}` on {}: {e}", self.url().await);
        }
        if let Err(e) = el.send_keys(value).await {
            panic!("typing into `{css}` on {}: {e}", self.url().await);
        }
    }

    /// Clicks the element matching `css` (waited for). Live pages render
    /// parts of themselves again as the audit log moves, so an element
    /// found a moment ago may be gone: it is found again until the
    /// timeout.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + self.timeout;
        loop {
            let el = self.wait_for(css).await;
            match el.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking `{css}` on {}: {e}", self.url().await),
            }
        }
    }

    /// Screenshots the page at the phone and the desktop size into
    /// `docs/screenshots/NAME-phone.png` and `NAME-desktop.png`, the
    /// README's pictures of the pages as they are.
    pub async fn shoot(&mut self, name: &str) {
        let dir = crate::workspace().join("docs/screenshots");
        for (size, (w, h)) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.set_size(w, h).await;
            let path = dir.join(format!("{name}-{size}.png"));
            self.screenshot(&path).await;
            let head = std::fs::read(&path).expect("screenshot written");
            assert!(head.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
        }
    }

    /// Writes a PNG of the whole page at the current width to `path`
    /// (creating its directory): the window grows to the page's height for
    /// the shot (up to 16,384 pixels) and then returns to its size.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let (w, h) = self.viewport().await;
        let page = self
            .eval(
                "return Math.max(document.documentElement.scrollHeight, \
                 document.body ? document.body.scrollHeight : 0);",
                vec![],
            )
            .await
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(h)
            .min(MAX_SHOT_HEIGHT);
        let grow = page > h;
        if grow {
            self.resize_viewport(w, page).await;
        }
        let shot = self.client().screenshot().await;
        if grow {
            self.resize_viewport(w, h).await;
        }
        let png = match shot {
            Ok(png) => png,
            Err(e) => panic!("screenshot of {}: {e}", self.url().await),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits), then chromedriver; removes the
    /// profile. Dropping the browser does the same.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take()
            && client.close().await.is_ok()
        {
            self.session = None;
        }
    }

    /// Asks chromedriver to end the session, which quits Chromium; blocking,
    /// because `Drop` cannot await.
    fn delete_session(&self, id: &str) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_ok() {
            // chromedriver answers once Chromium has quit.
            let _ = s.read(&mut [0u8; 1024]);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            self.delete_session(&id);
        }
        // Whatever is left of chromedriver's process group (Chromium, if the
        // session could not be ended), then chromedriver itself.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // The profile and log go when the fields drop, after this.
    }
}
