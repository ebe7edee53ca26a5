//! A full disk under load (issue 17, item 1): the data directory is a
//! small real tmpfs that fills while agents propose and commands run on
//! the sandbox. Nothing acknowledged may be lost, nothing may run on the
//! host without a record, every refused write says why, `/readyz` goes red
//! while the disk is full, and everything comes back by itself when space
//! does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jarvis_tests::disk::Tmpfs;
use jarvis_tests::server::{Agent, Served};
use jarvis_tests::{Env, marker, sandbox};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What one proposal got, and in which phase it was sent.
#[derive(Debug, Clone)]
struct Answer {
    phase: u8,
    status: StatusCode,
    body: Value,
}

const BEFORE: u8 = 0;
const FULL: u8 = 1;
const AFTER: u8 = 2;

/// Limits high enough that the load itself is never what refuses.
const HOST_LIMITS: &str = "rate_per_minute = 100000\nburst = 10000\nconcurrency = 16";
const LIMITS: &str = "rate_per_minute = 100000\nburst = 10000\n\
                      requester_rate_per_minute = 100000\nrequester_burst = 10000";

/// What the load has been answered so far, for the test to wait on.
#[derive(Default)]
struct Tally {
    /// Proposals refused, in any phase.
    refused: AtomicUsize,
    /// Proposals sent after space came back and created.
    recovered: AtomicUsize,
}

/// Keeps `clients` agents proposing `echo MARK-N` until `stop`.
fn load(
    agent: Arc<Agent>,
    clients: usize,
    mark: &str,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    (0..clients)
        .map(|c| {
            let (agent, phase, stop) = (agent.clone(), phase.clone(), stop.clone());
            let tally = tally.clone();
            let mark = mark.to_owned();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let sent = phase.load(Ordering::Relaxed);
                    let (status, body) = agent
                        .post(
                            "/api/v1/actions",
                            json!({ "host": "sandbox", "command": format!("echo {mark}-{c}-{n}") }),
                        )
                        .await;
                    if status != StatusCode::CREATED {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    } else if sent == AFTER {
                        tally.recovered.fetch_add(1, Ordering::Relaxed);
                    }
                    answers.push(Answer {
                        phase: sent,
                        status,
                        body,
                    });
                    n += 1;
                }
                answers
            })
        })
        .collect()
}

/// `/readyz` as a signed-in caller sees it.
async fn readyz(agent: &Agent) -> (StatusCode, Value) {
    agent.get("/readyz").await
}

/// Waits (at most `within`) for `/readyz` to answer `want`.
async fn readyz_becomes(agent: &Agent, want: StatusCode, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = readyz(agent).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status} (wanted {want}): {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The action ids the guard on the sandbox logged for this test: what
/// reached the host, by its own account. A run's result line carries the
/// command (and so `mark`); its start line only the command's hash, so a
/// start is matched by the ids the test knows of.
fn ran_on_host(mark: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let log = std::fs::read_to_string(&sandbox().guard_log).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| {
            let id = l["action_id"].as_str()?.to_owned();
            let mine = l["command"].as_str().is_some_and(|c| c.contains(mark))
                || (l["result"] == "started" && known.contains(&id));
            mine.then_some(id)
        })
        .collect()
}

/// Where the database of a run lives, for what the errors must name and
/// for reopening it afterwards.
struct Database {
    /// A text every refusal and the red `/readyz` must contain.
    named: String,
    /// Its URL, to open it again once the server has stopped.
    url: String,
    /// Whether `jarvis run` on the same database is tried while full
    /// (SQLite: the CLI writes to the same file).
    cli: bool,
}

