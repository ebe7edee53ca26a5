//! `--json` on `run`, `approve`, `deny`, `rollback`, `chat` and `hosts
//! check`, as scripts read it (docs/json-output.md): one object on stdout
//! (JSON lines for `chat`), nothing else there, and the exit codes of the
//! human form. No sandbox: the one host is a closed port on loopback, so
//! what is shown is what never reaches a host, or fails to.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use jarvis_tests::{TempDir, jarvis_bin};
use serde_json::Value;

/// Where the web UI says it is, so links are known.
const UI: &str = "https://jarvis.example.test";

/// One test's config and data directory, its host `web` on a loopback
/// port nothing listens on.
struct Setup {
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    /// `extra` is TOML added to the config.
    fn new(tag: &str, extra: &str) -> Setup {
        let dir = TempDir::new(tag);
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        std::fs::write(dir.path().join("known_hosts"), "").expect("known_hosts");
        let config = dir.path().join("jarvis.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\ndata_dir = \"data\"\n\n[server]\npublic_url = \"{UI}\"\n\n\
                 [hosts.web]\ndestination = \"jarvis@127.0.0.1\"\nport = {port}\n\
                 known_hosts = \"known_hosts\"\nenforcement = \"best-effort\"\n\n{extra}\n"
            ),
        )
        .expect("write config");
        Setup { dir, config }
    }

    fn jarvis(&self, args: &[&str]) -> Run {
        let out = Command::new(jarvis_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("JARVIS_DATABASE_URL")
            .env_remove("JARVIS_AUDIT_KEY")
            .env_remove("JARVIS_DATA_DIR")
            // SSH control sockets of this test's own.
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("jarvis runs");
        Run::from(out)
    }

    /// `run --json` of `command` on `web`.
    fn run(&self, command: &str) -> Run {
        let mut args = vec!["run", "--json", "--host", "web", "--"];
        args.extend(command.split(' '));
        self.jarvis(&args)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The one object on stdout, which is all stdout holds.
    fn object(&self) -> Value {
        assert_eq!(self.stdout.lines().count(), 1, "{self}");
        assert!(self.stdout.ends_with('\n'), "{self}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self}"))
    }

    /// Every line of stdout as JSON.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {self}")))
            .collect()
    }

    /// An error: exit 2, nothing on stdout, the message on stderr.
    fn assert_error(&self, says: &str) {
        assert_eq!(self.code, 2, "{self}");
        assert!(self.stdout.is_empty(), "{self}");
        assert!(self.stderr.starts_with("jarvis: "), "{self}");
        assert!(self.stderr.contains(says), "{says} in {self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn id_of(v: &Value) -> String {
    v["action"]["id"].as_str().expect("action.id").to_owned()
}

fn now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

#[test]
fn run_json_of_a_denied_command_says_why_and_never_reaches_the_host() {
    let s = Setup::new("json-denied", "");
    let r = s.run("rm -rf /");
    assert_eq!(r.code, 4, "{r}");
    let v = r.object();
    assert_eq!(
        keys(&v),
        [
            "action",
            "expires_at",
            "judgement",
            "link",
            "outcome",
            "refused",
            "run"
        ]
    );
    assert_eq!(v["outcome"], "refused");
    let a = &v["action"];
    assert_eq!(a["state"], "denied");
    assert_eq!(a["decision"], "deny");
    assert_eq!(a["risk"]["score"], 100);
    assert_eq!(a["risk"]["level"], "critical");
    assert_eq!(a["host"], "web");
    assert_eq!(a["command"], "rm -rf /");
    let first = a["reasons"][0].as_str().expect("a reason");
    assert!(first.starts_with("hard guardrail (wipe-root)"), "{first}");
    assert_eq!(v["judgement"]["decision"], "deny");
    assert_eq!(v["judgement"]["reasons"], a["reasons"]);
    assert_eq!(v["refused"]["code"], "denied");
    assert!(
        v["refused"]["reason"]
            .as_str()
            .expect("reason")
            .starts_with(first),
        "{v}"
    );
    assert!(v["run"].is_null() && v["expires_at"].is_null(), "{v}");
    assert_eq!(v["link"], format!("{UI}/actions/{}", id_of(&v)));
    assert!(
        r.stderr.contains("denied; nothing was sent to the host"),
        "{r}"
    );
}

#[test]
fn a_pending_run_is_rejected_by_deny_json_and_then_cannot_be_approved() {
    let s = Setup::new("json-pending", "");
    let r = s.run("systemctl restart nginx");
    assert_eq!(r.code, 3, "{r}");
    let v = r.object();
    assert_eq!(v["outcome"], "pending");
    assert_eq!(v["action"]["state"], "pending_approval");
    assert_eq!(v["action"]["decision"], "approve");
    assert_eq!(v["judgement"]["decision"], "approve");
    assert!(v["run"].is_null() && v["refused"].is_null(), "{v}");
    let expires = v["expires_at"].as_i64().expect("expires_at");
    assert!(expires > now(), "{v}");
    let id = id_of(&v);
    assert!(r.stderr.contains("waiting for approval"), "{r}");

    // The id is what `actions show --json` knows it by.
    let shown = s.jarvis(&["actions", "show", "--json", &id]);
    assert_eq!(shown.code, 0, "{shown}");
    let shown: Value = serde_json::from_str(&shown.stdout).expect("show --json");
    assert_eq!(shown["action"], v["action"]);

    let d = s.jarvis(&[
        "deny",
        "--json",
        &id[..13],
        "--reason",
        "not during office hours",
    ]);
    assert_eq!(d.code, 0, "{d}");
    let dv = d.object();
    assert_eq!(keys(&dv), ["action", "link", "outcome"]);
    assert_eq!(dv["outcome"], "rejected");
    assert_eq!(dv["action"]["id"], id.as_str());
    assert_eq!(dv["action"]["state"], "rejected");
    assert_eq!(dv["link"], format!("{UI}/actions/{id}"));

    s.jarvis(&["approve", "--json", &id])
        .assert_error("rejected");
    s.jarvis(&["deny", "--json", &id, "--reason", "again"])
        .assert_error("rejected");
}

#[test]
fn approve_json_refusals_are_errors_and_a_partial_approval_is_pending() {
    let own = Setup::new("json-own", "[approvals]\nself_approval = false\n");
    let id = id_of(&own.run("systemctl restart nginx").object());
    own.jarvis(&["approve", "--json", &id])
        .assert_error("may not approve this action");
    own.jarvis(&["approve", "--json", "01ffffff-ffff-7fff-bfff-ffffffffffff"])
        .assert_error("01ffffff-ffff-7fff-bfff-ffffffffffff");

    let two = Setup::new("json-two", "[approvals]\napprovers = 2\n");
    let id = id_of(&two.run("systemctl restart nginx").object());
    let r = two.jarvis(&["approve", "--json", &id]);
    assert_eq!(r.code, 3, "{r}");
    let v = r.object();
    assert_eq!(
        keys(&v),
        [
            "action",
            "approvals_still_needed",
            "expires_at",
            "link",
            "outcome",
            "refused",
            "run"
        ]
    );
    assert_eq!(v["outcome"], "pending");
    assert_eq!(v["approvals_still_needed"], 1);
    assert_eq!(v["action"]["state"], "pending_approval");
    assert!(v["run"].is_null(), "{v}");
}

#[test]
fn a_run_that_cannot_reach_its_host_ends_failed_with_its_run_record() {
    let s = Setup::new("json-unreachable", "");
    let r = s.run("ls -la");
    assert_eq!(r.code, 1, "{r}");
    let v = r.object();
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["action"]["state"], "failed");
    assert_eq!(v["action"]["decision"], "allow");
    let run = &v["run"];
    assert_eq!(run["ending"], "unreachable", "{v}");
    assert!(run["exit_code"].is_null(), "{v}");
    for stream in ["stdout", "stderr"] {
        assert_eq!(run[stream]["text"], "", "{v}");
        assert_eq!(run[stream]["bytes"], 0, "{v}");
        assert_eq!(run[stream]["truncated"], false, "{v}");
    }
    let error = run["error"].as_str().expect("run.error");
    assert!(error.starts_with("cannot connect to `web`"), "{error}");

    // Approved by a person, it ends the same way, in approve's object.
    let pending = id_of(&s.run("systemctl restart nginx").object());
    let r = s.jarvis(&["approve", "--json", &pending]);
    assert_eq!(r.code, 1, "{r}");
    let v = r.object();
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["approvals_still_needed"], 0);
    assert_eq!(v["run"]["ending"], "unreachable");
    assert!(r.stderr.contains("approved"), "{r}");

    // Nothing was snapshot, so there is nothing to roll back.
    let r = s.jarvis(&["rollback", "--json", &pending]);
    assert_eq!(r.code, 4, "{r}");
    let v = r.object();
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["of"], pending.as_str());
    assert!(v["rollback"].is_null(), "{v}");
    assert_eq!(v["refused"]["code"], "no-rollback");
    assert_eq!(v["message"], v["refused"]["reason"]);
    assert_eq!(v["link"], format!("{UI}/actions/{pending}"));
}

