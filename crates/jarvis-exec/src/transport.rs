//! SSH to a host's guard over one multiplexed OpenSSH connection per host.
//!
//! The system `ssh` does the cryptography and honours `~/.ssh/config`
//! (aliases, jump hosts). One ControlMaster per host ([`master`]), shared
//! by every `jarvis` process of the user and kept for an idle time after
//! the last one, makes an action cost a channel, not a handshake: each
//! request is one session opened on the master by this process itself
//! ([`mux`], OpenSSH's multiplexing protocol), so nothing else runs on the
//! way (no `ssh -S` client, no `ssh -O check`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::host::HostSpec;
use crate::protocol::{Frame, FrameDecoder, MAX_REQUEST, Request};

pub mod master;
mod mux;

pub use master::ControlDirError;

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
    /// The SSH control directory cannot be trusted with sockets, or a
    /// socket there would be too long; nothing was sent.
    #[error("cannot reach `{host}`: {source}")]
    ControlDir {
        /// The host.
        host: String,
        /// What is wrong with the directory.
        #[source]
        source: ControlDirError,
    },
    /// A local failure before anything was sent (files of the control
    /// directory, spawning ssh, a request too large to send).
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
        matches!(
            self,
            TransportError::Local { .. } | TransportError::ControlDir { .. }
        )
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

/// A future boxed so [`Transport`] stays object-safe, as the planner's
/// `Model` does it: no `async_trait` dependency for one trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the executor reaches one host's guard: what it asks of a
/// connection, and nothing more. [`Connection`] is the real one (SSH); the
/// `fake-guard` feature brings an in-process one for tests. The executor
/// keeps limits, the breaker and admission to itself, so whatever stands
/// behind this trait only carries requests and never decides what runs.
pub trait Transport: Send + Sync {
    /// Sends `request` and feeds every frame, the greeting included, to
    /// `on_frame` until the last one, which is returned; as
    /// [`Connection::exchange`].
    ///
    /// # Errors
    /// A [`TransportError`]; [`TransportError::may_have_run`] tells whether
    /// the guard may have started the command.
    fn exchange<'a>(
        &'a self,
        request: &'a Request,
        silence: Duration,
        on_frame: &'a mut (dyn FnMut(&Frame) + Send),
    ) -> BoxFuture<'a, Result<Frame, TransportError>>;

    /// The control socket of a live SSH master, for diagnostics that want
    /// plain `ssh -S`; `None` when there is none (or no SSH at all).
    fn control_socket(&self) -> BoxFuture<'_, Option<PathBuf>>;

    /// A digest of what defines the connection now, so what a host said
    /// over one connection is not taken for what it would say over
    /// another; as [`Connection::connection_id`].
    fn connection_id(&self) -> Option<String>;
}

impl Transport for Connection {
    fn exchange<'a>(
        &'a self,
        request: &'a Request,
        silence: Duration,
        on_frame: &'a mut (dyn FnMut(&Frame) + Send),
    ) -> BoxFuture<'a, Result<Frame, TransportError>> {
        Box::pin(Connection::exchange(self, request, silence, on_frame))
    }

    fn control_socket(&self) -> BoxFuture<'_, Option<PathBuf>> {
        Box::pin(Connection::control_socket(self))
    }

    fn connection_id(&self) -> Option<String> {
        Connection::connection_id(self)
    }
}

/// The connection to one host: its master, found or started on first use,
/// and a mux client per request.
pub struct Connection {
    spec: HostSpec,
    control_dir: PathBuf,
    idle: Duration,
    /// Held while this process starts a master, so its own tasks wait for
    /// that one instead of each taking a blocking thread to queue on the
    /// lock file.
    starting: Mutex<()>,
}

/// How one attempt at an exchange ended badly.
enum Failure {
    /// The request never reached a master (it was gone): sending it again
    /// cannot run it twice. What happened.
    MasterGone(String),
    /// The host refused the master another session before the command
    /// was sent; what the master said.
    SessionRefused(String),
    /// Anything else.
    Transport(TransportError),
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Failure {
        Failure::Transport(e)
    }
}

impl Connection {
    /// A connection whose master, once started, has its control socket in
    /// `control_dir` (made 0700 if missing, and refused unless private to
    /// the user: see [`master::prepare_control_dir`]) and exits after
    /// `idle` without a session.
    pub fn new(spec: HostSpec, control_dir: &Path, idle: Duration) -> Connection {
        Connection {
            spec,
            control_dir: control_dir.to_owned(),
            idle,
            starting: Mutex::new(()),
        }
    }

    /// The host this connects to.
    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    fn host(&self) -> String {
        self.spec.name.to_string()
    }

