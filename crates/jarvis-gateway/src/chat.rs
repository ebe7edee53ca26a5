//! Conversations with the planner, wired to the pipeline.
//!
//! The planner's tools reach hosts only through [`ChatActions`], which
//! proposes each action under the conversation's requester (`chat:ID`) with
//! [`Gateway::propose`], runs what the policy allows with
//! [`Gateway::execute`], and waits for a person on what needs one. A
//! conversation and its messages are stored; each action it proposes is
//! linked to it in the audit log. Without a model, chat runs in direct mode:
//! a message that is a command is proposed as is.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jarvis_core::person;
use jarvis_core::{ActionId, ActionState, ConversationId, HostName, Purpose};
use jarvis_exec::snapshot::{FileChange, FileEdit};
use jarvis_planner::agent::{
    self, ActionReport, Actions, ActionsError, Event, HostInfo, Limits, ProposedAction,
    ProposedKind, StopReason,
};
use jarvis_planner::client::{ModelSettings, OpenAiModel};
use jarvis_planner::model::{BoxFuture, Message, Model, Role};
use jarvis_planner::tools;
use jarvis_store::{
    ActionRecord, AuditFilter, ConversationRecord, MessageRecord, Store, StoreError,
};
use serde_json::json;

use crate::pipeline::{Gateway, GatewayError, Proposal, Work};

mod direct;
pub mod message;

pub use direct::NO_MODEL;

use message::{ChatMessage, Row};

/// How a conversation ended.
#[derive(Debug, Clone)]
pub struct ChatOutcome {
    /// The stored conversation.
    pub conversation: ConversationRecord,
    /// Whether it finished (the model, or direct mode, gave its answer).
    pub finished: bool,
    /// The answer, or why it stopped, in words.
    pub summary: String,
    /// The actions it proposed, as reported back.
    pub actions: Vec<ActionReport>,
}

/// Something a person watching a conversation hears about.
#[derive(Debug, Clone)]
pub enum ChatEvent {
    /// A step of the planner.
    Planner(Event),
    /// An action waits for a person.
    Waiting {
        /// The action.
        id: ActionId,
        /// Its host.
        host: String,
        /// Its command.
        command: String,
    },
}

impl Gateway {
    /// The configured model, ready to use, or `None` for direct mode.
    ///
    /// # Errors
    /// [`GatewayError::Model`] when the key cannot be read or the settings
    /// are unusable.
    pub fn chat_model(&self) -> Result<Option<OpenAiModel>, GatewayError> {
        let Some(llm) = &self.config().llm else {
            return Ok(None);
        };
        let api_key = match &llm.api_key {
            Some(r) => Some(r.resolve().map_err(|why| GatewayError::Model {
                why: format!("llm.api_key: {why}"),
            })?),
            None => None,
        };
        // Answers stream, so `[llm] timeout_secs` bounds the waits, not the
        // answer: for it to begin, and between two of its pieces. A long
        // answer that keeps coming is never cut.
        let settings = ModelSettings {
            api_key,
            timeout: llm.timeout,
            idle_timeout: llm.timeout,
            retries: llm.retries,
            ..ModelSettings::new(&llm.base_url, &llm.model)
        };
        OpenAiModel::new(settings)
            .map(Some)
            .map_err(|e| GatewayError::Model { why: e.to_string() })
    }

    /// Holds a conversation: `prompt` from `started_by`, answered by
    /// `model` (or direct mode without one), every step reported to
    /// `observer`. Returns when it finishes or stops; a stop is an outcome,
    /// not an error.
    ///
    /// # Errors
    /// A store error.
    pub async fn chat(
        &self,
        started_by: &str,
        prompt: &str,
        model: Option<&dyn Model>,
        observer: &mut (dyn FnMut(ChatEvent) + Send),
    ) -> Result<ChatOutcome, GatewayError> {
        let conversation = self.start_chat(started_by, prompt).await?;
        self.continue_chat(&conversation, model, observer).await
    }

