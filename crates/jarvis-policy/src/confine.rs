//! What the kernel should let one command line do, from the same analysis
//! that judged it: the programs it may execute, the paths it may write and
//! whether it may use the network.
//!
//! This is the third wall's input. The host guard turns a [`Confinement`]
//! into a Landlock and seccomp ruleset for the command alone, so that an
//! action judged read-only cannot write even if the judgement was wrong.
//! Everything here is a *name* as the line spells it: resolving programs on
//! the host's `PATH`, following symbolic links and finding ELF interpreters
//! is the guard's work (this crate does no IO).
//!
//! The rule for every field is the same: when the analysis cannot know, the
//! field says so (`programs: None`, `writes_unknown`), and the guard grants
//! the narrow side for an unattended action and the host's approved grant
//! for one a person approved. Nothing here ever widens a grant because a
//! line is hard to read.

use std::collections::BTreeSet;

use crate::analyze::{Analysis, Command, ProgramRef, WriteTargets, normalize_path, resolve};
use crate::kb::Effect;
use crate::shell::Word;

/// What one command line may do under the kernel's ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// The programs the line executes, each as the guard must look it up: a
    /// bare name (found on the command's `PATH` on the host; a shell
    /// builtin such as `cd` has no file there and grants nothing), an
    /// absolute path, or an absolute pattern whose last component is a glob
    /// (a helper directory the knowledge base declares, such as
    /// `/usr/lib/git-core/git-*`). Programs run by the programs themselves
    /// (`git`'s helpers, `gzip` for `zcat`) are included as the knowledge
    /// base declares them; the shell itself and ELF or `#!` interpreters
    /// are the guard's to add. `None` when some program is only known at
    /// run time or the line runs code that cannot be read (a script file,
    /// inline Python, an `awk` `system()`): then no list is complete.
    pub programs: Option<BTreeSet<String>>,
    /// Absolute, normalised paths beneath which the line writes:
    /// redirection targets, the files the commands that write name, the
    /// working directory of a command that writes there (`git commit`),
    /// and the directory holding a path a command removes or renames
    /// (`rm`, `mv`: removing an entry changes its directory). A path that
    /// does not exist yet is one the line creates. The sinks every command
    /// may write (`/dev/null`, and its own output through `/dev/stdout`,
    /// `/dev/stderr`, `/dev/fd/N`) are never listed.
    pub writes: BTreeSet<String>,
    /// Some write goes to a place only known at run time (a word with an
    /// expansion, a relative path with no known working directory, a
    /// program whose writes the knowledge base cannot place, such as
    /// `apt install`).
    pub writes_unknown: bool,
    /// The line talks to other machines, or to this one over TCP or UDP (a
    /// network effect the analysis found, `curl localhost` included).
    pub network: bool,
    /// Some program gains or hands out privilege (`sudo`, `doas`, `su`,
    /// `pkexec`, `docker run --privileged`): a setuid program needs the
    /// kernel to honour setuid, which the kernel wall takes away (Landlock
    /// requires `no_new_privs`), and privilege handed to another process
    /// is beyond the wall anyway.
    pub privileged: bool,
}

impl Confinement {
    /// Whether the line writes nothing the analysis can see.
    pub fn read_only(&self) -> bool {
        self.writes.is_empty() && !self.writes_unknown
    }
}

