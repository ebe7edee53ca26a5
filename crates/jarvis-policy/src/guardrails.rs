//! Hard guardrails: commands that are denied whatever the policy files say.
//!
//! They are code, not data, so that no policy file (and no agent that can
//! write one) can switch them off. They look at the facts of every command
//! the line runs, after wrappers and strings are unwrapped, so `sudo`,
//! `sh -c`, `eval`, `xargs` and `/bin/r''m` change nothing.

use std::sync::LazyLock;

use jarvis_core::text::code;
use regex::Regex;

use crate::analyze::{Analysis, Command, WriteTargets, basename, expand_braces};
use crate::paths::{self, HostPaths, PathRegex};
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
    // The home of the account the line runs as (also `$HOME`).
    "~",
];

const BLOCK_DEVICE_PATTERN: &str = r"^/dev/((sd|hd|vd|xvd)[a-z]+[0-9]*|nvme[0-9]+(n[0-9]+(p[0-9]+)?)?|mmcblk[0-9]+(p[0-9]+)?|md[0-9]+|dm-[0-9]+|nbd[0-9]+|zd[0-9]+|rbd[0-9]+|loop[0-9]+|sr[0-9]+|sg[0-9]+|zram[0-9]+|pmem[0-9]+(s|\.[0-9]+)?|root|mem|kmem|port|mapper/.+|disk/.+|md/.+|zvol/.+)$";

static BLOCK_DEVICE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(BLOCK_DEVICE_PATTERN).expect("the block device pattern is valid"));

/// The same devices for a glob (`/dev/sd?`, `/d?v/sda`).
static BLOCK_DEVICE_GLOB: LazyLock<Option<PathRegex>> =
    LazyLock::new(|| PathRegex::new(BLOCK_DEVICE_PATTERN));

/// Whether a path reading (a glob when `glob`) can be a block device. A
/// glob here may stand for any name: a write to `/dev/*` is no routine.
fn block_device(p: &str, glob: bool) -> bool {
    if glob {
        BLOCK_DEVICE_GLOB
            .as_ref()
            .is_none_or(|re| re.could_match_any(p, true))
    } else {
        BLOCK_DEVICE.is_match(p)
    }
}

/// Runs every guardrail over the analysed line.
pub fn check(analysis: &Analysis) -> Vec<Breach> {
    let mut out = Vec::new();
    for what in &analysis.fork_bombs {
        out.push(Breach {
            guardrail: "fork-bomb",
            why: format!("{what} starts processes without end (a fork bomb)"),
        });
    }
    // What readings found in code, mini-languages and run-time spellings
    // (`embedded`) meets the same guardrails as what the line runs.
    for c in analysis.commands.iter().chain(&analysis.embedded) {
        check_command(c, &mut out);
    }
    crate::catastrophe::check(analysis, &mut out);
    out.dedup();
    out
}

fn check_command(c: &Command, out: &mut Vec<Breach>) {
    for r in &c.redirects {
        if r.op.writes() {
            write_target(&r.target, c, "a redirection", true, out);
        }
    }
    let Some(name) = c.name() else {
        return;
    };
    // Whatever names the file a command writes (an output option, an
    // operand, a sed `w`), a block device there is a raw device write.
    let written = match &c.writes {
        WriteTargets::Paths { words, .. } => words.as_slice(),
        WriteTargets::WorkingDirectory { paths, .. } => paths.as_slice(),
        WriteTargets::Nothing | WriteTargets::Unknown => &[],
    };
    for w in written {
        write_target(w, c, &code(name), true, out);
    }
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    let (flags, paths) = split_args(&c.args);
    // A name belongs to one family of guardrails, so at most one of these
    // matches it, as one arm of one match did.
    wipe_root(c, name, &flags, &paths, out);
    system_permissions(c, name, &flags, &paths, out);
    disk_format(c, name, &flags, &paths, out);
    raw_writes(c, name, &flags, &paths, out);
    kill_all(c, name, &flags, &paths, out);
    sysrq(c, name, out);
    fork_bomb(c, name, out);
}