    /// Records a new conversation and its first message, so a caller (the
    /// web UI) can show it before the planner has answered.
    ///
    /// # Errors
    /// A store error.
    pub async fn start_chat(
        &self,
        started_by: &str,
        prompt: &str,
    ) -> Result<ConversationRecord, GatewayError> {
        let prompt = chat_message(prompt)?;
        let conversation = self.store().create_conversation(started_by, prompt).await?;
        self.store()
            .add_message(
                conversation.id,
                Row::User.as_str(),
                &json!({ "content": prompt }),
                None,
            )
            .await?;
        Ok(conversation)
    }

    /// The person who started an ended conversation says more: it becomes
    /// active again with `text` as its next message, for
    /// [`Gateway::continue_chat`] to answer with everything said so far.
    ///
    /// Only the person who started it may: what the conversation proposes
    /// counts as theirs under the approval rule, so anyone else speaking
    /// through it could get their own requests past "not your own".
    ///
    /// # Errors
    /// [`GatewayError::NotYourConversation`] (and an `access.refused`
    /// event), [`GatewayError::EmptyMessage`],
    /// [`GatewayError::MessageTooLong`], [`GatewayError::ConversationBusy`],
    /// or a store error ([`StoreError::NotFound`] for an unknown one).
    pub async fn follow_up(
        &self,
        id: ConversationId,
        by: &str,
        text: &str,
    ) -> Result<ConversationRecord, GatewayError> {
        let conversation = self.store().conversation(id).await?;
        if person(by) != person(&conversation.started_by) {
            // On the record like every refusal, whichever door it came by.
            self.store()
                .append(jarvis_store::NewEvent {
                    actor: by.to_owned(),
                    action_id: None,
                    host: None,
                    kind: "access.refused".into(),
                    payload: json!({
                        "reason": "not_starter",
                        "detail": {
                            "what": "continue a conversation",
                            "conversation": id.to_string(),
                            "started_by": conversation.started_by,
                        },
                    }),
                })
                .await?;
            return Err(GatewayError::NotYourConversation {
                id,
                started_by: conversation.started_by,
            });
        }
        let text = chat_message(text)?;
        match self.store().continue_conversation(id, by, text).await {
            Ok(_) => Ok(self.store().conversation(id).await?),
            Err(StoreError::Invalid(_)) => Err(GatewayError::ConversationBusy { id }),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a conversation [`Gateway::start_chat`] recorded (or
    /// [`Gateway::follow_up`] reopened) to its end, answering its latest
    /// message with what was said before it as the model's history. The
    /// step limit and token budget apply to each answer: the person is
    /// back in the loop between two.
    ///
    /// # Errors
    /// A store error.
    pub async fn continue_chat(
        &self,
        conversation: &ConversationRecord,
        model: Option<&dyn Model>,
        observer: &mut (dyn FnMut(ChatEvent) + Send),
    ) -> Result<ChatOutcome, GatewayError> {
        let id = conversation.id;
        let (history, prompt) = replay(&self.store().messages(id).await?);
        let (finished, summary, actions) = match model {
            Some(model) => self.plan(id, &history, &prompt, model, observer).await?,
            None => self.direct(id, &prompt, observer).await?,
        };
        self.store()
            .end_conversation(id, if finished { "finished" } else { "stopped" }, &summary)
            .await?;
        Ok(ChatOutcome {
            conversation: self.store().conversation(id).await?,
            finished,
            summary,
            actions,
        })
    }

    async fn plan(
        &self,
        id: ConversationId,
        history: &[Message],
        prompt: &str,
        model: &dyn Model,
        observer: &mut (dyn FnMut(ChatEvent) + Send),
    ) -> Result<(bool, String, Vec<ActionReport>), GatewayError> {
        let (actions, mut rx) = ChatActions::new(self, id);
        let limits = self
            .config()
            .llm
            .as_ref()
            .map(|l| Limits {
                max_steps: l.max_steps,
                token_budget: l.token_budget,
                ..Limits::default()
            })
            .unwrap_or_default();
        let mut refused = Vec::new();
        let observer = Observer::new(observer);
        let outcome = {
            let mut forward = |e: Event| {
                if let Event::ToolError { tool, message } = &e {
                    refused.push(json!({ "tool": tool, "why": message }));
                }
                observer.emit(ChatEvent::Planner(e));
            };
            let run = agent::run(model, &actions, prompt, history, &limits, &mut forward);
            observer.while_running(run, &mut rx).await
        };
        // Each refused tool call (an unknown host, malformed arguments) is
        // on the record, not only in the conversation.
        for detail in refused {
            self.store()
                .append(jarvis_store::NewEvent {
                    actor: id.requester(),
                    action_id: None,
                    host: None,
                    kind: "conversation.tool_refused".into(),
                    payload: json!({ "conversation": id.to_string(), "detail": detail }),
                })
                .await?;
        }
        // The history and the person's message are stored already; the
        // rest of the exchange is kept as the model saw it.
        for m in &outcome.messages[outcome.first_new.min(outcome.messages.len())..] {
            self.store()
                .add_message(id, Row::of(m.role).as_str(), &json!(m), None)
                .await?;
        }
        let finished = matches!(outcome.stop, StopReason::Finished);
        let summary = match (&outcome.stop, outcome.summary) {
            (StopReason::Finished, Some(s)) => s,
            (stop, _) => stop.to_string(),
        };
        Ok((finished, summary, outcome.actions))
    }
}

/// The longest message a person may send, in characters.
pub const MESSAGE_MAX: usize = 8000;

/// A person's message, trimmed, if it is neither empty nor too long.
fn chat_message(text: &str) -> Result<&str, GatewayError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(GatewayError::EmptyMessage);
    }
    let chars = text.chars().count();
    if chars > MESSAGE_MAX {
        return Err(GatewayError::MessageTooLong {
            chars,
            max: MESSAGE_MAX,
        });
    }
    Ok(text)
}

/// How much of each earlier tool answer a follow-up's history carries.
const HISTORY_ANSWER_BYTES: usize = 1024;

/// A stored conversation as the model is given it: everything said
/// before the person's latest message, and that message.
///
/// Links to actions are the log's, not the model's, and are left out;
/// earlier tool answers are shortened to [`HISTORY_ANSWER_BYTES`]. A
/// tool call left without an answer (a process that died mid-turn) gets
/// one saying so, and an answer to no call is dropped: endpoints refuse a
/// history where the two do not pair up.
fn replay(stored: &[MessageRecord]) -> (Vec<Message>, String) {
    let mut said: Vec<Message> = message::read(stored)
        .into_iter()
        .filter_map(|m| match m {
            ChatMessage::Person { text, .. } => Some(Message::user(text)),
            ChatMessage::Model { text, calls, .. } => Some(Message {
                role: Role::Assistant,
                content: text,
                tool_calls: calls.iter().map(message::Call::to_tool_call).collect(),
                tool_call_id: None,
            }),
            // An answer to no call is dropped below anyway.
            ChatMessage::Answer(a) => {
                let message::Answer { call_id, text, .. } = *a;
                call_id.map(|id| Message::tool(id, text))
            }
            ChatMessage::Action { .. } => None,
        })
        .collect();
    let Some(last) = said.iter().rposition(|m| m.role == Role::User) else {
        return (Vec::new(), String::new());
    };
    let prompt = said[last].content.clone();
    said.truncate(last);

    let mut history = Vec::with_capacity(said.len());
    let mut open: Vec<String> = Vec::new();
    for mut message in said {
        match message.role {
            Role::Tool => {
                // Earlier turns' output matters less than room for this one.
                message.content = tools::shorten_answer(&message.content, HISTORY_ANSWER_BYTES);
                let answers = message
                    .tool_call_id
                    .as_ref()
                    .and_then(|id| open.iter().position(|o| o == id));
                if let Some(i) = answers {
                    open.remove(i);
                    history.push(message);
                }
            }
            Role::System | Role::User | Role::Assistant => {
                close(&mut history, &mut open);
                open = message.tool_calls.iter().map(|c| c.id.clone()).collect();
                history.push(message);
            }
        }
    }
    close(&mut history, &mut open);
    (history, prompt)
}

/// Answers the tool calls still open at the end of a turn.
fn close(history: &mut Vec<Message>, open: &mut Vec<String>) {
    for id in open.drain(..) {
        history.push(Message::tool(
            id,
            "(no answer: the conversation stopped before this call ran)",
        ));
    }
}

/// Who watches a conversation, shared by the planner's events and the
/// events its tool calls queue (an action waiting for a person), so that
/// each is passed on the moment it happens.
struct Observer<'o> {
    inner: std::sync::Mutex<&'o mut (dyn FnMut(ChatEvent) + Send)>,
}

