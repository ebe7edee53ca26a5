//! A conversation's stored messages, read once into [`ChatMessage`]s for
//! both who reads them back: the replay that gives the model its history,
//! and the page that shows the conversation.
//!
//! The rows are the gateway's: a person's message (`{"content": …}`), the
//! model's turns and tool answers as the planner's [`Message`]s, Jarvis's
//! own words in the assistant's place (`{"content": …}`), and the links
//! to actions. Reading is lenient, field by field, so a row an older
//! version wrote still reads the same way on both sides.

use jarvis_core::{ActionId, Purpose};
use jarvis_planner::Tool;
use jarvis_planner::model::{Role, ToolCall};
use jarvis_planner::tools::{ReportHeader, parse_report_header};
use jarvis_store::MessageRecord;
use serde_json::Value;

/// What a stored row is, by the role it is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Jarvis's instructions to the model.
    System,
    /// A person's message.
    User,
    /// A model turn, or Jarvis's words in its place.
    Assistant,
    /// A tool answer.
    Tool,
    /// A link to an action.
    Action,
}

impl Row {
    const ALL: [Row; 5] = [
        Row::System,
        Row::User,
        Row::Assistant,
        Row::Tool,
        Row::Action,
    ];

    /// The role as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Row::System => "system",
            Row::User => "user",
            Row::Assistant => "assistant",
            Row::Tool => "tool",
            Row::Action => "action",
        }
    }

    /// The row a planner message is filed under.
    pub const fn of(role: Role) -> Row {
        match role {
            Role::System => Row::System,
            Role::User => Row::User,
            Role::Assistant => Row::Assistant,
            Role::Tool => Row::Tool,
        }
    }

    fn parse(role: &str) -> Option<Row> {
        Row::ALL.into_iter().find(|r| r.as_str() == role)
    }
}

/// One stored message of a conversation, read.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// What the person asked.
    Person {
        /// When.
        at: String,
        /// Their words.
        text: String,
    },
    /// The model's turn (or Jarvis's words in its place): its text and
    /// the tools it called.
    Model {
        /// When.
        at: String,
        /// Its words (empty for a turn made only of calls).
        text: String,
        /// Its tool calls.
        calls: Vec<Call>,
    },
    /// The answer to a tool call, as the model was given it.
    Answer(Box<Answer>),
    /// A link to an action the conversation proposed.
    Action {
        /// The action.
        id: ActionId,
        /// What the model said it was for, when the link carries it.
        purpose: Option<Purpose>,
    },
}

/// One tool call of the model's.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The model's id for it.
    pub id: String,
    /// The tool it named.
    pub tool: Called,
    /// Its arguments as the model wrote them.
    pub arguments: String,
}

impl Call {
    /// The call as the model made it.
    pub fn to_tool_call(&self) -> ToolCall {
        ToolCall {
            id: self.id.clone(),
            name: self.tool.name().to_owned(),
            arguments: self.arguments.clone(),
        }
    }
}

/// The tool a call named: one of the planner's, or a name the model made
/// up (kept, since its refusal is part of the exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Called {
    /// A tool the planner offers.
    Tool(Tool),
    /// No tool has this name.
    Unknown(String),
}

impl Called {
    fn of(name: &str) -> Called {
        name.parse()
            .map_or_else(|_| Called::Unknown(name.to_owned()), Called::Tool)
    }

    /// The name as the model wrote it.
    pub fn name(&self) -> &str {
        match self {
            Called::Tool(tool) => tool.as_str(),
            Called::Unknown(name) => name,
        }
    }
}

/// The answer to one tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The call it answers, by id.
    pub call_id: Option<String>,
    /// The tool of that call, when the exchange holds it.
    pub tool: Option<Called>,
    /// The answer's header, when it is about an action.
    pub report: Option<ReportHeader>,
    /// The whole answer, untrusted output and all.
    pub text: String,
}

impl Answer {
    /// The action whose result this is: an answer about an action to a
    /// call that proposed one (or to a call the exchange lost).
    pub fn result_of(&self) -> Option<ActionId> {
        let proposed = match &self.tool {
            None => true,
            Some(Called::Tool(tool)) => tool.proposes(),
            Some(Called::Unknown(_)) => false,
        };
        proposed
            .then(|| self.report.as_ref().map(|r| r.id))
            .flatten()
    }
}

