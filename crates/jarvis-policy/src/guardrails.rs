//! Hard guardrails: commands that are denied whatever the policy files say.
//!
//! They are code, not data, so that no policy file (and no agent that can
//! write one) can switch them off. They look at the facts of every command
//! the line runs, after wrappers and strings are unwrapped, so `sudo`,
//! `sh -c`, `eval`, `xargs` and `/bin/r''m` change nothing.

use std::sync::LazyLock;

use regex::Regex;

use crate::analyze::{Analysis, Command, basename, normalize_path, resolve};
use crate::shell::Word;

/// Why a guardrail fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// A stable short name: `wipe-root`, `disk-format`, `fork-bomb`, …
    pub guardrail: &'static str,
    /// What the command would do, for the person reading the denial.
    pub why: String,
}

/// Directories whose loss, recursive deletion or recursive re-permissioning
/// takes the system down with it.
const PROTECTED: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/usr",
    "/var",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local",
    "/usr/share",
    "/var/lib",
    "/snap",
    "~",
    "$HOME",
    "${HOME}",
];

static BLOCK_DEVICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^/dev/((sd|hd|vd|xvd)[a-z]+[0-9]*|nvme[0-9]+(n[0-9]+(p[0-9]+)?)?|mmcblk[0-9]+(p[0-9]+)?|md[0-9]+|dm-[0-9]+|nbd[0-9]+|zd[0-9]+|rbd[0-9]+|loop[0-9]+|sr[0-9]+|mem|kmem|port|mapper/.+|disk/.+|md/.+|zvol/.+)$",
    )
    .expect("the block device pattern is valid")
});

/// Runs every guardrail over the analysed line.
pub fn check(analysis: &Analysis) -> Vec<Breach> {
    let mut out = Vec::new();
    for name in &analysis.fork_bombs {
        out.push(Breach {
            guardrail: "fork-bomb",
            why: format!("the function `{name}` starts copies of itself without end (a fork bomb)"),
        });
    }
    for c in &analysis.commands {
        check_command(c, &mut out);
    }
    out.dedup();
    out
}

