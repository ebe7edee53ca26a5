//! Paths as the host will resolve them: the one normaliser for every path
//! word the policy judges.
//!
//! This module owns turning a path word (quotes already removed, with the
//! directory the line runs in when it is known) into what a Debian host
//! would open: `//`, `.` and `..` folded, `~` and `~user` expanded, Debian's
//! fixed links followed (`/bin` is `/usr/bin`, `/var/run` is `/run`,
//! `/dev/fd` is `/proc/self/fd`) and the kernel's magic ones
//! (`/proc/<pid>/root` is `/`, for Jarvis runs on the host), and saying
//! when a word can name a place the line does not tell (`/proc/1/cwd`, an
//! open descriptor, the home of an account not in the table). It also owns
//! glob matching over paths: whether a glob can name a path or everything
//! in a directory, whether it can name a path one of the knowledge base's
//! sensitive-path patterns matches ([`PathRegex`]), and the `paths`
//! patterns of policy rules ([`PathGlob`]).
//!
//! It must never do IO: the links and homes are a fixed table of what a
//! Debian host has, not what this machine has. A `..` after a link is read
//! both ways, lexically (as `cd` without `-P` reads it) and through the
//! link (as the kernel does), and callers judge the worst reading. It never
//! panics, and what it cannot follow it calls unknown rather than guessing.

use std::collections::{HashSet, VecDeque};

use regex_syntax::hir::{Class as HirClass, Hir, HirKind, Look};

/// The home of the account the line runs as, whose place the line does not
/// tell: `~` and paths under it (`~/.ssh/id_rsa`) stand for it.
pub const HOME: &str = "~";

/// How many readings one word is followed through; only globs branch, and
/// only contrived ones this much. Beyond it the rest is unknown.
const MAX_READINGS: usize = 32;

/// The homes of Debian's fixed system accounts (base-passwd and apt), for
/// `~user`.
const FIXED_HOMES: &[(&str, &[&str])] = &[
    ("root", &["/root"]),
    ("daemon", &["/usr/sbin"]),
    ("bin", &["/bin"]),
    ("sys", &["/dev"]),
    ("sync", &["/bin"]),
    ("games", &["/usr/games"]),
    ("man", &["/var/cache/man"]),
    ("lp", &["/var/spool/lpd"]),
    ("mail", &["/var/mail"]),
    ("news", &["/var/spool/news"]),
    ("uucp", &["/var/spool/uucp"]),
    ("proxy", &["/bin"]),
    ("www-data", &["/var/www"]),
    ("backup", &["/var/backups"]),
    ("list", &["/var/list"]),
    ("irc", &["/run/ircd", "/var/run/ircd"]),
    ("gnats", &["/var/lib/gnats"]),
    ("nobody", &["/nonexistent"]),
    ("_apt", &["/nonexistent"]),
];

/// Accounts that packages create with a home that differs between Debian
/// releases: the homes they have had, and somewhere unknown besides.
const PACKAGE_HOMES: &[(&str, &[&str])] = &[
    ("messagebus", &["/nonexistent", "/var/run/dbus"]),
    ("sshd", &["/run/sshd", "/var/run/sshd"]),
    ("systemd-network", &["/", "/run/systemd"]),
    ("systemd-resolve", &["/", "/run/systemd"]),
    ("systemd-timesync", &["/", "/run/systemd"]),
];

/// Links every Debian host has: usrmerge, the `/var` compatibility links,
/// and the kernel's `/dev/fd` family. A path through one is a path through
/// its target.
const LINKS: &[(&str, &str)] = &[
    ("/bin", "/usr/bin"),
    ("/sbin", "/usr/sbin"),
    ("/lib", "/usr/lib"),
    ("/lib32", "/usr/lib32"),
    ("/lib64", "/usr/lib64"),
    ("/libx32", "/usr/libx32"),
    ("/var/run", "/run"),
    ("/var/lock", "/run/lock"),
    ("/var/spool/mail", "/var/mail"),
    ("/etc/mtab", "/proc/self/mounts"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/core", "/proc/kcore"),
    ("/proc/mounts", "/proc/self/mounts"),
    ("/proc/net", "/proc/self/net"),
];

/// Entries of sysfs that are links into `/sys/devices` (`*` is any name):
/// a `..` after one climbs a device tree the line does not show.
const SYSFS_LINKS: &[&[&str]] = &[
    &["sys", "class", "*", "*"],
    &["sys", "block", "*"],
    &["sys", "bus", "*", "devices", "*"],
    &["sys", "dev", "*", "*"],
];

/// What a path word names on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPaths {
    /// Every path it can name, folded: absolute (`/etc/shadow`) or in the
    /// home of the account the line runs as (`~/.ssh`). Glob characters
    /// stay when [`HostPaths::glob`] says the word is a glob.
    pub paths: Vec<String>,
    /// Places it can name that the line does not tell.
    pub elsewhere: Vec<Elsewhere>,
    /// Standard streams it names (`/dev/stdout` is 1): a terminal or a
    /// pipe, no file.
    pub streams: Vec<u8>,
    /// The paths are globs.
    pub glob: bool,
}

/// A place a word can name that the line does not tell, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Elsewhere {
    /// Which place.
    pub base: Unknown,
    /// The rest of the word after it, folded: `x/y`, `../..`, or empty for
    /// the place itself.
    pub rest: String,
}

/// Kinds of places only known at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unknown {
    /// The working directory, when the line does not tell it: a request
    /// with none, or `cd "$D"`.
    WorkingDirectory,
    /// The home of an account whose home is not in the fixed table, or the
    /// parent of a home.
    Home,
    /// Another process's working directory (`/proc/1/cwd`); init's is `/`.
    ProcessDirectory,
    /// What an open descriptor refers to (`/dev/fd/3`), which can be any
    /// file or directory, `/` included.
    OpenFile,
    /// A device directory in `/sys/devices` that a sysfs link leads to.
    DeviceDirectory,
    /// A glob with more readings than are followed.
    TooMany,
}

impl Unknown {
    /// The place in words, for reasons.
    pub fn describe(self) -> &'static str {
        match self {
            Unknown::WorkingDirectory => "a working directory only known at run time",
            Unknown::Home => "a home directory the line does not name",
            Unknown::ProcessDirectory => "another process's working directory",
            Unknown::OpenFile => "whatever an open file descriptor refers to",
            Unknown::DeviceDirectory => "a device directory under /sys/devices",
            Unknown::TooMany => "one of more places than are followed",
        }
    }

    /// Whether the place can be any directory, `/` included, whatever the
    /// request says: what deleting everything in it can destroy is unbounded.
    pub fn can_be_root(self) -> bool {
        matches!(
            self,
            Unknown::ProcessDirectory | Unknown::OpenFile | Unknown::TooMany
        )
    }
}

impl HostPaths {
    /// Whether every place it names is known.
    pub fn is_known(&self) -> bool {
        self.elsewhere.is_empty()
    }

    /// Adds another word's or directory's readings to these.
    pub fn merge(&mut self, other: HostPaths) {
        self.glob |= other.glob;
        for p in other.paths {
            if !self.paths.contains(&p) {
                self.paths.push(p);
            }
        }
        for e in other.elsewhere {
            if !self.elsewhere.contains(&e) {
                self.elsewhere.push(e);
            }
        }
        for s in other.streams {
            if !self.streams.contains(&s) {
                self.streams.push(s);
            }
        }
    }
}

/// Resolves a path word against every directory the line can be in (`None`
/// for one it does not tell).
pub fn resolve_in(text: &str, cwds: &[Option<String>], glob: bool) -> HostPaths {
    resolve_all(text, cwds, glob, true)
}

/// [`resolve_in`] where a directory the line does not tell is only unknown,
/// not also the home: for questions about what a relative name holds,
/// where guessing the home would make every `cat *` a read of the home.
pub fn resolve_in_known_dirs(text: &str, cwds: &[Option<String>], glob: bool) -> HostPaths {
    resolve_all(text, cwds, glob, false)
}

fn resolve_all(text: &str, cwds: &[Option<String>], glob: bool, guess: bool) -> HostPaths {
    let mut out = HostPaths {
        glob,
        ..HostPaths::default()
    };
    if cwds.is_empty() {
        out.merge(resolve_with(text, None, glob, guess));
    }
    for cwd in cwds {
        out.merge(resolve_with(text, cwd.as_deref(), glob, guess));
    }
    out
}

/// Resolves one path word in one directory (`None`: one the line does not
/// tell, which is the home where a request names none, or somewhere else).
///
/// `glob` says the word's glob characters are live: they may match one of
/// the table's links or magic names (`/proc/*/root` can be `/`).
pub fn resolve(text: &str, cwd: Option<&str>, glob: bool) -> HostPaths {
    resolve_with(text, cwd, glob, true)
}