impl<'o> Observer<'o> {
    fn new(inner: &'o mut (dyn FnMut(ChatEvent) + Send)) -> Self {
        Observer {
            inner: std::sync::Mutex::new(inner),
        }
    }

    fn emit(&self, e: ChatEvent) {
        // Never held across an await; a panicking observer leaves nothing
        // half-done that the next event could trip over.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (*inner)(e);
    }

    /// Runs `work`, passing on what its tool calls queue as it comes:
    /// "waiting for approval" is said when the action starts waiting, not
    /// after someone decided.
    async fn while_running<T>(
        &self,
        work: impl std::future::Future<Output = T>,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<ChatEvent>,
    ) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                Some(e) = rx.recv() => self.emit(e),
                out = &mut work => {
                    while let Ok(e) = rx.try_recv() {
                        self.emit(e);
                    }
                    return out;
                }
            }
        }
    }
}

/// The planner's hands: every action goes through the pipeline.
pub struct ChatActions<'a> {
    gw: &'a Gateway,
    conversation: ConversationId,
    waiting: Arc<dyn Fn(ChatEvent) + Send + Sync>,
}

/// How often a waiting conversation looks at its action again.
const POLL: Duration = Duration::from_millis(300);

impl<'a> ChatActions<'a> {
    /// The hands of conversation `id`, and where its waits are reported
    /// (an action waiting happens inside a tool call, so it is queued and
    /// passed on by [`Observer::while_running`] as it comes).
    fn new(
        gw: &'a Gateway,
        id: ConversationId,
    ) -> (
        ChatActions<'a>,
        tokio::sync::mpsc::UnboundedReceiver<ChatEvent>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let actions = ChatActions {
            gw,
            conversation: id,
            waiting: Arc::new(move |e: ChatEvent| {
                let _ = tx.send(e);
            }),
        };
        (actions, rx)
    }

