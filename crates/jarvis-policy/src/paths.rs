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
//!
//! The resolution is split by what it knows: `debian` (the fixed table of
//! homes and links), `walker` (following a word component by component
//! through them); the glob questions by whom they answer: `glob` (globs
//! over paths), `regex_glob` (globs against the knowledge base's patterns) and
//! `rule_glob` (the `paths` patterns of policy rules).

mod debian;
mod glob;
mod regex_glob;
mod rule_glob;
mod walker;

pub use glob::{
    could_be_in_dir_named, could_be_whole, could_lie_within, could_name, lists_everything,
    only_climbs,
};
pub use regex_glob::PathRegex;
pub use rule_glob::{PathGlob, PathGlobError};

use walker::{Base, Walker, bases, fold_from, fold_rest, plain_path, push_unique};

/// The home of the account the line runs as, whose place the line does not
/// tell: `~` and paths under it (`~/.ssh/id_rsa`) stand for it.
pub const HOME: &str = "~";

/// How many readings one word is followed through; only globs branch, and
/// only contrived ones this much. Beyond it the rest is unknown.
const MAX_READINGS: usize = 32;

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
