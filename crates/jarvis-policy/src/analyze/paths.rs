//! The paths a command names and what they hold, as the host would
//! resolve them in every directory the line can be in (the resolution
//! itself is [`crate::paths`]'s): secrets, system files, raw devices,
//! kernel controls, and trees read whole. Also the lexical path helpers
//! other modules share.

use jarvis_core::text::code;

use crate::kb::{Effect, PathClass};
use crate::shell::{self, Redirect, Word, truncate};

use super::{Analyzer, Finding, PathUse, base_risk};

impl Analyzer<'_> {
    pub(super) fn redirect(&self, r: &Redirect, findings: &mut Vec<Finding>) {
        let t = &r.target.text;
        if r.op == shell::RedirectOp::Duplicate {
            return;
        }
        // A descriptor (`/dev/fd/3`) is harmless; a path through one
        // (`/dev/fd/3/../../etc/x`) is a path like any other.
        let harmless = matches!(
            t.as_str(),
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
        ) || t
            .strip_prefix("/dev/fd/")
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if r.op.writes() && !harmless {
            findings.push(Finding::of_command(
                Effect::Write,
                base_risk(Effect::Write),
                format!("writes its output to the file {}", code(&truncate(t, 60))),
            ));
            if !r.target.literal {
                findings.push(Finding::of_command(
                    Effect::Write,
                    60,
                    format!(
                        "writes its output to a file whose name is only known at run time ({})",
                        code(&truncate(&r.target.raw, 60))
                    ),
                ));
            }
        }
        self.scan_path(
            t,
            r.target.pattern,
            findings,
            PathUse {
                changes: r.op.writes(),
                device_data: true,
                contents: true,
            },
        );
    }

    /// A recursive read whose tree holds the places where services keep
    /// their secrets (`grep -r PASSWORD /srv`): the `.env` files and keys
    /// inside are read and printed like any named secret, though no
    /// operand names one. Operands only known at run time, or relative ones
    /// where the directory is not known, may be such a tree.
    pub(super) fn bulk_read(&self, operands: &[Word], label: &str, findings: &mut Vec<Finding>) {
        let cwd = self.cwds.last().cloned().flatten();
        let starts: Vec<Option<String>> = if operands.iter().all(|w| w.text.starts_with('-')) {
            vec![cwd.clone()]
        } else {
            operands
                .iter()
                .filter(|w| !w.text.starts_with('-'))
                .map(|w| {
                    if w.literal && !w.pattern {
                        resolve(cwd.as_deref(), &w.text)
                    } else {
                        None
                    }
                })
                .collect()
        };
        let risky = starts.iter().find_map(|start| match start {
            None => Some("a directory known only at run time".to_owned()),
            Some(path) => TREES_HOLDING_SECRETS
                .iter()
                .find(|tree| holds_or_is_within(path, tree))
                .map(|_| code(path)),
        });
        if let Some(place) = risky {
            findings.push(
                Finding::about(
                    label,
                    Effect::Read,
                    70,
                    &format!(
                        "reads every file under {place}, where services keep {} files, keys and tokens, and prints what it finds",
                        code(".env")
                    ),
                )
                .attend(),
            );
        }
    }

    pub(super) fn scan_paths<'w>(
        &self,
        args: impl IntoIterator<Item = &'w Word>,
        findings: &mut Vec<Finding>,
        how: PathUse,
    ) {
        for a in args {
            // `--file=/etc/shadow`, `if=/dev/sda`, `HEAD:secrets.yaml`,
            // `host:~/.ssh/id_rsa`: look at the value too.
            if a.text.contains('{') {
                for candidate in expand_braces(&a.text) {
                    self.scan_candidate(&candidate, a.pattern, findings, how);
                }
            } else {
                self.scan_candidate(&a.text, a.pattern, findings, how);
            }
            if a.pattern && !how.changes && how.contents {
                // `cd ~/.ssh && cat *`, `cat /h?me/*/.s?h/*`: a glob reads
                // what it matches where the host resolves it.
                let found = expand_braces(&a.text).into_iter().find_map(|t| {
                    let host = crate::paths::resolve_in_known_dirs(&t, &self.cwds, true);
                    host.paths
                        .iter()
                        .map(String::as_str)
                        .chain(host.elsewhere.iter().map(|e| e.rest.as_str()))
                        .chain(std::iter::once(t.as_str()))
                        .find_map(secret_glob)
                });
                if let Some(what) = found {
                    findings.push(
                        Finding::of_command(
                            Effect::Read,
                            70,
                            format!(
                                "reads files matching {}, {what}",
                                code(&truncate(&a.text, 40))
                            ),
                        )
                        .attend(),
                    );
                }
            }
        }
    }

    fn scan_candidate(&self, text: &str, glob: bool, findings: &mut Vec<Finding>, how: PathUse) {
        self.scan_path(text, glob, findings, how);
        for sep in ['=', ':'] {
            if let Some((_, v)) = text.split_once(sep) {
                self.scan_path(v, glob, findings, how);
            }
        }
    }

    /// Findings for one path word, judged as the host resolves it in every
    /// directory the line can be in ([`crate::paths`]): `/proc/self/root/etc/shadow`
    /// is `/etc/shadow`, `cd /etc/mysql && cat debian.cnf` reads
    /// `/etc/mysql/debian.cnf`, and a glob is judged by the worst path it
    /// can name.
    pub(super) fn scan_path(
        &self,
        path: &str,
        glob: bool,
        findings: &mut Vec<Finding>,
        how: PathUse,
    ) {
        let writes = how.changes;
        let host = crate::paths::resolve_in_known_dirs(path, &self.cwds, glob);
        let mut readings: Vec<&str> = vec![path];
        for r in host
            .paths
            .iter()
            .map(String::as_str)
            .chain(host.elsewhere.iter().map(|e| e.rest.as_str()))
        {
            if !r.is_empty() && !readings.contains(&r) {
                readings.push(r);
            }
        }
        // A hook or config planted in `.git/` runs on a later, harmless-looking
        // `git commit`; writing there is never routine.
        if writes
            && readings
                .iter()
                .any(|p| p.contains(".git/") || p.ends_with(".git") || p.contains(".gitmodules"))
        {
            findings.push(
                Finding::of_command(
                    Effect::Exec,
                    75,
                    format!(
                        "writes inside {}, where a hook or config makes later git commands run programs",
                        code(&truncate(path, 60))
                    ),
                )
                .attend(),
            );
        }
        if writes && readings.iter().any(|p| p.contains("authorized_keys")) {
            findings.push(
                Finding::of_command(
                    Effect::Privilege,
                    80,
                    format!(
                        "changes {}, which decides who may log in over SSH",
                        code(&truncate(path, 60))
                    ),
                )
                .attend(),
            );
        }
        let rank = |c: &PathClass| match c {
            PathClass::BlockDevice | PathClass::KernelControl => 0,
            PathClass::Secret => 1,
            PathClass::NetworkDevice => 2,
            PathClass::System => 3,
        };
        let Some((reading, class, what)) = readings
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                // As written, a word is only a glob where the shell says so.
                let classified = if i == 0 {
                    self.kb.classify_reading(r, glob)
                } else {
                    self.kb.classify_reading(r, host.glob)
                };
                classified.map(|(c, w)| (*r, c, w))
            })
            .min_by_key(|(_, c, _)| rank(c))
        else {
            return;
        };
        let written = truncate(path, 60);
        let path = if reading == path {
            code(&written)
        } else {
            format!(
                "{} ({} on the host)",
                code(&written),
                code(&truncate(reading, 60))
            )
        };
        let f = match (class, writes) {
            // Where a secret lies is no secret: `ls -la .env`.
            (PathClass::Secret, false) if !how.contents => return,
            (PathClass::Secret, _) => Finding::of_command(
                Effect::Read,
                70,
                format!("touches {path}, which holds secrets ({what})"),
            )
            .attend(),
            (PathClass::System, true) => {
                Finding::of_command(Effect::Write, 70, format!("changes {path} ({what})"))
            }
            (PathClass::System, false) => return,
            (PathClass::BlockDevice, true) => Finding::of_command(
                Effect::Delete,
                100,
                format!("writes the raw device {path} ({what}), destroying what is on it"),
            )
            .attend(),
            (PathClass::BlockDevice, false) if !how.device_data => return,
            (PathClass::BlockDevice, false) => Finding::of_command(
                Effect::Read,
                65,
                format!("reads the raw device {path} ({what}), secrets and all"),
            )
            .attend(),
            (PathClass::KernelControl, true) => Finding::of_command(
                Effect::Service,
                100,
                format!("writes {path} ({what}), which acts at once"),
            )
            .attend(),
            (PathClass::KernelControl, false) => return,
            // Raw sockets from the shell are how reverse shells are made.
            (PathClass::NetworkDevice, _) => Finding::of_command(
                Effect::Network,
                70,
                format!("opens a raw network connection through {path}"),
            )
            .attend(),
        };
        findings.push(f);
    }
}

