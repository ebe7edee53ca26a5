//! Paths judged as the host resolves them: `/proc/self/root`, `/dev/fd/N/..`,
//! `~sys`, `/var/run/..`, a glob early in a path and a relative name after
//! `cd` name what they name on a Debian host, so no spelling moves a line
//! from deny to approve or from approve to allow. Each class has its own
//! variants beyond the forms first reported.

use std::path::PathBuf;
use std::sync::LazyLock;

use jarvis_core::Decision;
use jarvis_policy::Policy;

mod common;
use common::{ALLOW_ALL, SHIPPED, judge, judge_in, policy};

/// Where the sandbox host runs everyday commands from.
const HOME: &str = "/home/jarvis";

fn rank(d: Decision) -> u8 {
    match d {
        Decision::Allow => 0,
        Decision::Approve => 1,
        Decision::Deny => 2,
    }
}

/// Catastrophic spellings: each must be denied by a guardrail under every
/// policy.
const GUARDRAIL: &[(&str, &[&str])] = &[
    (
        "/proc/<pid>/root is the host's root",
        &[
            "rm -rf /proc/self/root/*",
            "rm -rf /proc/1/root/",
            "chmod -R 777 /proc/self/root/etc",
            "rm -rf /proc/thread-self/root/",
            "rm -rf /proc/thread-self/root/usr",
            "rm -rf /proc/self/task/1/root/etc",
            "rm -rf /proc/1/task/1/root/boot",
            "chown -R nobody /proc/42/root/var",
            "rm -rf /proc/*/root/etc",
            "rm -rf /proc/[0-9]*/root/usr/*",
            "mv /proc/self/root/etc /tmp/etc.old",
            "rm -rf /proc/self/root/proc/1/root/etc",
            "find /proc/self/root/etc -delete",
            "rsync -a --delete /empty/ /proc/1/root/",
            "dd if=/dev/zero of=/proc/self/root/dev/sda",
            "echo b > /proc/self/root/proc/sysrq-trigger",
            "rm -rf /proc/self/root",
            "rm -rf /proc/self/../1/root/etc",
        ],
    ),
    (
        "/proc/<pid>/cwd is a directory the line does not name",
        &[
            "rm -rf /proc/1/cwd/..",
            "rm -rf /proc/1/cwd/*",
            "chmod -R 777 /proc/self/cwd/..",
            "rm -rf /proc/1/task/1/cwd/",
            "chown -R x /proc/*/cwd/.",
        ],
    ),
    (
        "/dev/fd/N and /proc/self/fd/N walk out to /proc",
        &[
            "rm -rf /dev/fd/3/../..",
            "echo b > /dev/fd/3/../../../sysrq-trigger",
            "echo c > /dev/fd/../../sysrq-trigger",
            "echo c > /proc/self/fd/0/../../../sysrq-trigger",
            "echo 1 > /dev/stdout/../../../sys/kernel/sysrq",
            "rm -rf /dev/fd/3/*",
            "rm -rf /dev/fd/9/..",
            "dd if=/dev/zero of=/dev/fd/../../../dev/sda",
            "tee /dev/fd/4/../../../sysrq-trigger < /dev/null",
            "echo b | tee /dev/stderr/../../../sysrq-trigger",
        ],
    ),
    (
        "~user is that account's home",
        &[
            "rm -rf ~sys/*",
            "rm -rf ~root/*",
            "rm -rf ~bin/*",
            "chmod -R 777 ~daemon",
            "rm -rf ~sync/",
            "chown -R x ~proxy/..",
            "rm -rf ~www-data/..",
            "rm -rf ~backup/../lib",
            "dd if=/dev/zero of=~sys/sda",
            "echo b > ~sys/../proc/sysrq-trigger",
            "rm -rf ~games/../..",
            "rm -rf ~nobody/..",
            "rm -rf ~alice/../..",
            "rm -rf ~/..",
            "rm -rf ~irc/..",
        ],
    ),
    (
        "`..` after a Debian link leaves the link's target",
        &[
            "rm -rf /var/run/../etc",
            "chmod -R 777 /var/lock/../../usr",
            "rm -rf /bin/..",
            "rm -rf /sbin/../lib",
            "rm -rf /lib64/../../etc",
            "tee /var/run/../proc/sysrq-trigger",
            "dd if=/dev/zero of=/var/run/../dev/sda",
            "rm -rf /var/lock/../../boot",
            "echo b > /var/run/../proc/sysrq-trigger",
            "chmod -R 000 /bin/../sbin",
            "rm -rf /var/spool/mail/../../etc",
            "rm -rf /var/run/..",
        ],
    ),
    (
        "a glob early in a path can match a protected tree",
        &[
            "rm -rf /e?c/*",
            "rm -rf /e?c",
            "rm -rf /[e]tc/*",
            "rm -rf /?tc",
            "rm -rf /u*/l*",
            "rm -rf /h?me/*",
            "chmod -R 777 /[!a-d]tc",
            "rm -rf /*/",
            "rm -rf /v?r/l?b",
            "rm -rf /[a-z][a-z][a-z]",
            "rm -rf /???/*",
            "chown -R x /u?r/l?cal",
            "mv /e[t]c /tmp/x",
            "rm -rf /pr?c/self/root/etc",
            "rm -rf /proc/s?lf/root/",
            "rm -rf /d?v/fd/3/../..",
            "dd if=/dev/zero of=/d?v/sda",
            "echo b > /pr?c/sysrq-trigger",
        ],
    ),
    (
        "relative names after cd",
        &[
            "cd /etc && rm -rf ./*",
            "cd / && chmod -R 777 .",
            "cd \"$D\" && rm -rf *",
            "cd /usr; rm -rf lib",
            "cd /var && rm -rf lib/",
            "cd /proc/self/root && rm -rf etc",
            "cd ~sys && rm -rf *",
            "cd /var/run && rm -rf ../etc",
            "cd /dev/fd && rm -rf ../root/etc",
            "cd /tmp && cd /etc && chmod -R 777 .",
            "pushd /etc && rm -rf *",
            "cd $D && rm -rf *",
            "cd /srv/$APP && rm -rf *",
            "cd ~root && rm -rf .ssh/..",
            "cd /proc/1/cwd && rm -rf *",
            "rm -rf *",
            "cd && rm -rf *",
            "cd - && rm -rf *",
            "cd /var/run/.. && rm -rf *",
            "cd /proc/1/root && cd etc && rm -rf *",
        ],
    ),
];