fn resolve_with(text: &str, cwd: Option<&str>, glob: bool, guess: bool) -> HostPaths {
    let mut out = HostPaths {
        glob,
        ..HostPaths::default()
    };
    if text.is_empty() {
        return out;
    }
    if let Some(plain) = plain_path(text, cwd) {
        out.paths.push(plain);
        return out;
    }
    for (base, rest) in bases(text, cwd, glob, guess) {
        match base {
            Base::Path(start) => {
                // Without `..` a link is only another name for its target;
                // with one, the text and the kernel can climb to different
                // places, and both are readings.
                let climbs =
                    rest.iter().any(|c| c == "..") || start.split('/').any(|part| part == "..");
                if climbs && let Some(lexical) = fold_from(&start, &rest) {
                    push_unique(&mut out.paths, lexical);
                }
                let walker = Walker { cwd, glob, guess };
                let start = walker.walk_abs(&start);
                walker.finish(start, &rest, &mut out);
            }
            Base::Elsewhere(u) => {
                let e = Elsewhere {
                    base: u,
                    rest: fold_rest(&[], &rest).join("/"),
                };
                if !out.elsewhere.contains(&e) {
                    out.elsewhere.push(e);
                }
            }
        }
    }
    out
}

/// Top-level directories under which the table has links or magic names.
const SPECIAL_TOPS: &[&str] = &[
    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "var", "etc", "sys",
];

/// The word itself, when it is an absolute path (or a relative one in a
/// known absolute directory) that the walk would leave as it is: already
/// folded, and under a top-level directory the table has nothing in. Most
/// words are such paths, and they need no walk.
fn plain_path(text: &str, cwd: Option<&str>) -> Option<String> {
    let joined = if text.starts_with('/') {
        text.to_owned()
    } else if let Some(dir) = cwd.filter(|d| d.starts_with('/'))
        && !text.starts_with('~')
        && !text.starts_with('$')
    {
        if dir == "/" {
            format!("/{text}")
        } else {
            format!("{dir}/{text}")
        }
    } else {
        return None;
    };
    let mut comps = joined[1..].split('/');
    let first = comps.next()?;
    let plain = !first.is_empty()
        && !SPECIAL_TOPS.contains(&first)
        && !has_glob(first)
        && !matches!(first, "." | "..")
        && comps.all(|c| !matches!(c, "" | "." | ".."));
    plain.then_some(joined)
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// Where a word starts, before its components are followed.
enum Base {
    /// An absolute path or one in the home (`~`, `~/x`).
    Path(String),
    Elsewhere(Unknown),
}

/// The starting places of a word and its components after them.
fn bases(text: &str, cwd: Option<&str>, glob: bool, guess: bool) -> Vec<(Base, Vec<String>)> {
    let comps = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(rest) = text.strip_prefix('/') {
        return vec![(Base::Path("/".into()), comps(rest))];
    }
    let (head, tail) = text.split_once('/').unwrap_or((text, ""));
    let home_var = matches!(head, "$HOME" | "${HOME}");
    if let Some(user) = head.strip_prefix('~').or(home_var.then_some("")) {
        let rest = comps(tail);
        match user {
            "" => return vec![(Base::Path(HOME.into()), rest)],
            // `~+` is the working directory; `~-` and `~N` are directories
            // of the shell's history and stack.
            "+" => return relative(cwd, rest, guess),
            _ if user.starts_with(['+', '-']) || user.chars().all(|c| c.is_ascii_digit()) => {
                return vec![(Base::Elsewhere(Unknown::WorkingDirectory), rest)];
            }
            _ if is_user_name(user) && !(glob && has_glob(user)) => {
                let mut out = Vec::new();
                if let Some((_, homes)) = FIXED_HOMES.iter().find(|(u, _)| *u == user) {
                    for h in *homes {
                        out.push((Base::Path((*h).to_owned()), rest.clone()));
                    }
                    return out;
                }
                if let Some((_, homes)) = PACKAGE_HOMES.iter().find(|(u, _)| *u == user) {
                    for h in *homes {
                        out.push((Base::Path((*h).to_owned()), rest.clone()));
                    }
                } else {
                    out.push((Base::Path(format!("/home/{user}")), rest.clone()));
                }
                out.push((Base::Elsewhere(Unknown::Home), rest));
                return out;
            }
            // Not a name the shell looks up: the word is a relative name
            // that starts with `~`.
            _ => {}
        }
    }
    relative(cwd, comps(text), guess)
}

fn relative(cwd: Option<&str>, rest: Vec<String>, guess: bool) -> Vec<(Base, Vec<String>)> {
    match cwd {
        Some(dir) if dir.starts_with('/') || dir == HOME || dir.starts_with("~/") => {
            vec![(Base::Path(dir.to_owned()), rest)]
        }
        _ if !guess => vec![(Base::Elsewhere(Unknown::WorkingDirectory), rest)],
        // A directory the line does not tell: where a request with none
        // runs (the home), or anywhere.
        _ => vec![
            (Base::Path(HOME.into()), rest.clone()),
            (Base::Elsewhere(Unknown::WorkingDirectory), rest),
        ],
    }
}

/// A login name as `getpwnam` would be asked for it.
fn is_user_name(user: &str) -> bool {
    let body = user.strip_suffix('$').unwrap_or(user);
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?' | '['))
        && !body.starts_with('-')
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The lexical reading: components folded as text on a starting path, as
/// `cd` without `-P` folds them. `None` when `..` climbs above the home,
/// whose parent the text alone cannot say.
fn fold_from(start: &str, rest: &[String]) -> Option<String> {
    let mut comps: Vec<&str> = Vec::new();
    let floor = usize::from(start == HOME || start.starts_with("~/"));
    let all = start
        .split('/')
        .skip(floor)
        .chain(rest.iter().map(String::as_str));
    if floor == 1 {
        comps.push(HOME);
    }
    for c in all {
        match c {
            "" | "." => {}
            ".." if comps.len() > floor => {
                comps.pop();
            }
            ".." if floor == 1 => return None,
            ".." => {}
            other => comps.push(other),
        }
    }
    Some(display(comps.iter().copied()))
}

/// Folds `.` and `..` in a rest that hangs off an unknown place, keeping
/// the `..` that climb out of it.
fn fold_rest(start: &[String], rest: &[String]) -> Vec<String> {
    let mut out: Vec<String> = start.to_vec();
    for c in rest {
        match c.as_str() {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| l != "..") => {
                out.pop();
            }
            other => out.push(other.to_owned()),
        }
    }
    out
}

/// Components as a path: `/` for none, `~/x` when the first is the home.
fn display<'a>(comps: impl Iterator<Item = &'a str>) -> String {
    let comps: Vec<&str> = comps.collect();
    match comps.first() {
        Some(&HOME) => {
            let mut s = HOME.to_owned();
            for c in &comps[1..] {
                s.push('/');
                s.push_str(c);
            }
            s
        }
        _ => format!("/{}", comps.join("/")),
    }
}

/// What a directory on the walk is, where it matters for what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Dir,
    Home,
    Proc,
    /// `/proc/<pid>`, `/proc/self`, `/proc/<pid>/task/<tid>`; `own` when it
    /// is the process that opens the path.
    Process {
        own: bool,
    },
    /// `/proc/thread-self`, whose parent is `/proc/self/task`.
    ThreadSelf,
    Tasks {
        own: bool,
    },
    Fds,
    /// `/proc/<pid>/fd/N`: what the descriptor refers to; `Some` for the
    /// standard streams 0, 1 and 2.
    Fd(Option<u8>),
    /// A sysfs link into `/sys/devices`.
    SysfsLink,
}

/// One reading of a word during the walk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Reading {
    /// Components from `/` (or from the home), each with what it is.
    At(Vec<(String, Kind)>),
    /// A place the line does not tell, and the components after it.
    Elsewhere(Unknown, Vec<String>),
}

struct Walker<'a> {
    cwd: Option<&'a str>,
    glob: bool,
    /// A directory the line does not tell is also read as the home.
    guess: bool,
}

