//! The audit log page: its filters, its pages of events, and the chain's
//! verification with every break marked in place.

use askama::Template;
use jarvis_store::{AuditEvent, Break, BreakKind, VerifyReport};

use super::filters;
use super::layout::{Chrome, Section};
use super::text::{event_line, event_words, plural};

/// The audit filter as typed (each empty when unused).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Host name.
    pub host: String,
    /// Actor.
    pub actor: String,
    /// Event kind.
    pub kind: String,
    /// From this time on.
    pub since: String,
    /// Up to this time.
    pub until: String,
    /// Free text.
    pub q: String,
    /// One action's id.
    pub action: String,
    /// The page starts at this event (a break, shown in place).
    pub upto: Option<i64>,
}

impl AuditQuery {
    /// Whether any filter is set.
    pub fn is_filtered(&self) -> bool {
        self.upto.is_some()
            || [
                &self.host,
                &self.actor,
                &self.kind,
                &self.since,
                &self.until,
                &self.q,
                &self.action,
            ]
            .iter()
            .any(|s| !s.is_empty())
    }
}

/// `GET /audit`: the audit log, filtered, with the chain's status.
#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    /// The frame.
    pub chrome: Chrome,
    /// The events on this page.
    pub events: Vec<AuditEvent>,
    /// The filter.
    pub query: AuditQuery,
    /// The chain's verification, if it ran.
    pub verify: Option<VerifyReport>,
    /// Why verification could not run.
    pub verify_error: Option<String>,
    /// The offset of the next page.
    pub next_offset: Option<i64>,
    /// The offset of the previous page.
    pub prev_offset: Option<i64>,
    /// The URL-encoded query string for paging links, without `offset`.
    pub next_query: String,
    /// Why the filter could not be applied (a time that is not one); no
    /// events are shown then.
    pub filter_error: Option<String>,
    /// The filter's fields at fault (`since`, `until`).
    pub bad_fields: Vec<&'static str>,
    /// Whether the reader may ask for a verification now (people who
    /// decide).
    pub can_verify: bool,
    /// How long ago the verification shown finished, in seconds.
    pub verified_secs_ago: u64,
}

/// How many newer events a break's link shows above it, for context.
const ABOVE_A_BREAK: i64 = 2;

impl AuditPage {
    /// Every break the verification found (the first when only that one
    /// is known), in the order found.
    pub fn breaks(&self) -> Vec<Break> {
        let Some(r) = &self.verify else {
            return Vec::new();
        };
        if r.breaks.is_empty() {
            return r
                .problem
                .iter()
                .map(|p| Break {
                    kind: BreakKind::Invalid,
                    seq: p.seq,
                    what: p.what.clone(),
                })
                .collect();
        }
        r.breaks.clone()
    }

    /// Breaks found but not listed one by one.
    pub fn unlisted(&self) -> u64 {
        self.verify.as_ref().map_or(0, |r| r.unlisted)
    }

    /// The breaks at event `seq`: its row is marked, and says why.
    pub fn breaks_at(&self, seq: &i64) -> Vec<Break> {
        self.breaks()
            .into_iter()
            .filter(|b| b.seq == *seq)
            .collect()
    }

    /// The link to the page of the log that shows event `seq` (with a
    /// couple of newer events above it) and scrolls to its row.
    pub fn break_href(&self, seq: &i64) -> String {
        format!(
            "/audit?upto={}#event-{seq}",
            seq.saturating_add(ABOVE_A_BREAK)
        )
    }

    /// When the verification shown ran, in words: `just now`, `40 s ago`.
    pub fn verified_when(&self) -> String {
        match self.verified_secs_ago {
            0..=4 => "just now".to_owned(),
            s @ 5..=119 => format!("{s} s ago"),
            s => format!("{} min ago", s / 60),
        }
    }

    /// Whether the filter's field `name` is at fault.
    pub fn is_bad(&self, name: &str) -> bool {
        self.bad_fields.contains(&name)
    }

