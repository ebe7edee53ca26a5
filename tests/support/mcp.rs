//! An MCP client that is not Jarvis's: the Python SDK's own, driven by
//! tests/mcp/client.py, over stdio (`jarvis mcp`) or streamable HTTP
//! (`/mcp`). Each step's answer arrives as a JSON line while later steps
//! may still wait, so a test can act (approve) in between.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::Value;

use crate::workspace;

/// How long a step may take to answer before the test fails.
const STEP: Duration = Duration::from_secs(180);

/// The Python of the virtualenv `scripts/python-env` makes (once).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new(workspace().join("scripts/python-env"))
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/python-env runs");
        assert!(out.status.success(), "scripts/python-env failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// One run of the client through a list of steps.
pub struct McpRun {
    child: Child,
    lines: Receiver<Value>,
    log: PathBuf,
}

impl McpRun {
    /// The client starting `jarvis ARGS` as its stdio server, with `vars`
    /// in the server's environment; `log` collects both sides' stderr.
    pub fn stdio(steps: &Value, jarvis: &[&str], vars: &[(&str, &str)], log: &Path) -> McpRun {
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/client.py"))
            .arg("stdio")
            .arg(steps.to_string())
            .arg("--")
            .arg(crate::jarvis_bin())
            .args(jarvis);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        McpRun::start(cmd, log)
    }

    /// The client against the streamable HTTP endpoint `url`, sending
    /// `token` as its bearer token.
    pub fn http(steps: &Value, url: &str, token: &str, log: &Path) -> McpRun {
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/client.py"))
            .arg("http")
            .arg(steps.to_string())
            .arg(url)
            .env("MCP_TOKEN", token);
        McpRun::start(cmd, log)
    }

    fn start(mut cmd: Command, log: &Path) -> McpRun {
        let stderr = std::fs::File::create(log).expect("create the client's log");
        let mut child = cmd
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the MCP client starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("the client wrote a line that is not JSON ({e}): {line}")
                });
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        McpRun {
            child,
            lines,
            log: log.to_owned(),
        }
    }

    /// The next line the client writes.
    pub fn next(&self) -> Value {
        match self.lines.recv_timeout(STEP) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no answer from the MCP client in {STEP:?}; its log:\n{}",
                    self.log()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the MCP client ended early; its log:\n{}", self.log())
            }
        }
    }

    /// The answer to step `n`, past any progress lines.
    pub fn answer(&self, n: u64) -> Value {
        loop {
            let line = self.next();
            assert_eq!(line["step"], n, "{line:#}\n{}", self.log());
            if line.get("progress_now").is_none() {
                return line;
            }
        }
    }

    /// The first progress message of step `n`.
    pub fn progress(&self, n: u64) -> String {
        let line = self.next();
        assert_eq!(line["step"], n, "{line:#}\n{}", self.log());
        line["progress_now"]
            .as_str()
            .unwrap_or_else(|| panic!("step {n} answered before any progress: {line:#}"))
            .to_owned()
    }

    /// The client's and the server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the client to end; it must end well.
    pub fn finish(mut self) {
        let status = self.child.wait().expect("the client ends");
        assert!(status.success(), "the MCP client failed:\n{}", self.log());
    }
}

impl Drop for McpRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
