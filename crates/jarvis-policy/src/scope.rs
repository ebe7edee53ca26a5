//! What a command line can change, as far as its words say: the git
//! repositories and containers a snapshot must capture, what lies outside
//! any snapshot, and whether a live preview can run it in a throwaway copy.
//!
//! This reads the same [`Analysis`] the judgement uses, so a program hidden
//! in `sh -c` or `sudo` is seen here too. It errs towards "unscoped": a
//! change it cannot place is named, so the approval request says a rollback
//! will not cover it.

use std::collections::BTreeSet;

use jarvis_core::text::code;

use crate::analyze::{self, Analysis, Command, ProgramRef};
use crate::kb::Effect;
use crate::paths::{self, Unknown};

/// Facts about where the line runs that scoping needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeContext<'a> {
    /// The working directory on the host, when the request names one.
    pub cwd: Option<&'a str>,
    /// Repositories the host config lists: a path under one of them is
    /// captured through it.
    pub repos: &'a [String],
}

/// A Compose project a command acts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ComposeRef {
    /// `-p NAME`.
    pub project: Option<String>,
    /// The project directory.
    pub dir: Option<String>,
}

/// A preview that can run the command in a throwaway copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// Every change is a local git operation or a file change under `repo`.
    Git {
        /// A directory in the repository.
        repo: String,
    },
    /// One `docker exec|restart|stop|start|kill` of one container.
    Docker {
        /// The container.
        container: String,
        /// The words after `docker`.
        argv: Vec<String>,
        /// Which of them is the container's name.
        container_arg: usize,
    },
}

/// What a line can change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Nothing in it changes anything.
    pub read_only: bool,
    /// Directories whose repository a snapshot must capture.
    pub repos: BTreeSet<String>,
    /// Containers, by name.
    pub containers: BTreeSet<String>,
    /// Compose projects.
    pub compose: BTreeSet<ComposeRef>,
    /// Changes no snapshot covers, one sentence each.
    pub unscoped: Vec<String>,
    /// Effects beyond this host (a push, an API call), one sentence each.
    pub remote: Vec<String>,
    /// A live preview, when one is possible.
    pub live: Option<Live>,
}

/// Docker subcommands whose second positional word is the one container
/// they act on (or the first of several).
const CONTAINER_SUBS: &[&str] = &[
    "exec", "restart", "stop", "start", "kill", "pause", "unpause", "update", "rm", "rename",
    "attach", "wait", "commit", "export", "diff",
];
/// Docker subcommands a live preview can replay against a clone.
const LIVE_DOCKER_SUBS: &[&str] = &["exec", "restart", "stop", "start", "kill"];
/// Options of those subcommands that take a value (so the value is not the
/// container).
const DOCKER_VALUE_OPTIONS: &[&str] = &[
    "-e",
    "--env",
    "--env-file",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "--detach-keys",
    "-t",
    "--time",
    "-s",
    "--signal",
];
/// Git subcommands that reach another machine.
const GIT_REMOTE: &[&str] = &[
    "push",
    "pull",
    "fetch",
    "clone",
    "ls-remote",
    "send-email",
    "request-pull",
    "svn",
    "p4",
];
/// Programs whose writes a git preview can replay in a clone: each changes
/// only the files its arguments name.
const FILE_PROGRAMS: &[&str] = &[
    "rm", "mv", "cp", "touch", "mkdir", "rmdir", "sed", "tee", "truncate", "chmod", "ln", "echo",
    "printf", "cat", "true", "ls",
];

