//! Prometheus metrics of the running server.
//!
//! This module owns the counters and histograms the server accumulates
//! (approval latency, execution time, refusals, HTTP requests, sign-ins) and
//! their rendering, with gauges the caller reads from the store at scrape
//! time, as the Prometheus text exposition format 0.0.4. It is written by
//! hand: the format is small and a metrics crate would bring a registry and
//! global state we do not want.
//!
//! It must never put a secret, a command line, a user-supplied path or any
//! other unbounded value in a label: label values come from the code
//! (reasons, outcomes), the configuration (host and webhook names) or route
//! templates. As a second wall every family is capped at [`MAX_SERIES`]
//! label sets; further ones are counted under the label value `_overflow`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Mutex, MutexGuard};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the approval latency buckets: a person answers
/// in seconds, minutes, hours, or the next day.
pub const APPROVAL_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// Upper bounds (seconds) of the execution duration buckets, from a quick
/// command to an hour-long job.
pub const EXECUTION_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Upper bounds (seconds) of the HTTP request duration buckets.
pub const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The most label sets one family keeps. A new label set beyond it is
/// counted under `_overflow` in every label, so a caller bug that leaks an
/// unbounded value into a label costs a bounded amount of memory and shows
/// up as an `_overflow` series instead of a slow, huge scrape.
pub const MAX_SERIES: usize = 1000;

const OVERFLOW: &str = "_overflow";

type Labels = Vec<String>;

#[derive(Default, Clone)]
struct Histogram {
    // Per-bucket (not cumulative) counts; the +Inf bucket is `count`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        // NaN or infinity would poison `_sum` for the life of the process;
        // a negative duration is a clock step and means "no time".
        if !value.is_finite() {
            return;
        }
        let value = value.max(0.0);
        if self.counts.len() != bounds.len() {
            self.counts.resize(bounds.len(), 0);
        }
        if let Some(i) = bounds.iter().position(|&le| value <= le) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    approval: Histogram,
    execution: BTreeMap<Labels, Histogram>,
    rate_limit: BTreeMap<Labels, u64>,
    refusals: BTreeMap<Labels, u64>,
    http_requests: BTreeMap<Labels, u64>,
    http_duration: BTreeMap<Labels, Histogram>,
    logins: BTreeMap<Labels, u64>,
}

fn slot<T: Default>(map: &mut BTreeMap<Labels, T>, labels: Labels) -> &mut T {
    let key = if map.len() >= MAX_SERIES && !map.contains_key(&labels) {
        vec![OVERFLOW.to_owned(); labels.len()]
    } else {
        labels
    };
    map.entry(key).or_default()
}

fn labels<const N: usize>(values: [&str; N]) -> Labels {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// The server's metrics. Create one, share it as `Arc<Metrics>` (it is
/// `Send + Sync`; state sits behind one mutex held only for a map update),
/// record events as they happen and call [`render`](Self::render) on each
/// scrape.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Values read at scrape time (from the store and the executor) rather than
/// accumulated by [`Metrics`]. Duplicate label sets are merged: counts are
/// summed, and for breakers the last entry wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Number of actions per state and decision (`None` is rendered as the
    /// decision `none`).
    pub actions: Vec<(String, Option<String>, u64)>,
    /// The circuit breaker of each host.
    pub breakers: Vec<(String, BreakerGauge)>,
    /// Actions waiting for an approval.
    pub pending: u64,
    /// Whether the audit chain verified, if it was checked; `None` omits the
    /// metric rather than guessing.
    pub audit_intact: Option<bool>,
    /// Per webhook and format: delivered, failed, dropped, retries. The
    /// webhook is its configured name, never its URL (a webhook URL is a
    /// secret: it often embeds a token).
    pub notifications: Vec<(String, String, u64, u64, u64, u64)>,
}

/// The state of a host's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerGauge {
    /// Requests flow.
    Closed,
    /// Requests are refused.
    Open,
    /// One trial request is allowed through.
    HalfOpen,
}

