//! Options of allow-listed programs judged against their generated tables
//! (policies/options/) under the shipped policy: an option a complete table
//! does not list, in any spelling the tool accepts, is unknown; an option
//! that reads or writes a file, runs a program or changes the system meets
//! the rules for that; and the everyday lines stay unattended.
//!
//! The lines are only ever judged here. Nothing in this file runs them.

use jarvis_core::Decision;
use jarvis_policy::{Judgement, Request};

mod common;
use common::SHIPPED;

fn judge(line: &str) -> Judgement {
    SHIPPED.judge(&Request {
        command: line.to_owned(),
        host: None,
        cwd: Some("/home/jarvis".into()),
    })
}

#[track_caller]
fn never_unattended(lines: &[&str]) {
    for line in lines {
        let j = judge(line);
        assert_ne!(j.decision, Decision::Allow, "{line}: {:#?}", j.reasons);
    }
}

/// Each line must be held back, and a reason must name `says` (the option
/// as the tool reads it, or the file it touches).
#[track_caller]
fn held_naming(cases: &[(&str, &str)]) {
    for (line, says) in cases {
        let j = judge(line);
        assert_ne!(j.decision, Decision::Allow, "{line}: {:#?}", j.reasons);
        assert!(
            j.reasons.iter().any(|r| r.contains(says)),
            "{line}: no reason names `{says}`: {:#?}",
            j.reasons
        );
    }
}

#[test]
fn an_option_no_table_lists_is_unknown() {
    held_naming(&[
        ("ls --frobnicate /srv", "--frobnicate"),
        ("sort --no-such-option x", "--no-such-option"),
        ("grep --xyzzy image x", "--xyzzy"),
        ("df --explode", "--explode"),
        ("du --shred /tmp", "--shred"),
        ("tail --wat /var/log/syslog", "--wat"),
        ("journalctl --bogus-flag", "--bogus-flag"),
        ("git log --not-an-option", "--not-an-option"),
        ("git log --no-such-thing", "--no-such-thing"),
        ("docker ps --evil", "--evil"),
        // A short option the table does not list, alone and in a cluster.
        ("ls -j /srv", "-j"),
        ("sort -nj x", "-j"),
    ]);
}

#[test]
fn an_ambiguous_abbreviation_is_unknown() {
    held_naming(&[
        ("grep --fil=/tmp/p x", "abbreviates several options"),
        ("ls --s", "abbreviates several options"),
        ("sort --ra y", "abbreviates several options"),
        ("du --ex=x /var/log", "abbreviates several options"),
        ("git log --outp=/tmp/x", "abbreviates several options"),
    ]);
}

#[test]
fn an_abbreviation_is_the_risky_option_it_stands_for() {
    held_naming(&[
        ("sort --comp=sh x", "--compress-program"),
        ("sort --compress-p=sh x", "--compress-program"),
        ("journalctl --rot", "--rotate"),
        ("journalctl --vacuum-t=1s", "--vacuum-time"),
        ("date --se=2020-01-01", "--set"),
        ("ss --di=/tmp/x", "--diag"),
        ("sort --outp=/tmp/x y", "--output"),
    ]);
    // git reads `--outp` as ambiguous (--output, --output-indicator-*); by
    // either reading it never runs unattended.
    never_unattended(&["git log --outp=/tmp/x", "git show --outpu=/tmp/x HEAD"]);
}

#[test]
fn a_value_is_read_wherever_it_is_written() {
    // `=value`, the next word, attached to the short option, and at the end
    // of a cluster: each reaches the same file.
    never_unattended(&[
        "sort --output=/etc/cron.d/x y",
        "sort --output /etc/cron.d/x y",
        "sort -o /etc/cron.d/x y",
        "sort -o/etc/cron.d/x y",
        "sort -no/etc/cron.d/x y",
        "sort -rnuo/etc/cron.d/x y",
        "grep --file=/srv/app/.env x",
        "grep --file /srv/app/.env x",
        "grep -f/srv/app/.env x",
        "grep -if/srv/app/.env x",
        "grep -ivf /srv/app/.env x",
        "ss -tanD /etc/x",
        "ss -tanD/etc/x",
    ]);
}

