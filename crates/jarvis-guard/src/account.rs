//! The guard's account of one action's run, read back from its own log:
//! the `started` line written before the command existed and the line that
//! ended the request. It is what the gateway could not hear when its link
//! broke mid-run or it stopped itself, and the host's log is the one record
//! the gateway cannot rewrite.
//!
//! Only the log's tail is read, newest line first: the gateway asks soon
//! after a run, and a question that costs a read of a log grown over years
//! would be one a proposal's host could not afford.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use jarvis_core::ActionId;
use jarvis_exec::protocol::{AccountEnd, AccountStart, Outcome, RunAccount};
use serde_json::Value;

/// How much of the log's end is read: many thousands of requests' lines,
/// and a read that takes milliseconds.
pub const TAIL: u64 = 8 << 20;

/// What the last `tail` bytes of the log at `log` say of `id`'s run.
///
/// # Errors
/// The log cannot be opened or read; a missing log has no record.
pub fn read(log: &Path, id: ActionId, tail: u64) -> std::io::Result<RunAccount> {
    let mut file = match File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(scan(&[], true, id)),
        Err(e) => return Err(e),
    };
    // Lines appended after this are not waited for: the length now bounds
    // the read, and a line half written by another guard does not parse.
    let len = file.metadata()?.len();
    let from = len.saturating_sub(tail);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(usize::try_from(len - from).unwrap_or(0));
    file.take(len - from).read_to_end(&mut buf)?;
    Ok(scan(&buf, from == 0, id))
}