#[test]
fn rollback_json_of_a_denied_action_is_refused() {
    let s = Setup::new("json-rollback", "");
    let id = id_of(&s.run("rm -rf /").object());
    let r = s.jarvis(&["rollback", "--json", &id]);
    assert_eq!(r.code, 4, "{r}");
    let v = r.object();
    assert_eq!(
        keys(&v),
        [
            "link",
            "message",
            "needed_approvers",
            "of",
            "outcome",
            "refused",
            "report",
            "rollback",
            "run",
            "stopped",
            "summary",
            "waiting_for_approval"
        ]
    );
    assert_eq!(v["refused"]["code"], "no-rollback");
    assert_eq!(v["waiting_for_approval"], false);
    s.jarvis(&["rollback", "--json", "no-such-action"])
        .assert_error("no-such-action");
}

#[test]
fn hosts_check_json_on_a_host_that_does_not_answer() {
    let s = Setup::new("json-check", "");
    let r = s.jarvis(&["hosts", "check", "--json", "web"]);
    assert_eq!(r.code, 1, "{r}");
    let v = r.object();
    assert_eq!(
        keys(&v),
        ["error", "host", "kernel", "reachable", "report", "took_ms"]
    );
    assert_eq!(v["host"], "web");
    assert_eq!(v["reachable"], false);
    assert!(v["report"].is_null(), "{v}");
    assert_eq!(v["error"]["code"], "transport");
    assert!(
        v["error"]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("cannot connect to `web`"),
        "{v}"
    );
    let k = &v["kernel"];
    assert_eq!(k["level"], "unknown");
    assert_eq!(k["enforcement"], "best-effort");
    assert_eq!(k["unattended"], true);
    assert!(v["took_ms"].is_u64(), "{v}");

    s.jarvis(&["hosts", "check", "--json", "nas"])
        .assert_error("no host named `nas`");
    s.jarvis(&["run", "--json", "--host", "nas", "--", "uptime"])
        .assert_error("no host named `nas`");
}