/// `wipe-root`: deleting, moving away or emptying what
/// [`protected_target`] protects.
fn wipe_root(c: &Command, name: &str, flags: &[&Word], paths: &[&Word], out: &mut Vec<Breach>) {
    let has = |short: char, long: &str| has_flag(flags, short, long);
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
                for p in paths {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach("wipe-root", &format!("`rm -r` deletes {what}")));
                    }
                }
            }
        }
        "mv" => {
            if let Some((_, sources)) = paths.split_last() {
                for p in sources {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach("wipe-root", &format!("`mv` moves away {what}")));
                    }
                }
            }
        }
        "find" => {
            let destroys = c
                .args
                .iter()
                .any(|a| word_values(a, c).iter().any(|v| v == "-delete"))
                || c.args.windows(2).any(|w| {
                    matches!(w[0].text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")
                        && matches!(
                            basename(&w[1].text),
                            "rm" | "shred"
                                | "unlink"
                                | "wipe"
                                | "chmod"
                                | "chown"
                                | "chgrp"
                                | "truncate"
                        )
                });
            if destroys {
                // With no start path, find starts in the working directory.
                let dot = [Word::literal(".")];
                let starts: Vec<&Word> = c
                    .args
                    .iter()
                    .take_while(|a| !a.text.starts_with('-'))
                    .collect();
                let starts = if starts.is_empty() {
                    dot.iter().collect()
                } else {
                    starts
                };
                for p in starts {
                    if let Some(what) = protected_target(p, c) {
                        out.push(breach(
                            "wipe-root",
                            &format!("`find` deletes or re-permissions everything under {what}"),
                        ));
                    }
                }
            }
        }
        "rsync" => {
            // `--del` is rsync's own short name for `--delete-during`.
            if flags.iter().any(|f| f.text.starts_with("--del"))
                && let Some(dest) = paths.last()
                && let Some(what) = protected_target(dest, c)
            {
                out.push(breach(
                    "wipe-root",
                    &format!("`rsync --delete` into {what} deletes what is there"),
                ));
            }
        }
        _ => {}
    }
}