    async fn propose_and_wait(&self, p: ProposedAction) -> Result<ActionReport, ActionsError> {
        let gw = self.gw;
        let host = HostName::parse(&p.host).map_err(|e| ActionsError::Invalid(e.to_string()))?;
        if gw.config().host(&host).is_none() {
            return Err(ActionsError::UnknownHost(p.host.clone()));
        }
        let work = match p.kind {
            ProposedKind::Command { command, cwd } => Work::Command { line: command, cwd },
            ProposedKind::Edit { path, content } => Work::Edit(FileEdit {
                path,
                change: FileChange::Content { content },
            }),
        };
        let purpose = Purpose::new(&p.reason, &p.expected_effect)
            .map_err(|e| ActionsError::Invalid(format!("{}: {e}", e.field)))?;
        let requester = self.conversation.requester();
        let waiting = &self.waiting;
        let proposed = gw
            .propose_telling(
                Proposal {
                    requester: requester.clone(),
                    host,
                    work,
                    timeout: None,
                    purpose,
                },
                |action| {
                    waiting(ChatEvent::Waiting {
                        id: action.id,
                        host: action
                            .host
                            .as_ref()
                            .map(HostName::to_string)
                            .unwrap_or_default(),
                        command: action.command.clone(),
                    })
                },
            )
            .await
            .map_err(|e| match e {
                // The model's own mistake, which it can put right.
                GatewayError::BadEdit { .. } | GatewayError::BadCwd { .. } => {
                    ActionsError::Invalid(e.to_string())
                }
                e @ (GatewayError::Policy(_)
                | GatewayError::Store(_)
                | GatewayError::UnknownHost(_)
                | GatewayError::WrongState { .. }
                | GatewayError::Expired { .. }
                | GatewayError::ApprovalLapsed { .. }
                | GatewayError::NotYourConversation { .. }
                | GatewayError::ConversationBusy { .. }
                | GatewayError::EmptyMessage
                | GatewayError::MessageTooLong { .. }
                | GatewayError::NowDenied { .. }
                | GatewayError::PlanChanged { .. }
                | GatewayError::KernelUnenforced { .. }
                | GatewayError::SnapshotFailed { .. }
                | GatewayError::SnapshotExists { .. }
                | GatewayError::Model { .. }
                | GatewayError::ApprovalRefused { .. }
                | GatewayError::NoRollback { .. }
                | GatewayError::NothingToUndo { .. }
                | GatewayError::NotSent { .. }) => ActionsError::Failed(e.to_string()),
            })?;
        let action = proposed.action;
        let id = action.id;
        self.link(id, &json!({ "proposed": action.command, "reason": p.reason, "expected_effect": p.expected_effect }))
            .await?;
        let done = match action.state {
            ActionState::Approved => self.run(id, &requester).await?,
            ActionState::PendingApproval => self.wait(&action).await?,
            ActionState::Proposed
            | ActionState::Denied
            | ActionState::Rejected
            | ActionState::Expired
            | ActionState::Running
            | ActionState::Succeeded
            | ActionState::Failed
            | ActionState::TimedOut
            | ActionState::Interrupted
            | ActionState::RolledBack => action,
        };
        let report = self.report(&done).await?;
        self.link(
            id,
            &json!({ "result": report.state, "exit_code": report.exit_code }),
        )
        .await?;
        Ok(report)
    }

