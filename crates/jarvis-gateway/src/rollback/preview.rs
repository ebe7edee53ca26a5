//! The preview an approver sees: a live one in a throwaway copy on the
//! host where the scope allows, else the policy's static plan, and a
//! stored preview read back as text.

use jarvis_core::person;
use jarvis_exec::snapshot::{
    PreviewBasis, PreviewKind, PreviewReport, PreviewRequest, SnapshotPlan,
};
use jarvis_exec::{ExecError, HostSpec, Job};
use jarvis_policy::Request;
use jarvis_policy::scope::Live;
use jarvis_store::{ActionRecord, NewEvent};
use serde_json::json;
use sha2::Digest as _;

use crate::pipeline::{Gateway, GatewayError, action_edit};

/// Output and diff of a preview kept for approvers.
const PREVIEW_CAP: u64 = 256 * 1024;

/// A stored preview as text: its kind, summary lines, diff and output.
pub fn preview_text(p: &PreviewReport) -> String {
    let mut out = format!("preview ({}):\n", p.kind);
    for line in &p.summary {
        out.push_str(&format!("  {line}\n"));
    }
    if !p.diff.is_empty() {
        out.push_str(&p.diff);
        if !p.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    if !p.output.is_empty() {
        out.push_str(&format!(
            "--- output in the copy (exit {}) ---\n{}",
            p.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            p.output
        ));
        if !p.output.ends_with('\n') {
            out.push('\n');
        }
    }
    if p.truncated {
        out.push_str("[… preview truncated]\n");
    }
    out
}

impl Gateway {
    /// Makes the preview an approver sees and attaches it to the action:
    /// a live one in a throwaway copy where the scope allows (`live`, from
    /// the proposal's assessment), else the policy's static plan. A live
    /// preview that could not be had (refused by a limit or by the host, or
    /// failed on the way) falls back to the plan and says why.
    pub(crate) async fn attach_preview(
        &self,
        spec: &HostSpec,
        action: &ActionRecord,
        plan: &SnapshotPlan,
        live: Option<Live>,
    ) -> Result<(), GatewayError> {
        let live = match action_edit(action) {
            Some(edit) => Some(PreviewKind::Edit { edit }),
            None => match live {
                Some(Live::Git { repo }) => Some(PreviewKind::Git {
                    repo,
                    command: action.command.clone(),
                    cwd: action.cwd.clone(),
                }),
                Some(Live::Docker {
                    container,
                    argv,
                    container_arg,
                }) => Some(PreviewKind::Docker {
                    container,
                    argv,
                    container_arg,
                }),
                None => None,
            },
        };
        let mut report = match live {
            Some(kind) => match self.live_preview(spec, action, kind).await? {
                Ok(r) => r,
                Err(why) => {
                    let mut r = self.static_preview(action);
                    r.summary.insert(0, why.to_string());
                    r
                }
            },
            None => self.static_preview(action),
        };
        report.summary.push(plan.summary());
        let summary = json!({
            "kind": report.kind,
            "summary": report.summary,
            "diff_bytes": report.diff.len(),
            "diff_sha256": hex::encode(sha2::Sha256::digest(report.diff.as_bytes())),
            "exit_code": report.exit_code,
            "truncated": report.truncated,
        });
        self.store()
            .set_preview(action.id, &report, summary)
            .await?;
        Ok(())
    }

    /// A preview in a throwaway copy on the host, or why there is none.
    ///
    /// A preview acts on the host before anyone approved the action, so it
    /// is admitted like a run (rate limits, breaker, the host's concurrency
    /// slot, as the action's requester), and `action.preview_started` is in
    /// the audit log before the request is sent. A refusal by a limit is
    /// not the proposal's failure: the action waits with the plan and the
    /// reason.
    async fn live_preview(
        &self,
        spec: &HostSpec,
        action: &ActionRecord,
        kind: PreviewKind,
    ) -> Result<Result<PreviewReport, NoLivePreview>, GatewayError> {
        let job = Job {
            action_id: action.id,
            host: spec.name.clone(),
            requester: person(&action.accountable).to_owned(),
            command: action.command.clone(),
            cwd: action.cwd.clone(),
            timeout: Some(spec.limits.default_timeout),
            edit: None,
            approved: false,
            scope: Vec::new(),
        };
        let admission = match self.executor().admit(&job).await {
            Ok(a) => a,
            Err(e) => return Ok(Err(NoLivePreview::NotAdmitted(e))),
        };
        let (what, target) = match &kind {
            PreviewKind::Git { repo, .. } => ("git", repo.clone()),
            PreviewKind::Docker { container, .. } => ("docker", container.clone()),
            PreviewKind::Edit { edit } => ("edit", edit.path.clone()),
        };
        self.store()
            .append(NewEvent {
                actor: "gateway".into(),
                action_id: Some(action.id),
                host: Some(spec.name.to_string()),
                kind: "action.preview_started".into(),
                payload: json!({
                    "kind": what,
                    "target": target,
                    "timeout_ms": u64::try_from(admission.timeout().as_millis()).unwrap_or(u64::MAX),
                }),
            })
            .await?;
        let request = PreviewRequest {
            action_id: action.id,
            preview: kind,
            timeout_ms: u64::try_from(admission.timeout().as_millis()).unwrap_or(u64::MAX),
            output_cap: PREVIEW_CAP.min(spec.limits.output_cap),
        };
        Ok(match self.executor().preview(admission, request).await {
            Ok(r) => Ok(r),
            Err(ExecError::Refused { refusal, .. }) => Err(NoLivePreview::Refused {
                code: refusal.code,
                reasons: refusal.reasons.join("; "),
            }),
            Err(e) => Err(NoLivePreview::Failed(e)),
        })
    }

    /// The policy's plan as a preview: each program the line runs and the
    /// tools' own dry-run forms.
    fn static_preview(&self, action: &ActionRecord) -> PreviewReport {
        let explained = self.policy().explain(&Request {
            command: action.command.clone(),
            host: action.host.clone(),
            cwd: action.cwd.clone(),
        });
        let mut summary: Vec<String> = explained
            .steps
            .iter()
            .map(|s| {
                format!(
                    "runs {} ({}, risk {})",
                    jarvis_core::text::code(&s.command),
                    s.decision.label(),
                    s.risk.score()
                )
            })
            .collect();
        summary.extend(explained.previews.iter().map(|p| {
            format!(
                "{} would show {}",
                jarvis_core::text::code(&p.preview),
                p.shows
            )
        }));
        PreviewReport {
            summary,
            ..PreviewReport::of(PreviewBasis::Plan)
        }
    }
}

/// Why an action's preview is the policy's plan rather than a live one: the
/// first line of the preview's summary.
#[derive(Debug, thiserror::Error)]
enum NoLivePreview {
    /// A limit of the host (rate, breaker, its busy slots) did not admit it.
    #[error("no live preview: {0}")]
    NotAdmitted(ExecError),
    /// The host's guard refused it.
    #[error("no live preview: the host refused it ({code}): {reasons}")]
    Refused { code: String, reasons: String },
    /// It was sent and failed.
    #[error("live preview failed, so the plan is shown: {0}")]
    Failed(ExecError),
}