    /// The control socket of the host's master, if one is live.
    pub async fn control_socket(&self) -> Option<PathBuf> {
        let files = self.files().ok()?;
        matches!(master::probe(&files.socket), Ok(master::Liveness::Live)).then_some(files.socket)
    }

    /// A digest of everything that defines the connection as read now
    /// (destination, port, key, pinned host keys, ssh config): what a
    /// host said over one connection is not taken for what it would say
    /// over another. `None` when the pinned host keys cannot be read.
    pub fn connection_id(&self) -> Option<String> {
        master::files_for(&self.spec, &self.control_dir)
            .ok()
            .map(|f| f.name)
    }

    /// The master's files as the host's connection is defined now (the
    /// pinned known_hosts and the user's ssh config are read again, so an
    /// edit gets a new master), in a control directory that is still private
    /// (made if missing).
    fn files(&self) -> Result<master::MasterFiles, TransportError> {
        let host = self.host();
        master::prepare_control_dir(&self.control_dir).map_err(|source| {
            TransportError::ControlDir {
                host: host.clone(),
                source,
            }
        })?;
        master::files_for(&self.spec, &self.control_dir).map_err(|e| self.master_error(e))
    }

    /// The control socket of a live master: the one found there, or one
    /// started now.
    async fn master(&self) -> Result<PathBuf, TransportError> {
        let files = self.files()?;
        let local = |e: std::io::Error| TransportError::Local {
            host: self.host(),
            detail: format!("{}: {e}", files.socket.display()),
        };
        if master::probe(&files.socket).map_err(local)? == master::Liveness::Live {
            return Ok(files.socket);
        }
        let _starting = self.starting.lock().await;
        let socket = files.socket.clone();
        let spec = self.spec.clone();
        let idle = self.idle;
        tokio::task::spawn_blocking(move || {
            master::start(&master::Launch {
                spec: &spec,
                files: &files,
                idle,
            })
        })
        .await
        .map_err(|e| TransportError::Local {
            host: self.host(),
            detail: format!("starting the SSH master: {e}"),
        })?
        .map_err(|e| self.master_error(e))?;
        Ok(socket)
    }

    fn master_error(&self, e: master::MasterError) -> TransportError {
        let host = self.host();
        match e {
            master::MasterError::ControlDir(source) => TransportError::ControlDir { host, source },
            master::MasterError::KnownHosts(detail) => TransportError::HostKey {
                host,
                known_hosts: self.spec.known_hosts.clone(),
                detail: format!("the pinned known_hosts file cannot be read: {detail}"),
            },
            // ssh could not be started, or a file of the control directory
            // written: not the host's doing.
            master::MasterError::Local(detail) => TransportError::Local { host, detail },
            master::MasterError::Ssh(detail)
                if detail.contains("IDENTIFICATION HAS CHANGED")
                    || detail.contains("Host key verification failed")
                    || detail.contains("host key is known") =>
            {
                TransportError::HostKey {
                    host,
                    known_hosts: self.spec.known_hosts.clone(),
                    detail,
                }
            }
            master::MasterError::Ssh(detail) => TransportError::Connect { host, detail },
        }
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
        // The guard refuses a longer line: said here, before it is sent.
        if line.len() > MAX_REQUEST {
            return Err(TransportError::Local {
                host: self.host(),
                detail: format!(
                    "the request is {} bytes once encoded, over the {MAX_REQUEST}-byte limit of one SSH command line",
                    line.len()
                ),
            });
        }
        // The master found live may exit (its idle time ran out, it was
        // killed) before the session request reaches it. Then nothing was
        // sent, and the request goes once more, to a new master. Anything
        // later is never sent again: it may have run.
        let socket = self.master().await?;
        let (socket, result) = match self.exchange_on(&socket, &line, silence, on_frame).await {
            Err(Failure::MasterGone(_)) => {
                let socket = self.master().await?;
                let again = self.exchange_on(&socket, &line, silence, on_frame).await;
                (socket, again)
            }
            result @ (Ok(_) | Err(Failure::SessionRefused(_) | Failure::Transport(_))) => {
                (socket, result)
            }
        };
        result.map_err(|f| self.failure(&socket, f))
    }

    /// The error an attempt's failure is, once nothing is left to try.
    fn failure(&self, socket: &Path, failure: Failure) -> TransportError {
        let said = |said: String| {
            if said.is_empty() {
                said
            } else {
                format!(": {said}")
            }
        };
        match failure {
            Failure::Transport(e) => e,
            Failure::MasterGone(s) => TransportError::Connect {
                host: self.host(),
                detail: format!(
                    "the SSH master at {} went away twice before the request reached it{}",
                    socket.display(),
                    said(s)
                ),
            },
            Failure::SessionRefused(s) => TransportError::Connect {
                host: self.host(),
                detail: format!(
                    "the host refused the SSH master at {} another session before the command was sent \
                     (sshd's MaxSessions, 10 unless set, counts the sessions of every jarvis process sharing it){}",
                    socket.display(),
                    said(s)
                ),
            },
        }
    }