    /// Records in the conversation (and so in the audit log) that it
    /// touched action `id`.
    async fn link(&self, id: ActionId, content: &serde_json::Value) -> Result<(), ActionsError> {
        self.gw
            .store()
            .add_message(self.conversation, Row::Action.as_str(), content, Some(id))
            .await
            .map(|_| ())
            .map_err(|e| ActionsError::Failed(e.to_string()))
    }

    async fn run(&self, id: ActionId, actor: &str) -> Result<ActionRecord, ActionsError> {
        // Started as it is proposed: a host limit that refuses it now
        // refuses the action, and the model hears which and for how long.
        let done = match self.gw.start_proposed(id).await {
            Ok(started) => self.gw.run_started(started, actor, &mut |_| {}).await,
            Err(e) => Err(e),
        };
        match done {
            Ok(done) => Ok(done),
            // Refused before sending: report the action as it stands, with
            // why, so the model can choose another way.
            Err(e) => {
                let mut action = self
                    .gw
                    .store()
                    .action(id)
                    .await
                    .map_err(|e| ActionsError::Failed(e.to_string()))?;
                action.reasons.push(format!("not run: {e}"));
                Ok(action)
            }
        }
    }

    /// Waits for a person's decision and, once approved, for whoever
    /// approved it to run it (the web server or `jarvis approve`).
    async fn wait(&self, action: &ActionRecord) -> Result<ActionRecord, ActionsError> {
        let expires = self.gw.expires_at(action);
        let mut approved_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(POLL).await;
            let now = self
                .gw
                .store()
                .action(action.id)
                .await
                .map_err(|e| ActionsError::Failed(e.to_string()))?;
            match now.state {
                ActionState::PendingApproval if SystemTime::now() > expires => {
                    // The sweeper expires it in a moment; say so now.
                    let mut now = now;
                    now.reasons
                        .push("no decision within the approval window".into());
                    return Ok(now);
                }
                ActionState::PendingApproval | ActionState::Running => {}
                ActionState::Approved => {
                    let since = *approved_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(60) {
                        let mut now = now;
                        now.reasons.push(
                            "approved, but not started within a minute (a limit may have refused it; see its page)"
                                .into(),
                        );
                        return Ok(now);
                    }
                }
                ActionState::Proposed
                | ActionState::Denied
                | ActionState::Rejected
                | ActionState::Expired
                | ActionState::Succeeded
                | ActionState::Failed
                | ActionState::TimedOut
                | ActionState::Interrupted
                | ActionState::RolledBack => return Ok(now),
            }
        }
    }

    async fn report(&self, a: &ActionRecord) -> Result<ActionReport, ActionsError> {
        let store = self.gw.store();
        let failed = |e: StoreError| ActionsError::Failed(e.to_string());
        let run = store.run_of(a.id).await.map_err(failed)?;
        // What the people who decided said: an approver's words are the
        // best teacher the agent has ("just restarted it 2 min ago").
        let people = people_said(store, a)
            .await
            .map_err(failed)?
            .iter()
            .filter_map(Said::told)
            .collect();
        Ok(ActionReport {
            id: a.id,
            state: a.state,
            decision: a.decision,
            risk: a.risk,
            reasons: a.reasons.clone(),
            exit_code: run.as_ref().and_then(|r| r.exit_code),
            stdout: run
                .as_ref()
                .map(|r| String::from_utf8_lossy(&r.stdout.data).into_owned())
                .unwrap_or_default(),
            stderr: run
                .as_ref()
                .map(|r| String::from_utf8_lossy(&r.stderr.data).into_owned())
                .unwrap_or_default(),
            truncated: run
                .as_ref()
                .is_some_and(|r| r.stdout.truncated || r.stderr.truncated),
            note: run.and_then(|r| r.error),
            people,
        })
    }
}

