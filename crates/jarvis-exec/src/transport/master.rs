//! One OpenSSH ControlMaster per host, shared by every `jarvis` process of
//! the user and outliving the one that started it.
//!
//! A master's control socket has a fixed name in a private control
//! directory: a hash of everything that defines the connection, so a
//! second process finds the first one's master, and a changed host spec
//! (another port, key, pinned host key or ssh config) never rides an old
//! one. Whether a master is alive is asked of the kernel (`connect(2)` on
//! its socket), never of ssh, so the hot path costs no extra process.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::host::HostSpec;

/// The longest control socket path a master can use: `sun_path` holds 107
/// bytes and a NUL, and ssh first binds `PATH.` plus 16 random characters
/// and then links that to PATH (so that two masters cannot both win).
pub const MAX_SOCKET_PATH: usize = 107 - 17;

/// Why the control directory cannot hold SSH sockets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlDirError {
    /// It is missing and cannot be made, or cannot be looked at.
    #[error("SSH control directory {}: {detail}", .dir.display())]
    Unusable {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        detail: String,
    },
    /// It exists but others could reach (or swap) the sockets in it.
    #[error(
        "SSH control directory {} is not private ({problem}); it must be a directory of uid {uid} with mode 0700, \
         or a master there could be used by someone else",
        .dir.display()
    )]
    NotPrivate {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The user it must belong to.
        uid: u32,
    },
    /// A socket there would be too long a path for ssh.
    #[error(
        "SSH control socket {} is {len} bytes long, over the {MAX_SOCKET_PATH} a master can bind; use a shorter control directory",
        .socket.display()
    )]
    TooLong {
        /// The socket path.
        socket: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
}

/// Creates `dir` with mode 0700 if it is missing, then checks that it is
/// private ([`check_private`]).
///
/// # Errors
/// [`ControlDirError::Unusable`] or [`ControlDirError::NotPrivate`].
pub fn prepare_control_dir(dir: &Path) -> Result<(), ControlDirError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    match builder.create(dir) {
        Ok(()) => {}
        // `recursive` already accepts an existing directory; anything else
        // that exists there is judged by the check below.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(ControlDirError::Unusable {
                dir: dir.to_owned(),
                detail: format!("cannot be created: {e}"),
            });
        }
    }
    check_private(dir)
}

/// Checks that `dir` is a directory (not a symbolic link) owned by this
/// process's effective user with no permission for group or others: a
/// socket in it then cannot be connected to, replaced or planted by anyone
/// else, so a master found there is ours.
///
/// # Errors
/// [`ControlDirError::NotPrivate`], or [`ControlDirError::Unusable`] when it
/// cannot be looked at (it does not exist, say).
pub fn check_private(dir: &Path) -> Result<(), ControlDirError> {
    let uid = nix::unistd::geteuid().as_raw();
    let not_private = |problem: String| ControlDirError::NotPrivate {
        dir: dir.to_owned(),
        problem,
        uid,
    };
    // lstat: a link could point anywhere, and what it points to can change.
    let meta = std::fs::symlink_metadata(dir).map_err(|e| ControlDirError::Unusable {
        dir: dir.to_owned(),
        detail: e.to_string(),
    })?;
    if meta.file_type().is_symlink() {
        return Err(not_private("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(not_private("it is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(not_private(format!("it belongs to uid {}", meta.uid())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(not_private(format!("its mode is {mode:04o}")));
    }
    Ok(())
}

/// What a master at a control socket looks like from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Something listens: a master is there.
    Live,
    /// The socket file is there but nothing listens (a master that was
    /// killed cannot remove it).
    Stale,
    /// No socket file.
    Missing,
}

/// Asks the kernel whether a master listens at `socket`: one `connect(2)`,
/// no ssh process and no round trip to the host.
///
/// # Errors
/// Any other failure to connect (permissions, a path too long).
pub fn probe(socket: &Path) -> std::io::Result<Liveness> {
    match UnixStream::connect(socket) {
        // The master sees a client that leaves before its hello, and
        // forgets it.
        Ok(_) => Ok(Liveness::Live),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Liveness::Missing),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(Liveness::Stale),
        Err(e) => Err(e),
    }
}

/// Probes `socket` and removes it if it is stale, so that a master can be
/// started there; whether a master was live.
///
/// # Errors
/// As [`probe`], or the stale file cannot be removed.
pub fn clear_stale(socket: &Path) -> std::io::Result<bool> {
    match probe(socket)? {
        Liveness::Live => Ok(true),
        Liveness::Missing => Ok(false),
        Liveness::Stale => match std::fs::remove_file(socket) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(false),
        },
    }
}

/// The files of one host's master in the control directory, named from
/// the hash of what defines the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterFiles {
    /// The name every file of the master starts with: a digest of what
    /// defines the connection ([`ConnectionKey::socket_name`]).
    pub name: String,
    /// The control socket.
    pub socket: PathBuf,
    /// Held (`flock`) by whoever starts the master.
    pub lock: PathBuf,
    /// The master's log (`ssh -E`), read when it fails to start.
    pub log: PathBuf,
    /// The generated ssh config the master reads.
    pub config: PathBuf,
    /// The text of that config.
    pub config_text: String,
}