/// Scopes an analysed line.
pub fn scope(analysis: &Analysis, ctx: &ScopeContext<'_>) -> Scope {
    let mut s = Scope::default();
    let mut changes = Vec::new();
    let mut exec_container: Option<String> = None;
    for c in &analysis.commands {
        let inside = c.via.iter().any(|v| v == "docker exec");
        if !inside && c.name() == Some("docker") && sub(c, 0) == Some("exec") {
            exec_container = sub(c, 1).map(str::to_owned);
        }
        let effects: BTreeSet<Effect> = c.findings.iter().map(|f| f.effect).collect();
        if effects.iter().all(|e| *e == Effect::Read) {
            continue;
        }
        changes.push(c);
        if effects.contains(&Effect::Network) && !inside {
            s.remote.push(format!(
                "{} talks to other machines; what it changes there is not captured",
                code(&c.display())
            ));
        }
        if inside {
            // Runs inside a container: its changes are the container's.
            match &exec_container {
                Some(name) => {
                    s.containers.insert(name.clone());
                }
                None => s.unscoped.push(format!(
                    "{} runs in a container whose name is only known at run time",
                    code(&c.display())
                )),
            }
            continue;
        }
        match c.name() {
            Some("docker" | "podman") => docker(c, ctx, &mut s),
            Some("docker-compose") => compose(c, ctx, &mut s),
            Some("git") => git(c, ctx, &mut s),
            Some(name) if FILE_PROGRAMS.contains(&name) && !c.privileged => files(c, ctx, &mut s),
            _ => s.unscoped.push(format!(
                "{}: {}",
                code(&c.display()),
                what_it_does(c)
                    .map(|w| format!("{w}, outside any repository or container"))
                    .unwrap_or_else(|| "changes state outside any repository or container".into())
            )),
        }
        redirects(c, ctx, &mut s);
    }
    s.read_only = changes.is_empty() && analysis.opaque.is_empty();
    for o in &analysis.opaque {
        s.unscoped
            .push(format!("{o}: what it changes cannot be known"));
    }
    s.live = live(analysis, &changes, &s);
    s
}

/// The strongest finding's words, as a reason.
fn what_it_does(c: &Command) -> Option<String> {
    c.findings
        .iter()
        .filter(|f| f.effect != Effect::Read)
        .max_by_key(|f| f.risk)
        .map(|f| f.why.clone())
}

/// The nth positional word (subcommand path first), if literal.
fn sub(c: &Command, n: usize) -> Option<&str> {
    c.positionals.get(n).and_then(|p| p.as_deref())
}

fn docker(c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    let Some(first) = sub(c, 0) else {
        s.unscoped.push(format!(
            "{}: the Docker subcommand is only known at run time",
            code(&c.display())
        ));
        return;
    };
    if first == "compose" {
        return compose(c, ctx, s);
    }
    let (verb, rest) = match first {
        "container" => (sub(c, 1), 2),
        _ => (Some(first), 1),
    };
    let Some(verb) = verb else {
        s.unscoped
            .push(format!("{}: unknown Docker subcommand", code(&c.display())));
        return;
    };
    if CONTAINER_SUBS.contains(&verb) {
        let names: Vec<Option<&str>> = if matches!(
            verb,
            "rm" | "restart" | "stop" | "start" | "kill" | "pause" | "unpause" | "update"
        ) {
            (rest..c.positionals.len()).map(|i| sub(c, i)).collect()
        } else {
            vec![sub(c, rest)]
        };
        if names.is_empty() {
            s.unscoped
                .push(format!("{} names no container", code(&c.display())));
        }
        for name in names {
            match name {
                Some(n) => {
                    s.containers.insert(n.to_owned());
                }
                None => s.unscoped.push(format!(
                    "{} names a container only known at run time",
                    code(&c.display())
                )),
            }
        }
        return;
    }
    if matches!(verb, "run" | "create") {
        match option_value(c, &["--name"]) {
            Some(name) => {
                // A new container of that name: captured as absent, so a
                // rollback removes it.
                s.containers.insert(name);
            }
            None => s.unscoped.push(format!(
                "{} creates a container without --name; a rollback could not find it",
                code(&c.display())
            )),
        }
        return;
    }
    if verb == "cp" {
        let mut found = false;
        for i in rest..c.positionals.len() {
            if let Some((name, _)) = sub(c, i).and_then(|w| w.split_once(':'))
                && !name.is_empty()
                && !name.contains('/')
            {
                s.containers.insert(name.to_owned());
                found = true;
            }
        }
        if !found {
            s.unscoped.push(format!(
                "{} copies files to no container it names",
                code(&c.display())
            ));
        }
        return;
    }
    s.unscoped.push(format!(
        "{}: {}, which no container snapshot covers",
        code(&c.display()),
        what_it_does(c).unwrap_or_else(|| "changes Docker state".into())
    ));
}