impl BreakerGauge {
    /// Every state, in rendering order.
    pub const ALL: [BreakerGauge; 3] = [
        BreakerGauge::Closed,
        BreakerGauge::Open,
        BreakerGauge::HalfOpen,
    ];

    /// The `state` label value: `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerGauge::Closed => "closed",
            BreakerGauge::Open => "open",
            BreakerGauge::HalfOpen => "half_open",
        }
    }
}

/// Known methods keep their name; anything else (HTTP allows extension
/// methods, and a client picks them) becomes `other`.
fn method_label(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or("other")
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic mid-update leaves at worst one number off by one; losing
        // all metrics for the rest of the process would be worse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how long an action waited from proposal to a person's
    /// decision, in `jarvis_approval_latency_seconds`.
    pub fn observe_approval_latency(&self, seconds: f64) {
        self.lock().approval.observe(APPROVAL_BUCKETS, seconds);
    }

    /// Records a finished run in `jarvis_execution_duration_seconds{host,
    /// ending}`. `host` is a configured host name; `ending` a fixed word
    /// (`succeeded`, `failed`, `timed_out`, …).
    pub fn observe_execution(&self, host: &str, ending: &str, seconds: f64) {
        let mut inner = self.lock();
        slot(&mut inner.execution, labels([host, ending])).observe(EXECUTION_BUCKETS, seconds);
    }

    /// Counts an action the executor's rate limit refused, in
    /// `jarvis_rate_limit_refusals_total{host,scope}`.
    pub fn rate_limit_refused(&self, host: &str, scope: &str) {
        *slot(&mut self.lock().rate_limit, labels([host, scope])) += 1;
    }

    /// Counts a refused request, in `jarvis_access_refusals_total{reason}`;
    /// `what` is a fixed word: `csrf`, `role`, `self_approval`, `token`,
    /// `login_locked`, ….
    pub fn refused(&self, what: &str) {
        *slot(&mut self.lock().refusals, labels([what])) += 1;
    }

    /// Counts a served request in
    /// `jarvis_http_requests_total{method,route,status}` and records its
    /// duration in `jarvis_http_request_duration_seconds{route}`.
    ///
    /// `route` must be the matched route template (`/actions/{id}`), never
    /// the raw path: a path holds ids and whatever a client sends, and every
    /// distinct value would become a series. Requests that match no route
    /// should all share one label such as `unmatched`. Methods other than
    /// the nine standard ones are counted as `other`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.lock();
        let status = status.to_string();
        *slot(
            &mut inner.http_requests,
            labels([method_label(method), route, &status]),
        ) += 1;
        slot(&mut inner.http_duration, labels([route])).observe(HTTP_BUCKETS, seconds);
    }

    /// Counts a sign-in attempt in `jarvis_logins_total{outcome}`; `outcome`
    /// is a fixed word (`success`, `failure`, `locked`, …), never the user
    /// name.
    pub fn login(&self, outcome: &str) {
        *slot(&mut self.lock().logins, labels([outcome])) += 1;
    }

    /// Everything, as Prometheus text format 0.0.4 (serve it with
    /// [`CONTENT_TYPE`]): the accumulated counters and histograms, then the
    /// gauges of `snapshot`. Every family has one `# HELP` and one `# TYPE`
    /// line, also when it has no samples yet.
    pub fn render(&self, snapshot: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        {
            let inner = self.lock();
            histogram_family(
                &mut out,
                "jarvis_approval_latency_seconds",
                "Time from proposal to a person's decision.",
                &[],
                APPROVAL_BUCKETS,
                std::iter::once((&Vec::new(), &inner.approval)),
            );
            histogram_family(
                &mut out,
                "jarvis_execution_duration_seconds",
                "Duration of action runs on hosts.",
                &["host", "ending"],
                EXECUTION_BUCKETS,
                inner.execution.iter(),
            );
            counter_family(
                &mut out,
                "jarvis_rate_limit_refusals_total",
                "Actions refused by a host's rate limit.",
                &["host", "scope"],
                &inner.rate_limit,
            );
            counter_family(
                &mut out,
                "jarvis_access_refusals_total",
                "Requests refused by access control.",
                &["reason"],
                &inner.refusals,
            );
            counter_family(
                &mut out,
                "jarvis_http_requests_total",
                "HTTP requests served, by route template.",
                &["method", "route", "status"],
                &inner.http_requests,
            );
            histogram_family(
                &mut out,
                "jarvis_http_request_duration_seconds",
                "Duration of HTTP requests, by route template.",
                &["route"],
                HTTP_BUCKETS,
                inner.http_duration.iter(),
            );
            counter_family(
                &mut out,
                "jarvis_logins_total",
                "Sign-in attempts by outcome.",
                &["outcome"],
                &inner.logins,
            );
        }
        render_gauges(&mut out, snapshot);
        out
    }
}

