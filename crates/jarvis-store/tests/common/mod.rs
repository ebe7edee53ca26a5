//! Test databases: a fresh SQLite file and a fresh database on the project's
//! PostgreSQL server (`scripts/postgres`), each with the CLI client that
//! tampering tests use behind Jarvis's back.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jarvis_store::{Store, StoreOptions};

/// The backends every store test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One fresh database.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    /// The SQLite file, for `sqlite3`.
    pub file: Option<PathBuf>,
    _dir: Option<TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The URL of the project's test PostgreSQL server, started on first use.
fn postgres_admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let out = Command::new(workspace().join("scripts/postgres"))
            .arg("start")
            .output()
            .expect("scripts/postgres runs");
        assert!(
            out.status.success(),
            "scripts/postgres start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    })
}

impl TestDb {
    /// A fresh, empty database of the given kind.
    pub fn new(kind: Kind) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        match kind {
            Kind::Sqlite => {
                let dir = TempDir::new(&format!("store-{n}"));
                let file = dir.path().join("jarvis.db");
                TestDb {
                    kind,
                    url: format!("sqlite://{}", file.display()),
                    file: Some(file),
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("jarvis_t{}_{n}_{}", std::process::id(), nanos());
                psql(admin, &format!("CREATE DATABASE {name}")).expect("create database");
                let url = format!(
                    "{}/{name}",
                    admin.rsplit_once('/').expect("url has a path").0
                );
                TestDb {
                    kind,
                    url,
                    file: None,
                    _dir: None,
                }
            }
        }
    }

    /// Both kinds.
    pub fn both() -> Vec<TestDb> {
        vec![TestDb::new(Kind::Sqlite), TestDb::new(Kind::Postgres)]
    }

    /// Connects a store to it, with the production busy timeout: writers
    /// racing on a loaded machine wait for each other rather than fail.
    pub async fn store(&self) -> Store {
        self.store_waiting(StoreOptions::default().busy_timeout)
            .await
    }

    /// Connects a store that gives up on a held SQLite lock after `wait`.
    pub async fn store_waiting(&self, wait: Duration) -> Store {
        Store::connect_with(&self.url, &StoreOptions { busy_timeout: wait })
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", self.kind))
    }

    /// Runs SQL through the database's own command-line client, as someone
    /// tampering behind Jarvis's back would. Returns stdout, or stderr as
    /// the error.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        match self.kind {
            Kind::Sqlite => {
                let out = Command::new("sqlite3")
                    .arg(self.file.as_ref().expect("sqlite file"))
                    .arg(sql)
                    .output()
                    .expect("sqlite3 runs");
                result(out)
            }
            Kind::Postgres => psql(&self.url, sql),
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-q",
            "-A",
            "-t",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    result(out)
}

fn result(out: std::process::Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000)
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("jarvis-{tag}-{}-{}", std::process::id(), nanos()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
