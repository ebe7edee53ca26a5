//! Dry-run previews: for tools that can show what they would do, the same
//! command translated into its preview form (`git clean -f` → `git clean -n`).
//!
//! Only translations of commands whose words are all known are offered, and
//! only for programs run directly (not inside `sudo` or `sh -c`), so a
//! preview never runs something the original would not have shown. The
//! previews are commands to run later through the same pipeline; nothing
//! here runs anything.

use serde::Serialize;

use crate::analyze::{Analysis, Command, ProgramRef};

/// One preview command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// The command it previews.
    pub original: String,
    /// The preview command line, quoted for a POSIX shell.
    pub preview: String,
    /// What the preview shows.
    pub shows: &'static str,
}

/// Previews for every command of the line that has one.
pub fn previews(analysis: &Analysis) -> Vec<Preview> {
    analysis
        .commands
        .iter()
        .filter(|c| c.via.is_empty() && c.args.iter().all(|a| a.literal))
        .filter_map(preview)
        .collect()
}

fn preview(c: &Command) -> Option<Preview> {
    let ProgramRef::Named { written, name, .. } = &c.program else {
        return None;
    };
    let args: Vec<&str> = c.args.iter().map(|a| a.text.as_str()).collect();
    let sub = c.positionals.first().and_then(|p| p.as_deref());
    let (words, shows): (Vec<String>, &'static str) = match (name.as_str(), sub) {
        ("git", Some("clean")) => {
            let kept = args
                .iter()
                .filter(|a| !matches!(**a, "-f" | "--force" | "-ff"))
                .map(|a| {
                    // `-fdx` → `-dx`: the force flag goes, the rest stays.
                    if a.starts_with('-') && !a.starts_with("--") && a.contains('f') {
                        a.replace('f', "")
                    } else {
                        (*a).to_owned()
                    }
                })
                .filter(|a| a != "-");
            (
                once(written).chain(kept).chain(["-n".to_owned()]).collect(),
                "the files git clean would delete",
            )
        }
        (
            "apt-get" | "apt",
            Some(
                "install" | "remove" | "purge" | "upgrade" | "dist-upgrade" | "full-upgrade"
                | "autoremove",
            ),
        ) => (
            once("apt-get")
                .chain(["-s".to_owned()])
                .chain(own(&args))
                .collect(),
            "the packages apt would install, upgrade or remove",
        ),
        ("rsync", _) if !args.contains(&"--dry-run") && !args.contains(&"-n") => (
            once(written)
                .chain(["--dry-run".to_owned(), "--itemize-changes".to_owned()])
                .chain(own(&args))
                .collect(),
            "the files rsync would transfer or delete",
        ),
        ("make", _) => (
            once(written)
                .chain(["-n".to_owned()])
                .chain(own(&args))
                .collect(),
            "the recipes make would run",
        ),
        (
            "kubectl",
            Some(
                "apply" | "create" | "delete" | "patch" | "replace" | "scale" | "set" | "label"
                | "annotate" | "expose" | "run",
            ),
        ) => (
            once(written)
                .chain(own(&args))
                .chain(["--dry-run=server".to_owned()])
                .collect(),
            "what the API server would change",
        ),
        ("helm", Some("install" | "upgrade" | "uninstall" | "rollback")) => (
            once(written)
                .chain(own(&args))
                .chain(["--dry-run".to_owned()])
                .collect(),
            "what helm would change",
        ),
        ("terraform" | "tofu", Some("apply" | "destroy")) => {
            let rest = args
                .iter()
                .skip_while(|a| !matches!(**a, "apply" | "destroy"))
                .skip(1);
            let mut w: Vec<String> = vec![written.clone(), "plan".into()];
            if sub == Some("destroy") {
                w.push("-destroy".into());
            }
            w.extend(
                rest.filter(|a| !a.starts_with("-auto-approve"))
                    .map(|a| (*a).to_owned()),
            );
            (w, "the plan terraform would apply")
        }
        ("ansible-playbook", _) => (
            once(written)
                .chain(own(&args))
                .chain(["--check".to_owned(), "--diff".to_owned()])
                .collect(),
            "the changes ansible would make",
        ),
        ("docker" | "docker-compose", _) if compose_sub(c).is_some() => {
            let mut w = vec![written.clone()];
            let mut inserted = false;
            for a in &args {
                w.push((*a).to_owned());
                if !inserted && (*a == "compose" || name == "docker-compose") {
                    w.push("--dry-run".into());
                    inserted = true;
                }
            }
            if !inserted {
                w.insert(1, "--dry-run".into());
            }
            (w, "what compose would create, recreate or remove")
        }
        ("pip" | "pip3", Some("install")) => (
            once(written)
                .chain(own(&args))
                .chain(["--dry-run".to_owned()])
                .collect(),
            "the packages pip would install",
        ),
        ("npm", Some("install" | "ci" | "update" | "uninstall")) => (
            once(written)
                .chain(own(&args))
                .chain(["--dry-run".to_owned()])
                .collect(),
            "what npm would change",
        ),
        ("dnf" | "yum", Some("install" | "remove" | "upgrade" | "update" | "erase")) => (
            once(written)
                .chain(own(&args))
                .chain(["--assumeno".to_owned()])
                .collect(),
            "the transaction dnf would run",
        ),
        ("rm", _) => {
            let paths: Vec<String> = own(&args).filter(|a| !a.starts_with('-')).collect();
            if paths.is_empty() {
                return None;
            }
            (
                ["ls", "-ld", "--"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(paths)
                    .collect(),
                "the files rm would delete",
            )
        }
        ("sed", _)
            if args
                .iter()
                .any(|a| *a == "-i" || a.starts_with("--in-place")) =>
        {
            let kept: Vec<&str> = args
                .iter()
                .copied()
                .filter(|a| *a != "-i" && !a.starts_with("--in-place"))
                .collect();
            let file = *kept.last()?;
            let mut line = quote_all(once("sed").chain(kept.iter().map(|a| (*a).to_owned())));
            line.push_str(" | diff -u -- ");
            line.push_str(&quote(file));
            line.push_str(" -");
            return Some(Preview {
                original: c.display(),
                preview: line,
                shows: "the diff sed -i would make",
            });
        }
        _ => return None,
    };
    Some(Preview {
        original: c.display(),
        preview: quote_all(words.into_iter()),
        shows,
    })
}

fn compose_sub(c: &Command) -> Option<&str> {
    let mut pos = c.positionals.iter().map(|p| p.as_deref());
    let first = pos.next().flatten()?;
    let sub = if first == "compose" {
        pos.next().flatten()?
    } else {
        first
    };
    matches!(
        sub,
        "up" | "down" | "rm" | "pull" | "restart" | "stop" | "start" | "create" | "kill"
    )
    .then_some(sub)
}

fn once(s: &str) -> std::iter::Once<String> {
    std::iter::once(s.to_owned())
}

fn own<'a>(args: &'a [&'a str]) -> impl Iterator<Item = String> + 'a {
    args.iter().map(|a| (*a).to_owned())
}

fn quote_all(words: impl Iterator<Item = String>) -> String {
    words.map(|w| quote(&w)).collect::<Vec<_>>().join(" ")
}

/// Quotes a word for a POSIX shell, leaving plain words bare.
pub fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(x)"), "'$(x)'");
    }
}