/// Runs eight agents' proposals against `s` while `fs` fills up, then
/// frees it, and checks everything issue 17 asks of a full disk.
async fn fill_under_load(s: Served, fs: &Tmpfs, db: &Database) {
    let agent = Arc::new(Agent::new(&s, s.add_token("faults-disk", "propose")));
    let green = readyz_becomes(&agent, StatusCode::OK, Duration::from_secs(30)).await;
    assert_eq!(green["database"]["ok"], true, "{green:#}");

    let mark = marker("faults-disk");
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(
        agent.clone(),
        8,
        &mark,
        phase.clone(),
        stop.clone(),
        tally.clone(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The disk fills while the load runs.
    let filler = fs.fill();
    phase.store(FULL, Ordering::Relaxed);
    let red = readyz_becomes(
        &agent,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    let why = red["database"]["reason"].as_str().unwrap_or_default();
    assert!(
        red["database"]["ok"] == false && why.contains(&db.named),
        "/readyz names the full disk: {red:#}"
    );
    // What the CLI had acknowledged, if it could still write.
    let mut cli_acked = None;
    if db.cli {
        let cli = s.env.jarvis(&[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!("echo {mark}-cli"),
        ]);
        let err = String::from_utf8_lossy(&cli.stderr);
        if cli.status.success() {
            // SQLite reuses its write-ahead log from the start once it is
            // checkpointed, so a small write can still land in blocks the
            // file already has after the server's probe was refused. Then
            // it was written: the action must be on record like every
            // acknowledged one, which the checks below hold it to.
            let id = err
                .split_whitespace()
                .skip_while(|w| *w != "action")
                .nth(1)
                .unwrap_or_else(|| panic!("jarvis run names its action: {err}"));
            cli_acked = Some(id.to_owned());
        } else {
            // Else the CLI says the disk is full, as the server does.
            assert!(
                err.contains("is full") && err.contains("nothing was written"),
                "{err}"
            );
        }
    }
    // Until the load meets the full disk (PostgreSQL fills pages it
    // already has before it asks for a new one), at most 20 seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    while tally.refused.load(Ordering::Relaxed) < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Space comes back: no restart, the server takes writes again.
    std::fs::remove_file(&filler).expect("remove the filler");
    let back = readyz_becomes(&agent, StatusCode::OK, Duration::from_secs(15)).await;
    assert_eq!(back["database"]["ok"], true, "{back:#}");
    phase.store(AFTER, Ordering::Relaxed);
    // Until every client has had one proposal sent since then created (a
    // proposal that runs a command takes a second or more on a busy
    // machine), at most 30 seconds; the assertions below say if not.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tally.recovered.load(Ordering::Relaxed) < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.expect("client"));
    }
    // Let what was admitted finish on the host, then stop the server.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = s.log();
    drop(s);

    let by_phase = |p: u8, ok: bool| {
        answers
            .iter()
            .filter(|a| a.phase == p && (a.status == StatusCode::CREATED) == ok)
            .count()
    };
    let figures = format!(
        "before: {} created, {} refused; full: {} created, {} refused; after: {} created, {} refused",
        by_phase(BEFORE, true),
        by_phase(BEFORE, false),
        by_phase(FULL, true),
        by_phase(FULL, false),
        by_phase(AFTER, true),
        by_phase(AFTER, false),
    );
    eprintln!("{figures}");
    assert!(by_phase(BEFORE, true) > 0, "{figures}");
    assert!(
        by_phase(FULL, false) > 0,
        "the disk never refused: {figures}"
    );
    assert!(by_phase(AFTER, true) > 0, "no recovery: {figures}");
    // Every refusal is a 507 (or 503) that names the cause and the
    // database; never anything else.
    for a in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        let text = a.body["error"].as_str().unwrap_or_default();
        assert!(
            matches!(
                a.status,
                StatusCode::INSUFFICIENT_STORAGE | StatusCode::SERVICE_UNAVAILABLE
            ) && (text.contains("is full") || text.contains("cannot be written"))
                && text.contains(&db.named),
            "{} {:#}\n{figures}",
            a.status,
            a.body
        );
    }

    // After the restart (a new connection to what is on the disk): every
    // acknowledged proposal is there, and every run the host saw has its
    // `running` on record.
    let store = jarvis_store::Store::connect(&db.url)
        .await
        .expect("the database opens again");
    let mut missing = Vec::new();
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| {
            a.body["action"]["id"]
                .as_str()
                .expect("a created action's id")
        });
    for id in created.chain(cli_acked.as_deref()) {
        match store.resolve_action(id).await {
            Ok(found) if store.action(found).await.is_ok() => {}
            _ => missing.push(id.to_owned()),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged proposals are not in the database: {missing:?}\n{figures}",
        missing.len()
    );
    let acked: BTreeSet<String> = answers
        .iter()
        .filter_map(|a| a.body["action"]["id"].as_str().map(str::to_owned))
        .chain(cli_acked)
        .collect();
    let ran = ran_on_host(&mark, &acked);
    let mut unrecorded = BTreeMap::new();
    for id in &ran {
        let running = store
            .events(&jarvis_store::AuditFilter {
                action_id: Some(id.clone()),
                kind: Some("action.running".into()),
                ..jarvis_store::AuditFilter::default()
            })
            .await
            .expect("events");
        if running.is_empty() {
            let state = match store.resolve_action(id).await {
                Ok(a) => store
                    .action(a)
                    .await
                    .map(|a| a.state.to_string())
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            unrecorded.insert(id.clone(), state);
        }
    }
    assert!(
        unrecorded.is_empty(),
        "ran on the host with no `running` on record: {unrecorded:?}\n{log}"
    );
    assert!(!ran.is_empty(), "nothing ran on the host: {figures}");
    assert!(
        store.verify(None).await.expect("verify").is_intact(),
        "the chain is whole"
    );
    store.close().await;
    eprintln!(
        "{} runs on the host, each with its `running` on record",
        ran.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_on_a_full_disk_loses_no_acknowledged_proposal_and_runs_nothing_unrecorded() {
    let fs = Tmpfs::mount("faults-disk-sqlite", 16 << 10);
    let env = Env::new("faults-disk-sqlite", HOST_LIMITS, LIMITS);
    let config = std::fs::read_to_string(&env.config).expect("config");
    let config = config.replacen(
        "data_dir = \"data\"",
        &format!("data_dir = \"{}\"", fs.path().display()),
        1,
    );
    std::fs::write(&env.config, config).expect("config");
    let file = fs.path().join("jarvis.db");
    let s = Served::start(env, "[server]\nmin_free_mb = 1\nhost_check_secs = 2\n", &[]);
    let db = Database {
        named: file.display().to_string(),
        url: format!("sqlite://{}", file.display()),
        cli: true,
    };
    fill_under_load(s, &fs, &db).await;
    drop(fs);
}

/// A PostgreSQL database whose tablespace is on a small tmpfs, dropped
/// (with its tablespace) when the test ends.
struct PgOnTmpfs {
    admin: String,
    name: String,
    url: String,
    fs: Tmpfs,
}

impl PgOnTmpfs {
    fn create(tag: &str, kib: u64) -> PgOnTmpfs {
        // Starts the server and gives a database URL; the database itself
        // is made again below, in the tablespace.
        let url = jarvis_tests::postgres_database(tag);
        let (server, name) = url.rsplit_once('/').expect("a database in the URL");
        let admin = format!("{server}/postgres");
        let fs = Tmpfs::mount(tag, kib);
        let owned = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(fs.path())
            .status()
            .expect("chown runs")
            .success();
        assert!(owned, "the tablespace directory must be the server's");
        let pg = PgOnTmpfs {
            admin,
            name: name.to_owned(),
            url: url.clone(),
            fs,
        };
        pg.sql(&format!("DROP DATABASE IF EXISTS {name}"));
        pg.sql(&format!(
            "CREATE TABLESPACE {name} LOCATION '{}'",
            pg.fs.path().display()
        ));
        pg.sql(&format!("CREATE DATABASE {name} TABLESPACE {name}"));
        pg
    }

    fn sql(&self, sql: &str) -> bool {
        let out = std::process::Command::new("psql")
            .args([
                self.admin.as_str(),
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        if !out.status.success() {
            eprintln!("{sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        out.status.success()
    }
}

impl Drop for PgOnTmpfs {
    fn drop(&mut self) {
        let name = &self.name;
        self.sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
        self.sql(&format!("DROP DATABASE IF EXISTS {name}"));
        self.sql(&format!("DROP TABLESPACE IF EXISTS {name}"));
        // The tmpfs goes after them (its own Drop).
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_on_a_full_tablespace_loses_no_acknowledged_proposal_and_runs_nothing_unrecorded()
{
    let pg = PgOnTmpfs::create("faults_disk_pg", 24 << 10);
    let env = Env::new("faults-disk-pg", HOST_LIMITS, LIMITS).on_postgres(&pg.url);
    let s = Served::start(env, "[server]\nhost_check_secs = 2\n", &[]);
    let db = Database {
        named: pg.name.clone(),
        url: pg.url.clone(),
        cli: false,
    };
    fill_under_load(s, &pg.fs, &db).await;
    drop(pg);
}
