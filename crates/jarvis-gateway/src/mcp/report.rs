//! What the tools say back: the API's answers read into the planner's own
//! report, so an MCP client's model gets host output inside the same
//! untrusted-output markers as Jarvis's own planner.

use jarvis_core::{ActionId, ActionState, Decision, Risk};
use jarvis_planner::agent::ActionReport;

use crate::chat::{Said, words};
use serde::Deserialize;
use serde_json::Value;

/// The most bytes of output a tool answer carries; the head and the tail
/// are kept.
pub(crate) const OUTPUT_BUDGET: usize = 24 * 1024;

/// `GET /api/v1/actions/{id}`, as far as the tools read it.
#[derive(Debug, Deserialize)]
pub(crate) struct Shown {
    pub(crate) action: ShownAction,
    #[serde(default)]
    run: Option<ShownRun>,
    #[serde(default)]
    approvals: Vec<ShownApproval>,
    #[serde(default)]
    events: Vec<ShownEvent>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShownAction {
    pub(crate) id: ActionId,
    pub(crate) state: ActionState,
    pub(crate) requester: String,
    #[serde(default)]
    decision: Option<Decision>,
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    reasons: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ShownRun {
    #[serde(default)]
    exit_code: Option<i32>,
    stdout: ShownStream,
    stderr: ShownStream,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShownStream {
    #[serde(default)]
    text: String,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
struct ShownApproval {
    #[serde(default)]
    approver: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShownEvent {
    kind: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    payload: String,
}

impl Shown {
    /// The planner's report of it: state, decision, reasons, what the
    /// people who decided said, and the output.
    pub(crate) fn report(&self) -> ActionReport {
        let mut said: Vec<Said> = self
            .approvals
            .iter()
            .map(|a| Said {
                by: a.approver.clone(),
                approved: true,
                words: words(a.reason.as_deref()),
            })
            .collect();
        if self.action.state == ActionState::Rejected {
            let rejection = self.events.iter().find(|e| e.kind == "action.rejected");
            said.push(Said {
                by: rejection.map(|e| e.actor.clone()).unwrap_or_default(),
                approved: false,
                words: rejection.and_then(|e| {
                    let payload: Value = serde_json::from_str(&e.payload).ok()?;
                    words(payload["reason"].as_str())
                }),
            });
        }
        let people = said.iter().filter_map(Said::told).collect();
        let run = self.run.as_ref();
        ActionReport {
            id: self.action.id,
            state: self.action.state,
            decision: self.action.decision,
            risk: self.action.risk,
            reasons: self.action.reasons.clone(),
            exit_code: run.and_then(|r| r.exit_code),
            stdout: run.map(|r| r.stdout.text.clone()).unwrap_or_default(),
            stderr: run.map(|r| r.stderr.text.clone()).unwrap_or_default(),
            truncated: run.is_some_and(|r| r.stdout.truncated || r.stderr.truncated),
            note: run.and_then(|r| r.error.clone()),
            people,
        }
    }
}

/// Where an action stands for the agent that proposed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// A person or the clock has yet to act: keep waiting, or poll.
    Open,
    /// It ran to an end; the output says how it went.
    Ran,
    /// It ran and did not succeed (failed, timed out, cut off).
    RanBadly,
    /// It will never run: denied by the policy or a limit, rejected by a
    /// person, or its approval window lapsed.
    Refused,
}

impl Standing {
    pub(crate) fn of(state: ActionState) -> Standing {
        match state {
            ActionState::Proposed
            | ActionState::PendingApproval
            | ActionState::Approved
            | ActionState::Running => Standing::Open,
            ActionState::Succeeded | ActionState::RolledBack => Standing::Ran,
            ActionState::Failed | ActionState::TimedOut | ActionState::Interrupted => {
                Standing::RanBadly
            }
            ActionState::Denied | ActionState::Rejected | ActionState::Expired => Standing::Refused,
        }
    }
}

/// One line per host for `list_hosts`.
pub(crate) fn hosts_text(body: &Value) -> String {
    let Some(hosts) = body["hosts"].as_array().filter(|h| !h.is_empty()) else {
        return "No hosts are configured.".into();
    };
    let mut out = String::from("Hosts (pass the name as `host`):\n");
    for h in hosts {
        let tags: Vec<&str> = h["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let health = match h["health"]["ok"].as_bool() {
            Some(true) => "reachable",
            Some(false) => "not reachable at the last check",
            None => "not checked yet",
        };
        out.push_str(&format!(
            "- {}{}: {health}\n",
            h["name"].as_str().unwrap_or("?"),
            if tags.is_empty() {
                String::new()
            } else {
                format!(" (tags: {})", tags.join(", "))
            },
        ));
    }
    out
}

/// The judgement of `check_command`, in words.
pub(crate) fn check_text(body: &Value) -> String {
    let decision = match serde_json::from_value::<Decision>(body["decision"].clone()) {
        Ok(Decision::Allow) => "allowed: run_command would run it at once",
        Ok(Decision::Approve) => "needs approval: run_command would wait for a person",
        Ok(Decision::Deny) => "denied: run_command would refuse it",
        Err(_) => "no decision",
    };
    let mut out = format!(
        "{decision}\nrisk: {} ({})\n",
        body["risk"]["score"].as_u64().unwrap_or(0),
        body["risk"]["level"].as_str().unwrap_or("?"),
    );
    if let Some(reasons) = body["reasons"].as_array() {
        for r in reasons.iter().filter_map(Value::as_str) {
            out.push_str(&format!("- {r}\n"));
        }
    }
    if body["parse_error"] == true {
        out.push_str("The command did not parse as bash: what the policy cannot read never runs unattended.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(state: &str, events: Value) -> Shown {
        serde_json::from_value(json!({
            "action": {
                "id": "01a251dc-a556-7294-933a-7337b44d83fb",
                "state": state,
                "requester": "token:agent",
                "decision": "approve",
                "risk": { "score": 45, "level": "medium" },
                "reasons": ["`systemctl restart` restarts a service"],
            },
            "run": {
                "exit_code": 0,
                "stdout": { "text": "done\n", "truncated": false },
                "stderr": { "text": "", "truncated": true },
                "error": null,
            },
            "approvals": [{ "reason": " fine by me " }, { "reason": "" }],
            "events": events,
        }))
        .expect("an API answer reads")
    }

    #[test]
    fn a_report_carries_the_output_and_what_people_said() {
        let r = shown("succeeded", json!([])).report();
        assert_eq!(r.state, ActionState::Succeeded);
        assert_eq!(r.decision, Some(Decision::Approve));
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.stdout, "done\n");
        assert!(r.truncated);
        assert_eq!(r.people, ["a person approved it: fine by me"]);
    }

    #[test]
    fn a_rejection_says_why_or_that_no_reason_was_given() {
        let said = json!([{ "kind": "action.rejected", "payload": "{\"reason\":\"not now\"}" }]);
        let r = shown("rejected", said).report();
        assert_eq!(
            r.people.last().map(String::as_str),
            Some("a person rejected it: not now")
        );
        let r = shown("rejected", json!([])).report();
        assert_eq!(
            r.people.last().map(String::as_str),
            Some("a person rejected it and gave no reason")
        );
    }

    #[test]
    fn every_state_has_a_standing() {
        use ActionState::*;
        for (state, want) in [
            (PendingApproval, Standing::Open),
            (Running, Standing::Open),
            (Succeeded, Standing::Ran),
            (TimedOut, Standing::RanBadly),
            (Denied, Standing::Refused),
            (Expired, Standing::Refused),
        ] {
            assert_eq!(Standing::of(state), want, "{state:?}");
        }
    }

    #[test]
    fn the_judgement_and_the_hosts_read_as_words() {
        let text = check_text(&json!({
            "decision": "deny",
            "risk": { "score": 100, "level": "critical" },
            "reasons": ["hard guardrail (wipe-root)"],
            "parse_error": true,
        }));
        assert!(text.starts_with("denied"), "{text}");
        assert!(text.contains("risk: 100 (critical)") && text.contains("- hard guardrail"));
        assert!(text.contains("did not parse"), "{text}");
        let hosts = hosts_text(&json!({ "hosts": [
            { "name": "nas", "tags": ["storage"], "health": { "ok": true } },
            { "name": "pi", "tags": [], "health": { "ok": null } },
        ]}));
        assert!(
            hosts.contains("- nas (tags: storage): reachable"),
            "{hosts}"
        );
        assert!(hosts.contains("- pi: not checked yet"), "{hosts}");
        assert_eq!(
            hosts_text(&json!({ "hosts": [] })),
            "No hosts are configured."
        );
    }
}