    /// The class of `#chain-status`: `ok`, `broken` (also when
    /// verification failed to run) or `unknown`.
    pub fn chain_class(&self) -> &'static str {
        match (&self.verify, &self.verify_error) {
            (_, Some(_)) => "broken error",
            (Some(r), None) if r.is_intact() => "ok",
            (Some(_), None) => "broken",
            (None, None) => "unknown",
        }
    }

    /// The chain's status in words.
    pub fn chain_text(&self) -> String {
        if let Some(e) = &self.verify_error {
            return format!("Could not verify the chain: {e}");
        }
        match &self.verify {
            Some(r) => chain_status_text(r),
            None => "Chain not verified yet".to_owned(),
        }
    }

    fn href(&self, offset: i64) -> String {
        if self.next_query.is_empty() {
            format!("/audit?offset={offset}")
        } else {
            format!("/audit?{}&offset={offset}", self.next_query)
        }
    }

    /// The link to the next (older) page.
    pub fn next_href(&self) -> Option<String> {
        self.next_offset.map(|o| self.href(o))
    }

    /// The link to the previous (newer) page.
    pub fn prev_href(&self) -> Option<String> {
        self.prev_offset.map(|o| self.href(o))
    }
}

/// A kind of break in words: what a person should picture.
pub fn break_words(kind: &BreakKind) -> &'static str {
    match kind {
        BreakKind::Invalid => "not as written",
        BreakKind::Missing => "missing",
        BreakKind::Gap => "a hole",
    }
}

