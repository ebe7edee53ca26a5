//! The chat pages: start a conversation with the planner, and watch one.
//! The conversation runs in the background (the request only records it
//! and redirects); the page shows what is stored so far and refreshes while
//! it is active, and the model's text reaches it live as it is written
//! (`LiveEvent::Saying`, never stored). What it proposes is decided with
//! the queue's own forms.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jarvis_core::{ActionState, ConversationId, person};
use jarvis_planner::agent::Event;
use jarvis_planner::model::Model;
use jarvis_store::ConversationRecord;
use serde::Deserialize;

use super::error::AppError;
use super::live_event::LiveEvent;
use super::page::{chrome, html, page};
use super::session::{Caller, FormUser, WebUser};
use super::state::{AppState, Shared, now_unix, unix};
use super::views::{
    ChatEntry, ChatPage, Chrome, ConversationPage, Section, actor_words, chat_entries, output_text,
};
use crate::chat::ChatEvent;
use crate::chat::message::Row;
use crate::pipeline::GatewayError;

/// How many conversations `/chat` lists.
const RECENT: i64 = 50;

/// `GET /chat`: the form and the recent conversations.
pub(crate) async fn index(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let conversations = state
        .gw
        .store()
        .conversations(RECENT)
        .await
        .map_err(AppError::from_store)?;
    let body = html(&ChatPage {
        chrome: chrome(&state, &caller, &headers, "Chat", Section::Chat),
        conversations,
        can_start: caller.principal.may_propose(),
        direct_mode: state.gw.config().llm.is_none(),
        hosts: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| h.name.to_string())
            .collect(),
        prompt: String::new(),
        now_unix: now_unix(),
    })?;
    Ok(page(&state, &headers, body))
}

#[derive(Deserialize)]
pub(crate) struct ChatForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    prompt: String,
}

/// `POST /chat`: records the conversation, starts the planner on it in
/// the background, and shows it.
pub(crate) async fn start(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Form(form): Form<ChatForm>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Not started", Section::Chat);
    let back = Some("/chat".to_owned());
    admit(&state, &caller, &form, "start conversations")
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    let conversation = state
        .gw
        .start_chat(&caller.actor(), &form.prompt)
        .await
        .map_err(|e| AppError::from_gateway(e).page(frame, back))?;
    let id = conversation.id;
    run(&state, conversation).await;
    Ok(Redirect::to(&format!("/chat/{id}")).into_response())
}

/// `POST /chat/{id}`: the person who started an ended conversation says
/// more; the planner answers in the background with everything said so
/// far.
pub(crate) async fn reply(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    Form(form): Form<ChatForm>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Not sent", Section::Chat);
    let id = conversation_id(&text).map_err(|e| e.page(frame.clone(), Some("/chat".into())))?;
    let back = Some(format!("/chat/{id}"));
    admit(&state, &caller, &form, "continue conversations")
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    let conversation = match state.gw.follow_up(id, &caller.actor(), &form.prompt).await {
        Ok(c) => c,
        Err(e) => {
            if let GatewayError::NotYourConversation { .. } = &e {
                // The gateway wrote the refusal to the log; count it here.
                state.metrics.refused("not_starter");
            }
            return Err(AppError::from_gateway(e).page(frame, back));
        }
    };
    run(&state, conversation).await;
    Ok(Redirect::to(&format!("/chat/{id}#conversation-end")).into_response())
}

/// Whether the caller may send a chat message: the CSRF token checked,
/// and their right to propose (what a conversation proposes is theirs).
/// The message itself is the gateway's to judge.
async fn admit(
    state: &Shared,
    caller: &Caller,
    form: &ChatForm,
    what: &str,
) -> Result<(), AppError> {
    caller
        .check_csrf(state, form.csrf.as_deref(), what, None)
        .await?;
    caller
        .require(state, caller.principal.may_propose(), what, None)
        .await
}

/// Starts the planner on a conversation that has a message to answer, or
/// ends it saying why the model cannot be used.
async fn run(state: &AppState, conversation: ConversationRecord) {
    let id = conversation.id;
    match state.gw.chat_model() {
        Ok(model) => spawn_chat(state.clone(), conversation, model),
        Err(e) => {
            // Nothing to run it with: say so in the conversation itself.
            tracing::warn!(conversation = %id, error = %e, "chat model unusable");
            stop(state, id, &format!("The model cannot be used: {e}")).await;
        }
    }
}

/// A conversation id from a path, or a 404 saying why it is not one.
fn conversation_id(text: &str) -> Result<ConversationId, AppError> {
    text.trim()
        .parse()
        .map_err(|e: jarvis_core::ConversationIdError| {
            AppError::new(StatusCode::NOT_FOUND, e.to_string())
        })
}

