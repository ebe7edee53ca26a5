//! Following a path word through the host, component by component: its
//! base (`/`, `~`, `~user`, the working directory), Debian's links and the
//! kernel's magic names, with globs that may match them.

use super::debian::{FIXED_HOMES, LINKS, PACKAGE_HOMES, SYSFS_LINKS};
use super::glob::{comp_matches, could_be_number, tokens};
use super::{Elsewhere, HOME, HostPaths, MAX_READINGS, Unknown};

/// Top-level directories under which the table has links or magic names.
const SPECIAL_TOPS: &[&str] = &[
    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "var", "etc", "sys",
];

/// The word itself, when it is an absolute path (or a relative one in a
/// known absolute directory) that the walk would leave as it is: already
/// folded, and under a top-level directory the table has nothing in. Most
/// words are such paths, and they need no walk.
pub(super) fn plain_path(text: &str, cwd: Option<&str>) -> Option<String> {
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

pub(super) fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// Where a word starts, before its components are followed.
pub(super) enum Base {
    /// An absolute path or one in the home (`~`, `~/x`).
    Path(String),
    Elsewhere(Unknown),
}

/// The starting places of a word and its components after them.
pub(super) fn bases(
    text: &str,
    cwd: Option<&str>,
    glob: bool,
    guess: bool,
) -> Vec<(Base, Vec<String>)> {
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

pub(super) fn relative(
    cwd: Option<&str>,
    rest: Vec<String>,
    guess: bool,
) -> Vec<(Base, Vec<String>)> {
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

pub(super) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The lexical reading: components folded as text on a starting path, as
/// `cd` without `-P` folds them. `None` when `..` climbs above the home,
/// whose parent the text alone cannot say.
pub(super) fn fold_from(start: &str, rest: &[String]) -> Option<String> {
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
pub(super) fn fold_rest(start: &[String], rest: &[String]) -> Vec<String> {
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
pub(super) fn display<'a>(comps: impl Iterator<Item = &'a str>) -> String {
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
pub(super) enum Kind {
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
pub(super) enum Reading {
    /// Components from `/` (or from the home), each with what it is.
    At(Vec<(String, Kind)>),
    /// A place the line does not tell, and the components after it.
    Elsewhere(Unknown, Vec<String>),
}

pub(super) struct Walker<'a> {
    pub(super) cwd: Option<&'a str>,
    pub(super) glob: bool,
    /// A directory the line does not tell is also read as the home.
    pub(super) guess: bool,
}

impl Walker<'_> {
    /// The readings of an absolute (or home) path, links followed.
    pub(super) fn walk_abs(&self, path: &str) -> Vec<Reading> {
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

    pub(super) fn finish(&self, mut readings: Vec<Reading>, rest: &[String], out: &mut HostPaths) {
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
            // Nothing under these is read specially; guarded arms above
            // fall through here when their condition fails.
            None
            | Some(Kind::Dir | Kind::Home | Kind::Tasks { .. } | Kind::Fds | Kind::SysfsLink) => {}
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
