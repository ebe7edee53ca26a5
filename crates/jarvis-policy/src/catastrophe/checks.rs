//! The guardrails of this module: obfuscated code, clobbered identity
//! files, destroyed pools and killing every process of root.

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use jarvis_core::text::code as code_span;
use regex::Regex;

use crate::analyze::{Analysis, Command, ProgramRef, normalize_path, resolve};
use crate::guardrails::Breach;
use crate::shell::{RedirectOp, Word};

use super::containers::GLOBAL_VALUE_OPTIONS;
use super::decoders::decoder;
use super::languages::is_runner;

/// Runs this module's guardrails over the analysed line.
pub fn check(analysis: &Analysis, out: &mut Vec<Breach>) {
    for why in &analysis.obfuscated {
        out.push(Breach {
            guardrail: "obfuscated-code",
            why: why.clone(),
        });
    }
    decoded_files_run(&analysis.commands, out);
    for c in analysis.commands.iter().chain(&analysis.embedded) {
        check_command(c, out);
    }
}

/// The guardrails one command can breach by itself.
fn check_command(c: &Command, out: &mut Vec<Breach>) {
    let Some(name) = c.name() else {
        identity_files(c, "", out);
        return;
    };
    identity_files(c, name, out);
    pools(c, name, out);
    kill_by_user(c, name, out);
}

/// Files whose loss or clobbering stops anyone from logging in, or the
/// system from booting or running any program.
static IDENTITY_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(/etc/(passwd|shadow|group|gshadow|sudoers|fstab|crypttab|pam\.d/[^/]+)|/(usr/)?s?bin/(sh|bash|dash|sudo|su|init|login)|/(usr/)?lib/systemd/systemd|/(usr/)?lib(32|64|x32)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?/(ld-linux[^/]*\.so[^/]*|libc\.so\.6|ld-[0-9.]+\.so))$",
    )
    .expect("the identity file pattern is valid")
});

/// Sources whose copy is no content at all.
const EMPTY_SOURCES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/full",
];

pub(super) fn operands(args: &[Word], value_options: &[&str]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut done = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if !done && t == "--" {
            done = true;
        } else if !done && t.starts_with('-') && t.len() > 1 {
            if value_options.contains(&t) {
                i += 1;
            }
        } else {
            out.push(args[i].clone());
        }
        i += 1;
    }
    out
}

/// The absolute paths a word can name for a command: as written, with
/// the line's variables, joined onto each directory it may run in.
fn paths_of(w: &Word, c: &Command) -> Vec<String> {
    let mut texts = vec![w.text.clone()];
    if !w.literal {
        texts.push(w.skeleton.clone());
        for (name, value) in &c.vars {
            for form in [format!("${{{name}}}"), format!("${name}")] {
                if w.text.contains(&form) {
                    texts.push(w.text.replace(&form, value));
                }
            }
        }
    }
    let mut out = Vec::new();
    for t in texts {
        let t = t.replace('"', "");
        if t.is_empty() {
            continue;
        }
        if t.starts_with('/') {
            out.push(normalize_path(&t));
        } else {
            out.extend(
                c.cwds
                    .iter()
                    .flatten()
                    .filter_map(|cwd| resolve(Some(cwd), &t)),
            );
        }
    }
    out
}