/// Everything that defines a connection to a host, as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionKey<'a> {
    /// `ssh`'s destination.
    pub destination: &'a str,
    /// The port, if given.
    pub port: Option<u16>,
    /// The key file, if given.
    pub identity: Option<&'a Path>,
    /// Its length and modification time, so a key replaced at the same
    /// path (a rotation) gets a new master rather than the one logged in
    /// with the old key.
    pub identity_stamp: Option<(u64, i64, i64)>,
    /// The pinned known_hosts file.
    pub known_hosts: &'a Path,
    /// Its contents.
    pub known_hosts_text: &'a [u8],
    /// The generated ssh config.
    pub config_text: &'a str,
    /// The user's ssh config it includes, if any (aliases and jump hosts
    /// live there).
    pub user_config_text: Option<&'a [u8]>,
}

impl ConnectionKey<'_> {
    /// The socket's file name: 96 bits of SHA-256 over every field, each
    /// length-prefixed so that no two keys hash the same input.
    pub fn socket_name(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        // A new layout of these fields gets new names, never an old master.
        field(b"jarvis-ssh-master/1");
        field(self.destination.as_bytes());
        field(
            self.port
                .map(|p| p.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
        field(
            self.identity
                .map(|p| p.as_os_str().as_encoded_bytes())
                .unwrap_or_default(),
        );
        field(
            self.identity_stamp
                .map(|(len, secs, nanos)| format!("{len}:{secs}.{nanos}"))
                .unwrap_or_default()
                .as_bytes(),
        );
        field(self.known_hosts.as_os_str().as_encoded_bytes());
        field(self.known_hosts_text);
        field(self.config_text.as_bytes());
        field(self.user_config_text.unwrap_or_default());
        hex::encode(&h.finalize()[..12])
    }
}

/// The files of the master for `key` under `dir`.
///
/// # Errors
/// [`ControlDirError::TooLong`] when the socket path is too long for ssh.
pub fn files(dir: &Path, key: &ConnectionKey<'_>) -> Result<MasterFiles, ControlDirError> {
    let name = key.socket_name();
    let socket = dir.join(&name);
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ControlDirError::TooLong { socket, len });
    }
    Ok(MasterFiles {
        lock: dir.join(format!("{name}.lock")),
        log: dir.join(format!("{name}.log")),
        config: dir.join(format!("{name}.config")),
        config_text: key.config_text.to_owned(),
        socket,
        name,
    })
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

/// The generated ssh config: options that must hold whatever the user's
/// config says come first (ssh takes the first value it reads), then the
/// user's config, if there is one, is included; and that config's text.
pub fn ssh_config(home: Option<&Path>) -> (String, Option<Vec<u8>>) {
    let mut text = FORCED_OPTIONS.to_owned();
    let user = home.map(|h| h.join(".ssh/config"));
    let user_text = user.as_deref().and_then(|u| std::fs::read(u).ok());
    if let (Some(path), Some(_)) = (&user, &user_text) {
        text.push_str(&format!("Include {}\n", path.display()));
    }
    (text, user_text)
}

/// The files of `spec`'s master under `dir`, reading what defines the
/// connection now.
///
/// # Errors
/// [`MasterError::KnownHosts`] when the pinned file cannot be read,
/// [`MasterError::ControlDir`] when the socket path is too long.
pub fn files_for(spec: &HostSpec, dir: &Path) -> Result<MasterFiles, MasterError> {
    let known_hosts_text =
        std::fs::read(&spec.known_hosts).map_err(|e| MasterError::KnownHosts(e.to_string()))?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let (config_text, user_config_text) = ssh_config(home.as_deref());
    let identity_stamp = spec
        .identity
        .as_deref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
    let key = ConnectionKey {
        destination: &spec.destination,
        port: spec.port,
        identity: spec.identity.as_deref(),
        identity_stamp,
        known_hosts: &spec.known_hosts,
        known_hosts_text: &known_hosts_text,
        config_text: &config_text,
        user_config_text: user_config_text.as_deref(),
    };
    Ok(files(dir, &key)?)
}