fn render_gauges(out: &mut String, g: &Gauges) {
    let mut actions: BTreeMap<Labels, u64> = BTreeMap::new();
    for (state, decision, n) in &g.actions {
        let decision = decision.as_deref().unwrap_or("none");
        let v = actions.entry(labels([state, decision])).or_default();
        *v = v.saturating_add(*n);
    }
    header(
        out,
        "jarvis_actions",
        "Actions by state and decision.",
        "gauge",
    );
    for (l, v) in &actions {
        sample(out, "jarvis_actions", &["state", "decision"], l, None, *v);
    }

    let breakers: BTreeMap<&str, BreakerGauge> =
        g.breakers.iter().map(|(h, b)| (h.as_str(), *b)).collect();
    header(
        out,
        "jarvis_host_breaker_open",
        "Whether a host's circuit breaker refuses runs (1) or not (0).",
        "gauge",
    );
    for (host, state) in &breakers {
        let open = u64::from(*state == BreakerGauge::Open);
        sample(
            out,
            "jarvis_host_breaker_open",
            &["host"],
            &labels([host]),
            None,
            open,
        );
    }
    header(
        out,
        "jarvis_host_breaker_state",
        "A host's circuit breaker state, one-hot.",
        "gauge",
    );
    for (host, state) in &breakers {
        for s in BreakerGauge::ALL {
            sample(
                out,
                "jarvis_host_breaker_state",
                &["host", "state"],
                &labels([host, s.as_str()]),
                None,
                u64::from(s == *state),
            );
        }
    }

    header(
        out,
        "jarvis_actions_pending",
        "Actions waiting for an approval.",
        "gauge",
    );
    sample(out, "jarvis_actions_pending", &[], &[], None, g.pending);

    if let Some(intact) = g.audit_intact {
        header(
            out,
            "jarvis_audit_chain_intact",
            "Whether the audit hash chain verified at the last check (1) or broke (0).",
            "gauge",
        );
        sample(
            out,
            "jarvis_audit_chain_intact",
            &[],
            &[],
            None,
            u64::from(intact),
        );
    }

    let mut outcomes: BTreeMap<Labels, u64> = BTreeMap::new();
    let mut retries: BTreeMap<Labels, u64> = BTreeMap::new();
    for (webhook, format, delivered, failed, dropped, retried) in &g.notifications {
        for (outcome, n) in [
            ("delivered", delivered),
            ("failed", failed),
            ("dropped", dropped),
        ] {
            let v = outcomes
                .entry(labels([webhook, format, outcome]))
                .or_default();
            *v = v.saturating_add(*n);
        }
        let v = retries.entry(labels([webhook])).or_default();
        *v = v.saturating_add(*retried);
    }
    counter_family(
        out,
        "jarvis_notifications_total",
        "Webhook notifications by outcome.",
        &["webhook", "format", "outcome"],
        &outcomes,
    );
    counter_family(
        out,
        "jarvis_notification_retries_total",
        "Webhook delivery retries.",
        &["webhook"],
        &retries,
    );
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    names: &[&str],
    series: &BTreeMap<Labels, u64>,
) {
    header(out, name, help, "counter");
    for (values, v) in series {
        sample(out, name, names, values, None, *v);
    }
}

