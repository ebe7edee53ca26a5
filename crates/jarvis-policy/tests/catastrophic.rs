//! The project's catastrophic corpus (tests/data/catastrophic.txt): command
//! lines that destroy a system or hide what they run, each of which a hard
//! guardrail must deny under any policy, the allow-everything one included;
//! the lines the corpus leaves to a person; and everyday near misses that
//! no guardrail may touch.
//!
//! The figure the README quotes is printed by
//! `cargo test -p jarvis-policy --test catastrophic -- --nocapture`.

use std::path::PathBuf;

use jarvis_core::Decision;
use jarvis_policy::Judgement;

mod common;
use common::{ALLOW_ALL, SHIPPED, judge};

/// The corpus: lines to deny, and `#person:` lines left to a person.
struct Corpus {
    deny: Vec<String>,
    person: Vec<String>,
}

fn corpus() -> Corpus {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/catastrophic.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut c = Corpus {
        deny: Vec::new(),
        person: Vec::new(),
    };
    for line in text.lines().map(str::trim) {
        if let Some(person) = line.strip_prefix("#person:") {
            c.person.push(person.trim().to_owned());
        } else if !line.is_empty() && !line.starts_with('#') {
            c.deny.push(line.to_owned());
        }
    }
    c
}

fn denied_by_guardrail(j: &Judgement) -> bool {
    j.decision == Decision::Deny
        && !j.parse_error
        && j.reasons.iter().any(|r| r.starts_with("hard guardrail"))
}

#[test]
fn the_corpus_is_large_enough_and_has_no_repeats() {
    let c = corpus();
    assert!(c.deny.len() >= 150, "only {} lines", c.deny.len());
    let mut seen = std::collections::BTreeSet::new();
    for l in c.deny.iter().chain(&c.person) {
        assert!(seen.insert(l), "`{l}` is listed twice");
    }
}

#[test]
fn every_catastrophic_line_is_denied_by_a_guardrail_under_any_policy() {
    let lines = corpus().deny;
    let mut report = Vec::new();
    let mut missed = Vec::new();
    for (name, policy) in [("allow-all", &*ALLOW_ALL), ("shipped", &*SHIPPED)] {
        let mut denied = 0;
        for line in &lines {
            let j = judge(policy, line);
            if denied_by_guardrail(&j) {
                denied += 1;
            } else {
                missed.push(format!(
                    "[{name}] {} (risk {}): `{line}`\n    {}",
                    j.decision,
                    j.risk.score(),
                    j.reasons.first().map_or("", String::as_str)
                ));
            }
        }
        report.push(format!(
            "{name}: {denied} of {} catastrophic lines denied by a guardrail",
            lines.len()
        ));
    }
    println!("{}", report.join("\n"));
    for m in &missed {
        println!("{m}");
    }
    assert!(
        missed.is_empty(),
        "{}\nnot denied by a guardrail:\n{}",
        report.join("\n"),
        missed.join("\n")
    );
}

#[test]
fn lines_left_to_a_person_never_run_unattended() {
    for line in corpus().person {
        let j = judge(&SHIPPED, &line);
        assert_ne!(
            j.decision,
            Decision::Allow,
            "{line} runs unattended: {:#?}",
            j.reasons
        );
    }
}

/// Everyday lines that look like the catastrophic ones: no guardrail may
/// fire on them, whatever else the policy says.
const NEAR_MISSES: &[&str] = &[
    "rm -rf /tmp/build",
    "rm -rf ./node_modules",
    "rm -rf /srv/app/cache/*",
    "echo aGVsbG8= | base64 -d",
    "base64 -d < /srv/app/cert.b64 > /srv/app/cert.pem",
    "echo 'rm -rf /'",
    "git commit -m 'rm -rf / was a bad idea'",
    "python3 -c 'print(1)'",
    "python3 -c 'import shutil; shutil.rmtree(\"/tmp/build\")'",
    "python3 -c 'import os; print(os.listdir(\"/\"))'",
    "python3 -c 'import subprocess; subprocess.run([\"ls\", \"-la\", \"/\"])'",
    "node -e 'console.log(require(\"fs\").readdirSync(\"/etc\"))'",
    "perl -e 'print \"hello\\n\"'",
    "ruby -e 'puts Dir.glob(\"/etc/*\").size'",
    "docker run --rm -v /srv/app:/app alpine ls /app",
    "docker run --rm -v /:/host:ro alpine ls /host",
    "docker run --rm -v /srv/data:/data alpine rm -rf /data/cache",
    "docker run --rm alpine rm -rf /tmp",
    "find /srv/app/cache -delete",
    "find /tmp -name '*.tmp' -delete",
    "chmod -R g+w /srv/share",
    "chown -R www-data /srv/www",
    "zfs destroy -r tank/data@daily-2024-01-01",
    "zfs destroy tank/scratch",
    "lvremove vg0/scratch",
    "docker volume prune -f",
    "docker system prune -f",
    "kill -9 12345",
    "pkill -f grafana",
    "killall -u www-data php-fpm",
    "echo 1 > /proc/sys/net/ipv4/ip_forward",
    "dd if=/dev/sda of=/srv/backup/disk.img bs=4M",
    "cat /etc/passwd > /tmp/passwd.copy",
    "cp /etc/fstab /etc/fstab.bak",
    "echo 'tmpfs /tmp tmpfs defaults 0 0' >> /etc/fstab",
    "tr a-z A-Z < notes.txt",
    "rev /srv/notes.txt",
    "xxd /bin/ls | head",
    "zcat /var/log/syslog.2.gz | tail",
    "gunzip -c /var/log/syslog.2.gz | grep error",
    "printf '%s\\n' a b | xargs -n1 echo",
    "$EDITOR /etc/hosts",
    "\"$PAGER\" /var/log/syslog",
    "$CMD status",
    "sh -c 'echo hello'",
    "watch -n 5 df -h",
    "flock /tmp/lock make build",
    "setsid sleep 10",
    "git -c alias.st=status st",
    "vim -c ':set number' /srv/app/config.yml",
];

#[test]
fn near_misses_trip_no_guardrail() {
    let mut tripped = Vec::new();
    for line in NEAR_MISSES {
        let j = judge(&ALLOW_ALL, line);
        if let Some(r) = j.reasons.iter().find(|r| r.starts_with("hard guardrail")) {
            tripped.push(format!("`{line}`: {r}"));
        }
        assert!(!j.parse_error, "{line} does not parse");
    }
    assert!(
        NEAR_MISSES.len() >= 30,
        "only {} near misses",
        NEAR_MISSES.len()
    );
    assert!(
        tripped.is_empty(),
        "near misses tripped a guardrail:\n{}",
        tripped.join("\n")
    );
}