/// Directories whose whole contents include secrets, for a path as the
/// normaliser reads it (a glob when `glob`: `/e?c` can be `/etc`).
pub(super) fn secret_tree(path: &str, glob: bool) -> Option<&'static str> {
    const TREES: &[&str] = &["/", "/root", "/etc", "/home", "~"];
    const SUBTREES: &[&str] = &[
        "/etc/ssh",
        "/etc/ssl/private",
        "/etc/letsencrypt",
        "/etc/kubernetes",
        "/etc/wireguard",
        "/var/backups",
        "/var/lib/tailscale",
        "/run/secrets",
        "/proc",
    ];
    const HIDDEN: &[&str] = &[
        ".ssh",
        ".aws",
        ".kube",
        ".gnupg",
        ".docker",
        ".config",
        ".password-store",
        ".azure",
    ];
    let p = path.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    let dirs = format!("{p}/x");
    if TREES.iter().any(|t| crate::paths::could_name(p, glob, t))
        || SUBTREES
            .iter()
            .any(|t| crate::paths::could_lie_within(p, glob, t))
        || HIDDEN
            .iter()
            .any(|h| crate::paths::could_be_in_dir_named(&dirs, glob, h))
    {
        Some("secrets included")
    } else {
        None
    }
}

/// A glob that can match secrets: one in a directory that holds them
/// (`/etc/*`, `/e?c/*`, `~/.ssh/*`), or one over hidden files (`.e*`
/// matches `.env`). `reading` is a path as the normaliser reads it, or
/// what follows a place the line does not tell.
fn secret_glob(reading: &str) -> Option<&'static str> {
    let (dir, last) = match reading.rsplit_once('/') {
        Some((d, l)) => (Some(if d.is_empty() { "/" } else { d }), l),
        None => (None, reading),
    };
    if last.starts_with('.') && last.contains(['*', '?', '[']) {
        return Some("which can include hidden files such as `.env` or keys");
    }
    dir.filter(|_| reading.contains(['*', '?', '[']))
        .and_then(|d| secret_tree(d, true))
        .map(|_| "which can include secrets")
}