/// Derives the confinement of an analysed line; `cwd` is the directory the
/// line starts in, when the request names one.
pub fn confinement(analysis: &Analysis, cwd: Option<&str>) -> Confinement {
    let mut c = Confinement {
        programs: Some(BTreeSet::new()),
        ..Confinement::default()
    };
    if !analysis.opaque.is_empty() {
        c.programs = None;
    }
    for command in &analysis.commands {
        let dirs = working_dirs(command, cwd);
        add_programs(&mut c, command, &dirs);
        c.network |= command.uses_network;
        c.privileged |= command.privileged
            || command
                .findings
                .iter()
                .any(|f| f.effect == Effect::Privilege);
        for f in &command.findings {
            match f.effect {
                Effect::Network => c.network = true,
                // Nothing says what it does, so nothing says where it
                // writes.
                Effect::Unknown => c.writes_unknown = true,
                Effect::Read
                | Effect::Write
                | Effect::Delete
                | Effect::Service
                | Effect::Exec
                | Effect::Privilege
                | Effect::Interactive => {}
            }
        }
        for r in command.redirects.iter().filter(|r| r.op.writes()) {
            add_write(&mut c, &r.target, false, &dirs);
        }
        match &command.writes {
            WriteTargets::Nothing => {}
            WriteTargets::Unknown => c.writes_unknown = true,
            WriteTargets::Paths { words, entries } => {
                for w in words {
                    add_write(&mut c, w, *entries, &dirs);
                }
            }
            WriteTargets::WorkingDirectory { directories, paths } => {
                for dir in working_directory(directories, &dirs) {
                    match dir {
                        Some(d) => add_path(&mut c, &d, false),
                        None => c.writes_unknown = true,
                    }
                }
                // Relative paths lie beneath the working directory, unless
                // they climb out of it (`git worktree add ../wt`).
                for w in paths
                    .iter()
                    .filter(|w| !w.literal || outside_working_directory(target_text(&w.text)))
                {
                    add_write(&mut c, w, false, &dirs);
                }
            }
        }
    }
    c
}

fn add_programs(c: &mut Confinement, command: &Command, dirs: &[Option<String>]) {
    match &command.program {
        ProgramRef::Named { written, .. } => {
            if let Some(programs) = &mut c.programs {
                if !written.contains('/') || written.starts_with('/') {
                    programs.insert(written.clone());
                } else if written.starts_with('~') {
                    // A home directory is the host's to know.
                    c.programs = None;
                } else {
                    // `./run.sh` after `cd /opt/app` is `/opt/app/run.sh`,
                    // not a file in the directory the guard starts in.
                    for dir in dirs {
                        match resolve(dir.as_deref(), written) {
                            Some(p) => programs.insert(p),
                            None => {
                                c.programs = None;
                                break;
                            }
                        };
                    }
                }
            }
        }
        ProgramRef::Dynamic { .. } => c.programs = None,
        ProgramRef::None => {}
    }
    if command.runs_unknown {
        c.programs = None;
    }
    if let Some(programs) = &mut c.programs {
        programs.extend(command.helpers.iter().cloned());
    }
}

/// The directories a relative path of `command` may be resolved against;
/// `None` in the list for one only known at run time.
fn working_dirs(command: &Command, cwd: Option<&str>) -> Vec<Option<String>> {
    if command.cwds.is_empty() {
        vec![cwd.map(str::to_owned)]
    } else {
        command.cwds.clone()
    }
}

/// Where a command with directory options works: each option's value taken
/// from the one before (`git -C a -C b` is `a/b`), the first from the
/// line's working directories.
fn working_directory(directories: &[Word], dirs: &[Option<String>]) -> Vec<Option<String>> {
    let mut current: Vec<Option<String>> = dirs.to_vec();
    for d in directories {
        if !d.literal || d.text.starts_with('~') {
            return vec![None];
        }
        current = current
            .iter()
            .map(|base| resolve(base.as_deref(), &d.text))
            .collect();
    }
    current
}

/// Whether a path a command names may lie outside its working directory.
fn outside_working_directory(text: &str) -> bool {
    if text.starts_with(['/', '~']) {
        return true;
    }
    let inside = normalize_path(&format!("/w/{text}"));
    !(inside == "/w" || inside.starts_with("/w/"))
}

/// What a written word names: `PATH` in `of=PATH`, `--output=PATH`.
fn target_text(text: &str) -> &str {
    match text.split_once('=') {
        Some((key, value))
            if !key.is_empty()
                && key
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            value
        }
        _ => text,
    }
}

/// Adds what `word` names as written, resolved against `dirs`; with
/// `entries`, also the directory holding it.
fn add_write(c: &mut Confinement, word: &Word, entries: bool, dirs: &[Option<String>]) {
    let text = target_text(&word.text);
    // `find -exec rm {} +`, `xargs -I{} rm {}`: filled in at run time.
    if !word.literal || text.contains("{}") || text.starts_with('~') {
        c.writes_unknown = true;
        return;
    }
    if text.is_empty() || text == "-" {
        // Standard output.
        return;
    }
    if text.starts_with('/') {
        add_path(c, text, entries);
        return;
    }
    for dir in dirs {
        match resolve(dir.as_deref(), text) {
            Some(path) => add_path(c, &path, entries),
            None => c.writes_unknown = true,
        }
    }
}