/// Reads `buf`, the log's tail (its whole when `whole_log`), newest line
/// first, for `id`'s run.
pub fn scan(buf: &[u8], whole_log: bool, id: ActionId) -> RunAccount {
    let wanted = id.to_string();
    let mut lines = buf.split(|b| *b == b'\n').rev().collect::<Vec<_>>();
    // A tail that starts mid-line starts with a piece of one.
    if !whole_log {
        lines.pop();
    }
    let mut account = RunAccount {
        action_id: id,
        started: None,
        ended: None,
        read_bytes: buf.len() as u64,
        whole_log,
    };
    let needle = wanted.as_bytes();
    for line in lines {
        // Most lines are other actions': a byte search before a parse.
        if !line.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let Ok(Value::Object(entry)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if entry.get("action_id").and_then(Value::as_str) != Some(wanted.as_str()) {
            continue;
        }
        // Snapshots, rollbacks, previews and account questions for the
        // action are requests of their own; an edit is its run.
        if entry
            .get("op")
            .and_then(Value::as_str)
            .is_some_and(|op| op != "edit")
        {
            continue;
        }
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
        let at = text("at").unwrap_or_default();
        match entry.get("result").and_then(Value::as_str) {
            Some("started") => {
                account.started = Some(AccountStart {
                    at,
                    kernel: text("kernel"),
                    approved: entry
                        .get("approved")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                });
                // The end, if any, comes after the start, so it was seen.
                break;
            }
            Some("ran") if account.ended.is_none() => {
                let Some(outcome) = entry
                    .get("outcome")
                    .and_then(|o| serde_json::from_value::<Outcome>(o.clone()).ok())
                else {
                    continue;
                };
                account.ended = Some(AccountEnd::Ran { at, outcome });
            }
            Some("refused") if account.ended.is_none() => {
                account.ended = Some(AccountEnd::Refused {
                    at,
                    code: text("code").unwrap_or_default(),
                    reasons: entry
                        .get("reasons")
                        .and_then(Value::as_array)
                        .map(|r| {
                            r.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    duration_ms: entry.get("duration_ms").and_then(Value::as_u64),
                });
            }
            _ => {}
        }
    }
    account
}

/// A word for the log line of an account question.
pub fn found(account: &RunAccount) -> &'static str {
    match (&account.started, &account.ended) {
        (None, None) => "no-record",
        (None, Some(_)) => "not-started",
        (Some(_), None) => "no-end",
        (Some(_), Some(_)) => "ended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(v: Value) -> String {
        format!("{v}\n")
    }

    fn started(id: &str, at: &str) -> String {
        line(
            json!({"result": "started", "action_id": id, "approved": true,
            "kernel": "read-only, runs 1 program, no network", "at": at, "pid": 7}),
        )
    }

    fn ran(id: &str, code: i32) -> String {
        line(
            json!({"result": "ran", "action_id": id, "command": "true", "at": "t-ran",
            "outcome": {"ending": "exited", "exit_code": code, "signal": null,
                "duration_ms": 12, "killed": 0, "kernel": "k",
                "stdout": {"bytes": 0, "sha256": "", "truncated": false},
                "stderr": {"bytes": 0, "sha256": "", "truncated": false}}}),
        )
    }

    fn gone(id: &str) -> String {
        line(
            json!({"result": "refused", "action_id": id, "code": "client-gone",
            "reasons": ["the gateway disconnected; the command was killed"],
            "duration_ms": 1500, "at": "t-gone"}),
        )
    }

    #[test]
    fn finds_its_own_run_among_others() {
        let (a, b, c) = (ActionId::new(), ActionId::new(), ActionId::new());
        let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
        let log = [
            started(&a, "t-a"),
            line(json!({"result": "checked", "at": "t"})),
            started(&b, "t-b"),
            line(json!({"op": "snapshot", "action_id": a, "result": "done"})),
            ran(&b, 3),
            started(&c, "t-c"),
            gone(&a),
            line(json!({"op": "account", "action_id": a, "result": "done"})),
        ]
        .concat();
        let id = |s: &str| s.parse::<ActionId>().expect("id");
        let acc = scan(log.as_bytes(), true, id(&a));
        assert_eq!(acc.started.as_ref().map(|s| s.at.as_str()), Some("t-a"));
        assert!(acc.started.as_ref().is_some_and(|s| s.approved));
        assert!(
            matches!(&acc.ended, Some(AccountEnd::Refused { code, duration_ms: Some(1500), .. })
                if code == "client-gone"),
            "{acc:?}"
        );
        assert_eq!(found(&acc), "ended");
        let acc = scan(log.as_bytes(), true, id(&b));
        assert!(
            matches!(&acc.ended, Some(AccountEnd::Ran { outcome, .. }) if outcome.exit_code == Some(3)),
            "{acc:?}"
        );
        // Started and nothing after: the guard itself ended first.
        let acc = scan(log.as_bytes(), true, id(&c));
        assert!(acc.started.is_some() && acc.ended.is_none());
        assert_eq!(found(&acc), "no-end");
        assert_eq!(acc.read_bytes, log.len() as u64);
    }

    #[test]
    fn a_half_written_last_line_is_skipped() {
        let a = ActionId::new();
        let id = a.to_string();
        let mut log = started(&id, "t-a");
        let end = ran(&id, 0);
        log.push_str(&end[..end.len() / 2]);
        let acc = scan(log.as_bytes(), true, a);
        assert!(acc.started.is_some());
        assert_eq!(acc.ended, None);
    }

    #[test]
    fn refused_before_it_started_is_not_a_start() {
        let a = ActionId::new();
        let id = a.to_string();
        let log = line(
            json!({"result": "refused", "action_id": id, "code": "host-policy",
            "reasons": ["the host policy denies this command"], "at": "t"}),
        );
        let acc = scan(log.as_bytes(), true, a);
        assert_eq!(acc.started, None);
        assert!(
            matches!(&acc.ended, Some(AccountEnd::Refused { code, .. }) if code == "host-policy")
        );
        assert_eq!(found(&acc), "not-started");
    }

    #[test]
    fn no_record_is_said_so() {
        let a = ActionId::new();
        let log = [started(&ActionId::new().to_string(), "t"), gone("x")].concat();
        let acc = scan(log.as_bytes(), true, a);
        assert_eq!((acc.started, acc.ended), (None, None));
        assert!(acc.whole_log);
    }

    #[test]
    fn only_the_tail_of_a_large_log_is_read() {
        let dir = std::env::temp_dir().join(format!("jarvis-guard-account-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("guard.log");
        let (old, new) = (ActionId::new(), ActionId::new());
        let mut log = started(&old.to_string(), "t-old");
        let filler = line(json!({"result": "checked", "at": "t", "pad": "x".repeat(200)}));
        while log.len() < 3 << 20 {
            log.push_str(&filler);
        }
        log.push_str(&started(&new.to_string(), "t-new"));
        log.push_str(&ran(&new.to_string(), 0));
        std::fs::write(&path, &log).expect("write");
        let tail = 1 << 20;
        let acc = read(&path, new, tail).expect("read");
        assert!(acc.started.is_some() && acc.ended.is_some(), "{acc:?}");
        assert_eq!((acc.read_bytes, acc.whole_log), (tail, false));
        // The old start is beyond what is read, and the answer says so.
        let acc = read(&path, old, tail).expect("read");
        assert_eq!((acc.started, acc.whole_log), (None, false));
        let acc = read(&path, old, u64::MAX).expect("read");
        assert!(acc.whole_log && acc.started.is_some());
        let _ = std::fs::remove_dir_all(&dir);
        // No log at all: no record.
        let acc = read(&dir.join("none.log"), new, tail).expect("read");
        assert_eq!(acc.started, None);
    }

    /// The guard reads the request line with the protocol's own parse: an
    /// account question for anything but an action id never reaches the
    /// log, it is a bad request naming the field.
    #[test]
    fn anything_but_an_action_id_is_refused() {
        use base64::Engine as _;
        use jarvis_exec::protocol::{ProtocolError, REQUEST_PREFIX, Request};
        let line = |id: &str| {
            let json = json!({"op": "account", "action_id": id}).to_string();
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
            format!("{REQUEST_PREFIX}{encoded}")
        };
        let id = ActionId::new();
        assert!(matches!(
            Request::parse(&line(&id.to_string())),
            Ok(Request::Account(a)) if a.action_id == id
        ));
        for bad in [
            "",
            "../../etc/passwd",
            "0193",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        ] {
            match Request::parse(&line(bad)) {
                Err(ProtocolError::Json(message)) => {
                    assert!(message.contains("`action_id`"), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
