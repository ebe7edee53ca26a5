//! Properties that must hold for every input, checked on generated ones:
//! the engine never panics, never allows what it could not parse, never gets
//! looser when a command is wrapped, and agrees with a small reference model
//! of the `rm` guardrail.

use jarvis_core::Decision;
use jarvis_policy::Request;
use proptest::prelude::*;

mod common;
use common::SHIPPED;

/// Pieces of shell that combine into hostile, half-valid lines.
fn shellish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "rm",
        "-rf",
        "/",
        "ls",
        "sudo",
        "sh",
        "-c",
        "'",
        "\"",
        "$(",
        ")",
        "`",
        "|",
        "||",
        "&&",
        ";",
        "&",
        "(",
        "{",
        "}",
        "<<EOF\n",
        "\nEOF\n",
        "<<<",
        ">",
        ">>",
        "<(",
        "$x",
        "${x:-",
        "*",
        "~",
        "\\",
        "eval",
        "find",
        "-exec",
        "\\;",
        "if",
        "then",
        "fi",
        "for",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "x=",
        "$((",
        "))",
        "[[",
        "]]",
        "#",
        "\n",
        " ",
        "bash",
        "xargs",
        "env",
        "LD_PRELOAD=/x",
        "/dev/sda",
        ":(){",
        ":|:&",
        "};:",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

fn judge(cmd: &str) -> jarvis_policy::Judgement {
    SHIPPED.judge(&Request::new(cmd))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_gets_a_judgement_and_unparsed_text_is_denied(s in any::<String>()) {
        let j = judge(&s);
        if j.parse_error {
            prop_assert_eq!(j.decision, Decision::Deny);
            prop_assert!(!j.reasons.is_empty());
        }
        prop_assert!(j.risk.score() <= 100);
    }

    /// Code in another language is searched for string literals byte by
    /// byte; text outside ASCII must not split a character.
    #[test]
    fn code_in_other_languages_gets_a_judgement(
        interpreter in prop::sample::select(vec!["python3 -c", "perl -e", "ruby -e", "node -e", "php -r"]),
        code in "[a-zé€ 𝄞q%x(){}\\\"`'.;=/-]{0,40}",
    ) {
        let line = format!("{interpreter} '{}'", code.replace('\'', ""));
        let j = judge(&line);
        prop_assert!(j.risk.score() <= 100);
        let j = judge(&format!("{interpreter} \"{}\"", code.replace(['"', '\\', '`', '$'], "")));
        prop_assert!(j.risk.score() <= 100);
    }

    #[test]
    fn shellish_text_gets_a_judgement(s in shellish()) {
        let j = judge(&s);
        if j.parse_error {
            prop_assert_eq!(j.decision, Decision::Deny);
        }
        if j.decision == Decision::Allow {
            prop_assert!(j.risk.score() <= 30, "{} allowed at risk {}", s, j.risk.score());
        }
    }

    #[test]
    fn wrapping_never_loosens(base in prop::sample::select(BASES.to_vec()),
                              wrap in prop::sample::select(WRAPS.to_vec())) {
        let inner = judge(base);
        let wrapped_cmd = wrap.replace("CMD", base).replace("QUOTED", &quote(base));
        let wrapped = judge(&wrapped_cmd);
        prop_assert!(wrapped.decision >= inner.decision,
            "`{}` is {} but `{}` is {}", base, inner.decision, wrapped_cmd, wrapped.decision);
        prop_assert!(wrapped.risk.score() >= inner.risk.score(),
            "`{}` risk {} but `{}` risk {}", base, inner.risk.score(), wrapped_cmd, wrapped.risk.score());
    }

    #[test]
    fn rm_guardrail_agrees_with_a_reference_model(
        flags in prop::collection::vec(prop::sample::select(vec!["-r", "-f", "-R", "-rf", "-fr", "-v", "-i", "--recursive", "--force"]), 0..3),
        path in prop::sample::select(vec!["/", "//", "/.", "/tmp/..", "/etc", "/etc/", "/usr/*", "/srv/app", "./build", "/tmp/x", "/home", "/var/lib", "/var/log/x.log", "/*", "~", "/opt/app/cache"]),
    ) {
        let cmd = format!("rm {} {path}", flags.join(" "));
        let recursive = flags.iter().any(|f| matches!(*f, "-r" | "-R" | "-rf" | "-fr" | "--recursive"));
        let protected = matches!(path, "/" | "//" | "/." | "/tmp/.." | "/etc" | "/etc/" | "/usr/*" | "/home" | "/var/lib" | "/*" | "~");
        let j = judge(&cmd);
        let guarded = j.reasons.iter().any(|r| r.starts_with("hard guardrail"));
        prop_assert_eq!(guarded, recursive && protected, "{}: {:?}", cmd, j.reasons);
    }
}

const BASES: &[&str] = &[
    "ls -la /srv",
    "docker ps",
    "git status",
    "rm -rf /tmp/x",
    "rm -rf /",
    "cat /etc/hostname",
    "systemctl restart nginx",
    "curl -s http://localhost:3000",
    "find . -name x",
    "echo hi > /tmp/x",
    "uptime",
    "journalctl -u grafana",
    "docker compose up -d",
    "kill 1234",
];

const WRAPS: &[&str] = &[
    "sudo CMD",
    "sh -c QUOTED",
    "bash -c QUOTED",
    "eval QUOTED",
    "timeout 5 CMD",
    "env CMD",
    "nice -n 5 CMD",
    "nohup CMD",
    "CMD; true",
    "true && CMD",
    "(CMD)",
    "{ CMD; }",
    "echo $(CMD)",
    "xargs CMD",
    "CMD &",
];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
