//! A client of OpenSSH's multiplexing protocol: a session on a live
//! ControlMaster without starting an `ssh` process for it.
//!
//! `ssh -S` costs a process and its start-up (libraries, config) for each
//! request, which is most of what a request over a warm master costs. The
//! protocol itself (OpenSSH's PROTOCOL.mux, version 4) is small: a hello
//! each way, a new-session request, the three standard descriptors handed
//! over a Unix socket, and the master's answer. Speaking it also tells,
//! exactly, whether a request reached the host: everything before the
//! master's answer leaves it unsent, where the `ssh` client only says so in
//! words on its stderr.
//!
//! The master writes the session's stdout and stderr straight into pipes
//! of ours. Dropping a [`Session`] closes the control connection and those
//! pipes, and the master then closes the session channel, as when a
//! client `ssh` is killed: the guard hears its session end and kills the
//! command.

use std::fs::File;
use std::io::{ErrorKind, IoSlice, PipeReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};

/// The protocol version a master speaks, and the only one it accepts.
const VERSION: u32 = 4;
const MSG_HELLO: u32 = 0x0000_0001;
const C_NEW_SESSION: u32 = 0x1000_0002;
const S_PERMISSION_DENIED: u32 = 0x8000_0002;
const S_FAILURE: u32 = 0x8000_0003;
const S_EXIT_MESSAGE: u32 = 0x8000_0004;
const S_SESSION_OPENED: u32 = 0x8000_0006;
const S_TTY_ALLOC_FAIL: u32 = 0x8000_0008;
/// No escape character: the session has no terminal to type it on.
const NO_ESCAPE: u32 = 0xffff_ffff;
/// A master's messages are a few dozen bytes; a longer length is not the
/// protocol.
const MAX_PACKET: u32 = 256 * 1024;
/// What the master says when the host refuses it another channel.
const REFUSED_BY_PEER: &str = "Session open refused by peer";

/// Why a session could not be had.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The request never reached the host: nothing ran, and it may be
    /// sent again to a new master. What happened.
    MasterGone(String),
    /// The master is there but the host refused it another session (its
    /// sshd's `MaxSessions`): nothing ran. The master's words.
    SessionRefused(String),
    /// The master refused the request for a reason of its own before
    /// sending anything. Its words.
    Refused(String),
    /// The request was handed to the master and no answer came: the
    /// command may have been sent. What happened.
    Unanswered(String),
    /// No answer within the wait: the command may have been sent.
    Silent,
    /// A local failure (a pipe, `/dev/null`) before anything was sent.
    Local(String),
}

/// An open session: the master's control connection and the pipes it
/// writes the command's output to.
pub(crate) struct Session {
    /// The connection to the master, which reports the command's exit.
    pub(crate) control: UnixStream,
    /// The command's stdout.
    pub(crate) stdout: PipeReader,
    /// The command's stderr.
    pub(crate) stderr: PipeReader,
}

/// Opens a session running `command` on the master listening at `socket`,
/// with no terminal and stdin at end of file. Blocks for at most `wait` on
/// each step (the last one waits for the host to open the channel).
pub(crate) fn open(socket: &Path, command: &str, wait: Duration) -> Result<Session, OpenError> {
    let gone = |what: &str, e: std::io::Error| OpenError::MasterGone(format!("{what}: {e}"));
    let mut control = UnixStream::connect(socket).map_err(|e| gone("connect", e))?;
    for set in [UnixStream::set_read_timeout, UnixStream::set_write_timeout] {
        set(&control, Some(wait)).map_err(|e| OpenError::Local(format!("socket timeout: {e}")))?;
    }
    let mut hello = Packet::new(MSG_HELLO);
    hello.u32(VERSION);
    control
        .write_all(&hello.finish())
        .map_err(|e| gone("hello", e))?;
    let reply = read_packet(&mut control).map_err(|e| gone("hello", e))?;
    let mut reply = Reader::new(&reply);
    match (reply.u32(), reply.u32()) {
        (Some(MSG_HELLO), Some(VERSION)) => {}
        (Some(MSG_HELLO), Some(v)) => {
            return Err(OpenError::Refused(format!(
                "the master speaks multiplexing protocol {v}, not {VERSION}"
            )));
        }
        _ => return Err(OpenError::MasterGone("no hello from the master".into())),
    }

    let (stdout, stdout_w) = std::io::pipe().map_err(|e| OpenError::Local(format!("pipe: {e}")))?;
    let (stderr, stderr_w) = std::io::pipe().map_err(|e| OpenError::Local(format!("pipe: {e}")))?;
    let stdin = File::open("/dev/null").map_err(|e| OpenError::Local(format!("/dev/null: {e}")))?;

    let request_id = 1;
    let mut request = Packet::new(C_NEW_SESSION);
    request
        .u32(request_id)
        .string(b"") // reserved
        .u32(0) // no terminal
        .u32(0) // no X11 forwarding
        .u32(0) // no agent forwarding
        .u32(0) // a command, not a subsystem
        .u32(NO_ESCAPE)
        .string(b"") // terminal type
        .string(command.as_bytes());
    // Until the master has all three descriptors it opens nothing: a
    // failure here leaves the request unsent.
    control
        .write_all(&request.finish())
        .map_err(|e| gone("session request", e))?;
    for fd in [
        OwnedFd::from(stdin),
        OwnedFd::from(stdout_w),
        OwnedFd::from(stderr_w),
    ] {
        send_fd(&control, &fd).map_err(|e| gone("handing over descriptors", e))?;
        // Ours closes here: the master holds its own copy, so our readers
        // see the end of the output when the session ends.
    }

    // The master answers once the host has opened the channel, after it
    // sent the command: from here a lost answer may mean a run.
    let reply = read_packet(&mut control).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => OpenError::Silent,
        _ => OpenError::Unanswered(e.to_string()),
    })?;
    let mut reply = Reader::new(&reply);
    let (kind, id) = (reply.u32(), reply.u32());
    if id != Some(request_id) {
        return Err(OpenError::Unanswered(format!(
            "the master answered another request ({kind:x?}, id {id:?})"
        )));
    }
    match kind {
        Some(S_SESSION_OPENED) => {}
        Some(S_FAILURE | S_PERMISSION_DENIED) => {
            let said = reply.text();
            return Err(if said.contains(REFUSED_BY_PEER) {
                OpenError::SessionRefused(said)
            } else {
                OpenError::Refused(said)
            });
        }
        other => {
            return Err(OpenError::Unanswered(format!(
                "the master answered {other:x?} to a session request"
            )));
        }
    }
    // Later reads wait for the command's exit, however long it runs.
    control
        .set_read_timeout(None)
        .map_err(|e| OpenError::Local(format!("socket timeout: {e}")))?;
    Ok(Session {
        control,
        stdout,
        stderr,
    })
}

