//! A running `jarvis serve` for a test: its own config and data directory
//! against the sandbox host, a free loopback port, people and tokens made
//! with the real CLI, and HTTP clients that sign in like a browser.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let out = self.env.jarvis(&["tokens", "add", name, "--scope", scope]);
        assert!(
            out.status.success(),
            "tokens add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The audit events of `kind`, newest first, as the CLI reads them.
    pub fn audit(&self, kind: &str) -> Vec<serde_json::Value> {
        let out = self
            .env
            .jarvis(&["audit", "list", "--kind", kind, "--json"]);
        assert!(
            out.status.success(),
            "audit list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
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
