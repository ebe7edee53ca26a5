//! Faults between the gateway and the sandbox host: a TCP switch in front of
//! the sandbox's sshd that a test turns off (every connection is closed as
//! it is accepted, as a host that went away) and on again (connections are
//! passed through), and what the host's processes look like from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::sandbox;

/// A switchable TCP forwarder on 127.0.0.1 to the sandbox's sshd, with a
/// known_hosts file that pins the sandbox's host key at the switch's port.
pub struct Switch {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The known_hosts file for `[127.0.0.1]:port`.
    pub known_hosts: PathBuf,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Switch {
    /// A switch in front of the sandbox, off (`up` false) or on, writing
    /// its known_hosts into `dir`.
    pub async fn start(dir: &Path, up: bool) -> Switch {
        let sb = sandbox();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let pinned = std::fs::read_to_string(&sb.known_hosts).expect("known_hosts");
        let known_hosts = dir.join(format!("known_hosts-{port}"));
        std::fs::write(
            &known_hosts,
            pinned.replace(
                &format!("[127.0.0.1]:{}", sb.port),
                &format!("[127.0.0.1]:{port}"),
            ),
        )
        .expect("write known_hosts");
        let up = Arc::new(AtomicBool::new(up));
        let cut = Arc::new(tokio::sync::Notify::new());
        let target = sb.port;
        let task = tokio::spawn({
            let up = Arc::clone(&up);
            let cut = Arc::clone(&cut);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let cut = Arc::clone(&cut);
                    tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                () = cut.notified() => {}
                            }
                        }
                    });
                }
            }
        });
        Switch {
            port,
            known_hosts,
            up,
            cut,
            task,
        }
    }

    /// Turns it on or off (connections already through stay).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Turns it off and drops every connection through it, as a host that
    /// went away mid-session (an SSH master's connection included).
    pub fn cut(&self) {
        self.set_up(false);
        self.cut.notify_waiters();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One process on this machine, as `/proc` describes it.
#[derive(Debug, Clone)]
pub struct Proc {
    /// Its pid.
    pub pid: i32,
    /// Its parent's pid.
    pub ppid: i32,
    /// Its `comm`.
    pub comm: String,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Every process whose command line contains `needle` (this test's own
/// processes excepted).
pub fn processes(needle: &str) -> Vec<Proc> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| u32::try_from(pid).ok() != Some(me))
        .filter_map(process)
        .filter(|p| p.cmdline.contains(needle))
        .collect()
}

/// One process, if it is (still) there and not a zombie.
pub fn process(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Proc {
        pid,
        ppid,
        comm,
        cmdline,
    })
}