/// `system-permissions`: changing the owner or mode of everything under a
/// protected directory, or of `/` itself.
fn system_permissions(
    c: &Command,
    name: &str,
    flags: &[&Word],
    paths: &[&Word],
    out: &mut Vec<Breach>,
) {
    let has = |short: char, long: &str| has_flag(flags, short, long);
    match name {
        "chmod" | "chown" | "chgrp" | "setfacl" | "chattr" | "chcon" => {
            let recursive = has('R', "--recursive");
            // The first positional of chmod/chown/chgrp is the mode or owner.
            let targets = if matches!(name, "setfacl") {
                paths
            } else {
                paths.get(1..).unwrap_or(&[])
            };
            for p in targets {
                if let Some(what) = protected_target(p, c) {
                    if recursive {
                        out.push(breach(
                            "system-permissions",
                            &format!(
                                "{} changes every file under {what}",
                                code(&format!("{name} -R"))
                            ),
                        ));
                    } else if what.starts_with("`/`") {
                        out.push(breach(
                            "system-permissions",
                            &format!("{} changes the root directory itself", code(name)),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
}

/// `disk-format`: erasing a disk, a filesystem, a partition table, a pool,
/// RAID metadata or an encryption header.
fn disk_format(c: &Command, name: &str, flags: &[&Word], paths: &[&Word], out: &mut Vec<Breach>) {
    match name {
        "mkfs" | "mke2fs" | "mkswap" | "wipefs" | "blkdiscard" | "cfdisk" | "cgdisk"
        | "mkdosfs" | "mkntfs" | "mkexfatfs" | "mkudffs"
            if !flags
                .iter()
                .any(|f| matches!(f.text.as_str(), "--help" | "-V" | "--version")) =>
        {
            out.push(breach(
                "disk-format",
                &format!("{} erases a disk or filesystem", code(&c.display())),
            ));
        }
        n if n.starts_with("mkfs.") || n.starts_with("mkfs-") => {
            out.push(breach(
                "disk-format",
                &format!("{} erases a disk or filesystem", code(&c.display())),
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
                    &format!("{} rewrites a partition table", code(&c.display())),
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
                    &format!("{} rewrites a partition table", code(&c.display())),
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
                    &format!("{} rewrites a partition table", code(&c.display())),
                ));
            }
        }
        "zpool" => {
            if let Some(sub) = paths.first()
                && matches!(sub.text.as_str(), "destroy" | "labelclear" | "create")
            {
                out.push(breach(
                    "disk-format",
                    &format!(
                        "{} destroys a storage pool or what is on its disks",
                        code(&format!("zpool {}", sub.raw))
                    ),
                ));
            }
        }
        "mdadm" if flags.iter().any(|f| f.text == "--zero-superblock") => {
            out.push(breach(
                "disk-format",
                "`mdadm --zero-superblock` erases RAID metadata",
            ));
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
        "pvcreate" | "sg_format" | "jfs_mkfs" | "mkreiserfs" => {
            out.push(breach(
                "disk-format",
                &format!("{} erases a disk or partition", code(&c.display())),
            ));
        }
        "mdadm"
            if flags.iter().any(|f| {
                f.text == "--create" || f.text == "-C" || f.text.starts_with("--create=")
            }) =>
        {
            out.push(breach(
                "disk-format",
                "`mdadm --create` writes a new array over its disks",
            ));
        }
        "cryptsetup"
            if paths.first().is_some_and(|s| {
                matches!(
                    s.text.as_str(),
                    "luksFormat" | "erase" | "luksErase" | "reencrypt" | "luksKillSlot"
                )
            }) =>
        {
            out.push(breach(
                "disk-format",
                "`cryptsetup` erases the encryption header or keys, and the data with them",
            ));
        }
        n if n.starts_with("mk")
            && n.ends_with("fs")
            && !matches!(n, "mkisofs" | "mksquashfs" | "mkcramfs") =>
        {
            out.push(breach(
                "disk-format",
                &format!("{} erases a disk or filesystem", code(&c.display())),
            ));
        }
        _ => {}
    }
}

/// Tools whose operands are files they write: a raw device or a kernel
/// control there is written (see [`write_target`]).
fn raw_writes(c: &Command, name: &str, flags: &[&Word], paths: &[&Word], out: &mut Vec<Breach>) {
    let has = |short: char, long: &str| has_flag(flags, short, long);
    match name {
        "dd" => {
            for a in &c.args {
                if let Some(target) = a.text.strip_prefix("of=") {
                    let target = Word {
                        text: target.to_owned(),
                        skeleton: a.skeleton.trim_start_matches("of=").to_owned(),
                        ..a.clone()
                    };
                    write_target(&target, c, "`dd`", true, out);
                }
            }
        }
        "shred" | "truncate" | "tee" | "wipe" | "badblocks"
            if name != "badblocks" || has('w', "--write") =>
        {
            for p in paths {
                write_target(p, c, &code(name), name == "tee", out);
            }
        }
        // The last operand of cp/install is where it writes.
        "cp" | "install" => {
            if let Some(dest) = paths.last() {
                write_target(dest, c, &code(name), false, out);
            }
        }
        _ => {}
    }
}

/// `kill-all`: killing init, or every process.
fn kill_all(c: &Command, name: &str, flags: &[&Word], paths: &[&Word], out: &mut Vec<Breach>) {
    match name {
        "systemctl"
            if paths.first().is_some_and(|s| s.text == "kill")
                && paths.iter().any(|p| {
                    matches!(p.text.as_str(), "init.scope" | "-.slice" | "system.slice")
                }) =>
        {
            out.push(breach(
                "kill-all",
                "`systemctl kill` of init or every system service",
            ));
        }
        "kill" => kill_init(&c.args, out),
        "pkill" | "killall"
            if flags.iter().any(|f| {
                f.text == "--inverse" || (!f.text.starts_with("--") && f.text[1..].contains('v'))
            }) =>
        {
            out.push(breach(
                "kill-all",
                &format!(
                    "{} kills every process except those it names",
                    code(&format!("{name} -v"))
                ),
            ));
        }
        "pkill" | "killall" => {
            for p in paths {
                if matches!(
                    p.text.as_str(),
                    "init" | "systemd" | "1" | "." | ".*" | "^" | ""
                ) {
                    out.push(breach(
                        "kill-all",
                        &format!(
                            "{} kills init or every process",
                            code(&format!("{name} {}", p.raw))
                        ),
                    ));
                }
            }
        }
        "killall5" => out.push(breach("kill-all", "`killall5` kills every process")),
        _ => {}
    }
}

/// `sysrq`: turning on the magic SysRq key.
fn sysrq(c: &Command, name: &str, out: &mut Vec<Breach>) {
    match name {
        "sysctl" if c.args.iter().any(|a| a.text.starts_with("kernel.sysrq=")) => {
            out.push(breach(
                "sysrq",
                "`sysctl kernel.sysrq=…` turns on the magic SysRq key",
            ));
        }
        _ => {}
    }
}

/// `fork-bomb`: code given to an interpreter that forks in a loop.
fn fork_bomb(c: &Command, name: &str, out: &mut Vec<Breach>) {
    if is_interpreter(name) {
        for a in &c.args {
            if FORK_CODE.is_match(&a.text) {
                out.push(breach(
                    "fork-bomb",
                    &format!("{} is given code that forks without end", code(name)),
                ));
            }
        }
    }
}

/// Whether a flag is `long`, or a cluster of short flags holding `short`.
fn has_flag(flags: &[&Word], short: char, long: &str) -> bool {
    flags.iter().any(|f| {
        f.text == long
            || (f.text.starts_with('-') && !f.text.starts_with("--") && f.text[1..].contains(short))
    })
}

static FORK_CODE: LazyLock<Regex> = LazyLock::new(|| {
    // Any fork inside a loop, in any of the interpreters: such code is never
    // routine for an agent, and telling a bounded loop from an endless one
    // is not worth the risk.
    Regex::new(r"(?s)\b(while|until|loop|for|iter|repeat|each|times)\b.*\bfork\b|\bfork\b.*\b(while|until|loop|for|iter|repeat|each|times)\b")
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

/// The guardrails on a file `how` writes: a raw device, and with `kernel`
/// the kernel's control files. The word is resolved once for both.
fn write_target(target: &Word, c: &Command, how: &str, kernel: bool, out: &mut Vec<Breach>) {
    let found = candidates(target, c);
    device_write(&found, how, out);
    if kernel {
        kernel_control(&found, out);
    }
}

fn device_write(found: &HostPaths, how: &str, out: &mut Vec<Breach>) {
    if let Some(device) = found.paths.iter().find(|p| block_device(p, found.glob)) {
        out.push(breach(
            "raw-device",
            &format!(
                "{how} writes the raw device {}, destroying what is on it",
                code(device)
            ),
        ));
    }
}

fn kernel_control(found: &HostPaths, out: &mut Vec<Breach>) {
    for t in &found.paths {
        for control in ["/proc/sysrq-trigger", "/proc/sys/kernel/sysrq"] {
            if t == control || (found.glob && paths::could_name(t, true, control)) {
                out.push(breach(
                    "sysrq",
                    &format!(
                        "writing {} reboots, crashes or freezes the host at once",
                        code(control)
                    ),
                ));
                return;
            }
        }
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
        } else if let Some(pid @ (1 | -1)) = pid_of(&args[i]) {
            let what = if pid == 1 {
                "init (PID 1)"
            } else {
                "every process (PID -1)"
            };
            out.push(breach(
                "kill-all",
                &format!("{} kills {what}", code(&format!("kill {}", args[i].raw))),
            ));
        }
        first = false;
        i += 1;
    }
}

/// The number a `kill` argument names, the way bash reads it: `01`, `+1`,
/// `$((1))` are all 1.
fn pid_of(w: &Word) -> Option<i64> {
    let t = w.text.trim();
    let t = t
        .strip_prefix("$((")
        .and_then(|x| x.strip_suffix("))"))
        .map_or(t, str::trim);
    t.strip_prefix('+').unwrap_or(t).parse::<i64>().ok()
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

/// Every place a target word can name on the host: each text it can
/// become (see [`word_values`]), brace-expanded and read by the path
/// normaliser in every directory an earlier `cd` can have led to, so
/// `/proc/self/root/etc`, `/var/run/../etc`, `~sys` and `cd /etc && … ./*`
/// name what the host would open. A directory the line does not tell is
/// read as the home, where a request with none runs and where an unquoted
/// empty `cd $D` goes, as well as somewhere unknown: `rm -rf *` there, or
/// after `cd "$D"`, can delete the home and is denied like `rm -rf ~/*`.
fn candidates(w: &Word, c: &Command) -> HostPaths {
    let mut out = HostPaths::default();
    for r in word_values(w, c) {
        for cand in expand_braces(&r.replace('"', "")) {
            if cand.is_empty() {
                continue;
            }
            // A variable's value is globbed when the word is unquoted.
            let glob = w.pattern || (!w.literal && cand.contains(['*', '?', '[']));
            out.merge(paths::resolve_in(&cand, &c.cwds, glob));
        }
    }
    out
}

/// The texts a word can become: as written, with every variable empty,
/// with `${X:-default}` defaults, and with the values the line gave its
/// variables (`D=/; … $D`).
fn word_values(w: &Word, c: &Command) -> Vec<String> {
    let mut raw = vec![w.text.clone()];
    if !w.literal {
        raw.push(w.skeleton.clone());
        raw.push(DEFAULT_VALUE.replace_all(&w.text, "$1").into_owned());
        for (name, value) in &c.vars {
            for form in [format!("${{{name}}}"), format!("${name}")] {
                if w.text.contains(&form) {
                    raw.push(w.text.replace(&form, value));
                }
            }
        }
    }
    for home in ["$HOME", "${HOME}"] {
        if w.text.starts_with(home) {
            raw.push(w.text.replacen(home, "~", 1));
        }
    }
    raw
}

static DEFAULT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?[-=]([^}]*)\}")
        .expect("the default-value pattern is valid")
});

static HOME_OF_USER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^~[a-z_][a-z0-9_.-]*$").expect("the home pattern is valid"));

/// Names the protected directory a target word can mean, if any: the word
/// can be that directory or every entry of it (`/etc`, `/e?c/*`,
/// `/proc/1/root`), a home (`~user`, `~user/*`), `/` reached by climbing
/// out of a directory only known at run time, or everything in a directory
/// that can be `/` (`/proc/1/cwd/*`, `/dev/fd/3/*`).
fn protected_target(w: &Word, c: &Command) -> Option<String> {
    for r in word_values(w, c) {
        for cand in expand_braces(&r.replace('"', "")) {
            let comps: Vec<&str> = cand.split('/').filter(|s| !s.is_empty()).collect();
            if let Some((first, rest)) = comps.split_first()
                && HOME_OF_USER.is_match(first)
                && rest.iter().all(|r| *r == "." || paths::lists_everything(r))
            {
                return Some(format!("{}, a home directory", code(first)));
            }
        }
    }
    let found = candidates(w, c);
    for p in &found.paths {
        if let Some(dir) = PROTECTED
            .iter()
            .find(|dir| paths::could_be_whole(p, found.glob, dir))
        {
            return Some(match *dir {
                "/" => "`/`, the whole filesystem".to_owned(),
                "~" => "the home directory".to_owned(),
                other => format!("{}, a system directory", code(other)),
            });
        }
    }
    for e in &found.elsewhere {
        if paths::only_climbs(&e.rest) {
            return Some(format!(
                "`/`, the whole filesystem, which enough `..` from {} reach",
                e.base.describe()
            ));
        }
        let whole = e
            .rest
            .split('/')
            .filter(|r| !r.is_empty())
            .all(|r| r == "." || (found.glob && paths::lists_everything(r)));
        if e.base.can_be_root() && whole {
            return Some(format!(
                "everything in {}, which can be `/`",
                e.base.describe()
            ));
        }
    }
    None
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
    fn globs() {
        assert!(paths::could_name("/e*", true, "/etc"));
        assert!(paths::could_name("/[e]tc", true, "/etc"));
        assert!(paths::could_name("/[a-f]tc", true, "/etc"));
        assert!(!paths::could_name("/[!e]tc", true, "/etc"));
        assert!(paths::could_name("/u?r", true, "/usr"));
        assert!(!paths::could_name("/*", true, "/usr/bin"));
        assert!(paths::could_name(
            "/proc/sysrq-trig*",
            true,
            "/proc/sysrq-trigger"
        ));
        assert!(!paths::could_name("/srv/*", true, "/etc"));
        assert!(block_device("/dev/sd?", true));
        assert!(block_device("/d?v/sda", true));
        assert!(!block_device("/dev/null", true));
        assert!(!block_device("/dev/sd?", false));
    }

    #[test]
    fn glob_tails() {
        assert!(paths::could_be_whole("/*", true, "/"));
        assert!(paths::could_be_whole("/usr/*", true, "/usr"));
        assert!(paths::could_be_whole("/etc", false, "/etc"));
        assert!(paths::could_be_whole("/.*", true, "/"));
    }

    #[test]
    fn fork_code() {
        assert!(FORK_CODE.is_match("fork while fork"));
        assert!(FORK_CODE.is_match("import os\nwhile True: os.fork()"));
        assert!(!FORK_CODE.is_match("print(1)"));
    }
}
