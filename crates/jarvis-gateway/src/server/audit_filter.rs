//! The audit log's filter as the page and the API take it: the words the
//! pages show read back to what the store keeps, and times that do not
//! parse named rather than dropped.

use jarvis_core::ActionState;
use jarvis_store::{AuditFilter, BadTime, OffsetDateTime, parse_time};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    #[serde(default)]
    pub(crate) host: String,
    #[serde(default)]
    pub(crate) actor: String,
    #[serde(default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) since: String,
    #[serde(default)]
    pub(crate) until: String,
    #[serde(default)]
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) action: String,
    /// Start the page at this event (a break, shown in place).
    #[serde(default)]
    pub(crate) upto: Option<i64>,
    #[serde(default)]
    pub(crate) offset: Option<i64>,
}

/// The stored actor for what a person typed in the actor filter: the words
/// the pages show (`alice`, `agent token planner`, `root (on the gateway)`,
/// `the planner`, `Jarvis`) or the stored form (`user:alice`), which is
/// kept as it is.
pub(crate) fn actor_from_words(text: &str) -> String {
    let t = text.trim();
    if t.contains(':') {
        return t.to_owned();
    }
    if let Some(name) = t.strip_prefix("agent token ") {
        return format!("token:{}", name.trim());
    }
    if let Some(account) = t.strip_suffix("(on the gateway)") {
        return format!("local:{}", account.trim());
    }
    match t {
        "the planner" | "planner" => "planner".to_owned(),
        "Jarvis" | "system" => "system".to_owned(),
        // The gateway's own steps and the operator's signatures carry bare
        // names; anyone else named by a word alone is a person.
        "gateway" | "operator" => t.to_owned(),
        name => format!("user:{name}"),
    }
}

/// The stored event kind for what a person typed in the kind filter: a
/// state's words (`waiting for approval`, `rolled back`) mean the event of
/// an action entering it (`action.pending_approval`); anything else is a
/// kind (`action.approved`) or a family of kinds (`action.`) as written.
pub(crate) fn kind_from_words(text: &str) -> String {
    let t = text.trim();
    if t.contains('.') {
        return t.to_owned();
    }
    match ActionState::from_words(t) {
        Some(state) => format!("action.{}", state.as_str()),
        None => t.to_owned(),
    }
}

/// The audit filter's time parameters that are not times, each with its
/// parameter's name.
#[derive(Debug)]
pub(crate) struct BadTimes(Vec<(&'static str, BadTime)>);

impl BadTimes {
    /// The names of the parameters at fault.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

impl std::fmt::Display for BadTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: {e}")?;
        }
        Ok(())
    }
}

impl AuditParams {
    /// The store's filter. Times are read by [`parse_time`]; one that is
    /// not a time is an error rather than left out, which would answer
    /// with more than was asked for.
    pub(crate) fn filter(&self, limit: i64) -> Result<AuditFilter, BadTimes> {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut bad = Vec::new();
        let mut time = |name: &'static str, text: &str| -> Option<OffsetDateTime> {
            parse_time(&some(text)?)
                .map_err(|e| bad.push((name, e)))
                .ok()
        };
        let since = time("since", &self.since);
        let until = time("until", &self.until);
        if !bad.is_empty() {
            return Err(BadTimes(bad));
        }
        Ok(AuditFilter {
            action_id: some(&self.action),
            actor: some(&self.actor).map(|a| actor_from_words(&a)),
            host: some(&self.host),
            kind: some(&self.kind).map(|k| kind_from_words(&k)),
            since,
            until,
            search: some(&self.q),
            upto: self.upto,
            limit: Some(limit),
            offset: self
                .offset
                .filter(|o| *o > 0)
                .map(|o| o.min(i64::from(u32::MAX))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_take_the_words_shown() {
        // Every actor the pages show in words reads back to the stored one.
        for stored in [
            "user:alice",
            "local:root",
            "token:planner",
            "planner",
            "system",
            "gateway",
        ] {
            assert_eq!(
                actor_from_words(&jarvis_core::words::actor(stored)),
                stored,
                "{stored}"
            );
            assert_eq!(actor_from_words(stored), stored, "{stored}");
        }
        assert_eq!(actor_from_words(" bob "), "user:bob");
        // States in words mean the event of entering them.
        assert_eq!(kind_from_words("approved"), "action.approved");
        assert_eq!(
            kind_from_words("waiting for approval"),
            "action.pending_approval"
        );
        assert_eq!(kind_from_words("Rolled back"), "action.rolled_back");
        assert_eq!(kind_from_words("action.approved"), "action.approved");
        assert_eq!(kind_from_words("action."), "action.");
        assert_eq!(kind_from_words("login"), "login");
        let f = AuditParams {
            actor: "alice".into(),
            kind: "pending".into(),
            upto: Some(44),
            ..AuditParams::default()
        }
        .filter(10)
        .expect("a filter");
        assert_eq!(f.actor.as_deref(), Some("user:alice"));
        assert_eq!(f.kind.as_deref(), Some("action.pending_approval"));
        assert_eq!(f.upto, Some(44));
    }

    #[test]
    fn audit_times_are_read_and_the_bad_ones_named() {
        let p = AuditParams {
            since: "2026-11-23T16:00:00.5+02:00".into(),
            until: " 2026-11-24 ".into(),
            ..AuditParams::default()
        };
        let f = p.filter(10).expect("a filter");
        assert_eq!(
            f.since.map(jarvis_store::timestamp).as_deref(),
            Some("2026-11-23T14:00:00.500000Z")
        );
        assert_eq!(
            f.until.map(jarvis_store::timestamp).as_deref(),
            Some("2026-11-24T00:00:00.000000Z")
        );
        let blank = AuditParams {
            since: "  ".into(),
            ..AuditParams::default()
        };
        assert!(blank.filter(10).expect("no filter").since.is_none());

        let bad = AuditParams {
            since: "yesterday".into(),
            until: "2026-13-01".into(),
            ..AuditParams::default()
        }
        .filter(10)
        .expect_err("not times");
        assert_eq!(bad.names(), ["since", "until"]);
        let text = bad.to_string();
        assert!(
            text.starts_with("since: `yesterday` is not a time: use")
                && text.contains("; until: `2026-13-01` is not a time: use"),
            "{text}"
        );
        let one = AuditParams {
            until: "garbage".into(),
            ..AuditParams::default()
        }
        .filter(10)
        .expect_err("not a time");
        assert_eq!(one.names(), ["until"]);
    }
}