fn check_command(c: &Command, out: &mut Vec<Breach>) {
    for r in &c.redirects {
        if r.op.writes() {
            device_write(&r.target.text, "a redirection", out);
            kernel_control(&r.target.text, out);
        }
    }
    let Some(name) = c.name() else {
        return;
    };
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    let (flags, paths) = split_args(&c.args);
    let has = |short: char, long: &str| {
        flags.iter().any(|f| {
            f.text == long
                || (f.text.starts_with('-')
                    && !f.text.starts_with("--")
                    && f.text[1..].contains(short))
        })
    };
    match name {
        "rm" | "unlink" | "rmdir" => {
            let recursive = has('r', "--recursive") || has('R', "--recursive");
            if flags.iter().any(|f| f.text == "--no-preserve-root") {
                out.push(breach(
                    "wipe-root",
                    "`rm --no-preserve-root` exists only to delete `/`",
                ));
            }
            if recursive {
                for p in &paths {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach("wipe-root", &format!("`rm -r` deletes {what}")));
                    }
                }
            }
        }
        "chmod" | "chown" | "chgrp" | "setfacl" | "chattr" | "chcon" => {
            let recursive = has('R', "--recursive");
            // The first positional of chmod/chown/chgrp is the mode or owner.
            let targets = if matches!(name, "setfacl") {
                &paths[..]
            } else {
                paths.get(1..).unwrap_or(&[])
            };
            for p in targets {
                if let Some(what) = protected_target(p, c) {
                    if recursive {
                        out.push(breach(
                            "system-permissions",
                            &format!("`{name} -R` changes every file under {what}"),
                        ));
                    } else if what.starts_with("`/`") {
                        out.push(breach(
                            "system-permissions",
                            &format!("`{name}` changes the root directory itself"),
                        ));
                    }
                }
            }
        }
        "mv" => {
            if let Some((_, sources)) = paths.split_last() {
                for p in sources {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach("wipe-root", &format!("`mv` moves {what} away")));
                    }
                }
            }
        }
        "find" => {
            let destroys = c.args.iter().any(|a| a.text == "-delete")
                || c.args.windows(2).any(|w| {
                    matches!(w[0].text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")
                        && matches!(basename(&w[1].text), "rm" | "shred" | "unlink" | "wipe")
                });
            if destroys {
                for p in c.args.iter().take_while(|a| !a.text.starts_with('-')) {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach(
                            "wipe-root",
                            &format!("`find` deletes everything under {what}"),
                        ));
                    }
                }
            }
        }
        "rsync" => {
            if flags.iter().any(|f| f.text.starts_with("--delete"))
                && let Some(dest) = paths.last()
                && let Some(what) = protected_target(dest, c)
            {
                out.push(breach(
                    "wipe-root",
                    &format!("`rsync --delete` into {what} deletes what is there"),
                ));
            }
        }
        "mkfs" | "mke2fs" | "mkswap" | "wipefs" | "blkdiscard" | "cfdisk" | "cgdisk"
        | "mkdosfs" | "mkntfs" | "mkexfatfs" | "mkudffs"
            if !flags
                .iter()
                .any(|f| matches!(f.text.as_str(), "--help" | "-V" | "--version")) =>
        {
            out.push(breach(
                "disk-format",
                &format!("`{}` erases a disk or filesystem", c.display()),
            ));
        }
        n if n.starts_with("mkfs.") || n.starts_with("mkfs-") => {
            out.push(breach(
                "disk-format",
                &format!("`{}` erases a disk or filesystem", c.display()),
            ));
        }
        "fdisk" | "sfdisk" | "gdisk" => {
            // `-l`, `-lu`, `--list`, `-d`: listing and dumping read only.
            let lists = flags.iter().any(|f| {
                let short = !f.text.starts_with("--")
                    && f.text[1..]
                        .chars()
                        .any(|c| matches!(c, 'l' | 'd' | 's' | 'J' | 'V'));
                short
                    || matches!(
                        f.text.as_str(),
                        "--list"
                            | "--dump"
                            | "--show-size"
                            | "--json"
                            | "--verify"
                            | "--help"
                            | "--version"
                            | "--list-types"
                    )
            });
            if !lists {
                out.push(breach(
                    "disk-format",
                    &format!("`{}` rewrites a partition table", c.display()),
                ));
            }
        }
        "sgdisk" => {
            let zaps = flags.iter().any(|f| {
                matches!(
                    f.text.as_str(),
                    "-Z" | "--zap-all"
                        | "-z"
                        | "--zap"
                        | "-o"
                        | "--clear"
                        | "-d"
                        | "--delete"
                        | "-n"
                        | "--new"
                ) || f.text.starts_with("--delete=")
                    || f.text.starts_with("--new=")
            });
            if zaps {
                out.push(breach(
                    "disk-format",
                    &format!("`{}` rewrites a partition table", c.display()),
                ));
            }
        }
        "parted" => {
            let edits = c.args.iter().any(|a| {
                matches!(
                    a.text.as_str(),
                    "mklabel" | "mktable" | "mkpart" | "rm" | "resizepart" | "mkfs" | "rescue"
                )
            });
            if edits {
                out.push(breach(
                    "disk-format",
                    &format!("`{}` rewrites a partition table", c.display()),
                ));
            }
        }
        "zpool" => {
            if let Some(sub) = paths.first()
                && matches!(sub.text.as_str(), "destroy" | "labelclear")
            {
                out.push(breach(
                    "disk-format",
                    &format!("`zpool {}` destroys a storage pool", sub.text),
                ));
            }
        }
        "mdadm" if flags.iter().any(|f| f.text == "--zero-superblock") => {
            out.push(breach(
                "disk-format",
                "`mdadm --zero-superblock` erases RAID metadata",
            ));
        }
        "dd" => {
            for a in &c.args {
                if let Some(target) = a.text.strip_prefix("of=") {
                    device_write(target, "`dd`", out);
                    kernel_control(target, out);
                }
            }
        }
        "shred" | "truncate" | "tee" | "wipe" | "badblocks"
            if name != "badblocks" || has('w', "--write") =>
        {
            for p in &paths {
                device_write(&p.text, &format!("`{name}`"), out);
                if name == "tee" {
                    kernel_control(&p.text, out);
                }
            }
        }
        "cp" | "install" | "cat" | "pv" => {
            if name != "cat"
                && name != "pv"
                && let Some(dest) = paths.last()
            {
                device_write(&dest.text, &format!("`{name}`"), out);
            }
        }
        "hdparm"
            if flags.iter().any(|f| {
                f.text.starts_with("--security-erase")
                    || f.text == "--trim-sector-ranges"
                    || f.text == "--make-bad-sector"
            }) =>
        {
            out.push(breach("disk-format", "`hdparm` erases or damages the disk"));
        }
        "nvme"
            if paths
                .first()
                .is_some_and(|s| matches!(s.text.as_str(), "format" | "sanitize")) =>
        {
            out.push(breach("disk-format", "`nvme format` erases the disk"));
        }
        "kill" => kill_init(&c.args, out),
        "pkill" | "killall" => {
            for p in &paths {
                if matches!(
                    p.text.as_str(),
                    "init" | "systemd" | "1" | "." | ".*" | "^" | ""
                ) {
                    out.push(breach(
                        "kill-all",
                        &format!("`{name} {}` kills init or every process", p.text),
                    ));
                }
            }
        }
        "killall5" => out.push(breach("kill-all", "`killall5` kills every process")),
        "sysctl" if c.args.iter().any(|a| a.text.starts_with("kernel.sysrq=")) => {
            out.push(breach(
                "sysrq",
                "`sysctl kernel.sysrq=…` turns on the magic SysRq key",
            ));
        }
        _ => {}
    }
    if is_interpreter(name) {
        for a in &c.args {
            if FORK_CODE.is_match(&a.text) {
                out.push(breach(
                    "fork-bomb",
                    &format!("`{name}` is given code that forks without end"),
                ));
            }
        }
    }
}