/// "Chain intact: N events, M checkpoints verified" or "Chain BROKEN at
/// event #SEQ: what".
pub fn chain_status_text(r: &VerifyReport) -> String {
    match &r.problem {
        Some(p) => format!("Chain BROKEN at event #{}: {}", p.seq, p.what),
        None => {
            let mut s = format!(
                "Chain intact: {} {}, {} {} verified",
                r.events,
                plural(r.events, "event", "events"),
                r.checkpoints_verified,
                plural(r.checkpoints_verified, "checkpoint", "checkpoints"),
            );
            if r.checkpoints_unchecked > 0 {
                s.push_str(&format!(
                    " ({} not checked: no operator key)",
                    r.checkpoints_unchecked
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use jarvis_store::{VerifyProblem, VerifyReport};

    #[test]
    fn audit_page() {
        let page = sample_audit();
        let html = render(&page);
        for s in [
            "<p id=\"chain-status\" class=\"chain-status ok\"",
            "Chain intact: 43 events, 2 checkpoints verified",
            "(verified just now)",
            "<form id=\"audit-filter\"",
            "name=\"host\"",
            "name=\"actor\"",
            "name=\"kind\"",
            "name=\"since\"",
            "name=\"until\"",
            "name=\"q\"",
            "<table class=\"audit\">",
            "<tr id=\"event-41\" data-seq=\"41\">",
            "<tr id=\"event-42\" data-seq=\"42\">",
            "offset=50",
            "rel=\"next\"",
            // Actors and states in words; the stored kind stays, as filters take it.
            "<span title=\"token:planner\">agent token planner</span>",
            "<span title=\"user:alice\">alice</span>",
            "<span>approved <span class=\"kind\">action.approved</span></span>",
            "<span>proposed <span class=\"kind\">action.proposed</span></span>",
            "<td data-label=\"Kind\"><span>signed in <span class=\"kind\">auth.login</span></span>",
            // A person who decides may verify now; the form carries the token.
            "<form id=\"verify-now\" class=\"verify-now\" method=\"post\" action=\"/audit/verify\">",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert_csrf(&html, "CSRF-TOKEN-123");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>ls"));
        assert!(!html.contains('\x1b'));
        assert!(!html.contains("rel=\"prev\""));
        assert!(!html.contains("audit-filter-error") && !html.contains("aria-invalid"));
        assert!(!html.contains("chain-breaks") && !html.contains("broken-row"));
        assert!(!html.contains("chain-banner"), "an intact chain: no banner");

        let viewer = AuditPage {
            can_verify: false,
            verified_secs_ago: 75,
            ..sample_audit()
        };
        let html = render(&viewer);
        assert!(!html.contains("verify-now"), "{html}");
        assert!(html.contains("(verified 75 s ago)"), "{html}");

        let failed = AuditPage {
            verify: None,
            verify_error: Some("database is locked".into()),
            ..sample_audit()
        };
        let html = render(&failed);
        assert!(html.contains("class=\"chain-status broken error\""));
        assert!(html.contains("Could not verify the chain: database is locked"));
    }

    #[test]
    fn a_broken_chain_lists_every_break_and_marks_its_row() {
        let page = broken(sample_audit());
        let html = render(&page);
        for s in [
            "class=\"chain-status broken\"",
            "Chain BROKEN at event #42: event 42 was changed after it was written",
            "<section id=\"chain-breaks\"",
            // Every break, in the order found, each linking to its place.
            "<li class=\"break break-invalid\" data-seq=\"42\"><a href=\"/audit?upto=44#event-42\">event #42</a> <span class=\"badge break-kind\">not as written</span> event 42 was changed after it was written</li>",
            "<li class=\"break break-gap\" data-seq=\"7\"><a href=\"/audit?upto=9#event-7\">event #7</a> <span class=\"badge break-kind\">a hole</span> events 7 to 9 are missing</li>",
            "3 more not listed here",
            // The row that broke is marked, and says why.
            "<tr id=\"event-42\" data-seq=\"42\" class=\"broken-row\">",
            "<p class=\"break-note\"><strong>The chain breaks here</strong> (not as written): event 42 was changed after it was written</p>",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert_eq!(html.matches("class=\"broken-row\"").count(), 1, "{html}");
        assert!(html.contains("<tr id=\"event-41\" data-seq=\"41\">"));

        // A report that names only its first break still marks it.
        let mut first_only = broken(sample_audit());
        if let Some(r) = first_only.verify.as_mut() {
            r.breaks.clear();
            r.unlisted = 0;
        }
        let html = render(&first_only);
        assert!(html.contains("class=\"broken-row\""), "{html}");
        assert!(!html.contains("more not listed"));

        // A page that starts at a break says so and keeps it in the filter.
        let at = AuditPage {
            query: AuditQuery {
                upto: Some(44),
                ..AuditQuery::default()
            },
            ..broken(sample_audit())
        };
        let html = render(&at);
        assert!(html.contains("From event #44 back."), "{html}");
        assert!(html.contains("<input type=\"hidden\" name=\"upto\" value=\"44\">"));
    }

    #[test]
    fn audit_page_with_a_bad_time_says_so_and_keeps_the_form() {
        let html = render(&AuditPage {
            chrome: chrome(Section::Audit),
            events: Vec::new(),
            query: AuditQuery {
                host: "nas".into(),
                since: "yesterday\"><script>".into(),
                until: "2026-11-24".into(),
                ..AuditQuery::default()
            },
            verify: None,
            verify_error: None,
            next_offset: None,
            prev_offset: None,
            next_query: String::new(),
            filter_error: Some("since: `yesterday\"><script>` is not a time".into()),
            bad_fields: vec!["since"],
            can_verify: false,
            verified_secs_ago: 0,
        });
        for s in [
            "<p id=\"audit-filter-error\" class=\"flash error\" role=\"alert\">since: `yesterday&#34;&#62;&#60;script&#62;` is not a time</p>",
            "<form id=\"audit-filter\"",
            "name=\"host\" type=\"text\" value=\"nas\"",
            "name=\"since\" type=\"text\" value=\"yesterday&#34;&#62;&#60;script&#62;\"",
            "aria-invalid=\"true\" aria-describedby=\"audit-filter-error\"",
            "name=\"until\" type=\"text\" value=\"2026-11-24\"",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert_eq!(html.matches("aria-invalid").count(), 1, "{html}");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("No events"), "no claim about events: {html}");
    }

    #[test]
    fn chain_texts() {
        let ok = VerifyReport {
            events: 120,
            last_seq: 120,
            checkpoints_verified: 3,
            checkpoints_unchecked: 0,
            problem: None,
            ..VerifyReport::default()
        };
        assert_eq!(
            chain_status_text(&ok),
            "Chain intact: 120 events, 3 checkpoints verified"
        );
        let broken = VerifyReport {
            problem: Some(VerifyProblem {
                seq: 42,
                what: "hash mismatch".into(),
            }),
            ..ok.clone()
        };
        assert_eq!(
            chain_status_text(&broken),
            "Chain BROKEN at event #42: hash mismatch"
        );
        let one = VerifyReport {
            events: 1,
            checkpoints_verified: 1,
            checkpoints_unchecked: 2,
            ..ok
        };
        assert_eq!(
            chain_status_text(&one),
            "Chain intact: 1 event, 1 checkpoint verified (2 not checked: no operator key)"
        );
    }
}