fn histogram_family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    names: &[&str],
    bounds: &[f64],
    series: impl Iterator<Item = (&'a Labels, &'a Histogram)>,
) {
    header(out, name, help, "histogram");
    let bucket = format!("{name}_bucket");
    for (values, h) in series {
        let mut cumulative = 0u64;
        for (i, le) in bounds.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            sample(out, &bucket, names, values, Some(&fmt_f64(*le)), cumulative);
        }
        sample(out, &bucket, names, values, Some("+Inf"), h.count);
        out.push_str(name);
        out.push_str("_sum");
        write_labels(out, names, values, None);
        out.push(' ');
        out.push_str(&fmt_f64(h.sum));
        out.push('\n');
        out.push_str(name);
        out.push_str("_count");
        write_labels(out, names, values, None);
        let _ = writeln!(out, " {}", h.count);
    }
}

fn sample(
    out: &mut String,
    name: &str,
    names: &[&str],
    values: &[String],
    le: Option<&str>,
    v: u64,
) {
    out.push_str(name);
    write_labels(out, names, values, le);
    let _ = writeln!(out, " {v}");
}

fn write_labels(out: &mut String, names: &[&str], values: &[String], le: Option<&str>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .chain(le.map(|le| ("le", le)));
    for (n, v) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_label_into(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Label values escape backslash, double quote and line feed (format 0.0.4).
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and line feed (format 0.0.4).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's shortest round-trip form: `5`, `0.05`, `86400`, never an
        // exponent, all of which Prometheus parses.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    type LabelPairs = Vec<(String, String)>;

    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: LabelPairs,
        value: f64,
    }

    impl Sample {
        fn label(&self, n: &str) -> Option<&str> {
            self.labels
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        }
        fn without_le(&self) -> Vec<(String, String)> {
            self.labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect()
        }
    }

    /// A strict reader of the text format: panics on anything malformed.
    struct Parsed {
        help: HashMap<String, usize>,
        types: HashMap<String, String>,
        samples: Vec<Sample>,
    }

    fn parse_labels(s: &str) -> (Vec<(String, String)>, &str) {
        let mut labels = Vec::new();
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return (labels, r);
            }
            let eq = rest.find('=').expect("label name ends with =");
            let name = rest[..eq].to_owned();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "label name {name:?}"
            );
            let mut chars = rest[eq + 1..].char_indices();
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
            let mut value = String::new();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated label value");
                match c {
                    '\\' => match chars.next().expect("escape").1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => panic!("bad escape \\{other}"),
                    },
                    '"' => break eq + 1 + i + 1,
                    '\n' => panic!("raw newline in label value"),
                    c => value.push(c),
                }
            };
            labels.push((name, value));
            rest = &rest[end..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            }
        }
    }

    fn parse(text: &str) -> Parsed {
        assert!(text.ends_with('\n'));
        let mut p = Parsed {
            help: HashMap::new(),
            types: HashMap::new(),
            samples: Vec::new(),
        };
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().expect("name").to_owned();
                *p.help.entry(name.clone()).or_default() += 1;
                if let Some(prev) = current.replace(name.clone())
                    && prev != name
                {
                    finished.insert(prev);
                }
                assert!(!finished.contains(&name), "{name} is split");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().expect("name").to_owned();
                let kind = it.next().expect("type").to_owned();
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                    "{kind}"
                );
                assert_eq!(current.as_deref(), Some(name.as_str()), "TYPE after HELP");
                assert!(
                    p.types.insert(name.clone(), kind).is_none(),
                    "second TYPE for {name}"
                );
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let name_end = line
                .find(['{', ' '])
                .expect("a sample has a name and a value");
            let name = line[..name_end].to_owned();
            let (labels, rest) = match line[name_end..].strip_prefix('{') {
                Some(r) => parse_labels(r),
                None => (Vec::new(), &line[name_end..]),
            };
            let value_text = rest.strip_prefix(' ').expect("space before value");
            let value: f64 = match value_text {
                "+Inf" => f64::INFINITY,
                v => v.parse().expect("numeric value"),
            };
            let family = current.as_deref().expect("sample before any HELP");
            let kind = p.types.get(family).expect("sample before TYPE");
            let ok = match kind.as_str() {
                "histogram" => [
                    format!("{family}_bucket"),
                    format!("{family}_sum"),
                    format!("{family}_count"),
                ]
                .contains(&name),
                _ => name == family,
            };
            assert!(ok, "{name} under family {family}");
            p.samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        p
    }

    fn check_well_formed(text: &str) -> Parsed {
        let p = parse(text);
        for (name, n) in &p.help {
            assert_eq!(*n, 1, "HELP lines for {name}");
            assert!(p.types.contains_key(name), "TYPE for {name}");
        }
        assert_eq!(p.help.len(), p.types.len());
        let mut seen = HashSet::new();
        for s in &p.samples {
            assert!(
                seen.insert((s.name.clone(), s.labels.clone())),
                "duplicate series {s:?}"
            );
        }
        // Histograms: buckets ascend in `le`, counts never fall, +Inf last
        // and equal to _count, and _sum present.
        for (family, kind) in &p.types {
            if kind != "histogram" {
                continue;
            }
            let mut by_series: BTreeMap<LabelPairs, Vec<(f64, f64)>> = BTreeMap::new();
            for s in p
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let le = s.label("le").expect("le");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le number")
                };
                by_series
                    .entry(s.without_le())
                    .or_default()
                    .push((le, s.value));
            }
            for (labels, buckets) in &by_series {
                assert!(
                    buckets.windows(2).all(|w| w[0].0 < w[1].0),
                    "{family} le order"
                );
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family} not cumulative: {buckets:?}"
                );
                let last = buckets.last().expect("buckets");
                assert_eq!(last.0, f64::INFINITY);
                let count = p
                    .samples
                    .iter()
                    .find(|s| s.name == format!("{family}_count") && &s.labels == labels)
                    .expect("_count");
                assert_eq!(count.value, last.1);
                assert!(
                    p.samples
                        .iter()
                        .any(|s| s.name == format!("{family}_sum") && &s.labels == labels),
                    "_sum"
                );
            }
        }
        p
    }

    fn value(p: &Parsed, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        p.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.label(k) == Some(v))
            })
            .map(|s| s.value)
    }

    fn busy_metrics() -> Metrics {
        let m = Metrics::new();
        for s in [1.0, 5.0, 20.0, 4000.0, 1e9] {
            m.observe_approval_latency(s);
        }
        m.observe_execution("web1", "succeeded", 0.2);
        m.observe_execution("web1", "succeeded", 3.0);
        m.observe_execution("web1", "failed", 0.01);
        m.observe_execution("db1", "timed_out", 3600.0);
        m.rate_limit_refused("web1", "host");
        m.rate_limit_refused("web1", "host");
        m.rate_limit_refused("db1", "global");
        for r in ["csrf", "csrf", "csrf", "role", "self_approval"] {
            m.refused(r);
        }
        m.http_request("GET", "/actions/{id}", 200, 0.003);
        m.http_request("GET", "/actions/{id}", 200, 0.2);
        m.http_request("POST", "/actions/{id}/approve", 403, 0.01);
        m.http_request("GET", "/actions", 200, 0.05);
        m.login("success");
        m.login("failure");
        m.login("failure");
        m
    }

    fn full_gauges() -> Gauges {
        Gauges {
            actions: vec![
                ("pending".into(), None, 3),
                ("succeeded".into(), Some("allow".into()), 10),
                ("succeeded".into(), Some("approve".into()), 4),
                ("denied".into(), Some("deny".into()), 2),
            ],
            breakers: vec![
                ("web1".into(), BreakerGauge::Closed),
                ("db1".into(), BreakerGauge::Open),
                ("cache".into(), BreakerGauge::HalfOpen),
            ],
            pending: 3,
            audit_intact: Some(true),
            notifications: vec![
                ("ops".into(), "ntfy".into(), 7, 1, 0, 2),
                ("chat".into(), "discord".into(), 5, 0, 1, 0),
            ],
        }
    }

    #[test]
    fn rendered_text_is_well_formed() {
        let text = busy_metrics().render(&full_gauges());
        let p = check_well_formed(&text);
        for family in [
            "jarvis_approval_latency_seconds",
            "jarvis_execution_duration_seconds",
            "jarvis_rate_limit_refusals_total",
            "jarvis_access_refusals_total",
            "jarvis_http_requests_total",
            "jarvis_http_request_duration_seconds",
            "jarvis_logins_total",
            "jarvis_actions",
            "jarvis_host_breaker_open",
            "jarvis_host_breaker_state",
            "jarvis_actions_pending",
            "jarvis_audit_chain_intact",
            "jarvis_notifications_total",
            "jarvis_notification_retries_total",
        ] {
            assert!(p.types.contains_key(family), "{family} missing");
        }
        assert_eq!(p.types["jarvis_logins_total"], "counter");
        assert_eq!(p.types["jarvis_actions"], "gauge");
        assert_eq!(p.types["jarvis_approval_latency_seconds"], "histogram");
    }

    #[test]
    fn empty_metrics_are_well_formed_too() {
        let text = Metrics::new().render(&Gauges::default());
        let p = check_well_formed(&text);
        // The unlabelled histogram is always there, with zero counts.
        assert_eq!(
            value(&p, "jarvis_approval_latency_seconds_count", &[]),
            Some(0.0)
        );
        assert_eq!(value(&p, "jarvis_actions_pending", &[]), Some(0.0));
        assert!(!p.types.contains_key("jarvis_audit_chain_intact"));
        assert!(text.starts_with("# HELP jarvis_approval_latency_seconds "));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let m = Metrics::new();
        // 5.0 lands in le="5" (bounds are inclusive); 1e9 only in +Inf.
        for s in [1.0, 5.0, 20.0, 4000.0, 1e9] {
            m.observe_approval_latency(s);
        }
        // Not a number and infinities are dropped; negative counts as 0.
        m.observe_approval_latency(f64::NAN);
        m.observe_approval_latency(f64::INFINITY);
        m.observe_approval_latency(-3.0);
        let p = check_well_formed(&m.render(&Gauges::default()));
        let b = |le: &str| value(&p, "jarvis_approval_latency_seconds_bucket", &[("le", le)]);
        assert_eq!(b("5"), Some(3.0));
        assert_eq!(b("15"), Some(3.0));
        assert_eq!(b("30"), Some(4.0));
        assert_eq!(b("3600"), Some(4.0));
        assert_eq!(b("7200"), Some(5.0));
        assert_eq!(b("86400"), Some(5.0));
        assert_eq!(b("+Inf"), Some(6.0));
        assert_eq!(
            value(&p, "jarvis_approval_latency_seconds_count", &[]),
            Some(6.0)
        );
        assert_eq!(
            value(&p, "jarvis_approval_latency_seconds_sum", &[]),
            Some(1.0 + 5.0 + 20.0 + 4000.0 + 1e9)
        );
        let bounds: Vec<&str> = p
            .samples
            .iter()
            .filter(|s| s.name == "jarvis_approval_latency_seconds_bucket")
            .filter_map(|s| s.label("le"))
            .collect();
        assert_eq!(
            bounds,
            [
                "5", "15", "30", "60", "120", "300", "900", "1800", "3600", "7200", "21600",
                "86400", "+Inf"
            ]
        );
    }

    #[test]
    fn execution_histogram_per_host_and_ending() {
        let p = check_well_formed(&busy_metrics().render(&Gauges::default()));
        let count = |host: &str, ending: &str| {
            value(
                &p,
                "jarvis_execution_duration_seconds_count",
                &[("host", host), ("ending", ending)],
            )
        };
        assert_eq!(count("web1", "succeeded"), Some(2.0));
        assert_eq!(count("web1", "failed"), Some(1.0));
        assert_eq!(count("db1", "timed_out"), Some(1.0));
        assert_eq!(
            value(
                &p,
                "jarvis_execution_duration_seconds_bucket",
                &[("host", "web1"), ("ending", "succeeded"), ("le", "0.05")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_execution_duration_seconds_bucket",
                &[("host", "web1"), ("ending", "succeeded"), ("le", "0.25")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_execution_duration_seconds_bucket",
                &[("host", "db1"), ("ending", "timed_out"), ("le", "3600")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn counters_add_up() {
        let m = busy_metrics();
        let p = check_well_formed(&m.render(&full_gauges()));
        let refusals = |r: &str| value(&p, "jarvis_access_refusals_total", &[("reason", r)]);
        assert_eq!(refusals("csrf"), Some(3.0));
        assert_eq!(refusals("role"), Some(1.0));
        assert_eq!(refusals("self_approval"), Some(1.0));
        assert_eq!(refusals("token"), None);
        assert_eq!(
            value(
                &p,
                "jarvis_rate_limit_refusals_total",
                &[("host", "web1"), ("scope", "host")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(&p, "jarvis_logins_total", &[("outcome", "failure")]),
            Some(2.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_http_requests_total",
                &[
                    ("method", "GET"),
                    ("route", "/actions/{id}"),
                    ("status", "200")
                ]
            ),
            Some(2.0)
        );
        // Every request is in both the counter and the duration histogram.
        let total = |name: &str| -> f64 {
            p.samples
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.value)
                .sum()
        };
        assert_eq!(total("jarvis_http_requests_total"), 4.0);
        assert_eq!(total("jarvis_http_request_duration_seconds_count"), 4.0);
        assert_eq!(
            value(
                &p,
                "jarvis_http_request_duration_seconds_count",
                &[("route", "/actions/{id}")]
            ),
            Some(2.0)
        );
        // Recording more adds to what is there.
        m.refused("csrf");
        m.http_request("GET", "/actions", 200, 0.1);
        let p = check_well_formed(&m.render(&Gauges::default()));
        assert_eq!(
            value(&p, "jarvis_access_refusals_total", &[("reason", "csrf")]),
            Some(4.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_http_requests_total",
                &[("method", "GET"), ("route", "/actions"), ("status", "200")]
            ),
            Some(2.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        let host = "we\"ird\nho\\st";
        m.observe_execution(host, "succeeded", 1.0);
        m.rate_limit_refused(host, "host");
        let gauges = Gauges {
            breakers: vec![(host.to_owned(), BreakerGauge::Open)],
            notifications: vec![(host.to_owned(), "generic".into(), 1, 0, 0, 0)],
            ..Gauges::default()
        };
        let text = m.render(&gauges);
        assert!(
            text.contains(r#"jarvis_host_breaker_open{host="we\"ird\nho\\st"} 1"#),
            "{text}"
        );
        // The raw newline never reaches the output: every line parses.
        let p = check_well_formed(&text);
        assert_eq!(
            value(
                &p,
                "jarvis_rate_limit_refusals_total",
                &[("host", host), ("scope", "host")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_execution_duration_seconds_count",
                &[("host", host), ("ending", "succeeded")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn gauges_render_as_specified() {
        let mut g = full_gauges();
        // Duplicates are merged rather than emitted twice.
        g.actions.push(("pending".into(), None, 2));
        g.notifications
            .push(("ops".into(), "ntfy".into(), 1, 1, 1, 1));
        g.notifications
            .push(("ops".into(), "generic".into(), 1, 0, 0, 3));
        let p = check_well_formed(&Metrics::new().render(&g));
        assert_eq!(
            value(
                &p,
                "jarvis_actions",
                &[("state", "pending"), ("decision", "none")]
            ),
            Some(5.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_actions",
                &[("state", "succeeded"), ("decision", "approve")]
            ),
            Some(4.0)
        );
        assert_eq!(value(&p, "jarvis_actions_pending", &[]), Some(3.0));
        assert_eq!(value(&p, "jarvis_audit_chain_intact", &[]), Some(1.0));
        for (host, open, state) in [
            ("web1", 0.0, "closed"),
            ("db1", 1.0, "open"),
            ("cache", 0.0, "half_open"),
        ] {
            assert_eq!(
                value(&p, "jarvis_host_breaker_open", &[("host", host)]),
                Some(open)
            );
            for s in ["closed", "open", "half_open"] {
                assert_eq!(
                    value(
                        &p,
                        "jarvis_host_breaker_state",
                        &[("host", host), ("state", s)]
                    ),
                    Some(if s == state { 1.0 } else { 0.0 }),
                    "{host} {s}"
                );
            }
        }
        let n = |w: &str, f: &str, o: &str| {
            value(
                &p,
                "jarvis_notifications_total",
                &[("webhook", w), ("format", f), ("outcome", o)],
            )
        };
        assert_eq!(n("ops", "ntfy", "delivered"), Some(8.0));
        assert_eq!(n("ops", "ntfy", "failed"), Some(2.0));
        assert_eq!(n("ops", "ntfy", "dropped"), Some(1.0));
        assert_eq!(n("chat", "discord", "dropped"), Some(1.0));
        assert_eq!(n("ops", "generic", "delivered"), Some(1.0));
        assert_eq!(
            value(
                &p,
                "jarvis_notification_retries_total",
                &[("webhook", "ops")]
            ),
            Some(6.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_notification_retries_total",
                &[("webhook", "chat")]
            ),
            Some(0.0)
        );

        g.audit_intact = Some(false);
        let p = check_well_formed(&Metrics::new().render(&g));
        assert_eq!(value(&p, "jarvis_audit_chain_intact", &[]), Some(0.0));
        g.audit_intact = None;
        let text = Metrics::new().render(&g);
        assert!(!text.contains("jarvis_audit_chain_intact"));
    }

    #[test]
    fn methods_are_normalised_and_series_are_capped() {
        let m = Metrics::new();
        m.http_request("get", "/x", 200, 0.0);
        m.http_request("BREW", "/x", 405, 0.0);
        for i in 0..MAX_SERIES + 50 {
            m.refused(&format!("reason{i}"));
        }
        let p = check_well_formed(&m.render(&Gauges::default()));
        assert_eq!(
            value(
                &p,
                "jarvis_http_requests_total",
                &[("method", "GET"), ("route", "/x"), ("status", "200")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &p,
                "jarvis_http_requests_total",
                &[("method", "other"), ("route", "/x"), ("status", "405")]
            ),
            Some(1.0)
        );
        let refusals = p
            .samples
            .iter()
            .filter(|s| s.name == "jarvis_access_refusals_total")
            .count();
        assert_eq!(refusals, MAX_SERIES + 1);
        assert_eq!(
            value(
                &p,
                "jarvis_access_refusals_total",
                &[("reason", "_overflow")]
            ),
            Some(50.0)
        );
        // Existing series keep counting after the cap is reached.
        m.refused("reason0");
        let p = check_well_formed(&m.render(&Gauges::default()));
        assert_eq!(
            value(&p, "jarvis_access_refusals_total", &[("reason", "reason0")]),
            Some(2.0)
        );
    }

    #[test]
    fn metrics_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Metrics>();
        let m = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = std::sync::Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        m.login("success");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let p = check_well_formed(&m.render(&Gauges::default()));
        assert_eq!(
            value(&p, "jarvis_logins_total", &[("outcome", "success")]),
            Some(1000.0)
        );
    }
}
