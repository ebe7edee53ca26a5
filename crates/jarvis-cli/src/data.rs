//! Where Jarvis keeps its state: the data directory, the database URL and
//! the audit key (a file, or the config's external signer), from flags,
//! then environment, then the config file, then defaults. Also the loaded
//! config itself, and the signing of the audit chain's head by commands
//! that write to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};
use clap::Args;
use jarvis_gateway::Config;
use jarvis_gateway::witness::Witnesses;
use jarvis_store::{AuditKey, RunnerClaim, Store};

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Loads the config named by `--config`, or the user's default one if it
/// exists, once for the whole run.
pub fn load_config(path: Option<&Path>) -> Result<()> {
    let config = match path {
        Some(p) => Config::load(p)?,
        None => {
            let default = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .map(|d| d.join("jarvis/jarvis.toml"));
            match default {
                Some(p) if p.is_file() => Config::load(&p)?,
                _ => Config::default(),
            }
        }
    };
    let _ = CONFIG.set(config);
    Ok(())
}

/// Creates `dir` (and its parents) for the user alone, if missing:
/// commands, their output and SSH sockets are nobody else's business.
pub fn private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))
}

/// The loaded config (empty if none).
pub fn config() -> &'static Config {
    CONFIG.get_or_init(Config::default)
}

#[derive(Args, Clone)]
pub struct DataArgs {
    /// Where Jarvis keeps its state [env: JARVIS_DATA_DIR; default: ~/.local/share/jarvis].
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The database [env: JARVIS_DATABASE_URL; default: sqlite://DATA_DIR/jarvis.db].
    #[arg(long, value_name = "URL", global = true)]
    database: Option<String>,
    /// The operator's audit signing key [env: JARVIS_AUDIT_KEY; default: DATA_DIR/audit.key].
    #[arg(long, value_name = "FILE", global = true)]
    audit_key: Option<PathBuf>,
}

impl DataArgs {
    fn data_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        if let Some(d) = std::env::var_os("JARVIS_DATA_DIR") {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = &config().data_dir {
            return Ok(d.clone());
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .context("no data directory: set --data-dir, JARVIS_DATA_DIR or HOME")?;
        Ok(base.join("jarvis"))
    }

    fn database_url(&self) -> Result<String> {
        if let Some(u) = self
            .database
            .clone()
            .or_else(|| std::env::var("JARVIS_DATABASE_URL").ok())
        {
            return Ok(u);
        }
        if let Some(reference) = &config().database {
            return reference
                .resolve()
                .map_err(|e| anyhow::anyhow!("store.database in the config: {e}"));
        }
        // Commands and their output can hold secrets: the directory is
        // the operator's alone.
        let dir = self.ensure_data_dir()?;
        Ok(format!("sqlite://{}", dir.join("jarvis.db").display()))
    }

    fn key_path(&self) -> Result<PathBuf> {
        if let Some(k) = self
            .audit_key
            .clone()
            .or_else(|| std::env::var_os("JARVIS_AUDIT_KEY").map(PathBuf::from))
        {
            return Ok(k);
        }
        if let Some(k) = &config().audit_key {
            return Ok(k.clone());
        }
        Ok(self.data_dir()?.join("audit.key"))
    }

    /// The data directory, created (0700) if missing.
    pub fn ensure_data_dir(&self) -> Result<PathBuf> {
        let dir = self.data_dir()?;
        private_dir(&dir)?;
        Ok(dir)
    }

    /// Whether this process is the only one running actions from this data
    /// directory, so actions left `running` belong to a process that died.
    ///
    /// Every process that runs actions (`jarvis serve`, `run`, `approve`, …)
    /// holds a shared lock on `DATA_DIR/runners.lock` for its whole life;
    /// one that gets it exclusively first is alone on this machine
    /// ([`DataArgs::runner`] adds the other machines).
    fn sole_runner(&self) -> Result<bool> {
        static HELD: OnceLock<std::fs::File> = OnceLock::new();
        if HELD.get().is_some() {
            return Ok(false);
        }
        let path = self.ensure_data_dir()?.join("runners.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let alone = match file.try_lock() {
            Ok(()) => {
                file.unlock()
                    .with_context(|| format!("cannot unlock {}", path.display()))?;
                true
            }
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        };
        file.lock_shared()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        let _ = HELD.set(file);
        Ok(alone)
    }

    /// Joins the processes that run actions on this database: the file
    /// lock for this machine ([`DataArgs::sole_runner`]) and the store's
    /// claim, which on PostgreSQL sees runners on every machine. Open the
    /// gateway with [`Runner::is_sole`] as its `recover`, then call
    /// [`Runner::recovered`].
    pub async fn runner(&self, store: &Store) -> Result<Runner> {
        let here = self.sole_runner()?;
        let claim = store
            .claim_runner()
            .await
            .context("cannot join the processes that run actions")?;
        Ok(Runner { here, claim })
    }

    /// The store, created and migrated on first use.
    pub async fn store(&self) -> Result<Store> {
        let url = self.database_url()?;
        Ok(Store::connect(&url).await?)
    }

    /// The audit key: the config's external signer, or the key file
    /// (created on first use). A key file given by flag or environment
    /// overrides the signer.
    pub fn key(&self) -> Result<AuditKey> {
        if let Some(signer) = self.signer()? {
            return Ok(signer);
        }
        Ok(AuditKey::load_or_create(&self.key_path()?)?)
    }

    /// The audit key if one exists already (verification never creates one).
    pub fn existing_key(&self) -> Result<Option<AuditKey>> {
        if let Some(signer) = self.signer()? {
            return Ok(Some(signer));
        }
        let path = self.key_path()?;
        if path.exists() {
            Ok(Some(AuditKey::load_or_create(&path)?))
        } else {
            Ok(None)
        }
    }

    /// The config's external signer, unless a key file is given by flag or
    /// environment.
    fn signer(&self) -> Result<Option<AuditKey>> {
        let overridden = self.audit_key.is_some() || std::env::var_os("JARVIS_AUDIT_KEY").is_some();
        match &config().audit.signer {
            Some(s) if !overridden => Ok(Some(AuditKey::command(
                s.program.clone(),
                s.args.clone(),
                &s.public_key,
            )?)),
            _ => Ok(None),
        }
    }

    /// The store for a command that writes: it signs a checkpoint at every
    /// `[audit] checkpoint_every` events, signs and ships the head every
    /// `head_period_secs` while the command runs, and once more when it
    /// ends ([`seal_at_exit`]).
    ///
    /// A key file inside a PostgreSQL server's data directory is refused:
    /// whoever writes the database there could sign for it.
    pub async fn signing_store(&self) -> Result<Store> {
        let key = self.key()?;
        let store = self.store().await?;
        if !key.is_external() {
            store
                .refuse_key_in_data_directory(&self.key_path()?)
                .await?;
        }
        let store = store.with_checkpoints(key, config().audit.checkpoint_every);
        if SERVER_SIGNS.load(Ordering::Relaxed) {
            return Ok(store);
        }
        TO_SEAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| store.clone());
        let (background, witnesses) = (
            store.clone(),
            Witnesses::new(config().audit.witnesses.clone()),
        );
        let period = config().audit.head_period;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                if let Err(e) = witnesses.seal(&background, "periodic").await {
                    eprintln!("jarvis: audit: {e}");
                }
            }
        });
        Ok(store)
    }
}