    async fn exchange_on(
        &self,
        socket: &Path,
        line: &str,
        silence: Duration,
        on_frame: &mut (dyn FnMut(&Frame) + Send),
    ) -> Result<Frame, Failure> {
        let host = self.host();
        let session = {
            let (socket, line) = (socket.to_owned(), line.to_owned());
            tokio::task::spawn_blocking(move || mux::open(&socket, &line, silence))
                .await
                .map_err(|e| TransportError::Local {
                    host: host.clone(),
                    detail: format!("opening an SSH session: {e}"),
                })?
        };
        let session = session.map_err(|e| self.open_failure(socket, silence, e))?;
        let local = |e: std::io::Error| TransportError::Broken {
            host: host.clone(),
            detail: format!("the session's pipes: {e}"),
        };
        let mut stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(session.stdout.into())
            .map_err(local)?;
        let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(session.stderr.into())
            .map_err(local)?;
        let mut control = session
            .control
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(session.control))
            .map_err(local)?;
        // The guard's stderr (anything it says outside frames) is kept,
        // bounded, to explain a failure.
        let mut stderr_task = tokio::spawn(async move {
            let mut text = Vec::new();
            let _ = stderr.take(64 * 1024).read_to_end(&mut text).await;
            String::from_utf8_lossy(&text).trim().to_owned()
        });
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut greeted = false;
        let last = loop {
            // Returning drops the session, which closes the channel: the
            // guard's next heartbeat fails and it kills the command.
            let n = match tokio::time::timeout(silence, stdout.read(&mut buf)).await {
                Err(_) => {
                    return Err(TransportError::Silent {
                        host,
                        silent: silence,
                    }
                    .into());
                }
                Ok(Err(e)) => {
                    return Err(TransportError::Broken {
                        host,
                        detail: e.to_string(),
                    }
                    .into());
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                let status = tokio::time::timeout(silence, mux::exit_status(&mut control))
                    .await
                    .ok()
                    .flatten();
                let said = match tokio::time::timeout(silence, &mut stderr_task).await {
                    Ok(said) => said.unwrap_or_default(),
                    Err(_) => {
                        stderr_task.abort();
                        String::new()
                    }
                };
                let mut detail = if said.is_empty() {
                    "the connection closed before the guard's answer".to_owned()
                } else {
                    said
                };
                if let Some(code) = status {
                    detail.push_str(&format!(" (the session ended with status {code})"));
                }
                return Err(if greeted {
                    TransportError::Broken { host, detail }
                } else {
                    // The session ran something that is not a Jarvis guard
                    // (the key's forced command is something else).
                    TransportError::Protocol {
                        host,
                        detail: format!("no guard greeting: {detail}"),
                    }
                }
                .into());
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
                        }
                        .into());
                    }
                    (_, false) => {
                        return Err(TransportError::Protocol {
                            host,
                            detail: "the first frame is not a greeting".into(),
                        }
                        .into());
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
        // The guard finishes its session after its last frame; closing the
        // channel before it ends would hang it up mid-way.
        let _ = tokio::time::timeout(silence, mux::exit_status(&mut control)).await;
        stderr_task.abort();
        Ok(last)
    }

    /// What a session that could not be opened on the master at `socket`
    /// means for the request.
    fn open_failure(&self, socket: &Path, silence: Duration, e: mux::OpenError) -> Failure {
        let host = self.host();
        match e {
            mux::OpenError::MasterGone(said) => Failure::MasterGone(said),
            mux::OpenError::SessionRefused(said) => Failure::SessionRefused(said),
            mux::OpenError::Refused(said) => Failure::Transport(TransportError::Connect {
                host,
                detail: format!(
                    "the SSH master at {} refused the session: {said}",
                    socket.display()
                ),
            }),
            mux::OpenError::Unanswered(said) => Failure::Transport(TransportError::Broken {
                host,
                detail: format!(
                    "the SSH master at {} took the request and did not answer: {said}",
                    socket.display()
                ),
            }),
            mux::OpenError::Silent => Failure::Transport(TransportError::Silent {
                host,
                silent: silence,
            }),
            mux::OpenError::Local(detail) => {
                Failure::Transport(TransportError::Local { host, detail })
            }
        }
    }
}
