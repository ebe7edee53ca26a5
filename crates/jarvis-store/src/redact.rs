//! Redaction of secrets before anything reaches the audit log.
//!
//! Every string in an event's payload is scanned; what matches is replaced
//! by `[REDACTED]` and the event records which kinds were removed and where,
//! so a reader knows something was there without seeing it.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

/// One removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// Where in the payload: `command`, `output.stdout`, `args[2]`.
    pub field: String,
    /// What kind of secret: `private key`, `password assignment`, …
    pub kind: &'static str,
}

struct Pattern {
    kind: &'static str,
    regex: Regex,
    /// The capture group that holds the secret; the rest is kept so the
    /// reader still sees which variable or header it was.
    group: usize,
    /// A match this says is no secret is left as it is.
    spare: fn(&str) -> bool,
}

/// Nothing a pattern matches is spared.
fn none(_: &str) -> bool {
    false
}

/// Whether a `secret assignment` match is an actor string, `token:NAME`,
/// as the gateway writes who did something (`token:planner may propose 1
/// per minute`): the word `token` in lower case, a colon with no space, and
/// a token's name (the store's name rule: 1 to 64 of `a-z0-9._-`, starting
/// with a letter or digit), perhaps followed by punctuation. A long value
/// with digits in it is more like a credential than a name a person chose,
/// and stays redacted.
fn actor_name(whole: &str) -> bool {
    let Some(name) = whole.strip_prefix("token:") else {
        return false;
    };
    let name = name.trim_end_matches([',', ':', ')', ']', '!', '?', '.']);
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && !(name.len() >= 20 && name.contains(|c: char| c.is_ascii_digit()))
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, re: &str, group| Pattern {
        kind,
        regex: Regex::new(re).expect("redaction patterns are valid"),
        group,
        spare: none,
    };
    vec![
        // A PEM block: the marker, then what can be its body and nothing
        // else. All on one line only up to its end marker (a key pasted
        // with `\n` escapes); over lines only while each whole line is
        // base64 or a PEM header. So `echo '-----BEGIN PRIVATE KEY-----';
        // rm -rf /` loses the marker, not the command after it.
        p(
            "private key",
            concat!(
                r"(?m)(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:",
                r"(?:(?:[ \t]|\\n)*[A-Za-z0-9+/=]+)*?(?:[ \t]|\\n)*-----END [A-Z0-9 ]*PRIVATE KEY-----",
                r"|(?:(?:[ \t]|\\n)*[A-Za-z0-9+/=]{20,})*",
                r"(?:\r?\n(?:[A-Za-z0-9+/=]+|(?:Proc-Type|DEK-Info):[^\r\n]*)?\r?$)*",
                r"(?:\r?\n-----END [A-Z0-9 ]*PRIVATE KEY-----)?",
                r"))",
            ),
            1,
        ),
        // The rest never cross a line: `[ \t]`, not `\s`, around separators.
        p(
            "authorization header",
            r"(?i)\b(?:proxy-)?authorization[ \t]*:[ \t]*(?:bearer|basic|token|digest)?[ \t]*([^\s'\x22]+)",
            1,
        ),
        p(
            "password in URL",
            r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@",
            1,
        ),
        Pattern {
            spare: actor_name,
            ..p(
                "secret assignment",
                r#"(?i)\b[A-Z0-9_.-]*(?:PASSWORD|PASSWD|PASS|PWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*[ \t]*[=:][ \t]*['"]?([^\s'"&;]+)"#,
                1,
            )
        },
        p(
            "secret option",
            r#"(?i)--(?:password|passwd|token|secret|api-key|access-key)(?:[ \t]*=[ \t]*|[ \t]+)['"]?([^\s'"]+)"#,
            1,
        ),
        p("GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{30,})\b", 1),
        p("GitLab token", r"\b(glpat-[A-Za-z0-9_-]{20,})\b", 1),
        p("Slack token", r"\b(xox[abposr]-[A-Za-z0-9-]{10,})\b", 1),
        p("AWS access key", r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b", 1),
        p("API key", r"\b(sk-[A-Za-z0-9_-]{20,})\b", 1),
        p(
            "JSON web token",
            r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
            1,
        ),
    ]
});