/// A conversation's stored messages, read in order. Rows neither the
/// model nor the page uses (Jarvis's instructions to the model, links
/// without an action) are left out.
pub fn read(stored: &[MessageRecord]) -> Vec<ChatMessage> {
    let calls: Vec<Vec<Call>> = stored
        .iter()
        .map(|m| match Row::parse(&m.role) {
            Some(Row::Assistant) => calls_of(&m.content),
            Some(Row::System | Row::User | Row::Tool | Row::Action) | None => Vec::new(),
        })
        .collect();
    // Looked up over the whole exchange, the last call with an id winning,
    // as the page has always shown them.
    let tool_of = |id: &str| {
        calls
            .iter()
            .flatten()
            .rev()
            .find(|c| c.id == id)
            .map(|c| c.tool.clone())
    };
    let text = |m: &MessageRecord| {
        m.content
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    stored
        .iter()
        .zip(calls.iter())
        .filter_map(|(m, calls)| match Row::parse(&m.role)? {
            Row::User => Some(ChatMessage::Person {
                at: m.at.clone(),
                text: text(m),
            }),
            Row::Assistant => Some(ChatMessage::Model {
                at: m.at.clone(),
                text: text(m),
                calls: calls.clone(),
            }),
            Row::Tool => {
                let call_id = m
                    .content
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let text = text(m);
                Some(ChatMessage::Answer(Box::new(Answer {
                    tool: call_id.as_deref().and_then(tool_of),
                    call_id,
                    report: parse_report_header(&text),
                    text,
                })))
            }
            Row::Action => {
                let said = |k: &str| m.content.get(k).and_then(Value::as_str).unwrap_or_default();
                m.action_id.map(|id| ChatMessage::Action {
                    id,
                    purpose: Purpose::new(said("reason"), said("expected_effect"))
                        .ok()
                        .flatten(),
                })
            }
            Row::System => None,
        })
        .collect()
}

/// The tool calls of an assistant turn; none when they do not read as the
/// planner's, as the model would not be given them either.
fn calls_of(content: &Value) -> Vec<Call> {
    let Some(calls) = content.get("tool_calls") else {
        return Vec::new();
    };
    serde_json::from_value::<Vec<ToolCall>>(calls.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| Call {
            tool: Called::of(&c.name),
            id: c.id,
            arguments: c.arguments,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(role: &str, content: Value, action_id: Option<ActionId>) -> MessageRecord {
        MessageRecord {
            seq: 1,
            at: "2026-11-23T10:00:00Z".into(),
            role: role.into(),
            content,
            action_id,
        }
    }

    #[test]
    fn each_row_reads_once_into_what_it_is() {
        let id = ActionId::new();
        let header = json!({"id": id.to_string(), "state": "failed", "exit_code": 2});
        let read = read(&[
            row(
                "system",
                json!({"role": "system", "content": "You are Jarvis"}),
                None,
            ),
            row("user", json!({"content": "check it"}), None),
            row(
                "assistant",
                json!({"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "name": "propose_command", "arguments": "{}"},
                    {"id": "c2", "name": "shell", "arguments": "ls"},
                ]}),
                None,
            ),
            row(
                "action",
                json!({"proposed": "ls", "reason": "look", "expected_effect": "reads"}),
                Some(id),
            ),
            row("action", json!({"proposed": "ls"}), None),
            row(
                "tool",
                json!({"role": "tool", "content": format!("{header:#}\nIt ran and failed.\n"), "tool_call_id": "c1"}),
                None,
            ),
            row(
                "tool",
                json!({"role": "tool", "content": "error: no tool", "tool_call_id": "c2"}),
                None,
            ),
            row("assistant", json!({"content": "stopped"}), None),
        ]);
        assert_eq!(read.len(), 6, "{read:#?}");
        assert_eq!(
            read[0],
            ChatMessage::Person {
                at: "2026-11-23T10:00:00Z".into(),
                text: "check it".into()
            }
        );
        let ChatMessage::Model { calls, .. } = &read[1] else {
            panic!("a turn: {read:#?}")
        };
        assert_eq!(
            calls.iter().map(|c| c.tool.clone()).collect::<Vec<_>>(),
            [
                Called::Tool(Tool::ProposeCommand),
                Called::Unknown("shell".into())
            ]
        );
        assert_eq!(calls[1].to_tool_call().name, "shell");
        assert!(matches!(
            &read[2],
            ChatMessage::Action { id: linked, purpose: Some(p) } if *linked == id && p.reason == "look"
        ));
        let ChatMessage::Answer(result) = &read[3] else {
            panic!("an answer: {read:#?}")
        };
        assert_eq!(result.result_of(), Some(id));
        assert_eq!(
            result.report.as_ref().map(|r| (r.state, r.exit_code)),
            Some((Some(jarvis_core::ActionState::Failed), Some(2)))
        );
        let ChatMessage::Answer(refusal) = &read[4] else {
            panic!("an answer: {read:#?}")
        };
        assert_eq!(refusal.tool, Some(Called::Unknown("shell".into())));
        assert_eq!(refusal.result_of(), None);
        assert!(
            matches!(&read[5], ChatMessage::Model { text, calls, .. } if text == "stopped" && calls.is_empty())
        );
    }

    #[test]
    fn rows_are_filed_and_read_under_one_name() {
        for r in Row::ALL {
            assert_eq!(Row::parse(r.as_str()), Some(r));
        }
        assert_eq!(Row::of(Role::Tool).as_str(), "tool");
        assert_eq!(Row::parse("note"), None);
    }

    #[test]
    fn a_report_answering_another_tool_is_no_result() {
        let id = ActionId::new();
        let answer = |tool| Answer {
            call_id: Some("c1".into()),
            tool,
            report: parse_report_header(&format!("{{\"id\": \"{id}\"}}")),
            text: String::new(),
        };
        assert_eq!(
            answer(Some(Called::Tool(Tool::ReadAction))).result_of(),
            None
        );
        assert_eq!(
            answer(Some(Called::Tool(Tool::ProposeEdit))).result_of(),
            Some(id)
        );
        // The call was lost: the header alone says what it is about.
        assert_eq!(answer(None).result_of(), Some(id));
    }
}