/// What one person said in deciding on an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Said {
    /// Who (`user:alice`).
    pub(crate) by: String,
    /// Whether they approved (else they rejected it).
    pub(crate) approved: bool,
    /// Their words, if they gave any.
    pub(crate) words: Option<String>,
}

impl Said {
    /// What an agent is told of it with the result; nothing for an
    /// approval without words.
    pub(crate) fn told(&self) -> Option<String> {
        match (self.approved, &self.words) {
            (true, Some(w)) => Some(format!("a person approved it: {w}")),
            (true, None) => None,
            (false, Some(w)) => Some(format!("a person rejected it: {w}")),
            (false, None) => Some("a person rejected it and gave no reason".into()),
        }
    }
}

/// A decision's reason as words worth repeating: trimmed, none if blank.
pub(crate) fn words(reason: Option<&str>) -> Option<String> {
    reason
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}

/// What the people who decided on `a` said, approvals first: told to the
/// model with the result, and shown with the action in its conversation.
pub(crate) async fn people_said(store: &Store, a: &ActionRecord) -> Result<Vec<Said>, StoreError> {
    let mut said: Vec<Said> = store
        .approvals_of(a.id)
        .await?
        .into_iter()
        .map(|p| Said {
            words: words(p.reason.as_deref()),
            by: p.approver,
            approved: true,
        })
        .collect();
    if a.state == ActionState::Rejected {
        let rejected = store
            .events(&AuditFilter {
                action_id: Some(a.id.to_string()),
                kind: Some("action.rejected".into()),
                limit: Some(1),
                ..AuditFilter::default()
            })
            .await?;
        for e in rejected {
            let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
            said.push(Said {
                by: e.actor,
                approved: false,
                words: words(payload["reason"].as_str()),
            });
        }
    }
    Ok(said)
}