fn compose(c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    let project = option_value(c, &["-p", "--project-name"]);
    let dir = option_value(c, &["--project-directory"])
        .or_else(|| {
            option_value(c, &["-f", "--file"]).map(|f| {
                let f = analyze::resolve(ctx.cwd, &f).unwrap_or(f);
                match f.rsplit_once('/') {
                    Some(("", _)) => "/".to_owned(),
                    Some((d, _)) => d.to_owned(),
                    None => f,
                }
            })
        })
        .map(|d| analyze::resolve(ctx.cwd, &d).unwrap_or(d))
        .or_else(|| ctx.cwd.map(str::to_owned));
    if project.is_none() && dir.is_none() {
        s.unscoped.push(format!(
            "{}: neither -p nor a project directory says which Compose project",
            code(&c.display())
        ));
        return;
    }
    s.compose.insert(ComposeRef { project, dir });
}

fn git(c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    let verb = sub(c, 0).unwrap_or("");
    if GIT_REMOTE.contains(&verb) {
        s.remote.push(format!(
            "{} changes another repository, which no snapshot can put back",
            code(&c.display())
        ));
    }
    let first = c
        .cwds
        .first()
        .cloned()
        .flatten()
        .or(ctx.cwd.map(str::to_owned));
    // `-C` as the host resolves it; every directory it can be is captured.
    let dirs: Vec<String> = match option_value(c, &["-C"]) {
        Some(d) => {
            let host = paths::resolve_in_known_dirs(&d, &[first], false);
            if host.is_known() {
                host.paths
            } else {
                Vec::new()
            }
        }
        None => first.into_iter().collect(),
    };
    match dirs.as_slice() {
        [_, ..] => s.repos.extend(dirs),
        [] => s.unscoped.push(format!(
            "{} runs in a directory only known at run time (give the action a working directory or use git -C)",
            code(&c.display())
        )),
    }
}

fn files(c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    for path in path_args(c) {
        place(&path, c, ctx, s);
    }
}

fn redirects(c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    for r in c.redirects.iter().filter(|r| r.op.writes()) {
        if matches!(
            r.target.text.as_str(),
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
        ) {
            continue;
        }
        if !r.target.literal {
            s.unscoped.push(format!(
                "{} writes to a file named only at run time",
                code(&c.display())
            ));
            continue;
        }
        place(&r.target.text, c, ctx, s);
    }
}

