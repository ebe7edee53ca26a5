//! The chat pages: the list of conversations, and one conversation with
//! its actions shown where the model heard of them.

use askama::Template;
use jarvis_core::text::Span;
use jarvis_core::{ActionState, ConversationState, UnknownConversationState};
use jarvis_store::{ActionRecord, ConversationRecord, MessageRecord};

use super::filters;
use super::layout::{Chrome, Section};
use super::text::{
    actor_words, ago, decision_badge_class, first_line, line_count, remaining, risk_class,
    risk_label, state_class, unix_rfc3339,
};
use crate::chat::message::{self, Answer, Called, ChatMessage};
use crate::server::story::{Story, reason_spans};
use jarvis_planner::Tool;

/// `GET /chat`: the form that starts a conversation, and the recent ones.
#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage {
    /// The frame.
    pub chrome: Chrome,
    /// Recent conversations, newest first.
    pub conversations: Vec<ConversationRecord>,
    /// Whether the caller may start one (they may propose).
    pub can_start: bool,
    /// No model is configured: a message that is a command is proposed
    /// as is.
    pub direct_mode: bool,
    /// The configured hosts' names: in direct mode a message names one
    /// when there are several.
    pub hosts: Vec<String>,
    /// What the form held, when it is shown again after a mistake.
    pub prompt: String,
    /// Now (Unix seconds), for "5 min ago".
    pub now_unix: i64,
}

impl ChatPage {
    /// A command as direct mode takes it here: with the host first when
    /// there are several.
    pub fn direct_example(&self) -> String {
        match self.hosts.as_slice() {
            [_, _, ..] => format!("@{} docker ps", self.hosts[0]),
            [] | [_] => "docker ps".to_owned(),
        }
    }

    /// When a conversation started, relative to now.
    pub fn started_ago(&self, c: &ConversationRecord) -> String {
        ago(&c.created_at, self.now_unix)
    }
}

/// The class of a conversation's state badge, for the state's word as
/// the store keeps it; `state-muted` for a word that is no state.
pub fn conversation_class(state: &str) -> &'static str {
    match state.parse() {
        Ok(ConversationState::Active) => "state-running",
        Ok(ConversationState::Finished) => "state-ok",
        Ok(ConversationState::Stopped) => "state-bad",
        Err(UnknownConversationState(_)) => "state-muted",
    }
}

/// One action a conversation proposed, as its card shows it.
#[derive(Debug, Clone)]
pub struct ChatAction {
    /// The action as it stands now.
    pub action: ActionRecord,
    /// Who asked, why, what changes and comes back, the deciding reasons.
    pub story: Story,
    /// What it printed, once it ran (stdout, then stderr).
    pub output: Option<String>,
    /// What the people who decided said, in words ("alice rejected it:
    /// keep the mark"): the agent was told the same.
    pub people: Vec<String>,
    /// What the assistant was told about its result (the tool answer).
    pub told: Option<String>,
    /// When it expires (Unix seconds), while pending.
    pub expires_at_unix: Option<i64>,
}

impl ChatAction {
    /// Whether it waits for a person.
    pub fn pending(&self) -> bool {
        self.action.state == ActionState::PendingApproval
    }

    /// The expiry as an RFC 3339 timestamp.
    pub fn expires_iso(&self) -> String {
        self.expires_at_unix.map(unix_rfc3339).unwrap_or_default()
    }
}

/// One entry of a conversation as the page shows it.
#[derive(Debug, Clone)]
pub enum ChatEntry {
    /// What the person asked.
    User {
        /// When.
        at: String,
        /// The request.
        text: String,
    },
    /// What the assistant said in words.
    Assistant {
        /// When.
        at: String,
        /// The text.
        text: String,
    },
    /// An action the conversation proposed, with its state.
    Action(Box<ChatAction>),
    /// A tool answer that is not about one of the conversation's actions
    /// (the host list, an error, a look at an earlier action).
    Tool {
        /// The tool it answers, when known.
        tool: String,
        /// The answer.
        text: String,
    },
}

