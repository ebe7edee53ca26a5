//! Running the host's own tools (git, docker) for snapshots, rollbacks and
//! previews: an argument vector, never a shell, with a time limit and
//! bounded output.

use crate::error::GuardError;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Output kept per stream; tools that say more are cut here, and
/// [`Cmd::output`] says so.
const KEEP: usize = 8 << 20;

/// One program to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    argv: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// What a finished program said.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout (at most 8 MiB).
    pub stdout: Vec<u8>,
    /// Its stderr (at most 8 MiB).
    pub stderr: Vec<u8>,
}

impl Cmd {
    /// `program` with no arguments, a 10-minute limit and the guard's own
    /// environment.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            argv: vec![program.as_ref().to_owned()],
            cwd: None,
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(600),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.argv.push(a.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs it in `dir`.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_owned(), None));
        self
    }

    /// Feeds `bytes` on stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: Vec<u8>) -> Cmd {
        self.stdin = Some(bytes);
        self
    }

    /// Sets the time limit; the program is killed after it.
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// The command as one line for messages: `git read-tree -u …`.
    pub fn display(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = words.join(" ");
        if line.chars().count() > 160 {
            format!("{}…", jarvis_core::text::truncate_chars(&line, 160))
        } else {
            line
        }
    }

    /// Runs it to the end (or the time limit).
    ///
    /// # Errors
    /// It could not be started, or ran out of time (it is killed then).
    pub fn output(&self) -> Result<Output, GuardError> {
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        let mut child = command
            .spawn()
            .map_err(|e| GuardError::Tool(format!("cannot start `{}`: {e}", self.display())))?;
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let readers = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .map(|pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                if let Some(mut pipe) = pipe {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let room = KEEP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
                kept
            })
        });
        let until = Instant::now() + self.timeout;
        // Most tools end within a few milliseconds: a short first nap that
        // doubles up to 5 ms finds them soon without spinning on long runs.
        let mut nap = Duration::from_micros(50);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(5));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(GuardError::Tool(format!(
                        "`{}` ran longer than {}s and was killed",
                        self.display(),
                        self.timeout.as_secs()
                    )));
                }
                Err(e) => {
                    return Err(GuardError::Tool(format!(
                        "cannot wait for `{}`: {e}",
                        self.display()
                    )));
                }
            }
        };
        let [stdout, stderr] = readers.map(|r| r.join().unwrap_or_default());
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs it and returns its stdout without the trailing newline.
    ///
    /// # Errors
    /// As [`Cmd::output`], and a failure exit, with its stderr.
    pub fn ok(&self) -> Result<String, GuardError> {
        let out = self.output()?;
        if !out.status.success() {
            return Err(GuardError::Tool(self.failure(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches(['\n', '\r'])
            .to_owned())
    }

    /// The message for a failed run: the command, its exit and its stderr.
    pub fn failure(&self, out: &Output) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        let how = match out.status.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        };
        if stderr.is_empty() {
            format!("`{}` failed ({how})", self.display())
        } else {
            format!("`{}` failed ({how}): {stderr}", self.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_returns_stdout_and_failures_carry_stderr() {
        assert_eq!(Cmd::new("echo").arg("hi").ok(), Ok("hi".to_owned()));
        let err = Cmd::new("sh")
            .args(["-c", "echo nope >&2; exit 3"])
            .ok()
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("exit 3") && err.contains("nope"), "{err}");
    }

    #[test]
    fn stdin_env_and_cwd_reach_the_program() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; printf %s \"$X\"; pwd"])
            .stdin(b"in-".to_vec())
            .env("X", "x-")
            .cwd("/")
            .ok();
        assert_eq!(out, Ok("in-x-/".to_owned()));
    }

    #[test]
    fn a_program_past_its_time_is_killed() {
        let err = Cmd::new("sleep")
            .arg("5")
            .timeout(Duration::from_millis(100))
            .ok()
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("was killed"), "{err}");
    }
}