/// Ends a conversation that cannot go on, saying why in it (so the page
/// shows it) and in its end.
async fn stop(state: &Shared, id: ConversationId, why: &str) {
    let store = state.gw.store();
    let content = serde_json::json!({ "content": why });
    if let Err(e) = store
        .add_message(id, Row::Assistant.as_str(), &content, None)
        .await
    {
        tracing::error!(conversation = %id, error = %e, "could not record why a conversation stopped");
    }
    if let Err(e) = store.end_conversation(id, "stopped", why).await {
        tracing::error!(conversation = %id, error = %e, "could not end a conversation");
    }
}

/// Runs a recorded conversation to its end, off the request, telling the
/// pages that watch it the model's text as it is written.
fn spawn_chat<M: Model + 'static>(
    state: AppState,
    conversation: ConversationRecord,
    model: Option<M>,
) {
    tokio::spawn(async move {
        let id = conversation.id;
        let live = state.live.clone();
        let mut observer = |event: ChatEvent| {
            if let Some(event) = live_text(id, event) {
                // Nobody watching is no error.
                let _ = live.send(event);
            }
        };
        let model = model.as_ref().map(|m| m as &dyn Model);
        match state
            .gw
            .continue_chat(&conversation, model, &mut observer)
            .await
        {
            Ok(done) => tracing::info!(
                conversation = %id,
                finished = done.finished,
                actions = done.actions.len(),
                "conversation ended"
            ),
            Err(e) => {
                tracing::warn!(conversation = %id, error = %e, "conversation failed");
                stop(
                    &state,
                    id,
                    &format!("The conversation stopped on an error: {e}"),
                )
                .await;
            }
        }
    });
}

/// What of a conversation's events the pages watching it hear live: the
/// model's text, in pieces and whole. The rest reaches them through the
/// store (actions and their changes, the messages once stored).
fn live_text(conversation: ConversationId, event: ChatEvent) -> Option<LiveEvent> {
    match event {
        ChatEvent::Planner(Event::Saying { text, piece }) => Some(LiveEvent::Saying {
            conversation,
            piece,
            text,
        }),
        ChatEvent::Planner(Event::Said { text }) => Some(LiveEvent::Said { conversation, text }),
        ChatEvent::Planner(
            Event::Thinking { .. }
            | Event::Proposed { .. }
            | Event::Result { .. }
            | Event::ToolError { .. }
            | Event::Finished { .. }
            | Event::Stopped { .. },
        )
        | ChatEvent::Waiting { .. } => None,
    }
}

/// `GET /chat/{id}`: one conversation, its actions inline.
pub(crate) async fn show(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Conversation", Section::Chat);
    let back = Some("/chat".to_owned());
    let id = conversation_id(&text).map_err(|e| e.page(frame.clone(), back.clone()))?;
    let store = state.gw.store();
    let conversation = store
        .conversation(id)
        .await
        .map_err(|e| AppError::from_store(e).page(frame.clone(), back.clone()))?;
    let messages = store.messages(id).await.map_err(AppError::from_store)?;
    let mut actions = HashMap::new();
    for action_id in messages.iter().filter_map(|m| m.action_id) {
        if actions.contains_key(&action_id) {
            continue;
        }
        match store.action(action_id).await {
            Ok(a) => {
                actions.insert(action_id, a);
            }
            Err(e) => {
                tracing::warn!(action = %action_id, error = %e, "a linked action is unreadable")
            }
        }
    }
    let mut entries = chat_entries(&messages, &actions);
    for entry in &mut entries {
        let ChatEntry::Action(item) = entry else {
            continue;
        };
        if item.action.state == ActionState::PendingApproval {
            item.expires_at_unix = Some(unix(state.gw.expires_at(&item.action)));
        }
        // What the people who decided said, as the agent heard it.
        match crate::chat::people_said(store, &item.action).await {
            Ok(said) => {
                item.people = said
                    .into_iter()
                    .filter(|s| s.words.is_some() || !s.approved)
                    .map(|s| {
                        let verdict = if s.approved { "approved" } else { "rejected" };
                        match s.words {
                            Some(w) => format!("{} {verdict} it: {w}", actor_words(&s.by)),
                            None => format!("{} {verdict} it without a reason", actor_words(&s.by)),
                        }
                    })
                    .collect();
            }
            Err(e) => {
                tracing::warn!(action = %item.action.id, error = %e, "who decided on an action is unreadable")
            }
        }
        // What it printed, in the conversation where it happened.
        match store.run_of(item.action.id).await {
            Ok(Some(run)) => {
                let text = format!("{}{}", output_text(&run.stdout), output_text(&run.stderr));
                item.output = (!text.trim().is_empty()).then_some(text);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(action = %item.action.id, error = %e, "an action's run is unreadable")
            }
        }
    }
    let body = html(&ConversationPage {
        chrome: Chrome {
            title: format!("Chat {}", &id.to_string()[..13]),
            ..frame
        },
        entries,
        can_decide: caller.principal.may_decide(),
        can_reply: caller.principal.may_propose()
            && person(&caller.actor()) == person(&conversation.started_by),
        now_unix: now_unix(),
        conversation,
    })?;
    Ok(page(&state, &headers, body))
}