/// The store a command signs its events with, once it opened one: the
/// head of what it wrote is signed when the command ends
/// ([`seal_written`]).
static TO_SEAL: Mutex<Option<Store>> = Mutex::new(None);

/// Whether this process is `jarvis serve`, whose server signs heads itself.
static SERVER_SIGNS: AtomicBool = AtomicBool::new(false);

/// Leaves signing the head to the server this process runs.
pub fn server_signs_heads() {
    SERVER_SIGNS.store(true, Ordering::Relaxed);
}

/// Signs the head of the chain the command wrote to and ships it to the
/// witnesses, so its events are covered when it ends, then closes the
/// store. On the command's own runtime and store: a second connection at
/// exit would wait for the first one's to close. Problems are told on
/// stderr; the command's outcome stands.
pub async fn seal_written() {
    let Some(store) = TO_SEAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    else {
        return;
    };
    let sealed = Witnesses::new(config().audit.witnesses.clone())
        .seal(&store, "exit")
        .await;
    store.close().await;
    match sealed {
        Ok(s) => {
            for e in s.failed {
                eprintln!("jarvis: audit: {e}");
            }
        }
        Err(e) => eprintln!("jarvis: audit: cannot sign the head of the log: {e:#}"),
    }
}

/// This process's place among those that run actions (see
/// [`DataArgs::runner`]).
pub struct Runner {
    here: bool,
    claim: RunnerClaim,
}

impl Runner {
    /// Whether no other process runs actions on this database, here or on
    /// another machine: only then are actions left `running` orphans.
    pub fn is_sole(&self) -> bool {
        self.here && self.claim.is_sole()
    }

    /// After the gateway recovered: lets other runners in, and keeps the
    /// claim for the rest of the process.
    pub async fn recovered(mut self) -> Result<()> {
        static HELD: Mutex<Vec<RunnerClaim>> = Mutex::new(Vec::new());
        self.claim
            .share()
            .await
            .context("cannot let other processes run actions")?;
        // Dropping the claim would let it go; a poisoned list still holds.
        HELD.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.claim);
        Ok(())
    }
}
