//! `jarvis audit list | show | verify | export | checkpoint`.
//!
//! `verify` reports every break by kind (invalid, missing, gap), as
//! CloudTrail's validator does, against what `[audit]` expects and the
//! heads the witnesses hold; `checkpoint` signs and ships the head.

use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use jarvis_gateway::witness::{self, Witnesses};
use jarvis_store::{
    AuditEvent, AuditFilter, BreakKind, OffsetDateTime, VerifyOptions, VerifyReport, parse_time,
    verify_lines_with,
};

use crate::data::{DataArgs, config};
use crate::terminal::Inert;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List events, newest first.
    List(ListArgs),
    /// Show one event (by sequence number) or an action and all its events (by id or unique prefix).
    Show {
        /// An event's sequence number, or an action id or unique prefix of one.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Walk the whole chain, its signed heads and what witnesses hold; report every break (invalid, missing, gap) and exit 1 on any.
    Verify {
        /// Verify an export file instead of the database.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Check against the signed heads a witness holds: a configured witness's name, a file of JSON lines, or a git repository (repeatable).
        #[arg(long, value_name = "SINK")]
        witness: Vec<String>,
        /// The operator's public key (hex) to check checkpoints against; default: the audit key file's.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write the whole log (events and checkpoints) for offline verification.
    Export {
        /// The output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Sign the chain's head now with the audit key and ship it to the witnesses.
    Checkpoint {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only events about this action (id or unique prefix).
    #[arg(long)]
    action: Option<String>,
    /// Only events by this actor.
    #[arg(long)]
    actor: Option<String>,
    /// Only events about this host.
    #[arg(long)]
    host: Option<String>,
    /// Only this kind (`action.approved`), or a family ending in `.` (`action.`).
    #[arg(long)]
    kind: Option<String>,
    /// Only events at or after this time: a date (2026-11-23, midnight UTC), RFC 3339
    /// (2026-11-23T14:00:00+02:00), or a date and time without an offset, read as UTC.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this time, in the same forms.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only events whose payload, actor, kind or action contains this text (any case).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Events per page.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Which page, from 1 (newest).
    #[arg(long, default_value_t = 1)]
    page: i64,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match cmd {
            AuditCommand::List(args) => list(args).await,
            AuditCommand::Show { target, json, data } => show(&target, json, &data).await,
            AuditCommand::Verify {
                file,
                witness,
                public_key,
                json,
                data,
            } => verify(file.as_deref(), &witness, public_key, json, &data).await,
            AuditCommand::Export {
                format: _,
                output,
                data,
            } => export(output.as_deref(), &data).await,
            AuditCommand::Checkpoint { data } => checkpoint(&data).await,
        }
    })
}

async fn list(a: ListArgs) -> Result<ExitCode> {
    let store = a.data.store().await?;
    let action_id = match &a.action {
        Some(id) => Some(store.resolve_action(id).await?.to_string()),
        None => None,
    };
    if a.limit < 1 || a.page < 1 {
        bail!("--limit and --page start at 1");
    }
    let filter = AuditFilter {
        action_id,
        actor: a.actor,
        host: a.host,
        kind: a.kind,
        since: time_arg("--since", a.since.as_deref())?,
        until: time_arg("--until", a.until.as_deref())?,
        search: a.search,
        upto: None,
        limit: Some(a.limit),
        offset: Some((a.page - 1) * a.limit),
    };
    let events = store.events(&filter).await?;
    let mut out = io::stdout().lock();
    if a.json {
        for e in &events {
            writeln!(out, "{}", event_json(e))?;
        }
    } else if events.is_empty() {
        writeln!(out, "no events match")?;
    } else {
        // Payloads quote commands, output and names an agent wrote.
        let mut out = Inert::new(&mut out);
        for e in &events {
            print_event_line(&mut out, e)?;
        }
        if events.len() as i64 == a.limit {
            writeln!(out, "(more: --page {})", a.page + 1)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(target: &str, json: bool, data: &DataArgs) -> Result<ExitCode> {
    let store = data.store().await?;
    let mut out = io::stdout().lock();
    if let Ok(seq) = target.parse::<i64>() {
        let e = store.event(seq).await?;
        if json {
            writeln!(out, "{}", event_json(&e))?;
        } else {
            print_event_full(&mut Inert::new(&mut out), &e)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = store.resolve_action(target).await?;
    let action = store.action(id).await?;
    let events = store
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            limit: Some(10_000),
            ..AuditFilter::default()
        })
        .await?;
    if json {
        let v = serde_json::json!({
            "action": action,
            "events": events.iter().rev().map(event_json).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Inert::new(out);
    writeln!(out, "action   {}", action.id)?;
    writeln!(out, "state    {}", action.state)?;
    writeln!(out, "host     {}", action.host.as_deref().unwrap_or("-"))?;
    writeln!(out, "by       {}", action.requester)?;
    writeln!(out, "command  {}", action.command)?;
    if let (Some(d), Some(r)) = (action.decision, action.risk) {
        writeln!(out, "decision {d}, risk {} ({})", r.score(), r.level())?;
    }
    for r in &action.reasons {
        writeln!(out, "  - {r}")?;
    }
    writeln!(out, "events:")?;
    for e in events.iter().rev() {
        print_event_line(&mut out, e)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(
    file: Option<&Path>,
    witnesses: &[String],
    public_key: Option<String>,
    json: bool,
    data: &DataArgs,
) -> Result<ExitCode> {
    let key = match public_key {
        Some(k) => Some(k),
        None => data.existing_key()?.map(|k| k.public_hex()),
    };
    let audit = &config().audit;
    let mut options = VerifyOptions {
        trusted: key.clone(),
        every: Some(audit.checkpoint_every),
        period: None,
        now: None,
        witness: Vec::new(),
    };
    for arg in witnesses {
        let spec = witness::resolve(arg, &audit.witnesses);
        options.witness.extend(witness::read_heads(&spec)?);
    }
    options.witness.sort_by_key(|h| h.seq);
    options
        .witness
        .dedup_by(|a, b| a.seq == b.seq && a.signature == b.signature);
    let report = match file {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            verify_lines_with(BufReader::new(f), &options)
                .with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            // A live log must have its recent events under a signed head;
            // an export is a copy of one moment, whose tail need not be.
            options.period = Some(audit.head_period);
            data.store().await?.verify_with(&options).await?
        }
    };
    print_report(&report, json, key.is_some(), !witnesses.is_empty())?;
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(r: &VerifyReport, json: bool, keyed: bool, witnessed: bool) -> Result<()> {
    let mut out = io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
        return Ok(());
    }
    match &r.problem {
        None if r.events == 0 => writeln!(out, "intact: the log is empty")?,
        None => {
            writeln!(
                out,
                "intact: {} events, the last is {}",
                r.events, r.last_seq
            )?;
            if r.checkpoints_verified > 0 {
                writeln!(
                    out,
                    "{} signed checkpoints match the operator's key",
                    r.checkpoints_verified
                )?;
            }
            if witnessed {
                writeln!(
                    out,
                    "{} heads the witnesses hold are on the chain as signed",
                    r.witnessed
                )?;
            }
            if r.checkpoints_unchecked > 0 || !keyed {
                writeln!(
                    out,
                    "note: {} checkpoints were not checked against the operator's key (no key given)",
                    r.checkpoints_unchecked
                )?;
            }
        }
        Some(p) => {
            writeln!(out, "BROKEN at event {}: {}", p.seq, p.what)?;
            writeln!(out, "({} events read)", r.events)?;
            for b in &r.breaks {
                writeln!(out, "{:<8} at event {}: {}", b.kind.as_str(), b.seq, b.what)?;
            }
            if r.unlisted > 0 {
                writeln!(out, "… and {} more breaks", r.unlisted)?;
            }
            writeln!(
                out,
                "valid: {} checkpoints, {} witnessed heads; invalid: {}, missing: {}, gap: {}",
                r.checkpoints_verified + r.checkpoints_unchecked,
                r.witnessed,
                r.count(BreakKind::Invalid),
                r.count(BreakKind::Missing),
                r.count(BreakKind::Gap)
            )?;
        }
    }
    Ok(())
}

async fn export(output: Option<&Path>, data: &DataArgs) -> Result<ExitCode> {
    let store = data.store().await?;
    match output {
        Some(path) => {
            let mut f = io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            let n = store.export(&mut f).await?;
            f.flush()?;
            eprintln!("exported {n} events to {}", path.display());
        }
        None => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            store.export(&mut out).await?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn checkpoint(data: &DataArgs) -> Result<ExitCode> {
    let store = data
        .store()
        .await?
        .with_checkpoints(data.key()?, config().audit.checkpoint_every);
    let sealed = Witnesses::new(config().audit.witnesses.clone())
        .seal(&store, "manual")
        .await?;
    match &sealed.signed {
        Some(cp) => println!(
            "signed event {} ({}) with key {}",
            cp.seq,
            &cp.hash[..16],
            cp.public_key
        ),
        None => println!("nothing to sign: the head is already signed or the log is empty"),
    }
    for (name, n) in &sealed.shipped {
        println!("shipped {n} signed heads to witness {name}");
    }
    for e in &sealed.failed {
        eprintln!("jarvis: {e}");
    }
    Ok(if sealed.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn event_json(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action_id": e.action_id,
        "host": e.host,
        "kind": e.kind,
        "payload": serde_json::from_str::<serde_json::Value>(&e.payload).unwrap_or(serde_json::Value::String(e.payload.clone())),
        "hash": e.hash,
    })
}

fn print_event_line(out: &mut impl Write, e: &AuditEvent) -> io::Result<()> {
    let action = e
        .action_id
        .as_deref()
        .map_or("-".to_owned(), |a| a.chars().take(13).collect());
    let summary = summary(&e.payload);
    writeln!(
        out,
        "{:>6}  {}  {:<22} {:<16} {:<10} {:<13} {}",
        e.seq,
        &e.at[..e.at.len().min(19)],
        e.kind,
        e.actor,
        e.host.as_deref().unwrap_or("-"),
        action,
        summary
    )
}

fn print_event_full(out: &mut impl Write, e: &AuditEvent) -> io::Result<()> {
    writeln!(out, "event    {}", e.seq)?;
    writeln!(out, "at       {}", e.at)?;
    writeln!(out, "kind     {}", e.kind)?;
    writeln!(out, "actor    {}", e.actor)?;
    writeln!(out, "host     {}", e.host.as_deref().unwrap_or("-"))?;
    writeln!(out, "action   {}", e.action_id.as_deref().unwrap_or("-"))?;
    let pretty = serde_json::from_str::<serde_json::Value>(&e.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| e.payload.clone());
    writeln!(out, "payload  {}", pretty.replace('\n', "\n         "))?;
    writeln!(out, "prev     {}", e.prev_hash)?;
    writeln!(out, "hash     {}", e.hash)
}

/// A short view of a payload: the command, or the state change, or the keys.
fn summary(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let text = if let Some(c) = v.get("command").and_then(|c| c.as_str()) {
        c.to_owned()
    } else if let (Some(f), Some(t)) = (
        v.get("from").and_then(|x| x.as_str()),
        v.get("to").and_then(|x| x.as_str()),
    ) {
        format!("{f} -> {t}")
    } else {
        payload.to_owned()
    };
    // Commands may hold terminal escapes; never print them raw.
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    let short: String = clean.chars().take(60).collect();
    if clean.chars().count() > 60 {
        format!("{short}…")
    } else {
        short
    }
}

/// A time flag's value, or an error naming the flag (the parser's names
/// what was given).
fn time_arg(flag: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>> {
    value
        .map(|v| parse_time(v).with_context(|| flag.to_owned()))
        .transpose()
}