/// `> /etc/passwd`, `truncate -s0 /etc/shadow`, `cp /dev/null /etc/fstab`,
/// `rm -f /etc/passwd`, `ln -sf /dev/null /etc/passwd`.
fn identity_files(c: &Command, name: &str, out: &mut Vec<Breach>) {
    let mut clobbered: Vec<(Word, &str)> = Vec::new();
    for r in &c.redirects {
        if r.op == RedirectOp::Write {
            clobbered.push((r.target.clone(), "a redirection empties"));
        }
    }
    let short = |ch: char| {
        c.args.iter().any(|a| {
            a.text.starts_with('-') && !a.text.starts_with("--") && a.text[1..].contains(ch)
        })
    };
    match name {
        "truncate" => {
            for w in operands(&c.args, &["-s", "--size", "-r", "--reference"]) {
                clobbered.push((w, "`truncate` cuts"));
            }
        }
        "rm" | "unlink" | "shred" | "wipe" | "srm" => {
            for w in operands(
                &c.args,
                &["-n", "--iterations", "-s", "--size", "--random-source"],
            ) {
                clobbered.push((w, "deleting or shredding removes"));
            }
        }
        "tee" if !short('a') && !c.args.iter().any(|a| a.text == "--append") => {
            for w in operands(&c.args, &["--output-error"]) {
                clobbered.push((w, "`tee` overwrites"));
            }
        }
        "dd" => {
            for a in &c.args {
                if let Some(target) = a.text.strip_prefix("of=") {
                    clobbered.push((
                        Word {
                            text: target.to_owned(),
                            skeleton: a.skeleton.trim_start_matches("of=").to_owned(),
                            ..a.clone()
                        },
                        "`dd` overwrites",
                    ));
                }
            }
        }
        "cp" | "install" | "ln" => {
            let ops = operands(
                &c.args,
                &[
                    "-t",
                    "--target-directory",
                    "-m",
                    "--mode",
                    "-o",
                    "--owner",
                    "-g",
                    "--group",
                    "-S",
                    "--suffix",
                ],
            );
            if let Some((dest, sources)) = ops.split_last() {
                let empty = sources
                    .iter()
                    .any(|s| EMPTY_SOURCES.contains(&s.text.as_str()));
                let forced_link =
                    name == "ln" && (short('f') || c.args.iter().any(|a| a.text == "--force"));
                if empty || forced_link {
                    clobbered.push((dest.clone(), "replacing it with nothing empties"));
                }
            }
        }
        "mv" => {
            let ops = operands(&c.args, &["-t", "--target-directory", "-S", "--suffix"]);
            if let Some((_, sources)) = ops.split_last() {
                for s in sources {
                    clobbered.push((s.clone(), "`mv` takes away"));
                }
            }
        }
        _ => {}
    }
    for (w, how) in clobbered {
        if let Some(p) = paths_of(&w, c)
            .into_iter()
            .find(|p| IDENTITY_FILE.is_match(p))
        {
            out.push(Breach {
                guardrail: "identity-files",
                why: format!(
                    "{how} {}, without which nobody can log in or the system cannot boot or run programs",
                    code_span(&p)
                ),
            });
        }
    }
}

/// `zfs destroy -r`, `docker system prune --volumes`, `docker volume prune
/// -a`, `lvremove VG`, `vgremove`, `pvremove`.
fn pools(c: &Command, name: &str, out: &mut Vec<Breach>) {
    let texts: Vec<&str> = c.args.iter().map(|a| a.text.as_str()).collect();
    let short = |ch: char| {
        texts
            .iter()
            .any(|t| t.starts_with('-') && !t.starts_with("--") && t[1..].contains(ch))
    };
    let positionals: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| !t.starts_with('-'))
        .collect();
    let mut push = |why: String| {
        out.push(Breach {
            guardrail: "pool-destroy",
            why,
        });
    };
    match name {
        "zfs" if positionals.first() == Some(&"destroy") && (short('r') || short('R')) => {
            if let Some(d) = positionals[1..].iter().find(|d| !d.contains('@')) {
                push(format!(
                    "{} destroys the dataset with every child, snapshot and clone under it",
                    code_span(&format!("zfs destroy -r {d}"))
                ));
            }
        }
        "docker" | "podman" | "nerdctl" => {
            let mut i = 0;
            while i < texts.len() && texts[i].starts_with('-') {
                if GLOBAL_VALUE_OPTIONS.contains(&texts[i]) {
                    i += 1;
                }
                i += 1;
            }
            let sub: Vec<&str> = texts
                .get(i..)
                .unwrap_or(&[])
                .iter()
                .copied()
                .filter(|t| !t.starts_with('-'))
                .take(2)
                .collect();
            let all = short('a') || texts.contains(&"--all");
            match sub.as_slice() {
                ["system", "prune", ..]
                    if texts
                        .iter()
                        .any(|t| *t == "--volumes" || t.starts_with("--volumes=")) =>
                {
                    push(format!(
                        "{} deletes volumes and the data in them",
                        code_span(&format!("{name} system prune --volumes"))
                    ))
                }
                ["volume", "prune", ..] if all => push(format!(
                    "{} deletes every volume no container uses, named ones too",
                    code_span(&format!("{name} volume prune -a"))
                )),
                ["volume", "rm" | "remove", ..]
                    if c.args
                        .iter()
                        .any(|a| a.raw.contains("volume ls") || a.raw.contains("volume list")) =>
                {
                    push(format!(
                        "{} deletes every volume",
                        code_span(&format!("{name} volume rm $({name} volume ls …)"))
                    ))
                }
                _ => {}
            }
        }
        "lvremove" => {
            for p in &positionals {
                let rest = p.strip_prefix("/dev/").unwrap_or(p);
                if !rest.contains('/') && !rest.is_empty() {
                    push(format!(
                        "{} deletes every logical volume of the volume group",
                        code_span(&format!("lvremove {p}"))
                    ));
                }
            }
        }
        "vgremove"
            if !texts
                .iter()
                .any(|t| matches!(*t, "--help" | "-h" | "--version")) =>
        {
            push("`vgremove` deletes a volume group and every volume in it".into());
        }
        "pvremove"
            if !texts
                .iter()
                .any(|t| matches!(*t, "--help" | "-h" | "--version")) =>
        {
            push("`pvremove` wipes the LVM label of a disk and what depends on it".into());
        }
        _ => {}
    }
}