/// Waits on a session's control connection for the command's exit status,
/// as the master reports it, or the connection's end (`None`).
pub(crate) async fn exit_status(control: &mut tokio::net::UnixStream) -> Option<u32> {
    use tokio::io::AsyncReadExt;
    loop {
        let len = control.read_u32().await.ok()?;
        if !(4..=MAX_PACKET).contains(&len) {
            return None;
        }
        let mut body = vec![0u8; len as usize];
        control.read_exact(&mut body).await.ok()?;
        let mut m = Reader::new(&body);
        match m.u32() {
            Some(S_EXIT_MESSAGE) => {
                let _session = m.u32();
                return m.u32();
            }
            Some(S_TTY_ALLOC_FAIL) => continue,
            _ => return None,
        }
    }
}

/// Hands `fd` to the master: one byte with the descriptor attached, as the
/// master reads each of the three.
fn send_fd(control: &UnixStream, fd: &OwnedFd) -> std::io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<UnixAddr>(
            control.as_raw_fd(),
            &[IoSlice::new(&[0])],
            &rights,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(std::io::Error::new(ErrorKind::WriteZero, "nothing sent")),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn read_packet(control: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    control.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if !(4..=MAX_PACKET).contains(&len) {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a {len}-byte message is not the multiplexing protocol"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    control.read_exact(&mut body)?;
    Ok(body)
}

/// One message in SSH wire format: a length, a type, fields.
struct Packet(Vec<u8>);

impl Packet {
    fn new(kind: u32) -> Packet {
        let mut p = Packet(vec![0; 4]);
        p.u32(kind);
        p
    }

    fn u32(&mut self, v: u32) -> &mut Packet {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn string(&mut self, s: &[u8]) -> &mut Packet {
        // A command is bounded far below 4 GiB by the protocol's request
        // limit before it gets here.
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s);
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let len = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        std::mem::take(&mut self.0)
    }
}

/// Reads the fields of one message; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Reader<'a> {
        Reader(body)
    }

    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    /// A string field as text, or what is left if it is cut short.
    fn text(&mut self) -> String {
        let Some(len) = self.u32() else {
            return String::new();
        };
        let len = (len as usize).min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(s).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn packets_carry_their_length_and_fields_in_network_order() {
        let mut p = Packet::new(MSG_HELLO);
        p.u32(VERSION).string(b"ab");
        assert_eq!(
            p.finish(),
            [0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, b'a', b'b']
        );
        let body = [0x80, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 9, b'n', b'o'];
        let mut r = Reader::new(&body);
        assert_eq!(r.u32(), Some(S_FAILURE));
        assert_eq!(r.u32(), Some(1));
        // A string cut short reads as what is there, never past the end.
        assert_eq!(r.text(), "no");
        assert_eq!(r.u32(), None);
    }

    fn temp_socket(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("jx-mux-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A master that says hello and then answers the session request with
    /// `answer`, after taking the three descriptors' bytes.
    fn fake_master(tag: &str, answer: Option<Vec<u8>>) -> std::path::PathBuf {
        let path = temp_socket(tag);
        let listener = UnixListener::bind(&path).expect("bind");
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let _hello = read_packet(&mut s).expect("client hello");
            let mut hello = Packet::new(MSG_HELLO);
            hello.u32(VERSION);
            s.write_all(&hello.finish()).expect("hello");
            let _request = read_packet(&mut s).expect("request");
            let mut fds = [0u8; 3];
            let _ = s.read_exact(&mut fds);
            if let Some(a) = answer {
                s.write_all(&a).expect("answer");
            }
        });
        path
    }

    #[test]
    fn a_refusal_by_the_host_is_told_apart_from_a_silent_master() {
        let mut refused = Packet::new(S_FAILURE);
        refused.u32(1).string(REFUSED_BY_PEER.as_bytes());
        let socket = fake_master("refused", Some(refused.finish()));
        match open(&socket, "x", Duration::from_secs(5)) {
            Err(OpenError::SessionRefused(said)) => assert_eq!(said, REFUSED_BY_PEER),
            other => panic!("{:?}", other.err()),
        }
        let _ = std::fs::remove_file(socket);

        // The master takes the request and closes without answering: the
        // command may have been sent.
        let socket = fake_master("unanswered", None);
        assert!(matches!(
            open(&socket, "x", Duration::from_secs(5)),
            Err(OpenError::Unanswered(_))
        ));
        let _ = std::fs::remove_file(socket);
    }

    #[test]
    fn no_master_leaves_the_request_unsent() {
        let socket = temp_socket("none");
        assert!(matches!(
            open(&socket, "x", Duration::from_secs(1)),
            Err(OpenError::MasterGone(_))
        ));
    }
}