/// A conversation's messages as the page shows them, in order: the
/// person's request, the assistant's words, one card per action it
/// proposed (where the assistant heard its result once the exchange is
/// stored, else where it was proposed), and other tool answers.
/// `actions` holds the linked actions as they stand; a linked action
/// missing from it is left out.
pub fn chat_entries(
    messages: &[MessageRecord],
    actions: &std::collections::HashMap<jarvis_core::ActionId, ActionRecord>,
) -> Vec<ChatEntry> {
    use std::collections::{HashMap, HashSet};
    let messages = message::read(messages);
    let linked: HashSet<_> = messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::Action { id, .. } => Some(*id),
            ChatMessage::Person { .. } | ChatMessage::Model { .. } | ChatMessage::Answer(_) => None,
        })
        .collect();
    // What the assistant said each action was for, as linked: actions
    // proposed before purposes were stored carry it only here.
    let mut purposes = HashMap::new();
    for m in &messages {
        if let ChatMessage::Action {
            id,
            purpose: Some(p),
        } = m
        {
            purposes.entry(*id).or_insert_with(|| p.clone());
        }
    }
    // The action an answer reports the result of, if it is one of this
    // conversation's.
    let result_of = |a: &Answer| a.result_of().filter(|id| linked.contains(id));
    // Actions whose result the stored exchange carries: their card goes
    // there, next to what the assistant made of it.
    let heard: HashSet<_> = messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::Answer(a) => result_of(a),
            ChatMessage::Person { .. } | ChatMessage::Model { .. } | ChatMessage::Action { .. } => {
                None
            }
        })
        .collect();
    let mut placed = HashSet::new();
    let mut out = Vec::new();
    let card = |id, told: Option<String>, out: &mut Vec<ChatEntry>| {
        if let Some(a) = actions.get(&id) {
            let mut story = Story::of(a, None);
            if story.purpose.is_none() {
                story.purpose = purposes.get(&id).cloned();
            }
            out.push(ChatEntry::Action(Box::new(ChatAction {
                action: a.clone(),
                story,
                output: None,
                people: Vec::new(),
                told,
                expires_at_unix: None,
            })));
        }
    };
    for m in &messages {
        match m {
            ChatMessage::Person { at, text } => {
                if !text.trim().is_empty() {
                    out.push(ChatEntry::User {
                        at: at.clone(),
                        text: text.clone(),
                    });
                }
            }
            ChatMessage::Model { at, text, .. } => {
                if !text.trim().is_empty() {
                    out.push(ChatEntry::Assistant {
                        at: at.clone(),
                        text: text.clone(),
                    });
                }
            }
            ChatMessage::Answer(a) => {
                // `finish`'s answer says nothing the summary does not.
                if a.tool == Some(Called::Tool(Tool::Finish)) {
                    continue;
                }
                match result_of(a) {
                    Some(id) if placed.insert(id) => card(id, Some(a.text.clone()), &mut out),
                    _ => out.push(ChatEntry::Tool {
                        tool: a
                            .tool
                            .as_ref()
                            .map(Called::name)
                            .unwrap_or_default()
                            .to_owned(),
                        text: a.text.clone(),
                    }),
                }
            }
            ChatMessage::Action { id, .. } => {
                if heard.contains(id) || !placed.insert(*id) {
                    continue;
                }
                card(*id, None, &mut out);
            }
        }
    }
    out
}

/// `GET /chat/{id}`: one conversation.
#[derive(Template)]
#[template(path = "conversation.html")]
pub struct ConversationPage {
    /// The frame.
    pub chrome: Chrome,
    /// The conversation.
    pub conversation: ConversationRecord,
    /// What it said and did, in order.
    pub entries: Vec<ChatEntry>,
    /// Whether the viewer may approve or deny.
    pub can_decide: bool,
    /// Whether the viewer may say more once it ends: they started it.
    pub can_reply: bool,
    /// Now (Unix seconds), for the countdowns.
    pub now_unix: i64,
}