fn add_path(c: &mut Confinement, path: &str, entries: bool) {
    let path = normalize_path(path);
    if is_sink(&path) {
        return;
    }
    if entries && path != "/" {
        c.writes.insert(normalize_path(&format!("{path}/..")));
    }
    c.writes.insert(path);
}

/// Files every command may write without changing anything: the null
/// device and the command's own output, whose descriptors the guard holds.
fn is_sink(path: &str) -> bool {
    matches!(path, "/dev/null" | "/dev/stdout" | "/dev/stderr")
        || path
            .strip_prefix("/dev/fd/")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;
    use crate::Policy;

    static POLICY: LazyLock<Policy> =
        LazyLock::new(|| Policy::shipped().expect("shipped policy loads"));

    fn conf(line: &str, cwd: Option<&str>) -> Confinement {
        POLICY
            .confinement(line, cwd)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn programs(line: &str) -> Vec<String> {
        conf(line, Some("/home/u"))
            .programs
            .unwrap_or_else(|| panic!("{line}: programs unknown"))
            .into_iter()
            .collect()
    }

    fn writes(line: &str, cwd: Option<&str>) -> Vec<String> {
        let c = conf(line, cwd);
        assert!(!c.writes_unknown, "{line}: writes unknown");
        c.writes.into_iter().collect()
    }

    fn has(list: &[String], want: &[&str], line: &str) {
        for w in want {
            assert!(
                list.iter().any(|p| p == w),
                "{line}: {w} missing from {list:?}"
            );
        }
    }

    #[test]
    fn programs_of_every_construct() {
        for (line, want) in [
            ("ls -la | grep x | sort", &["ls", "grep", "sort"][..]),
            (
                "df -h && free -m || uptime; id",
                &["df", "free", "uptime", "id"],
            ),
            ("(cd /srv && ls); { date; }", &["ls", "date"]),
            ("echo $(hostname) `whoami`", &["echo", "hostname", "whoami"]),
            ("diff <(ls a) >(wc -l)", &["diff", "ls", "wc"]),
            ("sh -c 'uname -a; ps aux'", &["sh", "uname", "ps"]),
            ("sudo -u root systemctl status", &["sudo", "systemctl"]),
            ("env LC_ALL=C sort f", &["env", "sort"]),
            ("echo a | xargs ls", &["xargs", "ls"]),
            ("timeout 5 du -sh /srv", &["timeout", "du"]),
            ("nice -n 19 du -sh /srv", &["nice", "du"]),
            (
                "find /srv -name '*.yml' -exec grep -l x {} +",
                &["find", "grep"],
            ),
            ("/usr/bin/stat /etc/hosts", &["/usr/bin/stat"]),
            ("for f in a b; do wc -c \"$f\"; done", &["wc"]),
            ("if test -f x; then head x; fi", &["test", "head"]),
        ] {
            has(&programs(line), want, line);
        }
    }

    #[test]
    fn a_relative_program_is_where_cd_led() {
        let c = conf("cd /opt/app && ./run.sh", Some("/home/u"));
        let p = c.programs.expect("known");
        assert!(p.contains("/opt/app/run.sh"), "{p:?}");
        assert!(p.contains("/home/u/run.sh"), "{p:?}");
        assert!(conf("./run.sh", None).programs.is_none());
        assert!(conf("~/bin/x", Some("/")).programs.is_none());
    }

    #[test]
    fn helpers_come_with_their_programs() {
        has(
            &programs("git -C /srv/repo log --oneline"),
            &["git", "/usr/lib/git-core/git", "/usr/lib/git-core/git-*"],
            "git",
        );
        has(
            &programs("zgrep x /var/log/syslog.2.gz"),
            &["zgrep", "gzip", "grep"],
            "zgrep",
        );
        has(
            &programs("zcat /var/log/syslog.2.gz | head"),
            &["zcat", "gzip", "head"],
            "zcat",
        );
        has(
            &programs("docker compose ps"),
            &["docker", "/usr/libexec/docker/cli-plugins/docker-*"],
            "docker",
        );
        // A helper of one program is not another's.
        assert!(!programs("grep x f").iter().any(|p| p == "gzip"));
        assert!(!programs("ls").iter().any(|p| p.contains("git")));
    }

    #[test]
    fn no_list_when_a_program_is_only_known_at_run_time() {
        for line in [
            "$cmd -la",
            "\"$(which ls)\" /",
            "python3 -c 'print(1)'",
            "bash ./deploy.sh",
            "source ./env.sh",
            "PAGER=/tmp/x git log",
            "sh -c \"$X\"",
            "eval \"$CMD\"",
            "(( a[$x] ))",
        ] {
            assert!(conf(line, Some("/")).programs.is_none(), "{line}");
        }
        assert!(conf("python3 --version", Some("/")).programs.is_some());
        // A script its reader follows names what it runs: awk, the shell
        // it starts, and the command.
        let listed = conf("awk 'BEGIN { system(\"id\") }'", Some("/"))
            .programs
            .expect("awk's program is read");
        for p in ["awk", "sh", "id"] {
            assert!(listed.iter().any(|l| l == p), "{p} in {listed:?}");
        }
    }

    #[test]
    fn network_only_for_a_network_effect() {
        for line in [
            "curl -s http://example.com",
            "curl -s http://localhost:3000/health",
            "ping -c1 10.0.0.1",
            "dig +short example.com",
            "getent hosts example.com",
            "cat < /dev/tcp/10.0.0.1/80",
            "git fetch",
        ] {
            assert!(conf(line, Some("/srv/r")).network, "{line}");
        }
        for line in [
            "docker ps",
            "ss -tlnp",
            "ip addr",
            "git log",
            "cat /etc/hosts",
            "getent passwd root",
        ] {
            assert!(!conf(line, Some("/srv/r")).network, "{line}");
        }
    }

    #[test]
    fn privilege_wrappers_are_said() {
        for line in [
            "sudo systemctl restart grafana",
            "doas apt-get update",
            "ls && sudo -u postgres psql -c 'select 1'",
            "su -c 'id'",
        ] {
            assert!(conf(line, Some("/srv")).privileged, "{line}");
        }
        for line in ["systemctl status grafana", "docker ps", "id -u"] {
            assert!(!conf(line, Some("/srv")).privileged, "{line}");
        }
    }

    #[test]
    fn everyday_reads_are_read_only() {
        for line in [
            "cat /etc/hosts",
            "docker ps",
            "git log --oneline -5",
            "git -C /srv/repo status",
            "ls -la",
            "df -h | sort",
            "du -sh /srv 2>/dev/null",
            "journalctl -u docker --no-pager -n 20 2>&1 | tail",
            "ps aux >/dev/null; uptime 2>/dev/stderr >&2",
            "grep -c x /etc/hosts 1>/dev/fd/2",
            "cd /srv && ls",
            "echo a | sort -o - | head",
            "systemctl status docker",
            "systemctl restart nginx",
            "docker restart web",
        ] {
            let c = conf(line, Some("/home/u"));
            assert!(c.read_only(), "{line}: {c:?}");
        }
    }

    #[test]
    fn redirections_write_their_targets() {
        assert_eq!(writes("echo x > /tmp/out", None), ["/tmp/out"]);
        assert_eq!(
            writes("ls &> /tmp/a; ls >> /tmp/b; cat <> /tmp/c", None),
            ["/tmp/a", "/tmp/b", "/tmp/c"]
        );
        assert_eq!(writes("date >&/tmp/d", None), ["/tmp/d"]);
        assert_eq!(writes("echo x > f", Some("/srv")), ["/srv/f"]);
        assert_eq!(writes("{ ls; } > /tmp//x/../y", None), ["/tmp/y"]);
        // `cd` leads there, or stays (`;`): both are granted.
        has(
            &writes("cd /srv && echo x > f", Some("/home/u")),
            &["/srv/f"],
            "cd",
        );
        assert!(conf("echo x > f", None).writes_unknown);
        assert!(conf("echo x > \"$F\"", Some("/")).writes_unknown);
        // `/dev/fd/..` is no sink.
        assert_eq!(writes("echo x > /dev/fd/../sda", None), ["/dev/sda"]);
    }

    #[test]
    fn commands_that_write_name_their_paths() {
        assert_eq!(writes("touch f", Some("/srv")), ["/srv/f"]);
        assert_eq!(writes("touch /tmp/a b", Some("/srv")), ["/srv/b", "/tmp/a"]);
        assert_eq!(writes("mkdir -p /srv/app/data", None), ["/srv/app/data"]);
        // Removing or renaming changes the directory holding the entry.
        assert_eq!(
            writes("rm -f /srv/app/x.log", None),
            ["/srv/app", "/srv/app/x.log"]
        );
        assert_eq!(
            writes("mv a /tmp/b", Some("/srv")),
            ["/srv", "/srv/a", "/tmp", "/tmp/b"]
        );
        assert_eq!(
            writes("echo x | tee -a /var/log/x.log", None),
            ["/var/log/x.log"]
        );
        // An option's value is what it writes; the operands are read.
        assert_eq!(writes("sort -o /tmp/s /etc/hosts", None), ["/tmp/s"]);
        assert_eq!(writes("sort --output=/tmp/s /etc/hosts", None), ["/tmp/s"]);
        assert_eq!(
            writes("truncate -s 0 /var/log/x.log", None),
            ["/var/log/x.log"]
        );
        assert_eq!(writes("chmod 644 f g", Some("/srv")), ["/srv/f", "/srv/g"]);
        // Through wrappers.
        assert_eq!(writes("sudo touch /etc/x", None), ["/etc/x"]);
        assert_eq!(writes("timeout 5 tee /tmp/t", None), ["/tmp/t"]);
    }

    #[test]
    fn writes_that_cannot_be_placed_are_unknown() {
        for line in [
            "touch \"$F\"",
            "rm -rf *.log",
            "find /srv -name x -exec rm {} +",
            "xargs rm < list",
            "apt install -y nginx",
            "sed -i 's/a/b/' f",
            "useradd bob",
            "touch ~/x",
            "frobnicate --all",
            "git -C \"$R\" commit -m x",
            "touch f",
        ] {
            let cwd = if line == "touch f" {
                None
            } else {
                Some("/srv")
            };
            assert!(conf(line, cwd).writes_unknown, "{line}");
        }
    }

    #[test]
    fn git_writes_its_working_directory() {
        assert_eq!(
            writes("git commit -qm 'fix x'", Some("/srv/repo")),
            ["/srv/repo"]
        );
        assert_eq!(
            writes("git -C /srv/repo commit -m x", Some("/home/u")),
            ["/srv/repo"]
        );
        assert_eq!(writes("git -C /srv -C repo add -A", None), ["/srv/repo"]);
        assert_eq!(
            writes("cd /srv/repo && git pull", Some("/srv/repo")),
            ["/srv/repo"]
        );
        has(
            &writes("cd repo && git pull", Some("/srv")),
            &["/srv/repo"],
            "cd",
        );
        assert_eq!(
            writes("git clone https://example.com/r /opt/r", Some("/srv")),
            ["/opt/r", "/srv"]
        );
        assert_eq!(
            writes("git log --output=/tmp/log", Some("/srv/repo")),
            ["/srv/repo", "/tmp/log"]
        );
        assert_eq!(
            writes("git worktree add ../wt main", Some("/srv/repo")),
            ["/srv/repo", "/srv/wt"]
        );
        assert!(writes("git log --oneline", Some("/srv/repo")).is_empty());
        assert!(conf("git commit -m x", None).writes_unknown);
    }

    #[test]
    fn docker_changes_are_not_placed() {
        // The engine changes its own state; the CLI may write its config
        // (`docker login`) or files (`docker save -o`). Nothing here says
        // which, so the writes are unknown, and the reads stay read-only.
        for line in [
            "docker rm -f web",
            "docker save -o /tmp/img.tar web",
            "docker login",
        ] {
            assert!(conf(line, Some("/srv")).writes_unknown, "{line}");
        }
        for line in [
            "docker ps -a",
            "docker logs --tail 5 web",
            "docker inspect web",
        ] {
            assert!(conf(line, Some("/srv")).read_only(), "{line}");
        }
    }
}