/// Why a master could not be found or started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MasterError {
    /// The control directory is unusable.
    #[error(transparent)]
    ControlDir(#[from] ControlDirError),
    /// The pinned known_hosts file cannot be read.
    #[error("{0}")]
    KnownHosts(String),
    /// Something on this machine failed (a file in the control directory,
    /// starting `ssh`).
    #[error("{0}")]
    Local(String),
    /// ssh started but could not log in; what its log says.
    #[error("{0}")]
    Ssh(String),
}

/// How a master is started.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The host.
    pub spec: &'a HostSpec,
    /// Its files.
    pub files: &'a MasterFiles,
    /// How long it stays with no session before it exits.
    pub idle: Duration,
}

/// Starts the master unless one is live, and returns once its socket
/// accepts clients. Blocks (on the lock and on ssh's login).
///
/// Two processes may find no master at once. Whoever takes the lock beside
/// the socket first starts one; the other waits for the lock, then finds
/// it live. (ssh's own `ControlMaster=auto` would not do: the loser of
/// that race gets a plain connection that keeps no master, and a `-f -N`
/// one would linger forever.) `flock` is released by the kernel when a
/// holder dies, so a crash leaves no stale lock, and the lock file is never
/// removed, since removing it would let two holders lock different files.
///
/// # Errors
/// [`MasterError::Local`] for this machine's failures, [`MasterError::Ssh`]
/// with ssh's own words when it could not connect or log in.
pub fn start(launch: &Launch<'_>) -> Result<(), MasterError> {
    let files = launch.files;
    let local =
        |what: &Path, e: std::io::Error| MasterError::Local(format!("{}: {e}", what.display()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&files.lock)
        .map_err(|e| local(&files.lock, e))?;
    lock.lock().map_err(|e| local(&files.lock, e))?;
    if clear_stale(&files.socket).map_err(|e| local(&files.socket, e))? {
        return Ok(());
    }
    write_private(&files.config, files.config_text.as_bytes())
        .map_err(|e| local(&files.config, e))?;
    // The log of this master alone, to explain its failure.
    write_private(&files.log, b"").map_err(|e| local(&files.log, e))?;
    let spec = launch.spec;
    let mut ssh = Command::new("ssh");
    ssh.arg("-E")
        .arg(&files.log)
        .arg("-F")
        .arg(&files.config)
        .arg("-S")
        .arg(&files.socket)
        // -f returns once the master has logged in and listens on its
        // socket; ControlPersist keeps it after this process is gone.
        .args(["-M", "-f", "-N"])
        .arg("-o")
        .arg(format!("ControlPersist={}", launch.idle.as_secs().max(1)))
        .args(["-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", spec.known_hosts.display()));
    if let Some(port) = spec.port {
        ssh.arg("-p").arg(port.to_string());
    }
    if let Some(key) = &spec.identity {
        ssh.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(key);
    }
    // `--`: a destination is never read as an option.
    ssh.arg("--").arg(&spec.destination);
    // The master keeps whatever it inherits for its whole life: a pipe of
    // ours would never see its end.
    ssh.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = ssh
        .status()
        .map_err(|e| MasterError::Local(format!("cannot start ssh: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let said = std::fs::read_to_string(&files.log).unwrap_or_default();
    let said = said.trim();
    Err(MasterError::Ssh(if said.is_empty() {
        format!("ssh exited with {status} and logged nothing")
    } else {
        said.to_owned()
    }))
}

/// Writes `bytes` to `path`, readable by the user alone.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jx-master-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn key<'a>(config: &'a str, known: &'a [u8]) -> ConnectionKey<'a> {
        ConnectionKey {
            destination: "jarvis@127.0.0.1",
            port: Some(2222),
            identity: Some(Path::new("/keys/id_ed25519")),
            identity_stamp: Some((419, 1_700_000_000, 5)),
            known_hosts: Path::new("/keys/known_hosts"),
            known_hosts_text: known,
            config_text: config,
            user_config_text: None,
        }
    }

    #[test]
    fn the_name_is_stable_and_short() {
        let a = key("BatchMode yes\n", b"[127.0.0.1]:2222 ssh-ed25519 AAAA");
        assert_eq!(a.socket_name(), a.clone().socket_name());
        assert_eq!(a.socket_name().len(), 24);
        assert!(a.socket_name().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn every_field_changes_the_name() {
        let base = key("BatchMode yes\n", b"[127.0.0.1]:2222 ssh-ed25519 AAAA");
        let name = base.socket_name();
        let variants = [
            ConnectionKey {
                destination: "jarvis@127.0.0.2",
                ..base.clone()
            },
            ConnectionKey {
                port: Some(2223),
                ..base.clone()
            },
            ConnectionKey {
                port: None,
                ..base.clone()
            },
            ConnectionKey {
                identity: Some(Path::new("/keys/id_other")),
                ..base.clone()
            },
            ConnectionKey {
                identity_stamp: Some((419, 1_700_000_001, 5)),
                ..base.clone()
            },
            ConnectionKey {
                known_hosts: Path::new("/keys/known_hosts2"),
                ..base.clone()
            },
            ConnectionKey {
                known_hosts_text: b"[127.0.0.1]:2222 ssh-ed25519 BBBB",
                ..base.clone()
            },
            ConnectionKey {
                config_text: "BatchMode yes\nInclude /root/.ssh/config\n",
                ..base.clone()
            },
            ConnectionKey {
                user_config_text: Some(b"Host nas\n"),
                ..base.clone()
            },
        ];
        let mut seen = std::collections::HashSet::from([name]);
        for v in &variants {
            assert!(seen.insert(v.socket_name()), "{v:?} hashes like another");
        }
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let a = ConnectionKey {
            destination: "ab",
            known_hosts: Path::new("c"),
            ..key("", b"")
        };
        let b = ConnectionKey {
            destination: "a",
            known_hosts: Path::new("bc"),
            ..key("", b"")
        };
        assert_ne!(a.socket_name(), b.socket_name());
    }

    #[test]
    fn a_socket_path_too_long_for_ssh_is_refused() {
        let k = key("", b"");
        let short = Path::new("/tmp/jarvis-ssh-1000");
        let files = files(short, &k).expect("short enough");
        assert!(files.socket.as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(files.lock, short.join(format!("{}.lock", k.socket_name())));
        // 24 characters of name and a slash leave 65 for the directory.
        let edge = PathBuf::from(format!("/{}", "d".repeat(64)));
        assert!(super::files(&edge, &k).is_ok());
        let over = PathBuf::from(format!("/{}", "d".repeat(65)));
        match super::files(&over, &k) {
            Err(ControlDirError::TooLong { len, .. }) => assert_eq!(len, MAX_SOCKET_PATH + 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_live_master_is_kept_a_stale_socket_removed() {
        let dir = temp_dir("probe");
        prepare_control_dir(&dir).expect("private dir");
        let socket = dir.join("m");
        assert_eq!(probe(&socket).expect("probe"), Liveness::Missing);
        assert!(!clear_stale(&socket).expect("nothing to clear"));

        let listener = UnixListener::bind(&socket).expect("bind");
        assert_eq!(probe(&socket).expect("probe"), Liveness::Live);
        assert!(clear_stale(&socket).expect("live"));
        assert!(socket.exists(), "a live master's socket is left alone");

        // A listener that is gone leaves its file behind, as a killed
        // master does.
        drop(listener);
        assert!(socket.exists());
        assert_eq!(probe(&socket).expect("probe"), Liveness::Stale);
        assert!(!clear_stale(&socket).expect("cleared"));
        assert!(!socket.exists(), "a stale socket is removed");

        // So is a file that is no socket at all.
        std::fs::write(&socket, b"x").expect("write");
        assert_eq!(probe(&socket).expect("probe"), Liveness::Stale);
        assert!(!clear_stale(&socket).expect("cleared"));
        assert!(!socket.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_control_dir_must_be_private() {
        let dir = temp_dir("private");
        prepare_control_dir(&dir).expect("created");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(prepare_control_dir(&dir), Ok(()), "an existing one is kept");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = prepare_control_dir(&dir).expect_err("0777 refused");
        assert!(err.to_string().contains("its mode is 0777"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o710)).expect("chmod");
        assert!(check_private(&dir).is_err(), "group access refused");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = temp_dir("private-link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let err = check_private(&link).expect_err("a link is refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let file = dir.join("file");
        std::fs::write(&file, b"").expect("write");
        assert!(
            prepare_control_dir(&file).is_err(),
            "a file is no directory"
        );
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