impl ConversationPage {
    /// Whether the planner is still at work.
    pub fn active(&self) -> bool {
        self.conversation.state == ConversationState::Active.as_str()
    }

    /// How many of its actions wait for a person.
    pub fn waiting(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, ChatEntry::Action(a) if a.pending()))
            .count()
    }

    /// The countdown text of a pending action.
    pub fn countdown(&self, a: &ChatAction) -> String {
        a.expires_at_unix
            .map(|e| remaining(e, self.now_unix))
            .unwrap_or_default()
    }

    /// When it started, relative to now.
    pub fn started_ago(&self) -> String {
        ago(&self.conversation.created_at, self.now_unix)
    }

    /// Whether `text`, the assistant's words, is the answer it ended
    /// with, which the page shows once, at the end.
    pub fn is_answer(&self, text: &str) -> bool {
        self.conversation
            .outcome
            .as_deref()
            .is_some_and(|o| !self.active() && o.trim() == text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use jarvis_core::{ActionId, ActionState};
    use jarvis_store::{ActionRecord, ConversationRecord, MessageRecord};
    use serde_json::{Value, json};

    fn conversation(state: &str, outcome: Option<&str>) -> ConversationRecord {
        ConversationRecord {
            id: jarvis_core::ConversationId::new(),
            created_at: "2025-11-23T01:52:03Z".into(),
            updated_at: "2025-11-23T01:52:03Z".into(),
            started_by: "user:alice".into(),
            title: "why is the worker restarting".into(),
            state: state.into(),
            outcome: outcome.map(str::to_owned),
        }
    }

    fn msg(seq: i64, role: &str, content: Value, action: Option<ActionId>) -> MessageRecord {
        MessageRecord {
            seq,
            at: "2025-11-23T01:52:03Z".into(),
            role: role.into(),
            content,
            action_id: action,
        }
    }

    /// What the planner's `render_report` answers for an action.
    fn report(id: &ActionId, state: &str) -> String {
        format!(
            "{:#}\nIt ran and {state}.\n",
            json!({"id": id.to_string(), "state": state, "exit_code": 0})
        )
    }

    fn call(id: &str, name: &str, args: Value) -> Value {
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": id, "name": name, "arguments": args.to_string()}
        ]})
    }

    /// A conversation that ran `uptime`, waited for `touch`, then finished;
    /// `stored` = whether the model's exchange is stored (it is, at the end).
    fn chat_messages(up: &ActionId, touch: &ActionId, stored: bool) -> Vec<MessageRecord> {
        let mut m = vec![
            msg(1, "user", json!({"content": "check the host"}), None),
            msg(
                2,
                "action",
                json!({"proposed": "uptime", "reason": "see the load", "expected_effect": "reads"}),
                Some(*up),
            ),
            msg(
                3,
                "action",
                json!({"result": "succeeded", "exit_code": 0}),
                Some(*up),
            ),
            msg(
                4,
                "action",
                json!({"proposed": "touch /tmp/x", "reason": "mark it", "expected_effect": "a file"}),
                Some(*touch),
            ),
        ];
        if stored {
            m.extend([
                msg(5, "action", json!({"result": "succeeded"}), Some(*touch)),
                msg(6, "system", json!({"role": "system", "content": "You are Jarvis"}), None),
                msg(7, "assistant", call("call_0", "list_hosts", json!({})), None),
                msg(
                    8,
                    "tool",
                    json!({"role": "tool", "content": "[{\"name\":\"sandbox\"}]", "tool_call_id": "call_0"}),
                    None,
                ),
                msg(
                    9,
                    "assistant",
                    call(
                        "call_1",
                        "propose_command",
                        json!({"host": "sandbox", "command": "uptime"}),
                    ),
                    None,
                ),
                msg(
                    10,
                    "tool",
                    json!({"role": "tool", "content": report(up, "succeeded"), "tool_call_id": "call_1"}),
                    None,
                ),
                msg(
                    11,
                    "assistant",
                    json!({"role": "assistant", "content": "The load is fine; marking it."}),
                    None,
                ),
                msg(
                    12,
                    "assistant",
                    call(
                        "call_2",
                        "propose_command",
                        json!({"host": "sandbox", "command": "touch /tmp/x"}),
                    ),
                    None,
                ),
                msg(
                    13,
                    "tool",
                    json!({"role": "tool", "content": report(touch, "succeeded"), "tool_call_id": "call_2"}),
                    None,
                ),
                msg(
                    14,
                    "assistant",
                    call("call_3", "read_action", json!({"id": up.to_string()})),
                    None,
                ),
                msg(
                    15,
                    "tool",
                    json!({"role": "tool", "content": report(up, "succeeded"), "tool_call_id": "call_3"}),
                    None,
                ),
                msg(
                    16,
                    "assistant",
                    call("call_4", "finish", json!({"summary": "all good"})),
                    None,
                ),
                msg(
                    17,
                    "tool",
                    json!({"role": "tool", "content": "finished", "tool_call_id": "call_4"}),
                    None,
                ),
            ]);
        }
        m
    }

    fn chat_actions(
        up: ActionRecord,
        touch: ActionRecord,
    ) -> std::collections::HashMap<ActionId, ActionRecord> {
        [(up.id, up), (touch.id, touch)].into_iter().collect()
    }

    fn kinds(entries: &[ChatEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                ChatEntry::User { text, .. } => format!("user:{text}"),
                ChatEntry::Assistant { text, .. } => format!("assistant:{text}"),
                ChatEntry::Action(a) => format!(
                    "action:{}:{}",
                    a.action.command,
                    if a.told.is_some() { "told" } else { "-" }
                ),
                ChatEntry::Tool { tool, .. } => format!("tool:{tool}"),
            })
            .collect()
    }

    #[test]
    fn chat_entries_while_running_show_one_card_per_action() {
        let up = action(ActionState::Succeeded, "uptime");
        let touch = action(ActionState::PendingApproval, "touch /tmp/x");
        let messages = chat_messages(&up.id, &touch.id, false);
        let entries = chat_entries(&messages, &chat_actions(up, touch));
        assert_eq!(
            kinds(&entries),
            [
                "user:check the host",
                "action:uptime:-",
                "action:touch /tmp/x:-"
            ]
        );
        let ChatEntry::Action(a) = &entries[1] else {
            panic!("a card")
        };
        assert_eq!(
            a.story.purpose.as_ref().map(|p| p.reason.as_str()),
            Some("see the load")
        );
        assert!(!a.pending());
        let ChatEntry::Action(t) = &entries[2] else {
            panic!("a card")
        };
        assert!(t.pending());
    }

    #[test]
    fn chat_entries_once_stored_put_cards_where_the_model_heard_them() {
        let up = action(ActionState::Succeeded, "uptime");
        let touch = action(ActionState::Succeeded, "touch /tmp/x");
        let messages = chat_messages(&up.id, &touch.id, true);
        let entries = chat_entries(&messages, &chat_actions(up.clone(), touch));
        assert_eq!(
            kinds(&entries),
            [
                "user:check the host",
                "tool:list_hosts",
                "action:uptime:told",
                "assistant:The load is fine; marking it.",
                "action:touch /tmp/x:told",
                // A second look at an action is a tool answer, not a card;
                // `finish`'s answer is not shown.
                "tool:read_action",
            ]
        );
        let ChatEntry::Action(a) = &entries[2] else {
            panic!("a card")
        };
        assert_eq!(
            a.story.purpose.as_ref().map(|p| p.expected_effect.as_str()),
            Some("reads")
        );
        assert!(a.told.as_deref().is_some_and(|t| t.contains("It ran")));

        // An action the store cannot read is left out, not invented.
        let only_up: std::collections::HashMap<_, _> = [(up.id, up)].into_iter().collect();
        let entries = chat_entries(&messages, &only_up);
        assert_eq!(
            entries
                .iter()
                .filter(|e| matches!(e, ChatEntry::Action(_)))
                .count(),
            1
        );
    }

    #[test]
    fn chat_entries_ignore_tool_answers_about_other_actions() {
        let up = action(ActionState::Succeeded, "uptime");
        let elsewhere = ActionId::new();
        let messages = vec![
            msg(1, "user", json!({"content": "look"}), None),
            msg(2, "action", json!({"proposed": "uptime"}), Some(up.id)),
            msg(3, "assistant", call("c1", "read_action", json!({})), None),
            msg(
                4,
                "tool",
                json!({"role": "tool", "content": report(&elsewhere, "failed"), "tool_call_id": "c1"}),
                None,
            ),
            msg(
                5,
                "tool",
                json!({"role": "tool", "content": "error: not JSON {", "tool_call_id": "zz"}),
                None,
            ),
        ];
        let actions = [(up.id, up)].into_iter().collect();
        assert_eq!(
            kinds(&chat_entries(&messages, &actions)),
            ["user:look", "action:uptime:-", "tool:read_action", "tool:"]
        );
    }

    fn conversation_page(
        state: &str,
        outcome: Option<&str>,
        entries: Vec<ChatEntry>,
        can_decide: bool,
    ) -> ConversationPage {
        ConversationPage {
            chrome: chrome(Section::Chat),
            conversation: conversation(state, outcome),
            entries,
            can_decide,
            can_reply: true,
            now_unix: NOW,
        }
    }

    fn pending_card(command: &str) -> ChatEntry {
        let mut action = action(ActionState::PendingApproval, command);
        action.purpose = jarvis_core::Purpose::new("mark <b>it</b>", "").expect("fits");
        ChatEntry::Action(Box::new(ChatAction {
            story: Story::of(&action, None),
            action,
            output: None,
            people: vec!["alice rejected it: keep <b>it</b>".into()],
            told: None,
            expires_at_unix: Some(NOW + 252),
        }))
    }

    #[test]
    fn conversation_page_active_with_a_pending_action() {
        let entries = vec![
            ChatEntry::User {
                at: "2025-11-23T01:52:03Z".into(),
                text: "check the host".into(),
            },
            pending_card("touch /tmp/x"),
        ];
        let ChatEntry::Action(card) = &entries[1] else {
            panic!("card")
        };
        let id = card.action.id;
        let page = conversation_page("active", None, entries, true);
        let html = render(&page);
        for s in [
            "id=\"conversation\"".to_owned(),
            format!(
                "<article id=\"action-{id}\" class=\"card chat-action edge-risk-high\" data-id=\"{id}\">"
            ),
            "data-state=\"pending_approval\">waiting for approval</span>".into(),
            "72 · high".into(),
            "<li>deletes files under /srv/app</li>".into(),
            "<span class=\"purpose-reason\">mark &#60;b&#62;it&#60;/b&#62;</span>".into(),
            "<li>alice rejected it: keep &#60;b&#62;it&#60;/b&#62;</li>".into(),
            format!("<form class=\"decide\" method=\"post\" action=\"/actions/{id}/approve\">"),
            format!("formaction=\"/actions/{id}/deny\""),
            "class=\"btn btn-approve approve\"".into(),
            ">4m 12s left</time>".into(),
            "id=\"conversation-state\"".into(),
            "data-state=\"active\">active</span>".into(),
            "Waiting for a person to decide".into(),
            "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>".into(),
            "aria-current=\"page\">Chat</a>".into(),
            "check the host".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert!(!html.contains("id=\"conversation-summary\""));
        // The decision brings the person back to this conversation.
        let back = format!(
            "<input type=\"hidden\" name=\"return_to\" value=\"/chat/{}\">",
            page.conversation.id
        );
        assert_eq!(html.matches(&back).count(), 1, "{html}");
        assert_csrf(&html, "CSRF-TOKEN-123");
        assert!(!has_inline_handler(&html));
        assert!(!html.contains("style="));
        assert_eq!(html.matches("<script").count(), 1);

        // A viewer sees the card but no forms.
        let viewer = render(&ConversationPage {
            can_decide: false,
            ..page
        });
        assert!(!viewer.contains("btn-approve"));
        assert!(!viewer.contains("btn-deny"));
        assert!(viewer.contains("your role cannot approve or deny"));
    }

    #[test]
    fn conversation_page_finished_shows_the_summary_and_stops_refreshing() {
        let done = ChatEntry::Action(Box::new(ChatAction {
            story: Story::of(&action(ActionState::Succeeded, "uptime"), None),
            action: action(ActionState::Succeeded, "uptime"),
            output: Some("up 3 days".into()),
            people: Vec::new(),
            told: Some("{\"id\": \"x\"}\nIt ran and succeeded.".into()),
            expires_at_unix: None,
        }));
        let html = render(&conversation_page(
            "finished",
            Some("All good: the load is low."),
            vec![
                done,
                ChatEntry::Tool {
                    tool: "list_hosts".into(),
                    text: "[\"sandbox\"]".into(),
                },
                ChatEntry::Assistant {
                    at: "2025-11-23T01:52:03Z".into(),
                    text: "Done.".into(),
                },
            ],
            true,
        ));
        for s in [
            "data-state=\"succeeded\">succeeded</span>",
            "<details class=\"chat-told\">",
            "It ran and succeeded.",
            "<details class=\"chat-tool\">",
            "Answer of <code>list_hosts</code>",
            "data-state=\"finished\">finished</span>",
            "<div id=\"conversation-summary\" class=\"chat-msg chat-summary\">All good: the load is low.</div>",
            "Done.",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert!(!html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("class=\"approve\""));
        assert!(!html.contains("Working…"));
    }

    #[test]
    fn who_started_an_ended_conversation_may_say_more() {
        let page = conversation_page("finished", Some("ok"), Vec::new(), true);
        let id = page.conversation.id;
        let html = render(&page);
        for s in [
            format!(
                "<form id=\"reply-form\" class=\"card chat-start stack\" method=\"post\" action=\"/chat/{id}\">"
            ),
            "<textarea id=\"prompt\" name=\"prompt\"".into(),
            "<button id=\"reply-send\" type=\"submit\"".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert_csrf(&html, "CSRF-TOKEN-123");
        // Not while it is going, and not for anyone else.
        let going = render(&conversation_page("active", None, Vec::new(), true));
        assert!(!going.contains("reply-form"), "{going}");
        let other = render(&ConversationPage {
            can_reply: false,
            ..page
        });
        assert!(!other.contains("reply-form"), "{other}");
    }

    #[test]
    fn a_hostile_conversation_renders_inert() {
        let evil = "<script>alert(1)</script>\x1b[31mred\u{202e}";
        let mut c = conversation("stopped", Some(evil));
        c.title = evil.into();
        c.started_by = evil.into();
        let mut a = action(ActionState::PendingApproval, evil);
        a.reasons = vec![evil.into(), jarvis_core::text::code(evil)];
        a.purpose = jarvis_core::Purpose::new(evil, evil).expect("fits");
        a.accountable = evil.into();
        let page = ConversationPage {
            chrome: chrome(Section::Chat),
            conversation: c.clone(),
            entries: vec![
                ChatEntry::User {
                    at: evil.into(),
                    text: evil.into(),
                },
                ChatEntry::Assistant {
                    at: "x".into(),
                    text: evil.into(),
                },
                ChatEntry::Action(Box::new(ChatAction {
                    story: Story::of(&a, None),
                    action: a,
                    output: Some(evil.repeat(12).replace(')', ")\n")),
                    people: vec![evil.into()],
                    told: Some(evil.into()),
                    expires_at_unix: Some(NOW),
                })),
                ChatEntry::Tool {
                    tool: evil.into(),
                    text: evil.into(),
                },
            ],
            can_decide: true,
            can_reply: true,
            now_unix: NOW,
        };
        let list = ChatPage {
            chrome: chrome(Section::Chat),
            conversations: vec![c],
            can_start: true,
            direct_mode: false,
            hosts: vec!["sandbox".into()],
            prompt: evil.into(),
            now_unix: NOW,
        };
        for html in [render(&page), render(&list)] {
            assert!(!html.contains("<script>"), "{html}");
            assert!(!html.contains('\x1b'), "{html}");
            assert!(!html.contains('\u{202e}'), "{html}");
            assert!(html.contains("\u{241b}[31mred\u{fffd}"), "{html}");
        }
    }

    #[test]
    fn chat_page() {
        let c = conversation("active", None);
        let page = ChatPage {
            chrome: chrome(Section::Chat),
            conversations: vec![c.clone(), conversation("finished", Some("ok"))],
            can_start: true,
            direct_mode: false,
            hosts: vec!["sandbox".into()],
            prompt: String::new(),
            now_unix: NOW,
        };
        let html = render(&page);
        for s in [
            "<form id=\"chat-form\" class=\"stack\" method=\"post\" action=\"/chat\">".to_owned(),
            "<textarea id=\"prompt\" name=\"prompt\"".into(),
            "<button id=\"chat-send\" type=\"submit\"".into(),
            format!("<li class=\"conversation-row\" data-id=\"{}\">", c.id),
            format!("href=\"/chat/{}\"", c.id),
            "why is the worker restarting".into(),
            "by user:alice".into(),
            "(5 min ago)".into(),
            "data-state=\"active\">active</span>".into(),
            "data-state=\"finished\">finished</span>".into(),
            "aria-current=\"page\">Chat</a>".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert!(!html.contains("id=\"direct-mode\""));
        assert_csrf(&html, "CSRF-TOKEN-123");
        assert!(!has_inline_handler(&html));
        assert!(!html.contains("style="));

        // Direct mode says how a message is taken.
        let direct = render(&ChatPage {
            direct_mode: true,
            hosts: vec!["sandbox".into()],
            conversations: vec![],
            ..page
        });
        assert!(direct.contains("id=\"direct-mode\""), "{direct}");
        assert!(direct.contains("proposed as is"));
        assert!(direct.contains("No conversations yet"));
        assert!(direct.contains("placeholder=\"docker ps\""), "{direct}");
        // With several hosts, it shows how to name one, and names them.
        let several = render(&ChatPage {
            direct_mode: true,
            hosts: vec!["nas".into(), "pi".into()],
            chrome: chrome(Section::Chat),
            conversations: vec![],
            can_start: true,
            prompt: String::new(),
            now_unix: NOW,
        });
        assert!(several.contains("<code>@nas docker ps</code>"), "{several}");
        assert!(
            several.contains("<code>nas</code>, <code>pi</code>"),
            "{several}"
        );
        assert!(
            several.contains("placeholder=\"@nas docker ps\""),
            "{several}"
        );

        // A viewer reads the list, without the form.
        let viewer = render(&ChatPage {
            chrome: chrome(Section::Chat),
            conversations: vec![c],
            can_start: false,
            direct_mode: false,
            hosts: vec!["sandbox".into()],
            prompt: String::new(),
            now_unix: NOW,
        });
        assert!(!viewer.contains("chat-form"));
        assert!(!viewer.contains("name=\"prompt\""));
        assert!(viewer.contains("cannot start one") || viewer.contains("not start one"));
        assert!(viewer.contains("conversation-row"));
    }

    #[test]
    fn the_conversation_script_parses_only_this_page() {
        let js = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/static/app.js"),
        )
        .expect("app.js");
        assert_eq!(js.matches("parseFromString(").count(), 1);
        assert!(js.contains("var path = window.location.pathname;"));
        assert!(js.contains("fetch(path,"));
    }
}
