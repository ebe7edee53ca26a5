//! `jarvis-load`: drives a running `jarvis serve` on this machine and
//! measures it.
//!
//! Phase 1 proposes the same command N times through the JSON API
//! (`POST /api/v1/actions`) from C concurrent workers and reports accepted
//! proposals per second, status codes and latency percentiles. Phase 2
//! (with `--user` and `--password`) signs in once through the login form
//! and fetches the approval queue (`/`), the actions list and the audit page
//! M times each, reporting latency and bytes.
//!
//! It only ever talks to the URL it is given, and refuses one whose host is
//! not loopback (127.0.0.0/8, ::1, `localhost` resolving only to those): it
//! is a tool for measuring a local server, never for loading anyone's.
//! Proxies from the environment are ignored and redirects are not followed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};

/// Load a local `jarvis serve`: proposals through the API, then pages.
#[derive(Parser, Debug)]
#[command(name = "jarvis-load", version)]
struct Args {
    /// The server's base URL; its host must be loopback.
    #[arg(long)]
    url: String,
    /// An API token with the `propose` scope (`jrv_…`).
    #[arg(long, env = "JARVIS_LOAD_TOKEN", hide_env_values = true)]
    token: String,
    /// The configured host the proposals name.
    #[arg(long)]
    host: String,
    /// The proposed command; pick one the policy sends for approval, so
    /// nothing runs.
    #[arg(long, default_value = "systemctl restart grafana")]
    command: String,
    /// How many proposals to send (0 skips phase 1).
    #[arg(long, default_value_t = 10_000)]
    proposals: u64,
    /// Concurrent proposal workers.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Each phase stops after this many seconds even if not done.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// A user to sign in as for phase 2 (pages).
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// That user's password.
    #[arg(long, env = "JARVIS_LOAD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Requests per page in phase 2.
    #[arg(long, default_value_t = 200)]
    page_requests: u64,
    /// Concurrent page workers.
    #[arg(long, default_value_t = 4)]
    page_concurrency: u64,
    /// The pages phase 2 fetches, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "/,/actions,/audit")]
    pages: Vec<String>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Latency figures of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Summary {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

/// The nearest-rank `p`th percentile (0 < p ≤ 100) of `sorted`, which must
/// be in ascending order; zero for no samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len();
    // Nearest rank: the smallest value with at least p% of samples at or below it.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

impl Summary {
    fn of(mut samples: Vec<Duration>) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Summary {
            p50: percentile(&samples, 50.0),
            p90: percentile(&samples, 90.0),
            p99: percentile(&samples, 99.0),
            max: samples[samples.len() - 1],
            mean: total / u32::try_from(samples.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Checks that `url` is http(s) to a loopback host and returns the address
/// to pin its host name to (for `localhost`), so nothing else is reached.
async fn loopback_only(url: &Url) -> Result<Option<(String, SocketAddr)>, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{url}: only http:// or https:// URLs"));
    }
    let refuse = || {
        format!(
            "{url}: refusing a host that is not loopback (127.0.0.0/8, ::1, localhost): \
             jarvis-load only measures a server on this machine"
        )
    };
    let host = url.host_str().unwrap_or("");
    // IPv6 hosts come bracketed; `Url` has already normalised IPv4 forms
    // such as `0x7f.1` to dotted quads.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if is_loopback(ip) {
            Ok(None)
        } else {
            Err(refuse())
        };
    }
    if !host.eq_ignore_ascii_case("localhost") {
        return Err(refuse());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{url}: resolving {host}: {e}"))?
        .collect();
    match addrs.first() {
        Some(first) if addrs.iter().all(|a| is_loopback(a.ip())) => {
            Ok(Some((host.to_owned(), *first)))
        }
        _ => Err(format!("{}; {host} resolves to {addrs:?}", refuse())),
    }
}

/// An error with its causes, which reqwest's `Display` leaves out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The `value` of `<input … name="csrf" … value="…">` in a page.
fn csrf_from_html(html: &str) -> Option<String> {
    // Same byte offsets as `html`: only ASCII letters change case.
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<input").map(|i| i + from) {
        let end = start + lower[start..].find('>')?;
        let tag = &html[start..end];
        if attr(tag, "name").as_deref() == Some("csrf") {
            return attr(tag, "value");
        }
        from = end;
    }
    None
}

/// An attribute's value in an HTML start tag (quoted with `"` or `'`, or
/// bare), with the entities a token can contain decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| i + from) {
        from = i + name.len();
        let before_ok = lower[..i].ends_with(|c: char| c.is_ascii_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let v = tag[value_start..].trim_start();
        let raw = match v.chars().next()? {
            q @ ('"' | '\'') => v[1..].split(q).next()?,
            _ => v
                .split(|c: char| c.is_ascii_whitespace() || c == '/')
                .next()?,
        };
        return Some(
            raw.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
    }
    None
}

/// What one phase (or one page) measured.
#[derive(Debug, Default)]
struct Phase {
    name: String,
    sent: u64,
    ok: u64,
    statuses: BTreeMap<String, u64>,
    /// Proposals only: the states the accepted actions came back in.
    states: BTreeMap<String, u64>,
    latency: Summary,
    bytes: u64,
    elapsed: Duration,
    stopped_early: bool,
    first_failure: Option<String>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    fn to_json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
        json!({
            "name": self.name,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.sent - self.ok,
            "seconds": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "ok_per_second": (self.per_second() * 10.0).round() / 10.0,
            "statuses": self.statuses,
            "states": self.states,
            "latency_ms": {
                "p50": ms(self.latency.p50),
                "p90": ms(self.latency.p90),
                "p99": ms(self.latency.p99),
                "max": ms(self.latency.max),
                "mean": ms(self.latency.mean),
            },
            "bytes": self.bytes,
            "bytes_per_response": self.bytes.checked_div(self.sent).unwrap_or(0),
            "stopped_early": self.stopped_early,
            "first_failure": self.first_failure,
        })
    }
}