/// Puts one written path into a repository of the host config, or the
/// command's repository when it runs in one, or says it is not covered.
/// The path is read as the host resolves it ([`crate::paths`]), in every
/// directory the line can be in: each place it can name must be captured
/// (`/proc/self/root/srv/config/x` is in `/srv/config`), and a place only
/// known at run time cannot be.
fn place(path: &str, c: &Command, ctx: &ScopeContext<'_>, s: &mut Scope) {
    let cwds: Vec<Option<String>> = if c.cwds.is_empty() {
        vec![ctx.cwd.map(str::to_owned)]
    } else {
        c.cwds
            .iter()
            .map(|d| d.clone().or(ctx.cwd.map(str::to_owned)))
            .collect()
    };
    let host = paths::resolve_in_known_dirs(path, &cwds, path.contains(['*', '?', '[']));
    if let Some(e) = host.elsewhere.first() {
        s.unscoped.push(match e.base {
            Unknown::WorkingDirectory => format!(
                "{} changes {} relative to a directory only known at run time",
                code(&c.display()),
                code(path)
            ),
            other @ (Unknown::Home
            | Unknown::ProcessDirectory
            | Unknown::OpenFile
            | Unknown::DeviceDirectory
            | Unknown::TooMany) => format!(
                "{} changes {}, which lies in {}",
                code(&c.display()),
                code(path),
                other.describe()
            ),
        });
        return;
    }
    for abs in &host.paths {
        if let Some(repo) = ctx.repos.iter().find(|r| under(abs, r)) {
            s.repos.insert(repo.clone());
        } else if let Some(dir) = cwds.iter().flatten().find(|d| under(abs, d)) {
            // Under the working directory: captured if that is in a
            // repository (the host finds out; a directory in none is
            // reported then).
            s.repos.insert(dir.clone());
        } else {
            s.unscoped.push(format!(
                "{} changes {}, which is in no configured repository",
                code(&c.display()),
                code(abs)
            ));
        }
    }
}

/// Whether `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.starts_with(&format!("{dir}/")) || dir.is_empty()
}

/// The literal value of the first of `names`, as `-x V`, `--x V` or `--x=V`.
fn option_value(c: &Command, names: &[&str]) -> Option<String> {
    let mut args = c.args.iter();
    while let Some(a) = args.next() {
        if a.text == "--" {
            break;
        }
        if names.contains(&a.text.as_str()) {
            return args.next().filter(|v| v.literal).map(|v| v.text.clone());
        }
        if let Some((k, v)) = a.text.split_once('=')
            && names.contains(&k)
            && a.literal
        {
            return Some(v.to_owned());
        }
    }
    None
}

/// The path arguments of a file program: its words that are not options
/// (nor their values), and for `sed` not the script.
fn path_args(c: &Command) -> Vec<String> {
    let name = c.name().unwrap_or("");
    if matches!(name, "echo" | "printf" | "true" | "cat" | "ls") {
        return Vec::new();
    }
    let value_options: &[&str] = match name {
        "sed" => &["-e", "--expression", "-f", "--file", "-l"],
        "truncate" => &["-s", "--size", "-r", "--reference"],
        "cp" | "mv" | "ln" => &["-S", "--suffix"],
        _ => &[],
    };
    let mut out = Vec::new();
    let mut script_seen = name != "sed"
        || c.args
            .iter()
            .any(|a| matches!(a.text.as_str(), "-e" | "--expression" | "-f" | "--file"));
    let mut mode_seen = name != "chmod";
    let mut options = true;
    let mut args = c.args.iter();
    while let Some(a) = args.next() {
        if options && a.text == "--" {
            options = false;
            continue;
        }
        if options && a.text.starts_with('-') && a.text.len() > 1 {
            if value_options.contains(&a.text.as_str()) {
                args.next();
            }
            if let Some(v) = a.text.strip_prefix("--target-directory=") {
                out.push(v.to_owned());
            }
            continue;
        }
        if !script_seen {
            script_seen = true;
            continue;
        }
        if !mode_seen {
            mode_seen = true;
            continue;
        }
        out.push(a.text.clone());
    }
    out
}

