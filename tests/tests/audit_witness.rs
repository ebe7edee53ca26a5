//! Witnesses off the box, through the real `jarvis`: every command that
//! writes signs the head and ships it to a file of JSON lines and to a git
//! repository; `jarvis audit verify --witness` then catches what the
//! database alone cannot show: a chain rewritten and signed again with the
//! local key, and a tail cut back to an older head.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use jarvis_store::{AuditFilter, AuditKey, Checkpoint, Store};
use jarvis_tests::server::{Agent, Served};
use jarvis_tests::{Env, TempDir, jarvis_bin};

#[path = "../../crates/jarvis-store/tests/forge/mod.rs"]
mod forge;

/// A config with its data directory and two witnesses outside it.
struct Setup {
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        // The witness file's directory stands for another mount: it must
        // exist, as a mounted filesystem would.
        std::fs::create_dir_all(dir.path().join("mnt")).expect("mkdir");
        let config = dir.path().join("jarvis.toml");
        std::fs::write(
            &config,
            "[store]\ndata_dir = \"data\"\n\n[audit]\ncheckpoint_every = 3\nhead_period_secs = 60\n\n\
             [[audit.witness]]\nname = \"usb\"\nfile = \"mnt/heads.jsonl\"\n\n\
             [[audit.witness]]\nname = \"offsite\"\ngit = \"witness.git\"\n",
        )
        .expect("write config");
        Setup { dir, config }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn git(&self) -> PathBuf {
        self.dir.path().join("witness.git")
    }