/// One worker's tally.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, u64>,
    states: BTreeMap<String, u64>,
    ok: u64,
    bytes: u64,
    first_failure: Option<String>,
}

/// What one request should be.
#[derive(Clone)]
enum Job {
    Propose {
        url: Url,
        token: Arc<str>,
        body: Arc<Value>,
    },
    Get {
        url: Url,
    },
}

impl Job {
    async fn once(&self, client: &Client, tally: &mut Tally) {
        let start = Instant::now();
        let (req, want) = match self {
            Job::Propose { url, token, body } => (
                client.post(url.clone()).bearer_auth(token).json(&**body),
                StatusCode::CREATED,
            ),
            Job::Get { url } => (client.get(url.clone()), StatusCode::OK),
        };
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                resp.bytes().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        tally.latencies.push(start.elapsed());
        match result {
            Ok((status, body)) => {
                *tally
                    .statuses
                    .entry(status.as_u16().to_string())
                    .or_default() += 1;
                tally.bytes += body.len() as u64;
                if status == want {
                    tally.ok += 1;
                    if matches!(self, Job::Propose { .. }) {
                        let state = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v["action"]["state"].as_str().map(str::to_owned))
                            .unwrap_or_else(|| "(no action.state in the answer)".to_owned());
                        *tally.states.entry(state).or_default() += 1;
                    }
                } else if tally.first_failure.is_none() {
                    let text = String::from_utf8_lossy(&body);
                    let text: String = text.chars().take(300).collect();
                    tally.first_failure = Some(format!("{status}: {text}"));
                }
            }
            Err(e) => {
                *tally.statuses.entry("error".to_owned()).or_default() += 1;
                if tally.first_failure.is_none() {
                    tally.first_failure = Some(format!("request failed: {}", chain(&e)));
                }
            }
        }
    }
}

/// Runs `job` `count` times from `workers` concurrent tasks, for at most
/// `cap`.
async fn run(
    name: String,
    client: &Client,
    job: Job,
    count: u64,
    workers: u64,
    cap: Duration,
) -> Phase {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + cap;
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (client, job, next) = (client.clone(), job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < count {
                job.once(&client, &mut tally).await;
            }
            tally
        }));
    }
    let mut phase = Phase {
        name,
        ..Phase::default()
    };
    let mut latencies = Vec::new();
    for t in tasks {
        let tally = match t.await {
            Ok(t) => t,
            Err(e) => {
                phase
                    .first_failure
                    .get_or_insert(format!("worker failed: {e}"));
                continue;
            }
        };
        latencies.extend(tally.latencies);
        for (k, v) in tally.statuses {
            *phase.statuses.entry(k).or_default() += v;
        }
        for (k, v) in tally.states {
            *phase.states.entry(k).or_default() += v;
        }
        phase.ok += tally.ok;
        phase.bytes += tally.bytes;
        if phase.first_failure.is_none() {
            phase.first_failure = tally.first_failure;
        }
    }
    phase.elapsed = start.elapsed();
    phase.sent = latencies.len() as u64;
    phase.stopped_early = phase.sent < count;
    phase.latency = Summary::of(latencies);
    phase
}

/// `path` (absolute or not) under the base URL.
fn under(base: &Url, path: &str) -> Result<Url, String> {
    base.join(path.trim_start_matches('/'))
        .map_err(|e| format!("{base} + {path}: {e}"))
}