#[test]
fn chat_json_streams_each_event_and_ends_with_the_conversation() {
    let s = Setup::new("json-chat", "");
    let r = s.jarvis(&["chat", "--json", "rm -rf /"]);
    assert_eq!(r.code, 1, "{r}");
    let lines = r.lines();
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["started", "proposed", "result", "end"], "{r}");
    let (started, proposed, result, end) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert_eq!(started["mode"], "direct");
    assert_eq!(started["continued"], false);
    assert_eq!(proposed["host"], "web");
    assert_eq!(proposed["command"], "rm -rf /");
    assert_eq!(result["state"], "denied");
    assert_eq!(result["decision"], "deny");
    assert_eq!(result["risk"]["level"], "critical");
    let action = result["id"].as_str().expect("result.id");
    assert_eq!(result["link"], format!("{UI}/actions/{action}"));
    assert_eq!(end["conversation"], started["conversation"]);
    assert_eq!(end["state"], "stopped");
    assert_eq!(end["finished"], false);
    assert_eq!(end["actions"][0]["id"], action);
    assert_eq!(end["actions"][0]["state"], "denied");

    // Words without a model: no action, and the end says what to send.
    let conversation = end["conversation"].as_str().expect("id").to_owned();
    let r = s.jarvis(&["chat", "--json", "--continue", &conversation, "what now?"]);
    assert_eq!(r.code, 1, "{r}");
    let lines = r.lines();
    assert_eq!(lines.len(), 2, "{r}");
    assert_eq!(lines[0]["type"], "started");
    assert_eq!(lines[0]["continued"], true);
    assert_eq!(lines[0]["conversation"], conversation.as_str());
    assert_eq!(lines[1]["type"], "end");
    assert!(
        lines[1]["summary"]
            .as_str()
            .expect("summary")
            .starts_with("No model is configured"),
        "{r}"
    );
    assert_eq!(lines[1]["actions"], Value::Array(Vec::new()));
}