/// Expands `{a,b}` brace lists (not nested, at most 64 results) the way the
/// shell would; other words come back as they are.
pub fn expand_braces(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        if !inner.contains(',') {
            for o in &mut out {
                o.push_str(&rest[..=close]);
            }
            rest = &rest[close + 1..];
            continue;
        }
        let head = &rest[..open];
        let mut next = Vec::new();
        for o in &out {
            for alt in inner.split(',') {
                if next.len() >= 64 {
                    break;
                }
                next.push(format!("{o}{head}{alt}"));
            }
        }
        out = next;
        rest = &rest[close + 1..];
    }
    for o in &mut out {
        o.push_str(rest);
    }
    out
}

/// Trees where a homelab keeps secrets among everything else: stacks and
/// their `.env` files, homes with keys, system configuration, container
/// volumes. A recursive read at, above or inside one reads them.
const TREES_HOLDING_SECRETS: &[&str] = &[
    "/srv",
    "/opt",
    "/home",
    "/root",
    "/etc",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/var/lib/rancher",
    "/var/snap",
    "/mnt",
    "/media",
    "/data",
    "~",
];

/// Whether `path` is `tree`, inside it, or above it (`/` holds every tree).
fn holds_or_is_within(path: &str, tree: &str) -> bool {
    let inside = |a: &str, b: &str| {
        a == b || (a.starts_with(b) && (b.ends_with('/') || a[b.len()..].starts_with('/')))
    };
    inside(path, tree) || inside(tree, path)
}

/// The last path component; `rm` for `/bin/rm`.
pub fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Joins a literal target onto a known directory, folding `.` and `..` as
/// text. `None` when the result is only known at run time. What the host
/// would open is [`crate::paths::resolve`]'s to say; this is the lexical
/// reading alone.
pub fn resolve(cwd: Option<&str>, target: &str) -> Option<String> {
    let joined = if target.starts_with('/') || target.starts_with('~') {
        target.to_owned()
    } else {
        format!("{}/{target}", cwd?)
    };
    Some(normalize_path(&joined))
}

/// Folds `//`, `/./` and `/..` in an absolute path as text; keeps `~`
/// prefixes (see [`crate::paths::fold_lexically`]).
pub fn normalize_path(path: &str) -> String {
    crate::paths::fold_lexically(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/tmp/../"), "/");
        assert_eq!(normalize_path("//etc/./"), "/etc");
        assert_eq!(normalize_path("/a/b/../../.."), "/");
        assert_eq!(normalize_path("~/x/.."), "~");
        assert_eq!(resolve(Some("/tmp"), ".."), Some("/".into()));
        assert_eq!(resolve(None, "x"), None);
        assert_eq!(resolve(None, "/srv"), Some("/srv".into()));
    }

    #[test]
    fn basenames() {
        assert_eq!(basename("/bin/rm"), "rm");
        assert_eq!(basename("rm"), "rm");
        assert_eq!(basename("./x/"), "x");
    }
}