impl Walker<'_> {
    /// The readings of an absolute (or home) path, links followed.
    fn walk_abs(&self, path: &str) -> Vec<Reading> {
        let (mut start, path) = match path.strip_prefix(HOME) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                (vec![Reading::At(vec![(HOME.to_owned(), Kind::Home)])], rest)
            }
            _ => (vec![Reading::At(Vec::new())], path),
        };
        let literal = Walker {
            cwd: self.cwd,
            glob: false,
            guess: self.guess,
        };
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for r in &start {
                literal.step(r, c, &mut next);
            }
            start = next;
        }
        start
    }

    fn finish(&self, mut readings: Vec<Reading>, rest: &[String], out: &mut HostPaths) {
        for (i, c) in rest.iter().enumerate() {
            let mut next: Vec<Reading> = Vec::new();
            for r in &readings {
                let mut stepped = Vec::new();
                self.step(r, c, &mut stepped);
                for s in stepped {
                    if !next.contains(&s) {
                        next.push(s);
                    }
                }
            }
            if next.len() > MAX_READINGS {
                next.truncate(MAX_READINGS);
                next.push(Reading::Elsewhere(
                    Unknown::TooMany,
                    fold_rest(&[], &rest[i + 1..]),
                ));
            }
            readings = next;
        }
        for r in readings {
            match r {
                Reading::At(stack) => {
                    if let Some((_, Kind::Fd(fd))) = stack.last() {
                        match fd {
                            Some(n) => {
                                if !out.streams.contains(n) {
                                    out.streams.push(*n);
                                }
                                continue;
                            }
                            None => {
                                let e = Elsewhere {
                                    base: Unknown::OpenFile,
                                    rest: String::new(),
                                };
                                if !out.elsewhere.contains(&e) {
                                    out.elsewhere.push(e);
                                }
                            }
                        }
                    }
                    push_unique(
                        &mut out.paths,
                        display(stack.iter().map(|(c, _)| c.as_str())),
                    );
                }
                Reading::Elsewhere(base, rest) => {
                    let e = Elsewhere {
                        base,
                        rest: rest.join("/"),
                    };
                    if !out.elsewhere.contains(&e) {
                        out.elsewhere.push(e);
                    }
                }
            }
        }
    }

    /// Whether a component can be `name`.
    fn is(&self, comp: &str, name: &str) -> bool {
        if self.glob && has_glob(comp) {
            comp_matches(&tokens(comp, true), name)
        } else {
            comp == name
        }
    }

    /// Whether a component can be a process or descriptor number.
    fn number(&self, comp: &str) -> bool {
        if self.glob && has_glob(comp) {
            could_be_number(&tokens(comp, true))
        } else {
            !comp.is_empty() && comp.chars().all(|c| c.is_ascii_digit())
        }
    }

    fn exact(&self, comp: &str) -> bool {
        !(self.glob && has_glob(comp))
    }

    fn step(&self, r: &Reading, comp: &str, out: &mut Vec<Reading>) {
        let stack = match r {
            Reading::Elsewhere(u, rest) => {
                out.push(Reading::Elsewhere(*u, fold_rest(rest, &[comp.to_owned()])));
                return;
            }
            Reading::At(stack) => stack,
        };
        match comp {
            "" | "." => out.push(r.clone()),
            ".." => self.parent(stack, out),
            _ => self.child(stack, comp, out),
        }
    }

    fn parent(&self, stack: &[(String, Kind)], out: &mut Vec<Reading>) {
        let mut popped = stack.to_vec();
        match stack.last() {
            None => out.push(Reading::At(Vec::new())),
            Some((_, Kind::Home)) if stack.len() == 1 => {
                // The parent of a home: /home for people, / for root.
                out.extend(self.walk_abs("/home"));
                out.push(Reading::At(Vec::new()));
                out.push(Reading::Elsewhere(Unknown::Home, vec!["..".into()]));
            }
            Some((_, Kind::ThreadSelf)) => out.extend(self.walk_abs("/proc/self/task")),
            Some((_, Kind::Fd(_))) => {
                // The kernel climbs out of what the descriptor refers to;
                // the text climbs back to the descriptor directory.
                popped.pop();
                out.push(Reading::At(popped));
                out.push(Reading::Elsewhere(Unknown::OpenFile, vec!["..".into()]));
            }
            Some((_, Kind::SysfsLink)) => {
                popped.pop();
                out.push(Reading::At(popped));
                out.push(Reading::Elsewhere(
                    Unknown::DeviceDirectory,
                    vec!["..".into()],
                ));
            }
            Some(_) => {
                popped.pop();
                out.push(Reading::At(popped));
            }
        }
    }

    fn child(&self, stack: &[(String, Kind)], comp: &str, out: &mut Vec<Reading>) {
        let parent = stack.last().map(|(_, k)| *k);
        let exact = self.exact(comp);
        let mut special = false;
        let with = |kind: Kind| {
            let mut s = stack.to_vec();
            s.push((comp.to_owned(), kind));
            Reading::At(s)
        };
        match parent {
            None if self.is(comp, "proc") => {
                out.push(with(Kind::Proc));
                special = exact;
            }
            Some(Kind::Proc) => {
                if self.is(comp, "self") {
                    out.push(with(Kind::Process { own: true }));
                    special = exact;
                }
                if self.is(comp, "thread-self") {
                    out.push(with(Kind::ThreadSelf));
                    special = exact;
                }
                if self.number(comp) {
                    out.push(with(Kind::Process { own: false }));
                    special = exact;
                }
            }
            Some(Kind::Process { own }) => {
                special = self.process_child(stack, comp, own, out);
            }
            Some(Kind::ThreadSelf) => {
                special = self.process_child(stack, comp, true, out);
            }
            Some(Kind::Tasks { own }) if self.number(comp) => {
                out.push(with(Kind::Process { own }));
                special = exact;
            }
            Some(Kind::Fds) if self.number(comp) => {
                let fd = match comp {
                    "0" => Some(0),
                    "1" => Some(1),
                    "2" => Some(2),
                    _ => None,
                };
                if exact {
                    out.push(with(Kind::Fd(fd)));
                    special = true;
                } else {
                    for n in 0..3u8 {
                        if self.is(comp, &n.to_string()) {
                            out.push(with(Kind::Fd(Some(n))));
                        }
                    }
                    out.push(with(Kind::Fd(None)));
                }
            }
            Some(Kind::Fd(_)) => {
                // The kernel follows the descriptor to what it refers to.
                out.push(Reading::Elsewhere(Unknown::OpenFile, vec![comp.to_owned()]));
            }
            _ => {}
        }
        if special {
            return;
        }
        let mut names: Vec<&str> = stack.iter().map(|(c, _)| c.as_str()).collect();
        names.push(comp);
        let mut linked = false;
        for (link, target) in LINKS {
            let mut parts = link.split('/').filter(|c| !c.is_empty());
            let same = names
                .iter()
                .all(|n| parts.next().is_some_and(|p| self.is(n, p)))
                && parts.next().is_none();
            if same {
                out.extend(self.walk_abs(target));
                linked = true;
            }
        }
        if linked && names.iter().all(|n| self.exact(n)) {
            return;
        }
        let sysfs = SYSFS_LINKS.iter().any(|pattern| {
            pattern.len() == names.len()
                && pattern
                    .iter()
                    .zip(&names)
                    .all(|(p, n)| *p == "*" || self.is(n, p))
        });
        out.push(with(if sysfs { Kind::SysfsLink } else { Kind::Dir }));
    }

    /// Children of a process directory; true when the component can only
    /// be the magic name it matched.
    fn process_child(
        &self,
        stack: &[(String, Kind)],
        comp: &str,
        own: bool,
        out: &mut Vec<Reading>,
    ) -> bool {
        let exact = self.exact(comp);
        let with = |kind: Kind| {
            let mut s = stack.to_vec();
            s.push((comp.to_owned(), kind));
            Reading::At(s)
        };
        let mut special = false;
        if self.is(comp, "root") {
            // Jarvis runs on the host: every process's root is the host's.
            out.push(Reading::At(Vec::new()));
            special = exact;
        }
        if self.is(comp, "cwd") {
            if own {
                // The working directory of whoever opens the path: the
                // line's own.
                match self.cwd {
                    Some(dir) => out.extend(self.walk_abs(dir)),
                    None => {
                        if self.guess {
                            out.extend(self.walk_abs(HOME));
                        }
                        out.push(Reading::Elsewhere(Unknown::WorkingDirectory, Vec::new()));
                    }
                }
            } else {
                out.push(Reading::Elsewhere(Unknown::ProcessDirectory, Vec::new()));
            }
            special = exact;
        }
        if self.is(comp, "fd") {
            out.push(with(Kind::Fds));
            special = exact;
        }
        if self.is(comp, "task") {
            out.push(with(Kind::Tasks { own }));
            special = exact;
        }
        special
    }
}

/// Folds `//`, `/./` and `/..` as text, keeping a `~` or `~user` prefix and
/// following no link: what `cd` without `-P` does with a path, and no more.
pub fn fold_lexically(path: &str) -> String {
    let (root, rest) = if let Some(r) = path.strip_prefix('/') {
        ("/", r)
    } else if let Some(i) = path.find('/') {
        (&path[..=i], &path[i + 1..])
    } else {
        return path.to_owned();
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in rest.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = root.to_owned();
    out.push_str(&parts.join("/"));
    if out.len() > 1 && out.ends_with('/') && root != "/" {
        out.pop();
    }
    out
}

// ---------------------------------------------------------------------------
// Globs over paths
// ---------------------------------------------------------------------------

/// One piece of a glob component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `[…]`
    Class(CharClass),
    /// `*`
    Star,
    /// An extglob group, or anything else this reader does not follow: any
    /// name, hidden ones too.
    Anything,
}

/// A bracket expression.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn has(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != self.negated
    }
}