/// Redacts every string in `value`, returning what was removed.
pub fn redact(value: &mut Value) -> Vec<Redaction> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(v: &mut Value, field: String, out: &mut Vec<Redaction>) {
    match v {
        Value::String(s) => {
            if let Some((clean, kinds)) = redact_str(s) {
                *s = clean;
                for kind in kinds {
                    out.push(Redaction {
                        field: field.clone(),
                        kind,
                    });
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{field}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let f = if field.is_empty() {
                    k.clone()
                } else {
                    format!("{field}.{k}")
                };
                // A field named like a secret is a secret, whatever it holds.
                let secret_key = {
                    let l = k.to_ascii_lowercase();
                    [
                        "password",
                        "passwd",
                        "secret",
                        "token",
                        "api_key",
                        "apikey",
                        "private_key",
                    ]
                    .iter()
                    .any(|s| l.contains(s))
                };
                if secret_key
                    && matches!(item, Value::String(s) if !s.is_empty() && s != "[REDACTED]")
                {
                    *item = Value::String("[REDACTED]".into());
                    out.push(Redaction {
                        field: f,
                        kind: "secret field",
                    });
                } else {
                    walk(item, f, out);
                }
            }
        }
        _ => {}
    }
}

/// The string with secrets replaced, and the kinds found; `None` if clean.
fn redact_str(s: &str) -> Option<(String, Vec<&'static str>)> {
    let mut text = s.to_owned();
    let mut kinds = Vec::new();
    for p in PATTERNS.iter() {
        let mut found = false;
        let replaced = p.regex.replace_all(&text, |c: &regex::Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            match c.get(p.group) {
                Some(m) if m.as_str() != "[REDACTED]" && !(p.spare)(whole) => {
                    found = true;
                    let start = m.start() - c.get(0).map_or(0, |w| w.start());
                    format!("{}[REDACTED]{}", &whole[..start], &whole[start + m.len()..])
                }
                _ => whole.to_owned(),
            }
        });
        if found {
            text = replaced.into_owned();
            kinds.push(p.kind);
        }
    }
    (!kinds.is_empty()).then_some((text, kinds))
}