/// Secrets read through another spelling: never unattended, whatever the
/// policy allows.
const SECRET_READS: &[(&str, &[&str])] = &[
    (
        "folded spellings",
        &[
            "cat /srv/app//.env",
            "cat /proc/1/./environ",
            "cat /proc//1/environ",
            "cat /proc/1/../1/environ",
            "cat /etc/mysql/./debian.cnf",
            "cat /etc//mysql/debian.cnf",
            "cat /etc/gitlab//initial_root_password",
        ],
    ),
    (
        "through /proc and /dev/fd",
        &[
            "cat /proc/self/root/etc/shadow",
            "cat /proc/1/root/root/.aws/credentials",
            "cat /proc/self/root/etc/mysql/debian.cnf",
            "cat /dev/fd/5/../../environ",
            "cat /proc/self/fd/3/../../environ",
            "cat /proc/thread-self/root/var/backups/passwd.bak",
            "cat /proc/1/cwd/.env",
        ],
    ),
    (
        "through ~user",
        &[
            "cat ~root/.ssh/id_rsa",
            "cat ~root/.ssh/github",
            "cat ~backup/passwd.bak",
            "cat ~sys/sda",
            "head -c 512 ~sys/nvme0n1",
            "cat ~www-data/../backups/group.bak",
        ],
    ),
    (
        "through Debian links",
        &[
            "cat /var/run/../etc/mysql/debian.cnf",
            "cat /var/lock/../../var/backups/group.bak",
            "cat /bin/../etc/gitlab/initial_root_password",
            "cat /var/spool/mail/../backups/shadow.bak",
            "cat /lib/../../etc/mysql/debian.cnf",
        ],
    ),
    (
        "globs over secret names and trees",
        &[
            "cat /h?me/*/.s?h/*",
            "cat /h?me/*/.ssh/id_*",
            "cat /e?c/sh?dow",
            "cat /[e]tc/shad*",
            "cat /e*/gshadow",
            "cat /root/.ss?/id_*",
            "cat /srv/*/.env",
            "cat /h*/*/.aws/credentials",
            "cat /pr?c/1/environ",
            "cat /srv/app/*.pem",
            "cat /srv/app/cred*",
            "cat /e?c/ssl/private/*",
            "cat /e?c/mysql/debian.cnf",
            "cat /var/b?ckups/*",
            "cat /proc/[0-9]*/environ",
            "cat /srv/app/secrets.*",
            "grep -r token /h?me/*/.aws",
            "cat /proc/*/root/etc/shadow",
        ],
    ),
    (
        "relative names after cd",
        &[
            "cd /root/.ssh && cat id_ed25519",
            "cd /root/.ssh && cat github",
            "cd ~/.ssh && cat *",
            "cd /etc/mysql && cat debian.cnf",
            "cd /proc/1 && cat environ",
            "cd /var/backups && cat passwd.bak",
            "cd /proc/self/root/etc && cat gshadow",
            "cd /var/run/../etc/ssl/private && cat *",
            "cd /etc && cat mysql/debian.cnf",
            "cd /var/lib && cat tailscale/tailscaled.state",
        ],
    ),
];