/// A live preview for the line, when every change it makes can be replayed
/// in a copy: one Docker command against one container, or only local git
/// and file changes inside one repository.
fn live(analysis: &Analysis, changes: &[&Command], s: &Scope) -> Option<Live> {
    if changes.is_empty()
        || !s.unscoped.is_empty()
        || !s.remote.is_empty()
        || !analysis.opaque.is_empty()
        || analysis
            .commands
            .iter()
            .any(|c| c.privileged || c.findings.iter().any(|f| f.attended))
    {
        return None;
    }
    // What runs on the host itself (not inside `docker exec`), read-only
    // or not: a live Docker preview replays exactly one such command.
    let direct: Vec<&Command> = analysis
        .commands
        .iter()
        .filter(|c| !c.via.iter().any(|v| v == "docker exec"))
        .collect();
    if let [c] = direct.as_slice()
        && c.name() == Some("docker")
        && c.via.is_empty()
        && s.repos.is_empty()
        && s.compose.is_empty()
        && s.containers.len() == 1
        && c.args.iter().all(|a| a.literal)
        && let Some(verb) = sub(c, 0).filter(|v| LIVE_DOCKER_SUBS.contains(v))
        && let Some(container) = sub(c, 1)
    {
        let argv: Vec<String> = c.args.iter().map(|a| a.text.clone()).collect();
        let at = argv.iter().position(|a| a == verb)?;
        let container_arg = (at + 1..argv.len()).find(|&i| {
            argv[i] == container && !DOCKER_VALUE_OPTIONS.contains(&argv[i - 1].as_str())
        })?;
        return Some(Live::Docker {
            container: container.to_owned(),
            argv,
            container_arg,
        });
    }
    // A preview runs before anyone approved the line, so a git option that
    // makes git run a program (`-c core.fsmonitor=…`, `rebase --exec`) is
    // not replayed either.
    let local = |c: &&Command| match c.name() {
        Some(n) => {
            (n == "git" || FILE_PROGRAMS.contains(&n))
                && c.findings
                    .iter()
                    .all(|f| matches!(f.effect, Effect::Read | Effect::Write | Effect::Delete))
        }
        None => false,
    };
    if s.repos.len() == 1
        && s.containers.is_empty()
        && s.compose.is_empty()
        && changes.iter().all(local)
        && analysis
            .commands
            .iter()
            .all(|c| c.via.is_empty() && c.args.iter().all(|a| a.literal))
        && analysis
            .commands
            .iter()
            .all(|c| matches!(c.program, ProgramRef::Named { system: true, .. }))
    {
        let repo = s.repos.iter().next()?.clone();
        return Some(Live::Git { repo });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Policy;

    fn scoped(line: &str, cwd: Option<&str>) -> Scope {
        let policy = Policy::shipped().expect("shipped policy loads");
        let repos = vec!["/srv/config".to_owned()];
        policy.scope(line, &ScopeContext { cwd, repos: &repos })
    }

    #[test]
    fn reading_takes_no_snapshot() {
        let s = scoped("docker ps; git -C /srv/config status; cat /etc/hosts", None);
        assert!(s.read_only, "{s:?}");
        assert!(s.repos.is_empty() && s.containers.is_empty());
    }

    #[test]
    fn containers_named_by_docker_commands_are_in_scope() {
        let s = scoped(
            "docker restart web worker && docker exec db sh -c 'rm /tmp/x'",
            None,
        );
        let names: Vec<&str> = s.containers.iter().map(String::as_str).collect();
        assert_eq!(names, ["db", "web", "worker"]);
        assert!(s.unscoped.is_empty(), "{s:?}");
        let s = scoped("docker run -d --name cache busybox", None);
        assert!(s.containers.contains("cache"));
        let s = scoped("docker cp ./app.conf web:/etc/app.conf", Some("/tmp"));
        assert!(s.containers.contains("web"));
    }

    #[test]
    fn compose_projects_come_from_p_f_or_the_working_directory() {
        let s = scoped("docker compose -p demo up -d", None);
        assert_eq!(
            s.compose.iter().next(),
            Some(&ComposeRef {
                project: Some("demo".into()),
                dir: None
            })
        );
        let s = scoped("docker compose -f /srv/app/compose.yml up -d", None);
        assert_eq!(
            s.compose.iter().next().and_then(|c| c.dir.as_deref()),
            Some("/srv/app")
        );
        let s = scoped("docker compose up -d", Some("/srv/app"));
        assert_eq!(
            s.compose.iter().next().and_then(|c| c.dir.as_deref()),
            Some("/srv/app")
        );
    }

    #[test]
    fn git_and_file_changes_find_their_repository() {
        let s = scoped("git -C /srv/other commit -am x", None);
        assert!(s.repos.contains("/srv/other"));
        let s = scoped("git commit -am x", Some("/srv/r"));
        assert!(s.repos.contains("/srv/r"));
        let s = scoped("sed -i s/a/b/ /srv/config/app.conf", None);
        assert!(s.repos.contains("/srv/config"), "{s:?}");
        let s = scoped("echo x > notes.txt", Some("/srv/r"));
        assert!(s.repos.contains("/srv/r"), "{s:?}");
    }

    #[test]
    fn written_paths_are_placed_where_the_host_resolves_them() {
        let s = scoped("rm /proc/self/root/srv/config/old.conf", None);
        assert!(s.repos.contains("/srv/config"), "{s:?}");
        assert!(s.unscoped.is_empty(), "{s:?}");
        let s = scoped("echo x > /srv/config//a/../b", None);
        assert!(s.repos.contains("/srv/config"), "{s:?}");
        let s = scoped("cd /srv/config && rm old.conf", Some("/srv/config"));
        assert!(s.repos.contains("/srv/config"), "{s:?}");
        assert!(s.unscoped.is_empty(), "{s:?}");
        let s = scoped("rm /srv/config/../other/x", None);
        assert!(s.unscoped[0].contains("/srv/other/x"), "{s:?}");
        let s = scoped("rm /proc/1/cwd/x", None);
        assert!(
            s.unscoped[0].contains("another process's working directory"),
            "{s:?}"
        );
        let s = scoped("rm /var/run/../srv/config/x", None);
        assert!(s.repos.contains("/srv/config"), "{s:?}");
        assert!(s.unscoped[0].contains("/var/srv/config/x"), "{s:?}");
        let s = scoped("git -C /proc/self/root/srv/other commit -am x", None);
        assert!(s.repos.contains("/srv/other"), "{s:?}");
    }

    #[test]
    fn changes_outside_any_scope_are_named() {
        let s = scoped("systemctl restart nginx", None);
        assert!(!s.read_only);
        assert_eq!(s.unscoped.len(), 1, "{s:?}");
        assert!(s.unscoped[0].contains("systemctl restart nginx"), "{s:?}");
        let s = scoped("rm /etc/nginx/sites-enabled/old", None);
        assert!(
            s.unscoped[0].contains("in no configured repository"),
            "{s:?}"
        );
        let s = scoped("git commit -am x", None);
        assert!(s.unscoped[0].contains("only known at run time"), "{s:?}");
        let s = scoped("git -C /srv/config push", None);
        assert!(!s.remote.is_empty(), "{s:?}");
    }

    #[test]
    fn live_previews_only_for_what_a_copy_can_replay() {
        let s = scoped("docker exec -u root web sh -c 'echo hi > /f'", None);
        assert_eq!(
            s.live,
            Some(Live::Docker {
                container: "web".into(),
                argv: ["exec", "-u", "root", "web", "sh", "-c", "echo hi > /f"]
                    .map(String::from)
                    .to_vec(),
                container_arg: 3
            })
        );
        let s = scoped(
            "git -C /srv/config commit -qam x && rm /srv/config/old.conf",
            None,
        );
        assert_eq!(
            s.live,
            Some(Live::Git {
                repo: "/srv/config".into()
            })
        );
        for line in [
            "git -C /srv/config push",
            "docker restart web worker",
            "systemctl restart x",
            "sudo rm /srv/config/x",
            "git -C /srv/config commit -am x && docker restart web",
            "curl -o /srv/config/x http://example.com",
            "git -C /srv/config -c core.fsmonitor=./x commit -qam x",
            "git -C /srv/config rebase --exec 'make test' main",
        ] {
            assert_eq!(scoped(line, None).live, None, "{line}");
        }
    }
}