#[test]
fn a_read_value_pointed_at_a_secret_is_a_secret_read() {
    held_naming(&[
        ("grep -f /srv/app/.env x", "/srv/app/.env"),
        ("sort --files0-from=/root/.ssh/id_rsa", "/root/.ssh/id_rsa"),
        ("du --files0-from=/root/.ssh/id_rsa", "/root/.ssh/id_rsa"),
        ("wc --files0-from=/etc/shadow", "/etc/shadow"),
        ("diff --from-file=/etc/shadow x", "/etc/shadow"),
        ("date -f /etc/shadow", "/etc/shadow"),
        ("date --file=/root/.ssh/id_rsa", "/root/.ssh/id_rsa"),
        (
            "grep --exclude-from=/root/.ssh/id_rsa x y",
            "/root/.ssh/id_rsa",
        ),
        ("zgrep -f /srv/app/.env x y.gz", "/srv/app/.env"),
    ]);
}

#[test]
fn a_written_value_is_a_write() {
    never_unattended(&[
        "sort -o /etc/cron.d/x y",
        "ss -D /etc/x",
        "ss --diag=/etc/x",
        "journalctl --cursor-file=/etc/x -n 5",
        "git log --output=/etc/x",
        "git diff --output /etc/x",
        "sort -T /etc x",
        "curl -o /etc/x http://localhost/",
        // uniq's second operand is the file it writes.
        "uniq in /etc/x",
        "uniq -c in /etc/x",
    ]);
}

#[test]
fn options_that_run_or_change_are_never_unattended() {
    never_unattended(&[
        "sort --compress-program=sh x",
        "rg --pre=sh x /var/log",
        "git log --ext-diff -p",
        "git show --textconv HEAD",
        "journalctl --vacuum-time=1s",
        "journalctl --flush",
        "dmesg -C",
        "dmesg --read-clear",
        "date -s 2020-01-01",
        "sysctl -w vm.swappiness=1",
        "hostname -F /tmp/name",
        "ss -K dst 10.0.0.1",
        "git branch -D main",
        "git tag -d v1",
        "git config --unset user.name",
    ]);
}

/// A word only known at run time may be any option of the tool: the risky
/// ones its complete table lists included. (`ls $X` stays unattended: no
/// option of ls reads, writes, runs or changes anything.)
#[test]
fn an_option_only_known_at_run_time_is_unknown() {
    never_unattended(&[
        "sort $OPTS x",
        "du $X /var/log",
        "wc \"$O\" /var/log/syslog",
        "date $WHEN",
        "ss $(echo -tanD) /etc/x",
        "sort -$X y",
        "git log $X",
        "journalctl $(echo --rotate)",
    ]);
}

#[test]
fn everyday_options_stay_unattended() {
    for line in [
        "ls -la --color=never /srv",
        "ls -lah --group-directories-first /var/log",
        "grep -rn --include='*.yml' image: /var/log",
        "grep -c error /var/log/syslog",
        "sort -k2 -n -r x",
        "sort -t: -k3,3n /etc/passwd",
        "ps -eo pid,comm --sort=-%mem",
        "ps aux",
        "journalctl -u nginx --since today --no-pager -n 100",
        "journalctl -b -1 -p err --no-pager",
        "git log --oneline --graph -20",
        "git log --stat -5",
        "git show --stat HEAD",
        "git shortlog -sn HEAD",
        "git rev-parse --abbrev-ref HEAD",
        "git describe --always",
        "docker ps --format '{{.Names}}'",
        "docker stats --no-stream",
        "du -sh --max-depth=1 /srv",
        "df -hT",
        "tail -n 50 -F /var/log/syslog",
        "tail -f /var/log/syslog",
        "find /srv -maxdepth 2 -name '*.yml' -newer x",
        "dpkg -s git",
        "command -v docker",
        "zgrep -c git /usr/share/doc/git/changelog.Debian.gz",
        "zgrep -i -A 3 error /var/log/syslog.2.gz",
        "ss -tlnp",
        "ping -c 3 192.168.1.1",
        "free -h",
        // A script option of a tool whose script is read (sed.rs, awk.rs,
        // jq.rs) runs nothing by itself.
        "sed -e s/a/b/ f",
        "sed -ne 1p f",
        "sed --expression=1p f",
        "sed -n -e '/error/p' -e '/warn/p' /var/log/syslog",
        "awk -e '{print $1}' f",
        "jq -e .a f.json",
        "yq -e .a f.yml",
    ] {
        let j = judge(line);
        assert_eq!(j.decision, Decision::Allow, "{line}: {:#?}", j.reasons);
    }
}