/// A spelling is judged at least as strictly as the plain path it names.
const SAME_AS_PLAIN: &[(&str, &str)] = &[
    (
        "echo x > /var/run/../etc/cron.d/job",
        "echo x > /etc/cron.d/job",
    ),
    (
        "echo x >> /var/lock/../../etc/sudoers.d/x",
        "echo x >> /etc/sudoers.d/x",
    ),
    (
        "tee /dev/fd/9/../../../../etc/cron.d/x",
        "tee /etc/cron.d/x",
    ),
    (
        "sed -i s/a/b/ /proc/self/root/etc/passwd",
        "sed -i s/a/b/ /etc/passwd",
    ),
    (
        "cd /etc && sed -i s/a/b/ passwd",
        "sed -i s/a/b/ /etc/passwd",
    ),
    (
        "cp x ~root/.ssh/authorized_keys",
        "cp x /root/.ssh/authorized_keys",
    ),
    ("cp x /e?c/sudoers.d/", "cp x /etc/sudoers.d/"),
    ("cat /proc/1/./environ", "cat /proc/1/environ"),
    ("cat ~backup/passwd.bak", "cat /var/backups/passwd.bak"),
    (
        "touch /lib/../../etc/ld.so.preload",
        "touch /etc/ld.so.preload",
    ),
];

/// Everyday reads stay unattended under the shipped policy. A process's
/// `status` and `cmdline` are no secrets (`ps` shows every command line to
/// anyone); its `environ` and `mem` are.
const EVERYDAY: &[&str] = &[
    "ls -la /proc/self/fd",
    "cat /proc/loadavg",
    "cat /proc/1/status",
    "cat /proc/self/status",
    "cat /proc/1/cmdline",
    "ls ~/",
    "du -sh /var/lib/docker",
    "tail -n 50 /var/log/syslog",
    "cat /etc/mtab",
    "ls -l /dev/fd/",
    "ls /proc/1/",
    "cat /proc/self/mounts",
    "ls -la /var/run/",
    "cat /sys/class/net/eth0/address",
    "ls /bin/",
    "tail /var/log/*.log",
    "grep -n server_name /etc/nginx/sites-enabled/*",
    "cat *.txt",
    "cat /srv/app/*.yml",
    "head /var/log/nginx/*.log",
    "wc -l /srv/app/*.json",
    "stat ~root",
    "ls /h?me",
    "cat ~/notes.txt",
    "cd /var/log && tail -n 20 syslog",
    "cd /srv/app && cat compose.yml",
    "cat /lib/systemd/system/ssh.service",
    "ls -la ~/.ssh",
    "cat ~/.ssh/known_hosts",
];

fn everyday_problems() -> Vec<String> {
    EVERYDAY
        .iter()
        .filter_map(|cmd| {
            let j = judge_in(&SHIPPED, cmd, HOME);
            (j.decision != Decision::Allow).then(|| format!("`{cmd}`: {:#?}", j.reasons))
        })
        .collect()
}