/// The pieces of one path component; every character is literal when the
/// word is no glob.
fn tokens(comp: &str, glob: bool) -> Vec<Tok> {
    let chars: Vec<char> = comp.chars().collect();
    if !glob {
        return chars.into_iter().map(Tok::Lit).collect();
    }
    // `@(a|b)`, `!(x)`, `+(…)`, `*(…)`, `?(…)` under extglob: read as any
    // name rather than guessed at.
    if chars
        .windows(2)
        .any(|w| matches!(w[0], '@' | '!' | '+' | '*' | '?') && w[1] == '(')
    {
        return vec![Tok::Anything];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '[' => match bracket(&chars[i..]) {
                Some((class, len)) => {
                    out.push(Tok::Class(class));
                    i += len;
                }
                None => {
                    out.push(Tok::Lit('['));
                    i += 1;
                }
            },
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// A bracket expression at the start of `chars` (which begins with `[`),
/// with its length; `None` when no `]` closes it, so the `[` is literal.
fn bracket(chars: &[char]) -> Option<(CharClass, usize)> {
    let mut i = 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((CharClass { negated, ranges }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars.get(j + 1) == Some(&']'));
            if let Some(end) = end {
                let name: String = chars[i + 2..end].iter().collect();
                ranges.extend(posix_class(&name));
                i = end + 2;
                continue;
            }
        }
        if chars.get(i + 1) == Some(&'-')
            && let Some(&hi) = chars.get(i + 2)
            && hi != ']'
        {
            if c <= hi {
                ranges.push((c, hi));
            }
            i += 3;
            continue;
        }
        ranges.push((c, c));
        i += 1;
    }
}

/// The ASCII members of a POSIX class; a class this reader does not know
/// is read as every character.
fn posix_class(name: &str) -> Vec<(char, char)> {
    match name {
        "alpha" => vec![('A', 'Z'), ('a', 'z')],
        "digit" => vec![('0', '9')],
        "alnum" => vec![('0', '9'), ('A', 'Z'), ('a', 'z')],
        "word" => vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        "upper" => vec![('A', 'Z')],
        "lower" => vec![('a', 'z')],
        "xdigit" => vec![('0', '9'), ('A', 'F'), ('a', 'f')],
        "space" => vec![('\t', '\r'), (' ', ' ')],
        "blank" => vec![('\t', '\t'), (' ', ' ')],
        "punct" => vec![('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        _ => vec![('\0', char::MAX)],
    }
}

/// Whether a glob component matches a name, as the shell matches file
/// names: `*` and `?` never match a leading `.` (no `dotglob`).
fn comp_matches(toks: &[Tok], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    // reach[j]: the first i tokens can match the first j characters.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for (i, t) in toks.iter().enumerate() {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            if !reach[j] {
                continue;
            }
            let leading = i == 0 && j == 0;
            match t {
                Tok::Star | Tok::Anything => {
                    next[j] = true;
                    let mut k = j;
                    while k < name.len() {
                        if k == 0 && name[0] == '.' && *t == Tok::Star {
                            break;
                        }
                        k += 1;
                        next[k] = true;
                    }
                }
                Tok::One => {
                    if j < name.len() && !(leading && name[j] == '.') {
                        next[j + 1] = true;
                    }
                }
                Tok::Class(c) => {
                    if j < name.len() && c.has(name[j]) {
                        next[j + 1] = true;
                    }
                }
                Tok::Lit(c) => {
                    if j < name.len() && name[j] == *c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[name.len()]
}

/// Whether a glob component can match some string of digits.
fn could_be_number(toks: &[Tok]) -> bool {
    !toks.is_empty()
        && toks.iter().all(|t| match t {
            Tok::Lit(c) => c.is_ascii_digit(),
            Tok::Class(c) => ('0'..='9').any(|d| c.has(d)),
            Tok::One | Tok::Star | Tok::Anything => true,
        })
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// Whether `reading` (a glob when `glob`) can be exactly the literal `path`.
pub fn could_name(reading: &str, glob: bool, path: &str) -> bool {
    let (r, p) = (components(reading), components(path));
    r.len() == p.len()
        && reading.starts_with('/') == path.starts_with('/')
        && r.iter()
            .zip(&p)
            .all(|(rc, pc)| comp_matches(&tokens(rc, glob), pc))
}

/// Whether `reading` can be `dir` or a path beneath it.
pub fn could_lie_within(reading: &str, glob: bool, dir: &str) -> bool {
    let (r, d) = (components(reading), components(dir));
    r.len() >= d.len()
        && reading.starts_with('/') == dir.starts_with('/')
        && r.iter()
            .zip(&d)
            .all(|(rc, dc)| comp_matches(&tokens(rc, glob), dc))
}

/// Whether `reading` can be `dir` itself or every entry of it, at any depth
/// (`/etc`, `/etc/*`, `/e?c/.*`, `/usr/*/*`): what deleting or
/// re-permissioning it recursively reaches is all of `dir`.
pub fn could_be_whole(reading: &str, glob: bool, dir: &str) -> bool {
    let (r, d) = (components(reading), components(dir));
    r.len() >= d.len()
        && reading.starts_with('/') == dir.starts_with('/')
        && r.iter()
            .zip(&d)
            .all(|(rc, dc)| comp_matches(&tokens(rc, glob), dc))
        && r[d.len()..].iter().all(|c| glob && lists_everything(c))
}

/// Whether a component matches every name of a directory, or every hidden
/// one: `*`, `?*`, `.*`, `.[!.]*`, `[!.]*`.
pub fn lists_everything(comp: &str) -> bool {
    let toks = tokens(comp, true);
    let body = match toks.first() {
        Some(Tok::Lit('.')) => &toks[1..],
        _ => &toks[..],
    };
    !body.is_empty()
        && body.iter().any(|t| matches!(t, Tok::Star | Tok::Anything))
        && body
            .iter()
            .all(|t| matches!(t, Tok::Star | Tok::Anything | Tok::One | Tok::Class(_)))
}

/// Whether a rest of components only climbs (`..`, `../..`).
pub fn only_climbs(rest: &str) -> bool {
    !rest.is_empty() && rest.split('/').all(|c| c == "..")
}

/// Whether any directory component of `reading` (all but the last) can be
/// named `name`: `/h?me/*/.s?h/x` can be in a `.ssh` directory.
pub fn could_be_in_dir_named(reading: &str, glob: bool, name: &str) -> bool {
    let comps = components(reading);
    comps.len() > 1
        && comps[..comps.len() - 1]
            .iter()
            .any(|c| comp_matches(&tokens(c, glob), name))
}

// ---------------------------------------------------------------------------
// Globs against the knowledge base's regular expressions
// ---------------------------------------------------------------------------

/// How many states a compiled pattern may have; the knowledge base's have
/// a few dozen. A larger one is answered "could match" (fail closed).
const MAX_NFA_STATES: usize = 20_000;
/// How many steps one glob question may take before it is answered "could
/// match".
const MAX_STEPS: usize = 200_000;
/// How many literal characters of a pattern a glob's last component must
/// spell itself before its `*` may stand for more of them.
const SPELT: u8 = 3;
/// Repetition counts beyond this are read as unbounded (a wider pattern).
const MAX_REPEAT: u32 = 16;

#[derive(Debug, Clone)]
enum NState {
    /// One character of `set`; `literal` when the pattern spells it out
    /// (a literal or a class of at most two characters).
    Char {
        set: Vec<(char, char)>,
        literal: bool,
        next: usize,
    },
    Split(usize, usize),
    /// `^` (`start`) or `$`; other assertions always pass.
    Look {
        start: bool,
        end: bool,
        next: usize,
    },
    Match,
}

/// A sensitive-path regular expression, compiled to answer whether a glob
/// reading can name a path it matches.
///
/// In a directory component a glob character can stand for anything. In
/// the last component `?` and `[…]` still can, but `*` stands for the
/// pattern's own letters only after the component spelt at least three of
/// them (`sha*` for `shadow`, `id_*` for `id_rsa`, `secrets.*`), or where
/// the pattern leaves the name open (`*.pem` for `\.pem$`): `*.txt` is not
/// read as `secrets.txt`, which would make every `cat *.txt` a secret read.
#[derive(Debug, Clone)]
pub struct PathRegex {
    states: Vec<NState>,
    start: usize,
    /// For each state, the states that consume, assert or accept reachable
    /// from it through splits alone, so a search never walks a split twice.
    eps: Vec<Vec<u32>>,
}

impl PathRegex {
    /// Compiles a pattern; `None` when it does not parse or is too large,
    /// which callers must read as "could match anything".
    pub fn new(pattern: &str) -> Option<PathRegex> {
        PathRegex::any_of(&[pattern])
    }

    /// Compiles patterns into one that matches where any of them does: one
    /// glob question over many patterns walks the glob once. `None` as for
    /// [`PathRegex::new`].
    pub fn any_of(patterns: &[&str]) -> Option<PathRegex> {
        let mut b = NfaBuilder { states: Vec::new() };
        let accept = b.push(NState::Match);
        let mut entries = Vec::new();
        for p in patterns {
            let hir = regex_syntax::parse(p).ok()?;
            entries.push(b.compile(&hir, accept, 0)?);
        }
        let mut body = *entries.last()?;
        for e in entries.iter().rev().skip(1) {
            body = b.push(NState::Split(*e, body));
        }
        // Unanchored: the match may start anywhere.
        let any = b.push(NState::Split(0, body));
        let skip = b.push(NState::Char {
            set: vec![('\0', char::MAX)],
            literal: false,
            next: any,
        });
        if let Some(NState::Split(a, _)) = b.states.get_mut(any) {
            *a = skip;
        }
        if b.states.len() > MAX_NFA_STATES {
            return None;
        }
        let eps = split_closures(&b.states);
        Some(PathRegex {
            states: b.states,
            start: any,
            eps,
        })
    }

    /// Whether a glob reading (absolute, `~/…`, or a relative rest) can
    /// name a path the pattern matches, with `*` in the last component
    /// read as the type says.
    pub fn could_match(&self, reading: &str, glob: bool) -> bool {
        self.search(reading, glob, true)
    }

    /// Whether a glob reading can name a path the pattern matches, every
    /// `*` standing for any name: for writes, where a wide glob is itself
    /// the danger.
    pub fn could_match_any(&self, reading: &str, glob: bool) -> bool {
        self.search(reading, glob, false)
    }

    fn search(&self, reading: &str, glob: bool, spelling: bool) -> bool {
        let g = glob_tokens(reading, glob);
        // rest_empty[i]: the tokens from i on can all match nothing.
        let mut rest_empty = vec![true; g.len() + 1];
        for i in (0..g.len()).rev() {
            rest_empty[i] = rest_empty[i + 1] && matches!(g[i].tok, Tok::Star | Tok::Anything);
        }
        // A state of the search: the glob position, the pattern state (never
        // a split), whether a `*` starting a component has consumed, how
        // many of the last component's letters the pattern spelt, and
        // whether anything was consumed. Reachability only: a stack and a
        // bitset of visited states.
        type State = (usize, usize, bool, u8, bool);
        let width = self.states.len() * 16;
        let mut seen = vec![0u64; ((g.len() + 1) * width).div_ceil(64)];
        let mut stack: Vec<State> = Vec::new();
        let mut push = |stack: &mut Vec<State>, (gi, ni, started, spelt, consumed): State| {
            for &t in self.eps.get(ni).map_or(&[][..], Vec::as_slice) {
                let t = t as usize;
                let key = gi * width
                    + t * 16
                    + (usize::from(started) << 3)
                    + (usize::from(spelt.min(3)) << 1)
                    + usize::from(consumed);
                if let Some(word) = seen.get_mut(key / 64) {
                    let bit = 1u64 << (key % 64);
                    if *word & bit == 0 {
                        *word |= bit;
                        stack.push((gi, t, started, spelt, consumed));
                    }
                }
            }
        };
        push(&mut stack, (0, self.start, false, 0, false));
        let mut steps = 0;
        while let Some(state) = stack.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return true;
            }
            let (gi, ni, started, spelt, consumed) = state;
            // The glob moves on past a `*` that matched what it will.
            if let Some(gt) = g.get(gi)
                && matches!(gt.tok, Tok::Star | Tok::Anything)
            {
                push(&mut stack, (gi + 1, ni, false, spelt, consumed));
            }
            match self.states.get(ni) {
                None | Some(NState::Split(..)) => {}
                Some(NState::Match) => return true,
                Some(NState::Look { start, end, next }) => {
                    let ok = (!*start || !consumed) && (!*end || rest_empty[gi]);
                    if ok {
                        push(&mut stack, (gi, *next, started, spelt, consumed));
                    }
                }
                Some(NState::Char { set, literal, next }) => {
                    let Some(gt) = g.get(gi) else { continue };
                    match &gt.tok {
                        Tok::Lit(c) => {
                            if in_set(set, *c) {
                                let spelt = if !gt.last {
                                    0
                                } else if *literal {
                                    (spelt + 1).min(SPELT)
                                } else {
                                    spelt
                                };
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::One => {
                            if pick(set, None, gt.first) {
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::Class(c) => {
                            if pick(set, Some(c), false) {
                                push(&mut stack, (gi + 1, *next, false, spelt, true));
                            }
                        }
                        Tok::Star => {
                            let stands_in = !(spelling && gt.last && *literal && spelt < SPELT);
                            if stands_in && pick(set, None, gt.first && !started) {
                                push(&mut stack, (gi, *next, true, spelt, true));
                            }
                        }
                        Tok::Anything => {
                            if pick(set, None, false) {
                                push(&mut stack, (gi, *next, true, spelt, true));
                            }
                        }
                    }
                }
            }
        }
        false
    }
}

/// A glob token with where it sits in the path.
struct GTok {
    tok: Tok,
    /// It starts a component (a leading `.` must be spelt there).
    first: bool,
    /// It is in the last component.
    last: bool,
}

fn glob_tokens(reading: &str, glob: bool) -> Vec<GTok> {
    let mut out = Vec::new();
    let comps: Vec<&str> = reading.split('/').collect();
    let n = comps.len();
    for (i, comp) in comps.iter().enumerate() {
        if i > 0 {
            out.push(GTok {
                tok: Tok::Lit('/'),
                first: false,
                last: false,
            });
        }
        for (j, t) in tokens(comp, glob).into_iter().enumerate() {
            out.push(GTok {
                tok: t,
                first: j == 0,
                last: i + 1 == n,
            });
        }
    }
    out
}

fn in_set(set: &[(char, char)], c: char) -> bool {
    set.iter().any(|(lo, hi)| *lo <= c && c <= *hi)
}

/// Whether some character is in `set`, in `class` if given, is no `/`, and
/// is no `.` when `no_dot`. The answer, if any, lies at a range's low end
/// or just past a range's high end or an excluded character.
fn pick(set: &[(char, char)], class: Option<&CharClass>, no_dot: bool) -> bool {
    let after = |c: char| char::from_u32(c as u32 + 1);
    let fits = |c: &char| {
        in_set(set, *c) && class.is_none_or(|cl| cl.has(*c)) && *c != '/' && !(no_dot && *c == '.')
    };
    let ranges = set.iter().chain(class.map_or(&[][..], |cl| &cl.ranges[..]));
    ranges
        .flat_map(|(lo, hi)| [Some(*lo), after(*hi)])
        .chain([after('/'), after('.'), Some('a')])
        .flatten()
        .any(|c| fits(&c))
}

/// For every state, the states that consume, assert or accept reachable
/// from it through splits alone.
fn split_closures(states: &[NState]) -> Vec<Vec<u32>> {
    // One visited stamp per state, reused across the walks.
    let mut stamp = vec![usize::MAX; states.len()];
    let mut stack = Vec::new();
    (0..states.len())
        .map(|from| {
            if !matches!(states.get(from), Some(NState::Split(..))) {
                return u32::try_from(from).ok().into_iter().collect();
            }
            let mut out = Vec::new();
            stack.clear();
            stack.push(from);
            while let Some(i) = stack.pop() {
                match stamp.get_mut(i) {
                    Some(seen) if *seen != from => *seen = from,
                    _ => continue,
                }
                match states.get(i) {
                    Some(NState::Split(a, b)) => {
                        stack.push(*b);
                        stack.push(*a);
                    }
                    Some(_) => out.extend(u32::try_from(i).ok()),
                    None => {}
                }
            }
            out
        })
        .collect()
}

struct NfaBuilder {
    states: Vec<NState>,
}

impl NfaBuilder {
    fn push(&mut self, s: NState) -> usize {
        self.states.push(s);
        self.states.len() - 1
    }

    /// Compiles `hir` so that it continues to `next`; returns its entry.
    fn compile(&mut self, hir: &Hir, next: usize, depth: usize) -> Option<usize> {
        if depth > 200 || self.states.len() > MAX_NFA_STATES {
            return None;
        }
        Some(match hir.kind() {
            HirKind::Empty => next,
            HirKind::Literal(lit) => {
                let text = String::from_utf8_lossy(&lit.0).into_owned();
                let mut at = next;
                for c in text.chars().rev() {
                    at = self.push(NState::Char {
                        set: vec![(c, c)],
                        literal: true,
                        next: at,
                    });
                }
                at
            }
            HirKind::Class(class) => {
                let set: Vec<(char, char)> = match class {
                    HirClass::Unicode(u) => {
                        u.ranges().iter().map(|r| (r.start(), r.end())).collect()
                    }
                    HirClass::Bytes(b) => b
                        .ranges()
                        .iter()
                        .map(|r| {
                            if r.end() >= 0x80 {
                                (char::from(r.start()), char::MAX)
                            } else {
                                (char::from(r.start()), char::from(r.end()))
                            }
                        })
                        .collect(),
                };
                let size: u64 = set
                    .iter()
                    .map(|(lo, hi)| u64::from(*hi as u32 - *lo as u32) + 1)
                    .sum();
                self.push(NState::Char {
                    set,
                    literal: size <= 2,
                    next,
                })
            }
            HirKind::Look(look) => {
                let (start, end) = match look {
                    Look::Start | Look::StartLF | Look::StartCRLF => (true, false),
                    Look::End | Look::EndLF | Look::EndCRLF => (false, true),
                    _ => (false, false),
                };
                self.push(NState::Look { start, end, next })
            }
            HirKind::Capture(c) => self.compile(&c.sub, next, depth + 1)?,
            HirKind::Concat(subs) => {
                let mut at = next;
                for s in subs.iter().rev() {
                    at = self.compile(s, at, depth + 1)?;
                }
                at
            }
            HirKind::Alternation(subs) => {
                let mut entries = Vec::new();
                for s in subs {
                    entries.push(self.compile(s, next, depth + 1)?);
                }
                let mut at = *entries.last()?;
                for e in entries.iter().rev().skip(1) {
                    at = self.push(NState::Split(*e, at));
                }
                at
            }
            HirKind::Repetition(rep) => {
                let min = rep.min.min(MAX_REPEAT);
                let max = rep.max.filter(|m| *m <= MAX_REPEAT);
                // The optional or endless tail first, then the required copies.
                let mut at = match max {
                    None => {
                        let split = self.push(NState::Split(0, next));
                        let body = self.compile(&rep.sub, split, depth + 1)?;
                        if let Some(NState::Split(a, _)) = self.states.get_mut(split) {
                            *a = body;
                        }
                        split
                    }
                    Some(max) => {
                        let mut at = next;
                        for _ in min..max {
                            let body = self.compile(&rep.sub, at, depth + 1)?;
                            at = self.push(NState::Split(body, next));
                        }
                        at
                    }
                };
                for _ in 0..min {
                    at = self.compile(&rep.sub, at, depth + 1)?;
                }
                at
            }
        })
    }
}

// ---------------------------------------------------------------------------
// The `paths` patterns of policy rules
// ---------------------------------------------------------------------------

/// Why a rule's path pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathGlobError {
    /// An empty pattern.
    #[error("the pattern is empty")]
    Empty,
    /// Not absolute.
    #[error("`{0}` is not absolute: start it with `/` or `~/`")]
    Relative(String),
    /// `.` or `..` as a component.
    #[error("`{0}` holds `.` or `..`; write the path it names")]
    Dots(String),
    /// `**` inside a component.
    #[error("`{0}`: `**` stands alone as a whole component (`/var/log/**`)")]
    DoubleStar(String),
    /// A `[` no `]` closes.
    #[error("`{0}` has an unclosed `[`")]
    Bracket(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PComp {
    /// `**`: any number of components, none included.
    Any,
    One(Vec<Tok>),
}

/// A rule's path pattern (`/var/log/**`), read through the same link table
/// as the paths it is matched against, so `/bin/**` also covers
/// `/usr/bin/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    /// As written.
    pub text: String,
    readings: Vec<(bool, Vec<PComp>)>,
}

impl PathGlob {
    /// Parses a pattern: absolute or under `~/`, with `*`, `?`, `[…]` in a
    /// component and `**` as a whole component.
    ///
    /// # Errors
    /// A [`PathGlobError`] saying what is wrong.
    pub fn parse(text: &str) -> Result<PathGlob, PathGlobError> {
        if text.is_empty() {
            return Err(PathGlobError::Empty);
        }
        if !(text.starts_with('/') || text == HOME || text.starts_with("~/")) {
            return Err(PathGlobError::Relative(text.to_owned()));
        }
        let comps = components(text);
        for c in &comps {
            if matches!(*c, "." | "..") {
                return Err(PathGlobError::Dots(text.to_owned()));
            }
            if c.contains("**") && *c != "**" {
                return Err(PathGlobError::DoubleStar(text.to_owned()));
            }
            let chars: Vec<char> = c.chars().collect();
            if let Some(i) = chars.iter().position(|ch| *ch == '[')
                && bracket(&chars[i..]).is_none()
            {
                return Err(PathGlobError::Bracket(text.to_owned()));
            }
        }
        // The literal head is read through the link table; the rest is kept.
        let head_len = comps
            .iter()
            .position(|c| has_glob(c))
            .unwrap_or(comps.len());
        let head = display(comps[..head_len].iter().copied());
        let tail = &comps[head_len..];
        let mut heads = resolve(&head, None, false).paths;
        push_unique(&mut heads, head);
        let readings = heads
            .iter()
            .map(|h| {
                let all: Vec<PComp> = components(h)
                    .into_iter()
                    .map(|c| PComp::One(tokens(c, false)))
                    .chain(tail.iter().map(|c| {
                        if *c == "**" {
                            PComp::Any
                        } else {
                            PComp::One(tokens(c, true))
                        }
                    }))
                    .collect();
                (h.starts_with('/'), all)
            })
            .collect();
        Ok(PathGlob {
            text: text.to_owned(),
            readings,
        })
    }

    /// Whether a reading (a glob when `glob`) can name a path the pattern
    /// matches.
    pub fn could_match(&self, reading: &str, glob: bool) -> bool {
        let r: Vec<Vec<Tok>> = components(reading)
            .into_iter()
            .map(|c| tokens(c, glob))
            .collect();
        self.readings.iter().any(|(abs, p)| {
            *abs == reading.starts_with('/') && align(p, &r, &|a, b| comps_meet(a, b))
        })
    }

    /// Whether every path a reading (a glob when `glob`) can name is one
    /// the pattern matches.
    pub fn surely_contains(&self, reading: &str, glob: bool) -> bool {
        let r: Vec<Vec<Tok>> = components(reading)
            .into_iter()
            .map(|c| tokens(c, glob))
            .collect();
        self.readings.iter().any(|(abs, p)| {
            *abs == reading.starts_with('/') && align(p, &r, &|a, b| comp_covers(a, b))
        })
    }
}

/// Aligns pattern components with reading components, `**` taking any
/// number of them, each pair judged by `pair`.
fn align(p: &[PComp], r: &[Vec<Tok>], pair: &dyn Fn(&[Tok], &[Tok]) -> bool) -> bool {
    // reach[j]: the first i pattern components can take the first j ones.
    let mut reach = vec![false; r.len() + 1];
    reach[0] = true;
    for pc in p {
        let mut next = vec![false; r.len() + 1];
        for j in 0..=r.len() {
            if !reach[j] {
                continue;
            }
            match pc {
                PComp::Any => {
                    for n in next.iter_mut().skip(j) {
                        *n = true;
                    }
                }
                PComp::One(toks) => {
                    if j < r.len() && pair(toks, &r[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[r.len()]
}

/// Whether two glob components can match a common name (the second is a
/// command's, so its wildcards do not match a leading `.`).
fn comps_meet(p: &[Tok], r: &[Tok]) -> bool {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(0usize, 0usize, false)]);
    while let Some(s) = queue.pop_front() {
        if !seen.insert(s) {
            continue;
        }
        let (i, j, consumed) = s;
        if i == p.len() && j == r.len() {
            return true;
        }
        let (pt, rt) = (p.get(i), r.get(j));
        if matches!(pt, Some(Tok::Star | Tok::Anything)) {
            queue.push_back((i + 1, j, consumed));
        }
        if matches!(rt, Some(Tok::Star | Tok::Anything)) {
            queue.push_back((i, j + 1, consumed));
        }
        let (Some(pt), Some(rt)) = (pt, rt) else {
            continue;
        };
        // The command's wildcards do not match a leading `.`.
        let no_dot = !consumed && matches!(rt, Tok::Star | Tok::One);
        if chars_meet(pt, rt, no_dot) {
            let ni = if matches!(pt, Tok::Star | Tok::Anything) {
                i
            } else {
                i + 1
            };
            let nj = if matches!(rt, Tok::Star | Tok::Anything) {
                j
            } else {
                j + 1
            };
            queue.push_back((ni, nj, true));
        }
    }
    false
}

/// Whether one character can satisfy both tokens.
fn chars_meet(a: &Tok, b: &Tok, no_dot: bool) -> bool {
    let full = [('\0', char::MAX)];
    let set_of = |t: &Tok| -> Option<Vec<(char, char)>> {
        match t {
            Tok::Lit(c) => Some(vec![(*c, *c)]),
            Tok::One | Tok::Star | Tok::Anything => Some(full.to_vec()),
            Tok::Class(_) => None,
        }
    };
    match (a, b) {
        (Tok::Class(x), Tok::Class(y)) => {
            // Try the members and edges of both.
            let mut cands: Vec<char> = Vec::new();
            for (lo, hi) in x.ranges.iter().chain(&y.ranges) {
                cands.push(*lo);
                cands.extend(char::from_u32(*hi as u32 + 1));
            }
            cands.push('a');
            cands
                .into_iter()
                .any(|c| x.has(c) && y.has(c) && c != '/' && !(no_dot && c == '.'))
        }
        (Tok::Class(x), other) | (other, Tok::Class(x)) => {
            set_of(other).is_some_and(|s| pick(&s, Some(x), no_dot))
        }
        _ => match (set_of(a), set_of(b)) {
            (Some(x), Some(y)) => {
                let both: Vec<(char, char)> = x
                    .iter()
                    .flat_map(|(a1, a2)| {
                        y.iter().filter_map(move |(b1, b2)| {
                            let (lo, hi) = ((*a1).max(*b1), (*a2).min(*b2));
                            (lo <= hi).then_some((lo, hi))
                        })
                    })
                    .collect();
                pick(&both, None, no_dot)
            }
            _ => false,
        },
    }
}

/// Whether pattern component `p` matches every name glob component `r`
/// can match: `r`'s wildcards can only be taken by `p`'s `*`.
fn comp_covers(p: &[Tok], r: &[Tok]) -> bool {
    let mut reach = vec![false; r.len() + 1];
    reach[0] = true;
    for pt in p {
        let mut next = vec![false; r.len() + 1];
        for j in 0..=r.len() {
            if !reach[j] {
                continue;
            }
            match pt {
                Tok::Star | Tok::Anything => {
                    for n in next.iter_mut().skip(j) {
                        *n = true;
                    }
                }
                Tok::One => {
                    if matches!(r.get(j), Some(Tok::Lit(_) | Tok::One | Tok::Class(_))) {
                        next[j + 1] = true;
                    }
                }
                Tok::Class(c) => {
                    if let Some(Tok::Lit(x)) = r.get(j)
                        && c.has(*x)
                    {
                        next[j + 1] = true;
                    }
                }
                Tok::Lit(c) => {
                    if r.get(j) == Some(&Tok::Lit(*c)) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[r.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<String> {
        resolve(text, None, false).paths
    }

    fn in_dir(text: &str, cwd: &str) -> Vec<String> {
        resolve(text, Some(cwd), false).paths
    }

    fn globbed(text: &str) -> HostPaths {
        resolve(text, Some("/srv"), true)
    }

    fn elsewhere(base: Unknown, rest: &str) -> Elsewhere {
        Elsewhere {
            base,
            rest: rest.to_owned(),
        }
    }

    #[track_caller]
    fn has(list: &[String], path: &str) {
        assert!(list.iter().any(|p| p == path), "{path} not in {list:?}");
    }

    #[test]
    fn folding() {
        assert_eq!(paths("/srv/app//.env"), ["/srv/app/.env"]);
        assert_eq!(paths("/proc/1/./environ"), ["/proc/1/environ"]);
        assert_eq!(paths("/tmp/../"), ["/"]);
        assert_eq!(paths("//etc/./"), ["/etc"]);
        assert_eq!(paths("/a/b/../../.."), ["/"]);
        assert_eq!(in_dir("x/y", "/var/log"), ["/var/log/x/y"]);
        assert_eq!(in_dir(".", "/etc"), ["/etc"]);
        assert_eq!(fold_lexically("/tmp/../"), "/");
        assert_eq!(fold_lexically("~/x/.."), "~");
        assert_eq!(fold_lexically("//etc/./"), "/etc");
    }

    #[test]
    fn every_process_root_is_the_host_root() {
        for p in [
            "/proc/self/root",
            "/proc/1/root/",
            "/proc/thread-self/root",
            "/proc/42/task/43/root",
            "/proc/self/task/7/root/",
            "/proc/self/root/proc/1/root",
        ] {
            has(&paths(p), "/");
        }
        has(&paths("/proc/self/root/etc"), "/etc");
        has(&paths("/proc/self/../1/root/usr"), "/usr");
        has(&globbed("/proc/*/root/etc").paths, "/etc");
        has(&globbed("/proc/[0-9]*/root/etc").paths, "/etc");
        has(&globbed("/pr?c/s?lf/root/etc").paths, "/etc");
        // Not a glob: a directory literally named `*`.
        assert!(!paths("/proc/*/root/etc").contains(&"/etc".to_owned()));
    }

    #[test]
    fn a_process_working_directory_is_unknown_unless_it_is_the_lines() {
        let r = resolve("/proc/1/cwd/x", None, false);
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::ProcessDirectory, "x"))
        );
        let r = resolve("/proc/1/task/1/cwd/..", None, false);
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::ProcessDirectory, ".."))
        );
        has(&in_dir("/proc/self/cwd/x", "/srv"), "/srv/x");
        has(&in_dir("/proc/thread-self/cwd/x", "/srv"), "/srv/x");
        let r = resolve("/proc/self/cwd/..", None, false);
        has(&r.paths, "/home");
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::WorkingDirectory, ".."))
        );
        let r = globbed("/proc/*/cwd");
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::ProcessDirectory, ""))
        );
    }

    #[test]
    fn descriptors_are_open_files_and_their_dots_walk_out() {
        let r = resolve("/dev/fd/3", None, false);
        assert!(r.elsewhere.contains(&elsewhere(Unknown::OpenFile, "")));
        assert_eq!(resolve("/dev/stdout", None, false).streams, [1]);
        assert_eq!(resolve("/dev/stdin", None, false).streams, [0]);
        assert_eq!(resolve("/proc/self/fd/2", None, false).streams, [2]);
        let r = resolve("/dev/fd/3/../..", None, false);
        has(&r.paths, "/dev");
        has(&r.paths, "/proc/self");
        assert!(r.elsewhere.contains(&elsewhere(Unknown::OpenFile, "../..")));
        has(
            &paths("/dev/fd/3/../../../sysrq-trigger"),
            "/proc/sysrq-trigger",
        );
        has(&paths("/dev/fd/../../sysrq-trigger"), "/proc/sysrq-trigger");
        has(
            &paths("/proc/self/fd/0/../../environ"),
            "/proc/self/environ",
        );
        has(
            &paths("/dev/stdout/../../../sys/kernel/sysrq"),
            "/proc/sys/kernel/sysrq",
        );
        let r = resolve("/dev/stdin/etc/shadow", None, false);
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::OpenFile, "etc/shadow"))
        );
        // A listing of the descriptor directory names no open file.
        let r = resolve("/proc/self/fd", None, false);
        assert!(r.is_known(), "{r:?}");
    }

    #[test]
    fn homes_of_accounts() {
        for (user, home) in [
            ("root", "/root"),
            ("daemon", "/usr/sbin"),
            ("bin", "/usr/bin"),
            ("sys", "/dev"),
            ("sync", "/usr/bin"),
            ("games", "/usr/games"),
            ("man", "/var/cache/man"),
            ("lp", "/var/spool/lpd"),
            ("mail", "/var/mail"),
            ("news", "/var/spool/news"),
            ("uucp", "/var/spool/uucp"),
            ("proxy", "/usr/bin"),
            ("www-data", "/var/www"),
            ("backup", "/var/backups"),
            ("list", "/var/list"),
            ("irc", "/run/ircd"),
            ("nobody", "/nonexistent"),
            ("_apt", "/nonexistent"),
        ] {
            let r = resolve(&format!("~{user}"), None, false);
            has(&r.paths, home);
            assert!(r.is_known(), "~{user}: {r:?}");
        }
        assert_eq!(paths("~bin/ls"), ["/usr/bin/ls"]);
        // A link is only another name for its target until `..` climbs.
        assert_eq!(paths("/bin/ls"), ["/usr/bin/ls"]);
        has(&paths("~sys/sda"), "/dev/sda");
        let r = resolve("~alice/x", None, false);
        has(&r.paths, "/home/alice/x");
        assert!(r.elsewhere.contains(&elsewhere(Unknown::Home, "x")));
        let r = resolve("~sshd", None, false);
        has(&r.paths, "/run/sshd");
        assert!(!r.is_known());
        assert_eq!(paths("~/x"), ["~/x"]);
        assert_eq!(paths("~"), ["~"]);
        assert_eq!(paths("$HOME/.ssh"), ["~/.ssh"]);
        let r = resolve("~/..", None, false);
        has(&r.paths, "/home");
        has(&r.paths, "/");
        assert!(r.elsewhere.contains(&elsewhere(Unknown::Home, "..")));
        // Not a name the shell looks up: a relative name.
        has(&in_dir("~$U/x", "/srv"), "/srv/~$U/x");
        has(&resolve("~r?ot", Some("/srv"), true).paths, "/srv/~r?ot");
        // `~+` is the working directory, `~-` the last one.
        has(&in_dir("~+/x", "/srv"), "/srv/x");
        let r = resolve("~-/x", Some("/srv"), false);
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::WorkingDirectory, "x"))
        );
    }

    #[test]
    fn debian_links_are_followed_and_read_both_ways() {
        let r = paths("/var/run/../etc");
        has(&r, "/etc");
        has(&r, "/var/etc");
        let r = paths("/bin/..");
        has(&r, "/");
        has(&r, "/usr");
        has(&paths("/sbin/../lib"), "/usr/lib");
        has(&paths("/sbin/../lib"), "/lib");
        has(&paths("/var/lock/../../usr"), "/usr");
        has(&paths("/var/spool/mail/../../etc"), "/etc");
        has(&paths("/etc/mtab"), "/proc/self/mounts");
        has(&paths("/proc/mounts"), "/proc/self/mounts");
        has(
            &paths("/lib64/ld-linux-x86-64.so.2"),
            "/usr/lib64/ld-linux-x86-64.so.2",
        );
        has(&paths("/dev/core"), "/proc/kcore");
        has(&globbed("/v?r/r?n/../etc").paths, "/etc");
        let r = resolve("/sys/class/net/eth0/..", None, false);
        has(&r.paths, "/sys/class/net");
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::DeviceDirectory, ".."))
        );
    }

    #[test]
    fn a_directory_the_line_does_not_tell_is_the_home_or_unknown() {
        let r = resolve("x/y", None, false);
        has(&r.paths, "~/x/y");
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::WorkingDirectory, "x/y"))
        );
        let r = resolve("../..", None, false);
        has(&r.paths, "/");
        assert!(
            r.elsewhere
                .contains(&elsewhere(Unknown::WorkingDirectory, "../.."))
        );
        let r = resolve_in("x", &[None, Some("/etc".into())], false);
        has(&r.paths, "/etc/x");
        has(&r.paths, "~/x");
    }

    #[test]
    fn globs_that_branch_without_end_are_cut_off() {
        let r = globbed("/*/*/*/*/*/*/*/*/*/*");
        assert!(r.paths.len() <= 2 * MAX_READINGS, "{}", r.paths.len());
        assert!(
            r.elsewhere.iter().any(|e| e.base == Unknown::TooMany),
            "{r:?}"
        );
    }

    #[test]
    fn component_globs_follow_the_shell() {
        let m = |g: &str, n: &str| comp_matches(&tokens(g, true), n);
        assert!(m("e?c", "etc"));
        assert!(m("[e]tc", "etc"));
        assert!(m("[a-f]tc", "etc"));
        assert!(!m("[!e]tc", "etc"));
        assert!(m("[^a-d]tc", "etc"));
        assert!(m("[[:alpha:]]tc", "etc"));
        assert!(m("*", "x"));
        assert!(!m("*", ".env"));
        assert!(!m("?env", ".env"));
        assert!(m(".*", ".env"));
        assert!(m("[.]env", ".env"));
        assert!(m("sysrq-trig*", "sysrq-trigger"));
        assert!(m("[]]", "]"));
        assert!(m("x[", "x["));
        assert!(m("@(etc|usr)", "etc"));
        assert!(could_be_number(&tokens("[0-9]*", true)));
        assert!(!could_be_number(&tokens("self", true)));
        assert!(!could_be_number(&tokens("[a-z]*", true)));
    }

    #[test]
    fn paths_that_globs_can_name() {
        assert!(could_name("/e?c", true, "/etc"));
        assert!(could_name("/u*/l*", true, "/usr/lib"));
        assert!(!could_name("/*", true, "/usr/bin"));
        assert!(!could_name("/e?c", false, "/etc"));
        assert!(could_name("/etc", false, "/etc"));
        assert!(could_be_whole("/e?c/*", true, "/etc"));
        assert!(could_be_whole("/*", true, "/"));
        assert!(could_be_whole("/.*", true, "/"));
        assert!(could_be_whole("/usr/*/*", true, "/usr"));
        assert!(could_be_whole("/etc", false, "/etc"));
        assert!(!could_be_whole("/etc/*", false, "/etc"));
        assert!(!could_be_whole("/srv/*", true, "/etc"));
        assert!(!could_be_whole("/etc/x*", true, "/etc"));
        assert!(could_lie_within("/proc/*/environ", true, "/proc"));
        assert!(could_be_in_dir_named("/h?me/*/.s?h/x", true, ".ssh"));
        assert!(!could_be_in_dir_named("/home/x/.ssh", false, ".ssh"));
        assert!(lists_everything(".[!.]*"));
        assert!(!lists_everything("x*"));
        assert!(only_climbs("../.."));
        assert!(!only_climbs(""));
    }

    #[test]
    fn globs_against_sensitive_patterns() {
        let re = |p: &str| PathRegex::new(p).expect("compiles");
        let shadow = re(r"(^|/)g?shadow([-.~][^/]*)?$");
        assert!(shadow.could_match("/e?c/sh?dow", true));
        assert!(shadow.could_match("/etc/sha*", true));
        assert!(shadow.could_match("/etc/[s]hadow", true));
        assert!(shadow.could_match("/etc/shadow", false));
        assert!(!shadow.could_match("/etc/sha*", false));
        assert!(!shadow.could_match("/srv/*.txt", true));
        let pem = re(r"\.pem$");
        assert!(pem.could_match("/srv/app/*.pem", true));
        assert!(!pem.could_match("/srv/app/*", true));
        assert!(!pem.could_match("/var/log/syslog*", true));
        let secrets = re(r"(^|/)secrets?(\.[a-z]+)?\.(ya?ml|json|toml|env|ini|txt)$");
        assert!(!secrets.could_match("/srv/*.txt", true));
        assert!(!secrets.could_match("/srv/app/*.yml", true));
        assert!(secrets.could_match("/srv/secrets.*", true));
        assert!(secrets.could_match("/*/secrets.yaml", true));
        let environ = re(r"^/proc/[^/]+/environ$");
        assert!(environ.could_match("/proc/*/environ", true));
        assert!(environ.could_match("/pr?c/1/environ", true));
        assert!(!environ.could_match("/proc/1/status", false));
        let ssh = re(r"(^|/)\.ssh/(id_[A-Za-z0-9_]+|[^/]*_key|[^/]*\.pem|[^/]*\.ppk)$");
        assert!(ssh.could_match("/h?me/*/.s?h/id_*", true));
        assert!(
            !ssh.could_match("/h?me/*/*/id_rsa", true),
            "`*` is no `.ssh`"
        );
        let etc = re(r"^/+etc(/|$)");
        assert!(etc.could_match("/e?c/x", true));
        assert!(etc.could_match("/[e]tc", true));
        assert!(!etc.could_match("/srv/*", true));
        let id = re(r"(^|/)id_(rsa|dsa|ecdsa|ed25519)(_sk)?$");
        assert!(id.could_match("/srv/backup/id_*", true));
        assert!(!id.could_match("/srv/backup/*", true));
        let key = re(r"\.key$");
        assert!(key.could_match("x/*.key", true));
        assert!(!key.could_match("*.log", true));
    }

    #[test]
    fn rule_patterns() {
        let g = |p: &str| PathGlob::parse(p).expect("parses");
        let logs = g("/var/log/x/**");
        assert!(logs.could_match("/var/log/x/y", false));
        assert!(logs.could_match("/var/log/x", false));
        assert!(logs.could_match("/var/log/x*/y", true));
        assert!(logs.could_match("/var/l?g/[x]/y", true));
        assert!(logs.could_match("/var/log/*", true));
        assert!(!logs.could_match("/var/log/xy", false));
        assert!(!logs.could_match("/var/log/x*/y", false));
        assert!(!logs.could_match("~/var/log/x", false));
        assert!(logs.surely_contains("/var/log/x/y", false));
        assert!(logs.surely_contains("/var/log/x/*.log", true));
        assert!(!logs.surely_contains("/var/log/x*/y", true));
        assert!(!logs.surely_contains("/var/log/*", true));
        let bin = g("/bin/**");
        assert!(bin.could_match("/usr/bin/ls", false));
        assert!(bin.surely_contains("/usr/bin/ls", false));
        let conf = g("/etc/*.conf");
        assert!(conf.could_match("/etc/x.conf", false));
        assert!(conf.could_match("/etc/x*", true));
        assert!(!conf.could_match("/etc/x/y.conf", false));
        assert!(conf.could_match("/etc/*", true));
        assert!(!conf.surely_contains("/etc/*", true));
        assert!(g("~/.ssh/**").could_match("~/.ssh/id_rsa", false));
        for (bad, e) in [
            ("", PathGlobError::Empty),
            ("var/log", PathGlobError::Relative("var/log".into())),
            ("/var/../etc", PathGlobError::Dots("/var/../etc".into())),
            ("/var/lo**g", PathGlobError::DoubleStar("/var/lo**g".into())),
            ("/var/log/[x", PathGlobError::Bracket("/var/log/[x".into())),
        ] {
            assert_eq!(PathGlob::parse(bad), Err(e));
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn word() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("/".to_owned()),
                    Just("..".to_owned()),
                    Just(".".to_owned()),
                    Just("~".to_owned()),
                    Just("~root".to_owned()),
                    Just("proc".to_owned()),
                    Just("self".to_owned()),
                    Just("thread-self".to_owned()),
                    Just("1".to_owned()),
                    Just("root".to_owned()),
                    Just("cwd".to_owned()),
                    Just("fd".to_owned()),
                    Just("task".to_owned()),
                    Just("dev".to_owned()),
                    Just("var".to_owned()),
                    Just("run".to_owned()),
                    Just("bin".to_owned()),
                    Just("sys".to_owned()),
                    Just("class".to_owned()),
                    Just("*".to_owned()),
                    Just("?".to_owned()),
                    Just("[e]".to_owned()),
                    Just("[!".to_owned()),
                    "[a-z.*?\\[\\]!~$-]{1,4}",
                ],
                0..12,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            #[test]
            fn normalisation_never_panics_and_is_idempotent(
                text in word(),
                cwd in proptest::option::of(word()),
                glob in any::<bool>(),
            ) {
                let cwd = cwd.map(|c| format!("/{c}"));
                // A reading resolves to where the host would be; resolving
                // that again stays there (a lexical reading through a link
                // resolves to the link's target, which stays).
                let r = resolve(&text, cwd.as_deref(), glob);
                for p in &r.paths {
                    prop_assert!(p.starts_with('/') || p == HOME || p.starts_with("~/"), "{p}");
                    for q in resolve(p, None, glob).paths {
                        let again = resolve(&q, None, glob).paths;
                        if glob {
                            prop_assert!(again.contains(&q), "{text} → {p} → {q} → {again:?}");
                        } else {
                            prop_assert_eq!(&again, &vec![q.clone()], "{} → {} → {}", text, p, q);
                        }
                    }
                }
                let folded = fold_lexically(&text);
                prop_assert_eq!(fold_lexically(&folded), folded);
            }

            #[test]
            fn glob_questions_never_panic(text in word(), pattern in word()) {
                let regex = PathRegex::new(r"(^|/)\.ssh/(id_[A-Za-z0-9_]+|[^/]*_key)$")
                    .expect("compiles");
                let _ = regex.could_match(&text, true);
                if let Ok(g) = PathGlob::parse(&format!("/{pattern}")) {
                    let _ = g.could_match(&text, true);
                    let _ = g.surely_contains(&text, true);
                }
                let _ = could_be_whole(&text, true, "/etc");
            }
        }
    }
}
