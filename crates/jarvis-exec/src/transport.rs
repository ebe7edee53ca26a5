//! SSH to a host's guard over one multiplexed OpenSSH connection per host.
//!
//! The system `ssh` does the cryptography and honours `~/.ssh/config`
//! (aliases, jump hosts); the openssh crate keeps one ControlMaster per
//! host so that an action costs a channel, not a handshake. Options that
//! must hold whatever the user's config says come first in a generated
//! config file (ssh takes the first value it reads), then the user's config
//! is included.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::host::HostSpec;
use crate::protocol::{Frame, FrameDecoder, MAX_REQUEST, Request};

/// What went wrong between the gateway and the guard.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The host's key is not the pinned one, or is not pinned at all.
    #[error("host key of `{host}` does not match its pinned known_hosts {known_hosts}: {detail}")]
    HostKey {
        /// The host.
        host: String,
        /// The pinned file.
        known_hosts: PathBuf,
        /// What ssh said.
        detail: String,
    },
    /// No connection could be made.
    #[error("cannot connect to `{host}`: {detail}")]
    Connect {
        /// The host.
        host: String,
        /// What ssh said.
        detail: String,
    },
    /// The connection broke or the other side is not a guard.
    #[error("connection to `{host}` failed: {detail}")]
    Broken {
        /// The host.
        host: String,
        /// What happened.
        detail: String,
    },
    /// The guard sent something that is not the protocol.
    #[error("`{host}` answered outside the guard protocol: {detail}")]
    Protocol {
        /// The host.
        host: String,
        /// What was wrong.
        detail: String,
    },
    /// Nothing arrived for too long.
    #[error("`{host}` sent nothing for {}s; the command may still be running there until the guard's own timeout", .silent.as_secs())]
    Silent {
        /// The host.
        host: String,
        /// How long it was quiet.
        silent: Duration,
    },
    /// A local failure before anything was sent (temp files, spawning
    /// ssh, a request too large to send).
    #[error("local failure talking to `{host}`: {detail}; nothing was sent")]
    Local {
        /// The host.
        host: String,
        /// What failed.
        detail: String,
    },
}

impl TransportError {
    /// Whether the failure happened on this side before anything reached
    /// the host (no `ssh` to start, an argument list the kernel refuses, a
    /// request over the protocol's size): never the host's fault, so the
    /// breaker does not count it, and never a run that may have happened.
    pub fn is_local(&self) -> bool {
        matches!(self, TransportError::Local { .. })
    }

    /// Whether the request may have reached the guard (and so must not be
    /// sent again).
    pub fn may_have_run(&self) -> bool {
        matches!(
            self,
            TransportError::Broken { .. }
                | TransportError::Protocol { .. }
                | TransportError::Silent { .. }
        )
    }
}

/// The forced options. `ClearAllForwardings` and the X11/agent settings
/// keep the host from reaching back; `RequestTTY no` keeps a terminal (and
/// its line discipline) out of the output.
const FORCED_OPTIONS: &str = "\
ForwardAgent no
ForwardX11 no
ForwardX11Trusted no
ClearAllForwardings yes
PermitLocalCommand no
RequestTTY no
StrictHostKeyChecking yes
GlobalKnownHostsFile /dev/null
UpdateHostKeys no
BatchMode yes
";

/// How long a master may sit idle before it exits; it also bounds how long
/// a master orphaned by a crashed gateway lingers.
const MASTER_IDLE_SECS: usize = 300;

/// The connection to one host, opened on first use.
pub struct Connection {
    spec: HostSpec,
    control_dir: PathBuf,
    session: Mutex<Option<Arc<Session>>>,
}

impl Connection {
    /// A connection that is not opened yet.
    pub fn new(spec: HostSpec, control_dir: &Path) -> Connection {
        Connection {
            spec,
            control_dir: control_dir.to_owned(),
            session: Mutex::new(None),
        }
    }

    /// The host this connects to.
    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    fn host(&self) -> String {
        self.spec.name.to_string()
    }