static FORK_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)fork\W+while\W+fork|while\s*(\(?\s*(1|true|True)\s*\)?|\(\s*\)|:)\W.*fork\s*\(|for\s*\(\s*;\s*;\s*\)\s*\{?\s*fork")
        .expect("the fork pattern is valid")
});

fn is_interpreter(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "perl" | "python" | "ruby" | "node" | "php" | "lua" | "nodejs" | "tclsh" | "awk" | "gawk"
    )
}

fn breach(guardrail: &'static str, why: &str) -> Breach {
    Breach {
        guardrail,
        why: why.to_owned(),
    }
}

fn device_write(target: &str, how: &str, out: &mut Vec<Breach>) {
    if BLOCK_DEVICE.is_match(target) {
        out.push(breach(
            "raw-device",
            &format!("{how} writes the raw device `{target}`, destroying what is on it"),
        ));
    }
}

fn kernel_control(target: &str, out: &mut Vec<Breach>) {
    let t = normalize_path(target);
    if t == "/proc/sysrq-trigger" || t == "/proc/sys/kernel/sysrq" {
        out.push(breach(
            "sysrq",
            &format!("writing `{t}` reboots, crashes or freezes the host at once"),
        ));
    }
}

fn kill_init(args: &[Word], out: &mut Vec<Breach>) {
    let mut i = 0;
    let mut options_done = false;
    let mut first = true;
    while i < args.len() {
        let t = args[i].text.as_str();
        if !options_done && t == "--" {
            options_done = true;
        } else if !options_done && matches!(t, "-l" | "-L" | "--list" | "--table") {
            return;
        } else if !options_done && matches!(t, "-s" | "-n" | "--signal") {
            i += 1;
        } else if !options_done && first && t.starts_with('-') && t.len() > 1 {
            // The first dash word is a signal (`-9`, `-KILL`, even `-1`).
        } else if t == "1" || t == "-1" {
            let what = if t == "1" {
                "init (PID 1)"
            } else {
                "every process (PID -1)"
            };
            out.push(breach("kill-all", &format!("`kill {t}` kills {what}")));
        }
        first = false;
        i += 1;
    }
}