impl Actions for ChatActions<'_> {
    fn hosts(&self) -> BoxFuture<'_, Vec<HostInfo>> {
        Box::pin(async move {
            self.gw
                .config()
                .hosts
                .iter()
                .map(|h| HostInfo {
                    name: h.name.to_string(),
                    tags: h.tags.clone(),
                })
                .collect()
        })
    }

    fn propose(&self, p: ProposedAction) -> BoxFuture<'_, Result<ActionReport, ActionsError>> {
        Box::pin(self.propose_and_wait(p))
    }

    /// An earlier action of this conversation. Another conversation's
    /// actions are not the model's to read: their output may hold what
    /// someone else asked about, and an id is easy to guess or be told.
    fn action(&self, id: &str) -> BoxFuture<'_, Result<ActionReport, ActionsError>> {
        let id = id.to_owned();
        Box::pin(async move {
            let store = self.gw.store();
            let id = store
                .resolve_action(&id)
                .await
                .map_err(|e| ActionsError::Invalid(e.to_string()))?;
            let ours = store
                .messages(self.conversation)
                .await
                .map_err(|e| ActionsError::Failed(e.to_string()))?
                .iter()
                .any(|m| m.action_id == Some(id));
            if !ours {
                return Err(ActionsError::Invalid(format!(
                    "action {id} is not one of this conversation's; read_action reads only the \
                     actions this conversation proposed"
                )));
            }
            let a = store
                .action(id)
                .await
                .map_err(|e| ActionsError::Failed(e.to_string()))?;
            self.report(&a).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_planner::model::ToolCall;

    fn stored(rows: &[(&str, serde_json::Value)]) -> Vec<MessageRecord> {
        rows.iter()
            .enumerate()
            .map(|(i, (role, content))| MessageRecord {
                seq: i as i64 + 1,
                at: "2026-11-23T10:00:00Z".into(),
                role: (*role).into(),
                content: content.clone(),
                action_id: None,
            })
            .collect()
    }

    fn calls(ids: &[&str]) -> Message {
        Message {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: ids
                .iter()
                .map(|id| ToolCall {
                    id: (*id).into(),
                    name: "propose_command".into(),
                    arguments: "{}".into(),
                })
                .collect(),
            tool_call_id: None,
        }
    }

    #[test]
    fn the_latest_message_is_the_prompt_and_the_rest_its_history() {
        let (history, prompt) = replay(&stored(&[
            ("user", json!({ "content": "why is grafana restarting?" })),
            ("assistant", json!(calls(&["c1"]))),
            ("action", json!({ "proposed": "docker ps" })),
            ("tool", json!(Message::tool("c1", "o".repeat(20_000)))),
            ("assistant", json!({ "content": "It runs out of memory." })),
            ("user", json!({ "content": "raise its limit then" })),
        ]));
        assert_eq!(prompt, "raise its limit then");
        let roles: Vec<Role> = history.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::User, Role::Assistant, Role::Tool, Role::Assistant]
        );
        assert_eq!(history[3].content, "It runs out of memory.");
        // An earlier turn's output is carried shortened.
        assert!(history[2].content.len() < 2 * HISTORY_ANSWER_BYTES);
    }

    #[test]
    fn unanswered_calls_get_an_answer_and_stray_answers_are_dropped() {
        let (history, prompt) = replay(&stored(&[
            ("user", json!({ "content": "check the disks" })),
            ("assistant", json!(calls(&["c1", "c2"]))),
            ("tool", json!(Message::tool("c1", "91%"))),
            ("tool", json!(Message::tool("c9", "from nowhere"))),
            ("user", json!({ "content": "and now?" })),
        ]));
        assert_eq!(prompt, "and now?");
        let answered: Vec<&str> = history
            .iter()
            .filter_map(|m| m.tool_call_id.as_deref())
            .collect();
        assert_eq!(answered, ["c1", "c2"]);
        assert!(history[3].content.contains("stopped before this call ran"));
    }

    #[test]
    fn a_conversation_with_no_message_from_a_person_has_no_prompt() {
        let (history, prompt) = replay(&stored(&[("assistant", json!({ "content": "stopped" }))]));
        assert!(history.is_empty() && prompt.is_empty());
    }
}