/// Signs in through the login form; the client keeps the session cookie.
async fn login(client: &Client, base: &Url, user: &str, password: &str) -> Result<(), String> {
    let login = under(base, "/login")?;
    let page = client
        .get(login.clone())
        .send()
        .await
        .map_err(|e| format!("GET {login}: {}", chain(&e)))?;
    let status = page.status();
    let html = page
        .text()
        .await
        .map_err(|e| format!("GET {login}: {}", chain(&e)))?;
    if status != StatusCode::OK {
        return Err(format!("GET {login}: {status}"));
    }
    let csrf = csrf_from_html(&html)
        .ok_or_else(|| format!("GET {login}: no <input name=\"csrf\" value=…> in the form"))?;
    let resp = client
        .post(login.clone())
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/"),
        ])
        .send()
        .await
        .map_err(|e| format!("POST {login}: {}", chain(&e)))?;
    if !resp.status().is_redirection() {
        let status = resp.status();
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "POST {login}: expected a redirect, got {status}: {body}"
        ));
    }
    let root = under(base, "/")?;
    let check = client
        .get(root.clone())
        .send()
        .await
        .map_err(|e| format!("GET {root}: {}", chain(&e)))?;
    if check.status() != StatusCode::OK {
        return Err(format!(
            "signed in as {user}, but GET {root} answers {} (location: {:?})",
            check.status(),
            check.headers().get("location")
        ));
    }
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu,
    })
}

fn print_table(args: &Args, phases: &[Phase]) {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    println!(
        "jarvis-load against {} (host `{}`, command `{}`)",
        args.url, args.host, args.command
    );
    let m = machine();
    println!(
        "client machine: {} CPUs, {}",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?")
    );
    println!();
    println!(
        "{:<22} {:>7} {:>7} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "phase",
        "sent",
        "ok",
        "seconds",
        "ok/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "bytes/resp"
    );
    for p in phases {
        println!(
            "{:<22} {:>7} {:>7} {:>8.2} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>10}",
            p.name,
            p.sent,
            p.ok,
            p.elapsed.as_secs_f64(),
            p.per_second(),
            ms(p.latency.p50),
            ms(p.latency.p90),
            ms(p.latency.p99),
            ms(p.latency.max),
            p.bytes.checked_div(p.sent).unwrap_or(0),
        );
    }
    println!();
    for p in phases {
        let statuses: Vec<String> = p.statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let mut line = format!("{}: statuses {}", p.name, statuses.join(" "));
        if !p.states.is_empty() {
            let states: Vec<String> = p.states.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            line.push_str(&format!("; states {}", states.join(" ")));
        }
        if p.stopped_early {
            line.push_str("; stopped at the time cap");
        }
        println!("{line}");
        if let Some(f) = &p.first_failure {
            println!("  first failure: {f}");
        }
    }
}

/// Runs the phases; on an error after some ran, returns those with it.
async fn main_inner(args: &Args) -> Result<Vec<Phase>, (Vec<Phase>, String)> {
    let mut phases = Vec::new();
    match phases_into(args, &mut phases).await {
        Ok(()) => Ok(phases),
        Err(e) => Err((phases, e)),
    }
}