/// `pkill -u root`, `killall -u root`: every process of root, init's
/// services with them.
fn kill_by_user(c: &Command, name: &str, out: &mut Vec<Breach>) {
    if !matches!(name, "pkill" | "killall" | "skill" | "slay") {
        return;
    }
    let mut users = Vec::new();
    let mut patterns = 0;
    let mut i = 0;
    let args = &c.args;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-u" | "-U" | "--euid" | "--uid" | "--user") {
            users.extend(args.get(i + 1).map(|a| a.text.clone()));
            i += 2;
            continue;
        }
        if let Some(v) = ["--euid=", "--uid=", "--user="]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .or_else(|| t.strip_prefix("-u").filter(|v| !v.is_empty()))
            .or_else(|| t.strip_prefix("-U").filter(|v| !v.is_empty()))
        {
            users.push(v.to_owned());
        } else if matches!(
            t,
            "-s" | "--signal"
                | "-g"
                | "--pgroup"
                | "-G"
                | "--group"
                | "-P"
                | "--parent"
                | "-t"
                | "--terminal"
                | "--ns"
                | "--nslist"
                | "-F"
                | "--pidfile"
                | "-o"
                | "--older-than"
                | "-y"
                | "--younger-than"
                | "-c"
                | "--context"
        ) {
            i += 1;
        } else if !t.starts_with('-') {
            patterns += 1;
        }
        i += 1;
    }
    let root = users
        .iter()
        .any(|u| u.split(',').any(|u| u == "root" || u == "0"));
    if root && patterns == 0 {
        out.push(Breach {
            guardrail: "kill-all",
            why: format!(
                "{} with no name kills every process of root, the system's services with them",
                code_span(&format!("{name} -u root"))
            ),
        });
    }
}

/// `echo … | base64 -d > /tmp/x.sh && sh /tmp/x.sh`: a file a decoder
/// wrote, run as a script or program on the same line.
fn decoded_files_run(commands: &[Command], out: &mut Vec<Breach>) {
    let mut decoded: Vec<(String, String)> = Vec::new();
    for c in commands {
        let ProgramRef::Named { written, .. } = &c.program else {
            continue;
        };
        let mut words = vec![Word::literal(written)];
        words.extend(c.args.iter().cloned());
        let Some(d) = decoder(&words) else {
            continue;
        };
        let mut targets: Vec<Word> = c
            .redirects
            .iter()
            .filter(|r| r.op.writes())
            .map(|r| r.target.clone())
            .collect();
        for (i, a) in c.args.iter().enumerate() {
            if matches!(a.text.as_str(), "-o" | "-out" | "--output")
                && let Some(v) = c.args.get(i + 1)
            {
                targets.push(v.clone());
            }
        }
        for t in targets {
            for p in paths_of(&t, c) {
                decoded.push((p, d.clone()));
            }
        }
    }
    if decoded.is_empty() {
        return;
    }
    for c in commands {
        let ProgramRef::Named { name, written, .. } = &c.program else {
            continue;
        };
        let mut run: Vec<Word> = vec![Word::literal(written)];
        if is_runner(name) {
            run.extend(c.args.iter().find(|a| !a.text.starts_with('-')).cloned());
        }
        for w in run {
            for p in paths_of(&w, c) {
                if let Some((_, d)) = decoded.iter().find(|(f, _)| *f == p) {
                    out.push(Breach {
                        guardrail: "obfuscated-code",
                        why: format!(
                            "{} runs {}, which {} decoded on the same line, so what it runs is hidden from review",
                            code_span(name),
                            code_span(&p),
                            code_span(d)
                        ),
                    });
                }
            }
        }
    }
}