/// Splits arguments into option words and the rest.
fn split_args(args: &[Word]) -> (Vec<&Word>, Vec<&Word>) {
    let mut flags = Vec::new();
    let mut paths = Vec::new();
    let mut done = false;
    for a in args {
        if !done && a.text == "--" {
            done = true;
        } else if !done && a.text.starts_with('-') && a.text.len() > 1 {
            flags.push(a);
        } else {
            paths.push(a);
        }
    }
    (flags, paths)
}

/// Names the protected directory a target word can mean, if any: literally,
/// after folding `..`, through a trailing `*`, with every variable empty
/// (`"$DIR"/`), or relative to a directory an earlier `cd` went to.
fn protected_target(w: &Word, c: &Command) -> Option<String> {
    let mut candidates = vec![w.text.clone()];
    if !w.literal {
        candidates.push(w.skeleton.clone());
    }
    for home in ["$HOME", "${HOME}"] {
        if w.text.starts_with(home) {
            candidates.push(w.text.replacen(home, "~", 1));
        }
    }
    let mut resolved = Vec::new();
    for cand in candidates {
        if cand.is_empty() {
            continue;
        }
        if cand.starts_with('/') || cand.starts_with('~') {
            resolved.push(normalize_path(&cand));
        } else {
            for cwd in c.cwds.iter().flatten() {
                if let Some(r) = resolve(Some(cwd), &cand) {
                    resolved.push(r);
                }
            }
        }
    }
    for r in resolved {
        let base = strip_glob_tail(&r);
        let base = if base.len() > 1 {
            base.trim_end_matches('/')
        } else {
            base
        };
        let base = if base.is_empty() { "/" } else { base };
        if PROTECTED.contains(&base) {
            return Some(match base {
                "/" => "`/`, the whole filesystem".to_owned(),
                "~" | "$HOME" | "${HOME}" => "the home directory".to_owned(),
                other => format!("`{other}`, a system directory"),
            });
        }
    }
    None
}

/// `/*`, `/usr/*`, `/.*` → the directory they glob over.
fn strip_glob_tail(p: &str) -> &str {
    let mut s = p;
    loop {
        let before = s;
        for tail in ["/*", "/.*", "/.[!.]*", "*"] {
            if let Some(rest) = s.strip_suffix(tail) {
                s = if rest.is_empty() { "/" } else { rest };
            }
        }
        if s == before {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_devices() {
        for d in [
            "/dev/sda",
            "/dev/sdb1",
            "/dev/nvme0n1",
            "/dev/nvme0n1p2",
            "/dev/mmcblk0",
            "/dev/md0",
            "/dev/mapper/root",
            "/dev/disk/by-id/x",
            "/dev/mem",
        ] {
            assert!(BLOCK_DEVICE.is_match(d), "{d}");
        }
        for d in [
            "/dev/null",
            "/dev/zero",
            "/dev/tty",
            "/dev/urandom",
            "/dev/stdout",
            "/dev/shm",
            "/dev/tcp",
            "/dev/fd/1",
            "/dev/shm/x",
            "/dev/pts/0",
        ] {
            assert!(!BLOCK_DEVICE.is_match(d), "{d}");
        }
    }

    #[test]
    fn glob_tails() {
        assert_eq!(strip_glob_tail("/*"), "/");
        assert_eq!(strip_glob_tail("/usr/*"), "/usr");
        assert_eq!(strip_glob_tail("/etc"), "/etc");
        assert_eq!(strip_glob_tail("/.*"), "/");
    }

    #[test]
    fn fork_code() {
        assert!(FORK_CODE.is_match("fork while fork"));
        assert!(FORK_CODE.is_match("import os\nwhile True: os.fork()"));
        assert!(!FORK_CODE.is_match("print(1)"));
    }
}
