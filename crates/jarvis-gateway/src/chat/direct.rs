//! Chat without a model ("direct mode"): a message that is a command is
//! proposed as is, on the host it names or the only one; anything else is
//! answered with what to send instead.

use jarvis_core::{ActionState, ConversationId, HostName};
use jarvis_planner::agent::{ActionReport, Actions, Event, ProposedAction, ProposedKind};
use serde_json::json;

use super::message::Row;
use super::{ChatActions, ChatEvent, Observer};
use crate::pipeline::{Gateway, GatewayError};

/// What direct mode says to a message that is not a command.
pub const NO_MODEL: &str = "No model is configured, so Jarvis can only run commands you type: send one (`docker ps`, or `@HOST docker ps` when there are several hosts) and it is proposed as is. To chat, add an [llm] section to the config with base_url, model and, if the endpoint needs one, api_key = { env = \"VAR\" } (see the README for OpenAI, Ollama and llama.cpp).";

impl Gateway {
    /// One turn without a model: proposes the message if it is a command
    /// that can be placed on a host, and otherwise answers with what to
    /// send. Whether it finished, its answer, and the action it proposed.
    pub(super) async fn direct(
        &self,
        id: ConversationId,
        prompt: &str,
        observer: &mut (dyn FnMut(ChatEvent) + Send),
    ) -> Result<(bool, String, Vec<ActionReport>), GatewayError> {
        let hosts: Vec<&HostName> = self.config().hosts.iter().map(|h| &h.name).collect();
        let knowledge = self.policy().knowledge();
        let read = DirectMessage::read(prompt, &hosts, |p| knowledge.program(p).is_some());
        let (host, command) = match read {
            DirectMessage::Command { host, command } => (host, command),
            DirectMessage::WhichHost { .. }
            | DirectMessage::UnknownHost { .. }
            | DirectMessage::NotACommand => {
                let answer = read.answer(&hosts);
                self.store()
                    .add_message(
                        id,
                        Row::Assistant.as_str(),
                        &json!({ "content": answer }),
                        None,
                    )
                    .await?;
                return Ok((false, answer, Vec::new()));
            }
        };
        let (actions, mut rx) = ChatActions::new(self, id);
        let observer = Observer::new(observer);
        observer.emit(ChatEvent::Planner(Event::Proposed {
            host: host.clone(),
            command: command.clone(),
            reason: "typed by a person".into(),
        }));
        let proposed = actions.propose(ProposedAction {
            host,
            kind: ProposedKind::Command { command, cwd: None },
            // No agent to give a reason: the card says who typed it, and
            // a made-up reason would read as the agent's words.
            reason: String::new(),
            expected_effect: String::new(),
        });
        let report = observer.while_running(proposed, &mut rx).await;
        match report {
            Ok(r) => {
                observer.emit(ChatEvent::Planner(Event::Result { report: r.clone() }));
                let finished = r.state == ActionState::Succeeded;
                Ok((finished, format!("{} ({})", r.state, r.id), vec![r]))
            }
            Err(e) => Ok((false, e.to_string(), Vec::new())),
        }
    }
}

/// A person's message to chat without a model, read.
#[derive(Debug, PartialEq, Eq)]
enum DirectMessage {
    /// A command for a host: proposed as is.
    Command { host: String, command: String },
    /// A command with no `@HOST` where there are several hosts.
    WhichHost { command: String },
    /// `@NAME command` where no host has that name.
    UnknownHost { name: String, command: String },
    /// Words, not a command the knowledge base knows.
    NotACommand,
}