    /// The control socket of the open master, if one is open.
    pub async fn control_socket(&self) -> Option<PathBuf> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| s.control_socket().to_owned())
    }

    async fn session(&self) -> Result<Arc<Session>, TransportError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let session = Arc::new(self.connect().await?);
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    /// Forgets the master so the next use opens a new one.
    async fn reset(&self) {
        if let Some(old) = self.session.lock().await.take()
            && let Ok(s) = Arc::try_unwrap(old)
        {
            let _ = s.close().await;
        }
    }

    async fn connect(&self) -> Result<Session, TransportError> {
        let host = self.host();
        let local = |detail: String| TransportError::Local {
            host: host.clone(),
            detail,
        };
        if !self.spec.known_hosts.is_file() {
            return Err(TransportError::HostKey {
                host: host.clone(),
                known_hosts: self.spec.known_hosts.clone(),
                detail: "the pinned known_hosts file does not exist".into(),
            });
        }
        std::fs::create_dir_all(&self.control_dir).map_err(|e| {
            local(format!(
                "control directory {}: {e}",
                self.control_dir.display()
            ))
        })?;
        let config = self
            .control_dir
            .join(format!("ssh_config-{}", self.spec.name));
        let mut text = FORCED_OPTIONS.to_owned();
        if let Some(home) = std::env::var_os("HOME") {
            let user_config = Path::new(&home).join(".ssh/config");
            if user_config.is_file() {
                text.push_str(&format!("Include {}\n", user_config.display()));
            }
        }
        std::fs::write(&config, text).map_err(|e| local(format!("{}: {e}", config.display())))?;

        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(&self.spec.known_hosts)
            .config_file(&config)
            .control_directory(&self.control_dir)
            .connect_timeout(Duration::from_secs(10))
            .server_alive_interval(Duration::from_secs(15))
            .control_persist(openssh::ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(MASTER_IDLE_SECS)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            ));
        if let Some(port) = self.spec.port {
            b.port(port);
        }
        if let Some(key) = &self.spec.identity {
            b.keyfile(key);
        }
        b.connect(&self.spec.destination).await.map_err(|e| {
            let detail = error_chain(&e);
            if os_error(&e) {
                // The master's ssh could not be started here (no `ssh`
                // binary, no control directory): not the host's doing.
                local(detail)
            } else if detail.contains("IDENTIFICATION HAS CHANGED")
                || detail.contains("Host key verification failed")
                || detail.contains("No ED25519 host key is known")
                || detail.contains("host key is known")
            {
                TransportError::HostKey {
                    host: host.clone(),
                    known_hosts: self.spec.known_hosts.clone(),
                    detail,
                }
            } else {
                TransportError::Connect {
                    host: host.clone(),
                    detail,
                }
            }
        })
    }

    /// Sends `request` to the guard and feeds every frame to `on_frame`
    /// until the last one, which is returned.
    ///
    /// `silence` bounds the wait for any frame; the guard sends a heartbeat
    /// every second, so a longer silence means a dead link or a hung host.
    ///
    /// # Errors
    /// A [`TransportError`]; [`TransportError::may_have_run`] tells whether
    /// the guard may have started the command.
    pub async fn exchange(
        &self,
        request: &Request,
        silence: Duration,
        on_frame: &mut (dyn FnMut(&Frame) + Send),
    ) -> Result<Frame, TransportError> {
        let line = request.encode();
        // The guard refuses a longer line, and the kernel may refuse to
        // start ssh with it (E2BIG) before that: said here, as what it is.
        if line.len() > MAX_REQUEST {
            return Err(TransportError::Local {
                host: self.host(),
                detail: format!(
                    "the request is {} bytes once encoded, over the {MAX_REQUEST}-byte limit of one SSH command line",
                    line.len()
                ),
            });
        }
        // A master that died since its last use (sshd restarted, network
        // blip) is noticed by `check` and replaced once. Anything after the
        // command was sent is never retried: it may have run.
        let session = self.session().await?;
        let session = if session.check().await.is_err() {
            drop(session);
            self.reset().await;
            self.session().await?
        } else {
            session
        };
        let result = self.exchange_on(&session, &line, silence, on_frame).await;
        if let Err(TransportError::Broken { .. }) = &result
            && session.check().await.is_err()
        {
            drop(session);
            self.reset().await;
        }
        result
    }

    async fn exchange_on(
        &self,
        session: &Session,
        line: &str,
        silence: Duration,
        on_frame: &mut (dyn FnMut(&Frame) + Send),
    ) -> Result<Frame, TransportError> {
        let host = self.host();
        let mut child = session
            .raw_command(line)
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| {
                let detail = error_chain(&e);
                // Starting the local ssh failed (E2BIG, no binary, no
                // process left): nothing was sent.
                if os_error(&e) {
                    TransportError::Local {
                        host: host.clone(),
                        detail,
                    }
                } else {
                    TransportError::Broken {
                        host: host.clone(),
                        detail,
                    }
                }
            })?;
        // The request is on its way once ssh runs: from here on nothing is
        // local.
        let mut stdout = child
            .stdout()
            .take()
            .ok_or_else(|| TransportError::Broken {
                host: host.clone(),
                detail: "no stdout pipe".into(),
            })?;
        let mut stderr = child.stderr().take();
        // ssh's own stderr (and anything the guard says outside frames) is
        // kept, bounded, to explain a failure.
        let stderr_task = tokio::spawn(async move {
            let mut text = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.take(64 * 1024).read_to_end(&mut text).await;
            }
            String::from_utf8_lossy(&text).trim().to_owned()
        });
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut greeted = false;
        let last = loop {
            let read = tokio::time::timeout(silence, stdout.read(&mut buf)).await;
            let n = match read {
                Err(_) => {
                    // Dropping the child kills the local ssh, which closes
                    // the channel; the guard's next heartbeat fails and it
                    // kills the command.
                    drop(child);
                    return Err(TransportError::Silent {
                        host,
                        silent: silence,
                    });
                }
                Ok(Err(e)) => {
                    return Err(TransportError::Broken {
                        host,
                        detail: e.to_string(),
                    });
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                let said = stderr_task.await.unwrap_or_default();
                let detail = if said.is_empty() {
                    "the connection closed before the guard's answer".to_owned()
                } else {
                    said
                };
                return Err(if greeted {
                    TransportError::Broken { host, detail }
                } else {
                    // Before any frame: ssh failed, or the key's forced
                    // command is not a Jarvis guard.
                    TransportError::Protocol {
                        host,
                        detail: format!("no guard greeting: {detail}"),
                    }
                });
            }
            decoder.push(&buf[..n]);
            let mut last = None;
            while let Some(frame) = decoder.next_frame().map_err(|e| TransportError::Protocol {
                host: host.clone(),
                detail: e.to_string(),
            })? {
                match (&frame, greeted) {
                    (Frame::Hello(h), false) if h.protocol == crate::protocol::PROTOCOL_VERSION => {
                        greeted = true
                    }
                    (Frame::Hello(h), false) => {
                        return Err(TransportError::Protocol {
                            host,
                            detail: format!(
                                "guard speaks protocol {}, this gateway {}",
                                h.protocol,
                                crate::protocol::PROTOCOL_VERSION
                            ),
                        });
                    }
                    (_, false) => {
                        return Err(TransportError::Protocol {
                            host,
                            detail: "the first frame is not a greeting".into(),
                        });
                    }
                    _ => {}
                }
                if frame.is_last() {
                    last = Some(frame);
                    break;
                }
                on_frame(&frame);
            }
            if let Some(frame) = last {
                break frame;
            }
        };
        let _ = child.wait().await;
        stderr_task.abort();
        Ok(last)
    }

    /// Closes the master connection, if open.
    pub async fn close(&self) {
        self.reset().await;
    }
}

/// Whether an openssh error is the operating system refusing something on
/// this machine (starting `ssh`, a temporary directory): such errors carry
/// an errno, while what ssh reports about the host is text turned into an
/// error without one.
fn os_error(e: &openssh::Error) -> bool {
    match e {
        openssh::Error::Connect(io) | openssh::Error::Master(io) | openssh::Error::Ssh(io) => {
            io.raw_os_error().is_some()
        }
        _ => false,
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.trim().to_owned()
}