    fn jarvis(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(jarvis_bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("JARVIS_DATABASE_URL")
            .env_remove("JARVIS_AUDIT_KEY")
            .env_remove("JARVIS_DATA_DIR")
            .output()
            .expect("jarvis runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes through the CLI: people and tokens, each command signing the
    /// head and shipping it as it ends.
    fn write(&self, names: &[&str]) {
        for name in names {
            let (code, _, err) = self.jarvis(&["users", "add", name, "--role", "approver"]);
            assert_eq!(code, 0, "{err}");
        }
    }

    fn sql(&self, sql: &str) {
        let out = Command::new("sqlite3")
            .arg(self.data().join("jarvis.db"))
            .arg(sql)
            .output()
            .expect("sqlite3 runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn store(&self) -> Store {
        Store::connect(&format!(
            "sqlite://{}",
            self.data().join("jarvis.db").display()
        ))
        .await
        .expect("store")
    }
}

fn witness_lines(path: &Path) -> Vec<Checkpoint> {
    std::fs::read_to_string(path)
        .expect("the witness file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a head per line"))
        .collect()
}

const DROP_TRIGGERS: &str = "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
     DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;";

/// Rewrites every `user.*` event's actor from the second event on,
/// recomputes every hash and the head, and signs every checkpoint again
/// with the key that sits in the data directory, linked as Jarvis links
/// them: the whole attack of someone who holds the database host.
async fn rewrite_and_resign(setup: &Setup) {
    let store = setup.store().await;
    let mut events = store
        .events(&AuditFilter {
            limit: Some(100_000),
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    events.reverse();
    let old = store.checkpoints().await.expect("heads");
    store.close().await;
    let key = AuditKey::load_or_create(&setup.data().join("audit.key")).expect("the local key");
    let forged = forge::rechain_and_resign_sql(events, old, &key, |e| {
        if e.seq >= 2 && e.kind.starts_with("user.") {
            e.actor = "local:someone-else".into();
        }
    })
    .await;
    setup.sql(&format!("{DROP_TRIGGERS}{forged}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_signed_again_with_the_local_key_fails_against_the_witnesses() {
    let setup = Setup::new("witness-resign");
    setup.write(&["alice", "bob", "carol", "dave"]);

    // Every command shipped its heads: a file line and a commit each.
    let shipped = witness_lines(&setup.dir.path().join("mnt/heads.jsonl"));
    assert!(shipped.len() >= 4, "{shipped:?}");
    assert!(
        shipped
            .iter()
            .any(|h| h.reason.as_deref() == Some("interval"))
    );
    assert!(shipped.iter().any(|h| h.reason.as_deref() == Some("exit")));
    let commits = Command::new("git")
        .arg("--git-dir")
        .arg(setup.git())
        .args(["rev-list", "--count", "jarvis-audit-heads"])
        .output()
        .expect("git");
    assert_eq!(
        String::from_utf8_lossy(&commits.stdout).trim(),
        shipped.len().to_string(),
        "a commit per head"
    );
    let (code, out, err) = setup.jarvis(&[
        "audit",
        "verify",
        "--witness",
        "usb",
        "--witness",
        "offsite",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "{} heads the witnesses hold are on the chain as signed",
            shipped.len()
        )),
        "{out}"
    );

    rewrite_and_resign(&setup).await;

    // The database alone, against the operator's own key: fooled.
    let (code, out, _) = setup.jarvis(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    // Against either witness: every head it holds is off the chain.
    let git = setup.git();
    for witness in ["usb", git.to_str().expect("utf-8")] {
        let (code, out, _) = setup.jarvis(&["audit", "verify", "--witness", witness]);
        assert_eq!(code, 1, "{witness}: {out}");
        assert!(out.contains("BROKEN at event"), "{out}");
        let invalid = out
            .lines()
            .filter(|l| {
                l.starts_with("invalid ")
                    && l.contains("is not what the head the witness holds covers")
            })
            .count();
        assert!(invalid >= shipped.len() - 1, "{witness}: {out}");
        assert!(out.contains("invalid: "), "the summary line: {out}");
    }
    // And nothing signs over the rewritten chain.
    let (code, _, err) = setup.jarvis(&["audit", "checkpoint"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds the signed head at event")
            && err.contains("the chain was rewritten")
            && err.contains("no head is signed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_cut_back_to_an_older_head_is_missing_against_the_witness() {
    let setup = Setup::new("witness-cut");
    setup.write(&["alice", "bob"]);
    let store = setup.store().await;
    let keep = store.checkpoints().await.expect("heads")[0].clone();
    let head_hash = store.event(keep.seq).await.expect("event").hash;
    store.close().await;
    setup.write(&["carol"]);
    let newest = witness_lines(&setup.dir.path().join("mnt/heads.jsonl"))
        .last()
        .expect("a head")
        .seq;
    assert!(newest > keep.seq);

    // Back to the first head: events, heads and the chain's head row.
    setup.sql(&format!(
        "{DROP_TRIGGERS} DELETE FROM audit_events WHERE seq > {seq}; DELETE FROM audit_checkpoints WHERE seq > {seq}; \
         UPDATE audit_head SET seq = {seq}, hash = '{head_hash}';",
        seq = keep.seq
    ));
    let (code, out, _) = setup.jarvis(&["audit", "verify"]);
    assert_eq!(code, 0, "the database alone is consistent: {out}");
    let (code, out, _) = setup.jarvis(&["audit", "verify", "--witness", "usb"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("missing ")
            && l.contains(&format!(
                "the witness holds a signed head at event {newest}"
            ))
            && l.contains("its tail was cut off")),
        "{out}"
    );
    // The next command that writes refuses to sign over the cut.
    let (code, _, err) = setup.jarvis(&["users", "add", "eve", "--role", "viewer"]);
    assert_eq!(code, 0, "the command itself is done: {err}");
    assert!(
        err.contains("jarvis: audit:") && err.contains("its tail was cut off"),
        "{err}"
    );
}

/// The newest event's sequence number, as the CLI reads it.
fn head_seq(env: &Env) -> i64 {
    let out = env.jarvis(&["audit", "list", "--json", "--limit", "1"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("an event");
    v["seq"].as_i64().expect("seq")
}

/// A server whose witness is a file in a directory of its own (standing
/// for another mount), which outlives the server and its data.
fn served_with_witness(tag: &str, period_secs: u64) -> (Served, TempDir, PathBuf) {
    let env = Env::new(tag, "", "");
    let mount = TempDir::new(&format!("{tag}-mount"));
    let witness = mount.path().join("heads.jsonl");
    let extra = format!(
        "[audit]\nhead_period_secs = {period_secs}\n\n[[audit.witness]]\nname = \"usb\"\nfile = \"{}\"\n",
        witness.display()
    );
    (Served::start(env, &extra, &[]), mount, witness)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_signs_and_ships_a_head_every_period() {
    let (s, _mount, witness) = served_with_witness("witness-serve", 1);
    let agent = Agent::new(&s, s.add_token("bot", "propose"));
    // Whether it runs or waits for a person, its proposal is on the log.
    agent.propose("uptime").await;
    let seq = head_seq(&s.env);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let heads = witness_lines(&witness);
        if heads
            .iter()
            .any(|h| h.reason.as_deref() == Some("periodic") && h.seq >= seq)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no periodic head covers event {seq}: {heads:?}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The server's own verification reads the witness too.
    let (_, v) = agent.get("/api/v1/audit/verify").await;
    assert_eq!(v["intact"], true, "{v:#}");
    assert!(v["report"]["witnessed"].as_u64().unwrap_or(0) >= 2, "{v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_signs_its_last_events_when_it_stops() {
    // A period far longer than the test: only the stop can sign these.
    let (s, _mount, witness) = served_with_witness("witness-stop", 3600);
    let agent = Agent::new(&s, s.add_token("bot", "propose"));
    let before = witness_lines(&witness)
        .last()
        .expect("the token's head")
        .seq;
    // Whether it runs or waits for a person, its proposal is on the log.
    agent.propose("uptime").await;
    let seq = head_seq(&s.env);
    assert!(seq > before);
    drop(s);
    let heads = witness_lines(&witness);
    let last = heads.last().expect("a head");
    assert_eq!(last.reason.as_deref(), Some("shutdown"), "{heads:?}");
    assert!(last.seq >= seq, "{heads:?}");
}