impl DirectMessage {
    /// Reads a message: a program the knowledge base knows (`knows`),
    /// optionally after `@HOST`; the host may be left out when there is
    /// only one.
    fn read(text: &str, hosts: &[&HostName], knows: impl Fn(&str) -> bool) -> DirectMessage {
        let text = text.trim();
        let (host, command) = match text.strip_prefix('@') {
            Some(rest) => match rest.split_once(char::is_whitespace) {
                Some((h, c)) => (Some(h), c.trim()),
                None => return DirectMessage::NotACommand,
            },
            None => (None, text),
        };
        let Some(program) = command.split_whitespace().next() else {
            return DirectMessage::NotACommand;
        };
        if !knows(program.rsplit('/').next().unwrap_or(program)) {
            return DirectMessage::NotACommand;
        }
        let command = command.to_owned();
        match (host, hosts) {
            (Some(name), _) if hosts.iter().any(|h| h.as_str() == name) => DirectMessage::Command {
                host: name.to_owned(),
                command,
            },
            (Some(name), _) => DirectMessage::UnknownHost {
                name: name.to_owned(),
                command,
            },
            (None, [only]) => DirectMessage::Command {
                host: only.to_string(),
                command,
            },
            (None, _) => DirectMessage::WhichHost { command },
        }
    }

    /// What direct mode answers when nothing is proposed: the message to
    /// send instead, spelled out with this gateway's hosts.
    fn answer(&self, hosts: &[&HostName]) -> String {
        let names = hosts
            .iter()
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let example = |command: &str| match hosts.first() {
            Some(first) => format!("`@{first} {command}`"),
            None => "one once a host is configured".to_owned(),
        };
        match self {
            DirectMessage::WhichHost { command } => format!(
                "This gateway has several hosts ({names}), so say which one runs it: send {}.",
                example(command)
            ),
            DirectMessage::UnknownHost { name, command } => format!(
                "No host is named `{name}`; the hosts are {names}. Send {} instead.",
                example(command)
            ),
            DirectMessage::NotACommand | DirectMessage::Command { .. } => NO_MODEL.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<HostName> {
        names
            .iter()
            .map(|n| HostName::parse(n).expect("host name"))
            .collect()
    }

    fn read_direct(text: &str, names: &[HostName]) -> DirectMessage {
        let hosts: Vec<&HostName> = names.iter().collect();
        DirectMessage::read(text, &hosts, |p| matches!(p, "docker" | "ls"))
    }

    #[test]
    fn a_direct_command_goes_to_the_only_host_or_the_one_named() {
        let one = hosts(&["nas"]);
        assert_eq!(
            read_direct("  docker ps ", &one),
            DirectMessage::Command {
                host: "nas".into(),
                command: "docker ps".into()
            }
        );
        let two = hosts(&["nas", "pi"]);
        assert_eq!(
            read_direct("@pi /usr/bin/ls -l", &two),
            DirectMessage::Command {
                host: "pi".into(),
                command: "/usr/bin/ls -l".into()
            }
        );
    }

    #[test]
    fn a_direct_command_that_cannot_be_placed_says_what_to_send() {
        let two = hosts(&["nas", "pi"]);
        let refs: Vec<&HostName> = two.iter().collect();
        let which = read_direct("docker ps", &two);
        assert_eq!(
            which,
            DirectMessage::WhichHost {
                command: "docker ps".into()
            }
        );
        let answer = which.answer(&refs);
        assert!(answer.contains("`nas`, `pi`"), "{answer}");
        assert!(answer.contains("`@nas docker ps`"), "{answer}");
        let unknown = read_direct("@nass docker ps", &two);
        assert_eq!(
            unknown,
            DirectMessage::UnknownHost {
                name: "nass".into(),
                command: "docker ps".into()
            }
        );
        let answer = unknown.answer(&refs);
        assert!(answer.contains("No host is named `nass`"), "{answer}");
        assert!(answer.contains("`@nas docker ps`"), "{answer}");
    }

    #[test]
    fn words_in_direct_mode_say_how_to_configure_a_model() {
        let two = hosts(&["nas", "pi"]);
        for text in [
            "grafana keeps restarting",
            "@pi",
            "@pi grafana is down",
            "",
            "@",
        ] {
            let read = read_direct(text, &two);
            assert_eq!(read, DirectMessage::NotACommand, "{text:?}");
            assert_eq!(read.answer(&[]), NO_MODEL);
        }
    }
}