/// A database URL with its password removed, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    redact_str(url).map_or_else(|| url.to_owned(), |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clean(s: &str) -> String {
        redact_str(s).map_or_else(|| s.to_owned(), |(t, _)| t)
    }

    #[test]
    fn removes_secrets_and_keeps_context() {
        assert_eq!(
            clean("PGPASSWORD=hunter2 psql"),
            "PGPASSWORD=[REDACTED] psql"
        );
        assert_eq!(
            clean("export API_KEY='abc123'"),
            "export API_KEY='[REDACTED]'"
        );
        assert_eq!(
            clean("curl -H 'Authorization: Bearer eyJabc.def' http://x"),
            "curl -H 'Authorization: Bearer [REDACTED]' http://x"
        );
        assert_eq!(
            clean("postgres://jarvis:s3cret@db/jarvis"),
            "postgres://jarvis:[REDACTED]@db/jarvis"
        );
        assert_eq!(
            clean("mysql --password=hunter2 db"),
            "mysql --password=[REDACTED] db"
        );
        assert_eq!(
            clean("echo ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "echo [REDACTED]"
        );
        assert_eq!(clean("AKIAABCDEFGHIJKLMNOP"), "[REDACTED]");
        assert!(
            clean("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----")
                .starts_with("[REDACTED]")
        );
        assert_eq!(clean("docker ps -a"), "docker ps -a");
        assert_eq!(clean("git log --oneline"), "git log --oneline");
    }

    #[test]
    fn a_private_key_marker_is_redacted_to_the_end_of_its_line_at_most() {
        // The marker alone: what follows on the line is no key.
        assert_eq!(
            clean("echo '-----BEGIN PRIVATE KEY-----'; rm -rf /srv/data"),
            "echo '[REDACTED]'; rm -rf /srv/data"
        );
        // A block without its end marker: body lines go, the next command
        // stays.
        assert_eq!(
            clean(
                "cat <<EOF\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx3\nq1w2e3r4==\nrm -rf /\nEOF"
            ),
            "cat <<EOF\n[REDACTED]\nrm -rf /\nEOF"
        );
        // A whole block, and an encrypted one with its headers.
        assert_eq!(
            clean(
                "-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBg\r\nkqhkiG9w0B==\r\n-----END PRIVATE KEY-----\r\nnext"
            ),
            "[REDACTED]\r\nnext"
        );
        assert_eq!(
            clean(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\nMIIEow==\n-----END RSA PRIVATE KEY-----; id"
            ),
            "[REDACTED]; id"
        );
        // On one line with `\n` escapes, as pasted into a variable.
        assert_eq!(
            clean(
                r"KEY='-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n-----END OPENSSH PRIVATE KEY-----' ./deploy"
            ),
            "KEY='[REDACTED]' ./deploy"
        );
    }

    #[test]
    fn no_pattern_reaches_into_the_next_line() {
        assert_eq!(
            clean("mysql --password=\nrm -rf /"),
            "mysql --password=\nrm -rf /"
        );
        assert_eq!(clean("export TOKEN=\nreboot"), "export TOKEN=\nreboot");
        assert_eq!(
            clean("curl -H 'Authorization:\nreboot'"),
            "curl -H 'Authorization:\nreboot'"
        );
        assert_eq!(
            clean("mysql --password = hunter2 db"),
            "mysql --password = [REDACTED] db"
        );
    }

    #[test]
    fn actor_names_are_not_secrets() {
        // What the gateway writes of a token that hit a limit, and others.
        for text in [
            "token:planner may propose 1 per minute",
            "refused: token:planner proposed 1 per minute",
            "(token:ci-bot.2) asked",
            "token:planner, token:nightly_backup and user:alice",
            "approved by token:planner.",
            "token:a",
        ] {
            assert_eq!(clean(text), text, "{text}");
        }
        let mut event =
            json!({ "reason": "token:planner may propose 1 per minute", "actor": "token:planner" });
        assert!(redact(&mut event).is_empty(), "{event}");
        assert_eq!(event["reason"], "token:planner may propose 1 per minute");
    }

    #[test]
    fn what_only_looks_like_an_actor_is_still_redacted() {
        for (text, want) in [
            ("TOKEN:planner", "TOKEN:[REDACTED]"),
            ("API_TOKEN:hunter2", "API_TOKEN:[REDACTED]"),
            ("token: hunter2", "token: [REDACTED]"),
            ("token=planner", "token=[REDACTED]"),
            ("mytoken:planner", "mytoken:[REDACTED]"),
            ("token:Hunter2", "token:[REDACTED]"),
            ("token:s3cr3t$value", "token:[REDACTED]"),
            ("token:3f9a1c0d5e7b2a4c6d8e0f1a", "token:[REDACTED]"),
            (
                "token:ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token:[REDACTED]",
            ),
            ("password:planner", "password:[REDACTED]"),
        ] {
            assert_eq!(clean(text), want, "{text}");
        }
    }

    #[test]
    fn records_what_was_removed_and_where() {
        let mut v =
            json!({"command": "PASSWORD=x ./run", "output": {"stdout": "ok"}, "token": "t0k"});
        let r = redact(&mut v);
        assert_eq!(v["command"], "PASSWORD=[REDACTED] ./run");
        assert_eq!(v["token"], "[REDACTED]");
        assert_eq!(
            r,
            vec![
                Redaction {
                    field: "command".into(),
                    kind: "secret assignment"
                },
                Redaction {
                    field: "token".into(),
                    kind: "secret field"
                },
            ]
        );
    }
}