#[test]
fn spellings_of_protected_trees_meet_the_guardrails() {
    let mut problems = Vec::new();
    for (class, cmds) in GUARDRAIL {
        for cmd in *cmds {
            for p in [&*SHIPPED, &*ALLOW_ALL] {
                let j = judge(p, cmd);
                if j.decision != Decision::Deny
                    || !j.reasons.iter().any(|r| r.starts_with("hard guardrail"))
                {
                    problems.push(format!("{class}: `{cmd}`: {} {:#?}", j.decision, j.reasons));
                    break;
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn spellings_of_secrets_never_run_unattended() {
    let mut problems = Vec::new();
    for (class, cmds) in SECRET_READS {
        for cmd in *cmds {
            let j = judge(&ALLOW_ALL, cmd);
            if j.decision == Decision::Allow {
                problems.push(format!("{class}: `{cmd}`: {:#?}", j.reasons));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_spelling_is_judged_as_strictly_as_the_plain_path() {
    let mut problems = Vec::new();
    for (spelt, plain) in SAME_AS_PLAIN {
        for p in [&*SHIPPED, &*ALLOW_ALL] {
            let (a, b) = (judge(p, spelt), judge(p, plain));
            if rank(a.decision) < rank(b.decision) || a.risk.score() < b.risk.score() {
                problems.push(format!(
                    "`{spelt}` ({}, {}) is judged more leniently than `{plain}` ({}, {})",
                    a.decision,
                    a.risk.score(),
                    b.decision,
                    b.risk.score()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn everyday_reads_stay_unattended() {
    let problems = everyday_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A rule over paths, as the host resolves them.
static TRUNCATE_LOGS: LazyLock<Policy> = LazyLock::new(|| {
    policy(
        r#"
[defaults]
decision = "allow"
auto_allow_max_risk = 100

[[rule]]
id = "everything"
decision = "allow"
command = "*"

[[rule]]
id = "keep-app-logs"
decision = "deny"
command = ["truncate", "rm", "shred"]
paths = ["/var/log/x/**"]
reason = "the application's logs are evidence"
examples = ["truncate -s0 /var/log/x/y", "cd /var/log && truncate -s0 x/y"]
counter_examples = ["truncate -s0 /var/log/other/y", "truncate -s0 /tmp/x/y"]
"#,
    )
});

#[test]
fn a_paths_rule_sees_every_spelling_of_its_paths() {
    for cmd in [
        "truncate -s0 /var/log/x/y",
        "truncate -s0 /var/log//x/y",
        "cd /var/log && truncate -s0 x/y",
        "truncate -s0 /var/log/x*/y",
        "truncate -s0 /var/log/./x/y",
        "truncate -s0 /var/log/other/../x/y",
        "cd /var/log/x && truncate -s0 y",
        "cd /var && truncate -s0 log/x/y",
        "truncate -s0 /var/l?g/[x]/y",
        "truncate -s0 /proc/self/root/var/log/x/y",
        "truncate -s0 ~syslog/x/y",
        "truncate -s0 \"$F\"",
        "cd \"$D\" && truncate -s0 y",
        "rm -f /var/run/../var/log/x/y",
        "truncate -s0 /var/log/x/y > /dev/null",
        "shred -u /var/log/x/*",
    ] {
        let j = judge(&TRUNCATE_LOGS, cmd);
        assert_eq!(j.decision, Decision::Deny, "{cmd}: {:#?}", j.reasons);
        assert!(
            j.rules.iter().any(|r| r == "keep-app-logs"),
            "{cmd}: {:?}",
            j.rules
        );
    }
    for cmd in [
        "truncate -s0 /var/log/other/y",
        "truncate -s0 /tmp/x/y",
        "cd /tmp && truncate -s0 x/y",
        "truncate -s0 /var/log/xy",
        "truncate -s0 /var/log/x.old/y",
    ] {
        let j = judge_in(&TRUNCATE_LOGS, cmd, "/srv");
        assert_eq!(j.decision, Decision::Allow, "{cmd}: {:#?}", j.reasons);
    }
    // With no working directory, a relative name could be anywhere.
    let j = judge(&TRUNCATE_LOGS, "truncate -s0 y");
    assert_eq!(j.decision, Decision::Deny, "{:#?}", j.reasons);
    let (count, failures) = TRUNCATE_LOGS.test_examples();
    assert_eq!(count, 4);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn an_allow_paths_rule_allows_only_what_surely_lies_inside() {
    let p = policy(
        r#"
[defaults]
decision = "approve"
auto_allow_max_risk = 100

[[rule]]
id = "clear-build"
decision = "allow"
command = "rm"
paths = ["/srv/app/build/**"]
"#,
    );
    for cmd in [
        "rm -rf /srv/app/build/out",
        "rm /srv/app/build/a /srv/app/build/b",
        "rm -rf /srv/app/build/*.o",
        "rm -rf /srv/app/build/x 2>/dev/null",
    ] {
        assert_eq!(judge(&p, cmd).decision, Decision::Allow, "{cmd}");
    }
    let j = judge_in(&p, "rm -rf build/cache", "/srv/app");
    assert_eq!(j.decision, Decision::Allow, "{:#?}", j.reasons);
    // After `cd` the line may still be where it was (`cd x; rm …` when
    // `cd` fails), so a relative name there is no surely-inside path.
    let j = judge_in(&p, "cd /srv/app && rm -rf build/cache", "/srv/app");
    assert_ne!(j.decision, Decision::Allow, "{:#?}", j.reasons);
    for cmd in [
        "rm -rf /srv/app/build/../src",
        "rm -rf /srv/app/build/x /etc/motd",
        "rm -rf \"$DIR\"",
        "rm -rf build/x",
        "rm -rf /srv/app/b*/x",
        "rm -rf /srv/app/build/x/../../..",
        "rm -rf /proc/1/cwd/x",
        "rm -rf ~builder/x",
    ] {
        assert_ne!(judge(&p, cmd).decision, Decision::Allow, "{cmd}");
    }
}

#[test]
fn paths_patterns_are_checked_at_load() {
    for (pattern, says) in [
        ("var/log/**", "is not absolute"),
        ("/var/log/[x", "unclosed `[`"),
        ("/var/../etc", "`.` or `..`"),
        ("/var/lo**g", "`**` stands alone"),
        ("", "is empty"),
    ] {
        let text = format!(
            "[[rule]]\nid = \"x\"\ndecision = \"deny\"\ncommand = \"rm\"\npaths = [\"{pattern}\"]\n"
        );
        let err = Policy::from_texts(vec![(PathBuf::from("p.toml"), text)])
            .expect_err(pattern)
            .to_string();
        assert!(
            err.contains("p.toml:5:") && err.contains("rule[0] `x`.paths") && err.contains(says),
            "{pattern}: {err}"
        );
    }
    let text = "[[rule]]\nid = \"x\"\ndecision = \"deny\"\ncommand = \"rm\"\npaths = []\n";
    let err = Policy::from_texts(vec![(PathBuf::from("p.toml"), text.to_owned())])
        .expect_err("empty list")
        .to_string();
    assert!(err.contains("matches nothing"), "{err}");
}

/// The figures of this file: how many spellings each policy lets through.
/// `cargo test -p jarvis-policy --test paths figures -- --ignored --nocapture`
#[test]
#[ignore = "prints figures"]
fn figures() {
    let mut total = 0;
    let mut not_denied = 0;
    let mut allowed = 0;
    for (class, cmds) in GUARDRAIL {
        let mut n = 0;
        let mut a = 0;
        for cmd in *cmds {
            total += 1;
            let j = judge(&ALLOW_ALL, cmd);
            let s = judge(&SHIPPED, cmd);
            if j.decision != Decision::Deny || s.decision != Decision::Deny {
                n += 1;
                println!("  not denied: {cmd} ({} / {})", s.decision, j.decision);
            }
            if j.decision == Decision::Allow {
                a += 1;
            }
        }
        not_denied += n;
        allowed += a;
        println!(
            "guardrail / {class}: {} variants, {n} not denied, {a} allowed under allow-all",
            cmds.len()
        );
    }
    for (class, cmds) in SECRET_READS {
        let mut a = 0;
        let mut s_allowed = 0;
        for cmd in *cmds {
            total += 1;
            if judge(&ALLOW_ALL, cmd).decision == Decision::Allow {
                a += 1;
                println!("  allowed: {cmd}");
            }
            if judge(&SHIPPED, cmd).decision == Decision::Allow {
                s_allowed += 1;
            }
        }
        allowed += a;
        println!(
            "secret / {class}: {} variants, {a} allowed under allow-all, {s_allowed} under the shipped policy",
            cmds.len()
        );
    }
    let mut lenient = 0;
    for (spelt, plain) in SAME_AS_PLAIN {
        total += 1;
        for p in [&*SHIPPED, &*ALLOW_ALL] {
            let (a, b) = (judge(p, spelt), judge(p, plain));
            if rank(a.decision) < rank(b.decision) || a.risk.score() < b.risk.score() {
                lenient += 1;
                println!("  lenient: {spelt}");
                break;
            }
        }
    }
    println!(
        "{total} attack variants: {not_denied} catastrophic ones not denied, {allowed} allowed under allow-all, {lenient} judged more leniently than the plain path"
    );
    let everyday = everyday_problems();
    println!(
        "everyday reads: {} of {} not allowed",
        everyday.len(),
        EVERYDAY.len()
    );
    for e in everyday {
        println!("  {e}");
    }
}