async fn phases_into(args: &Args, phases: &mut Vec<Phase>) -> Result<(), String> {
    let mut base = Url::parse(&args.url).map_err(|e| format!("--url {}: {e}", args.url))?;
    let pin = loopback_only(&base).await?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let workers = args.concurrency.max(args.page_concurrency).max(1);
    let mut builder = jarvis_http::client_builder()
        .map_err(|e| format!("HTTP client: {e}"))?
        .no_proxy()
        .cookie_store(true)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(usize::try_from(workers).unwrap_or(usize::MAX))
        .user_agent(concat!("jarvis-load/", env!("CARGO_PKG_VERSION")));
    if let Some((host, addr)) = &pin {
        builder = builder.resolve(host, *addr);
    }
    let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;

    let health = under(&base, "/healthz")?;
    match client.get(health.clone()).send().await {
        Ok(r) if r.status() == StatusCode::OK => {}
        Ok(r) => return Err(format!("GET {health}: {}", r.status())),
        Err(e) => return Err(format!("GET {health}: {}", chain(&e))),
    }

    let cap = Duration::from_secs(args.max_seconds);
    if args.proposals > 0 {
        let job = Job::Propose {
            url: under(&base, "/api/v1/actions")?,
            token: Arc::from(args.token.as_str()),
            body: Arc::new(json!({ "host": args.host, "command": args.command })),
        };
        phases.push(
            run(
                "POST /api/v1/actions".to_owned(),
                &client,
                job,
                args.proposals,
                args.concurrency,
                cap,
            )
            .await,
        );
    }
    if let (Some(user), Some(password)) = (&args.user, &args.password) {
        login(&client, &base, user, password).await?;
        for page in &args.pages {
            let job = Job::Get {
                url: under(&base, page)?,
            };
            phases.push(
                run(
                    format!("GET {page}"),
                    &client,
                    job,
                    args.page_requests,
                    args.page_concurrency,
                    cap,
                )
                .await,
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jarvis-load: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (phases, error) = match runtime.block_on(main_inner(&args)) {
        Ok(p) => (p, None),
        Err((p, e)) => (p, Some(e)),
    };
    if phases.is_empty()
        && let Some(e) = error
    {
        eprintln!("jarvis-load: {e}");
        return ExitCode::FAILURE;
    }
    if args.json {
        let out = json!({
            "url": args.url,
            "host": args.host,
            "command": args.command,
            "concurrency": args.concurrency,
            "page_concurrency": args.page_concurrency,
            "machine": machine(),
            "error": error,
            "phases": phases.iter().map(Phase::to_json).collect::<Vec<_>>(),
        });
        println!("{out:#}");
    } else {
        print_table(&args, &phases);
    }
    let mut failed: Vec<String> = phases
        .iter()
        .filter(|p| p.ok < p.sent || p.stopped_early)
        .map(|p| {
            let cap = if p.stopped_early {
                ", stopped at the time cap"
            } else {
                ""
            };
            format!("{}: {} of {} failed{cap}", p.name, p.sent - p.ok, p.sent)
        })
        .collect();
    let code = if error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::from(3)
    };
    failed.extend(error);
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("jarvis-load: {}", failed.join("; "));
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&n| Duration::from_millis(n)).collect()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let hundred = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&hundred, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&hundred, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&hundred, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&hundred, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&hundred, 0.1), Duration::from_millis(1));
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(percentile(&ten, 50.0), Duration::from_millis(5));
        assert_eq!(percentile(&ten, 99.0), Duration::from_millis(10));
    }

    #[test]
    fn summary_sorts_and_averages() {
        let s = Summary::of(ms(&[30, 10, 20, 40]));
        assert_eq!(s.p50, Duration::from_millis(20));
        assert_eq!(s.p90, Duration::from_millis(40));
        assert_eq!(s.max, Duration::from_millis(40));
        assert_eq!(s.mean, Duration::from_millis(25));
        assert_eq!(Summary::of(Vec::new()), Summary::default());
    }

    #[tokio::test]
    async fn only_loopback_urls() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.8.7/",
            "https://127.0.0.1/x/",
            "http://[::1]:9000",
            "http://localhost:3000",
            "http://LOCALHOST/",
        ] {
            let url = Url::parse(ok).expect("url");
            assert!(loopback_only(&url).await.is_ok(), "{ok} refused");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1:8080",
            "http://0.0.0.0:8080",
            "http://192.168.1.10",
            "http://[::]:80",
            "http://[2001:db8::1]/",
            "http://127.0.0.1.nip.io/",
            "http://localhost.example.com/",
            "ftp://127.0.0.1/",
            "file:///etc/passwd",
        ] {
            let url = Url::parse(bad).expect("url");
            let err = loopback_only(&url).await.expect_err(bad);
            assert!(!err.is_empty());
        }
        let err = loopback_only(&Url::parse("http://example.com").expect("url"))
            .await
            .expect_err("refused");
        assert!(err.contains("not loopback"), "{err}");
    }

    #[test]
    fn csrf_field_is_found() {
        let page = r#"<form method="post" action="/login">
            <input type="text" name="username" value="">
            <input type="hidden" name="csrf" value="abc_DEF-123">
            <input type=hidden name=next value="/"></form>"#;
        assert_eq!(csrf_from_html(page).as_deref(), Some("abc_DEF-123"));
        let reordered = r#"<input value='t&amp;k' type="hidden" name='csrf' />"#;
        assert_eq!(csrf_from_html(reordered).as_deref(), Some("t&k"));
        let bare = "<INPUT type=hidden name=csrf value=xyz>";
        assert_eq!(csrf_from_html(bare).as_deref(), Some("xyz"));
        // `data-name="csrf"` is not the name.
        let decoy = r#"<input data-name="csrf" value="no"><input name="csrf" value="yes">"#;
        assert_eq!(csrf_from_html(decoy).as_deref(), Some("yes"));
        assert_eq!(csrf_from_html("<form></form>"), None);
    }

    #[test]
    fn paths_join_under_the_base() {
        let base = Url::parse("http://127.0.0.1:1/").expect("url");
        assert_eq!(
            under(&base, "/api/v1/actions").expect("join").as_str(),
            "http://127.0.0.1:1/api/v1/actions"
        );
        assert_eq!(
            under(&base, "/").expect("join").as_str(),
            "http://127.0.0.1:1/"
        );
        let prefixed = Url::parse("http://127.0.0.1:1/jarvis/").expect("url");
        assert_eq!(
            under(&prefixed, "/audit").expect("join").as_str(),
            "http://127.0.0.1:1/jarvis/audit"
        );
    }
}
