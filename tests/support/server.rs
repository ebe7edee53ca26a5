//! A running `jarvis serve` for a test: its own config and data directory
//! against the sandbox host, a free loopback port, people and tokens made
//! with the real CLI, and HTTP clients that sign in like a browser.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::{Env, jarvis_bin};

/// A `jarvis serve` process, stopped when dropped.
pub struct Served {
    /// Its config and data directory.
    pub env: Env,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    log: PathBuf,
}

/// A free port on 127.0.0.1 (bound and released; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Served {
    /// Starts `jarvis serve` for `env` with `extra` TOML appended to its
    /// config and `vars` in its environment, and waits until /healthz
    /// answers.
    pub fn start(env: Env, extra: &str, vars: &[(&str, &str)]) -> Served {
        if !extra.is_empty() {
            let mut text = std::fs::read_to_string(&env.config).expect("read config");
            text.push('\n');
            text.push_str(extra);
            std::fs::write(&env.config, text).expect("write config");
        }
        let port = free_port();
        let log = env.dir().join("serve.log");
        let stderr = std::fs::File::create(&log).expect("create serve.log");
        let mut cmd = Command::new(jarvis_bin());
        cmd.arg("--config")
            .arg(&env.config)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(env.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("jarvis serve starts");
        let served = Served {
            env,
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        served.wait_healthy();
        served
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(self.url.trim_start_matches("http://"))
            {
                use std::io::Write;
                let _ =
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("jarvis serve did not become healthy:\n{}", self.log());
    }

    /// Stops the server as a service manager does (SIGTERM) and waits up
    /// to `within` for it to exit; how it exited.
    pub fn stop(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jarvis serve did not exit within {within:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `jarvis users add NAME --role ROLE`; returns the printed password.
    pub fn add_user(&self, name: &str, role: &str) -> String {
        let out = self.env.jarvis(&["users", "add", name, "--role", role]);
        assert!(
            out.status.success(),
            "users add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `jarvis tokens add NAME --scope SCOPE`; returns the printed token.
    pub fn add_token(&self, name: &str, scope: &str) -> String {
        self.env.add_token(name, scope)
    }

    /// The audit events of `kind`, newest first, as the CLI reads them.
    pub fn audit(&self, kind: &str) -> Vec<serde_json::Value> {
        self.env.audit(kind)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id().to_string();
        // A graceful stop first, so the server closes its SSH masters.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first `<input … name="csrf" value="…">` in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\"")
        .unwrap_or_else(|| panic!("no csrf field in the page:\n{html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("csrf field has a value") + 7;
    let end = rest[v..].find('"').expect("value ends");
    rest[v..v + end].to_owned()
}

/// An HTTP client that keeps cookies and does not follow redirects, as the
/// tests need to see them.
pub fn client() -> reqwest::Client {
    // Built as all of Jarvis's outbound HTTP is: with reqwest's TLS
    // unified in (`rustls-no-provider`), a bare builder would have no crypto
    // provider and panic.
    jarvis_http::client_builder()
        .expect("TLS configuration")
        .cookie_store(true)
        .build()
        .expect("http client")
}

/// A person signed in through the login form, as a browser would.
pub struct Person {
    /// Its client, with the session cookie.
    pub http: reqwest::Client,
    /// The server's URL.
    pub url: String,
}

impl Person {
    /// Signs `name` in with `password` through the login form.
    pub async fn sign_in(s: &Served, name: &str, password: &str) -> Person {
        let http = client();
        let page = http
            .get(format!("{}/login", s.url))
            .send()
            .await
            .expect("GET /login");
        let csrf = csrf_of(&page.text().await.expect("login page"));
        let r = http
            .post(format!("{}/login", s.url))
            .form(&[
                ("username", name),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ])
            .send()
            .await
            .expect("POST /login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {name}");
        Person {
            http,
            url: s.url.clone(),
        }
    }

    /// `GET path`: its status and body.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        (r.status(), r.text().await.unwrap_or_default())
    }

    /// The CSRF token on a page.
    pub async fn csrf(&self, path: &str) -> String {
        csrf_of(&self.page(path).await.1)
    }

    /// `POST path` with form `fields`: status, headers and body.
    pub async fn form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .form(fields)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap_or_default())
    }

    /// `POST path` to the JSON API with the session and the `x-csrf-token`
    /// header `csrf`: status and JSON body.
    pub async fn api(&self, path: &str, csrf: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
            .await
            .expect("POST api");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
}

/// An agent holding an API token.
#[derive(Clone)]
pub struct Agent {
    /// Its client.
    pub http: reqwest::Client,
    /// The server's URL.
    pub url: String,
    /// Its bearer token.
    pub token: String,
}

impl Agent {
    /// An agent holding `token` against `s`.
    pub fn new(s: &Served, token: String) -> Agent {
        Agent {
            http: client(),
            url: s.url.clone(),
            token,
        }
    }

    /// `POST path` with a JSON body and the bearer token: status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with the bearer token: status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// Proposes a command for the sandbox; returns the action.
    pub async fn propose(&self, command: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/actions",
                json!({ "host": "sandbox", "command": command }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body:#}");
        body["action"].clone()
    }

    /// Polls the action until it is in state `want` (at most a minute);
    /// returns `GET /api/v1/actions/ID`.
    pub async fn wait_state(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self.get(&format!("/api/v1/actions/{id}")).await;
            if v["action"]["state"] == want {
                return v;
            }
            assert!(Instant::now() < deadline, "{id} never became {want}: {v:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
