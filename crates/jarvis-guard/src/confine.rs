//! The kernel wall: a Landlock and seccomp ruleset for one command, derived
//! from the guard's own analysis of the line it received.
//!
//! The guard never confines itself. It resolves what the analysis names on
//! this host (programs on `PATH`, their ELF and `#!` interpreters, the paths
//! the line writes), and starts *itself* again in confine mode
//! (`jarvis-guard confine SPEC -- bash …`): that child restricts itself and
//! then execs bash, so the command and everything it starts live in a
//! Landlock domain the guard is outside of. From inside, the command cannot
//! signal the guard or reach its abstract sockets (Landlock scopes), cannot
//! execute a program the analysis did not name, cannot write outside its
//! grant, and without a network effect cannot open a TCP connection
//! (Landlock) or a UDP, raw or packet socket (seccomp).
//!
//! Reads are not restricted here: what may be read is the policy's
//! judgement (secrets are never unattended), and a kernel rule that broke
//! everyday reads would teach people to switch the wall off.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use jarvis_exec::protocol::{EnforcementLevel, KernelEnforcement};
use jarvis_policy::confine::Confinement;
use jarvis_policy::rules::glob_match;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

/// The argument that starts the guard in confine mode. sshd always starts
/// the forced command with `--policy`, so a request can never reach it.
pub const CONFINE_ARG: &str = "confine";

/// The Landlock ABI whose rights the wall asks for: file-system writes and
/// execution (1–3, 5), TCP (4), signal and abstract-socket scoping (6).
const WANTED_ABI: ABI = ABI::V6;

/// Devices every command may write: discarding output is no change.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

/// Whether the guard applies the kernel wall on this host (`--kernel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelMode {
    /// Apply it (the default).
    On,
    /// The host's forced command switched it off (`--kernel off`).
    Off,
}

/// What one command may do, as names and paths from the analysis; not yet
/// resolved on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The programs it may execute; `None` for any.
    pub exec: Option<BTreeSet<String>>,
    /// Existing paths beneath which it may write (a file the line creates
    /// is granted through its directory).
    pub writes: Vec<PathBuf>,
    /// Whether it may use the network.
    pub network: bool,
    /// Why this command runs without the wall, when it does: a person
    /// approved a line that raises privilege (`sudo` cannot work under
    /// `no_new_privs`, which Landlock requires).
    pub waived: Option<String>,
}

/// The host's own settings for what approved actions may write beyond what
/// the line names and the approval covered (`--approved-writes`), and the
/// paths no command may ever write (the guard's binary, policy, log, state
/// and the keys that let the gateway in).
#[derive(Debug, Clone, Default)]
pub struct HostGrants {
    /// Extra write grants for approved actions.
    pub approved_writes: Vec<PathBuf>,
    /// Never writable by any command.
    pub protected: Vec<PathBuf>,
}

impl Grant {
    /// The grant for a run. An action nobody approved is read-only at the
    /// kernel, whatever the gateway's policy concluded: only a person's
    /// approval lets a command write, and then where the line names, the
    /// approved scope, its working directory and the host's grant for
    /// approved actions. Programs and network follow the analysis either way.
    pub fn for_run(
        c: &Confinement,
        approved: bool,
        scope: &[String],
        cwd: &Path,
        host: &HostGrants,
    ) -> Grant {
        let mut writes = Vec::new();
        if approved {
            // A file the line creates is granted through its directory.
            writes.extend(c.writes.iter().map(|w| {
                let w = Path::new(w);
                match w.parent() {
                    Some(dir) if !w.exists() => dir.to_path_buf(),
                    _ => w.to_path_buf(),
                }
            }));
            writes.extend(scope.iter().map(PathBuf::from));
            writes.push(cwd.to_path_buf());
            writes.extend(host.approved_writes.iter().cloned());
        }
        Grant {
            exec: c.programs.clone(),
            writes,
            network: c.network,
            waived: (approved && c.privileged).then(|| {
                "not applied: a person approved a line that raises privilege, which setuid \
                 programs cannot do under the wall"
                    .to_owned()
            }),
        }
    }

    /// The grant for a preview's command: the programs the line names,
    /// writes only inside the clone, no network.
    pub fn preview(c: &Confinement, clone: &Path) -> Grant {
        Grant {
            exec: c.programs.clone(),
            writes: vec![clone.to_path_buf()],
            network: false,
            waived: None,
        }
    }
}

/// A grant resolved on this host: real paths, ready for the kernel. It is
/// what travels to the confine child.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// Files it may execute; `None` for any.
    pub exec: Option<Vec<PathBuf>>,
    /// Files and directories beneath which it may write.
    pub writes: Vec<PathBuf>,
    /// Whether TCP and non-local sockets are allowed.
    pub network: bool,
}

impl Resolved {
    /// One line for the run's result and the guard's log:
    /// `read-only, runs 3 programs, no network`.
    pub fn describe(&self) -> String {
        let writes = match self.writes.len() {
            0 => "read-only".to_owned(),
            n => format!(
                "writes beneath {}",
                if n <= 3 {
                    self.writes
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    format!("{n} paths")
                }
            ),
        };
        let exec = match &self.exec {
            None => "runs any program".to_owned(),
            Some(files) => format!(
                "runs {} program file{}",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ),
        };
        let net = if self.network {
            "network allowed"
        } else {
            "no network"
        };
        format!("kernel: {writes}, {exec}, {net}")
    }
}

/// Resolves `grant` on this host for a command run by `bash` from `cwd`
/// with `path` as its `PATH`.
pub fn resolve(grant: &Grant, bash: &Path, cwd: &Path, path: &str, host: &HostGrants) -> Resolved {
    let exec = grant.exec.as_ref().map(|names| {
        use std::os::unix::fs::MetadataExt as _;
        let mut files = BTreeSet::new();
        // A Landlock rule holds the file itself, not its name: git's
        // hundred `git-*` helpers are links to a few files, and one rule
        // (and one look at its headers) per file is enough.
        let mut inodes = std::collections::HashSet::new();
        let mut wanted: Vec<PathBuf> = vec![bash.to_path_buf()];
        for name in names {
            wanted.extend(find_programs(name, cwd, path));
        }
        // Interpreters of interpreters (`#!/usr/bin/env python3`) are
        // followed a few levels, as the kernel does.
        for _ in 0..4 {
            let mut next = Vec::new();
            for file in wanted.drain(..) {
                let Ok(real) = std::fs::canonicalize(&file) else {
                    continue;
                };
                let Ok(meta) = std::fs::metadata(&real) else {
                    continue;
                };
                if !meta.is_file() || !inodes.insert((meta.dev(), meta.ino())) {
                    continue;
                }
                next.extend(interpreters(&real, path));
                files.insert(real);
            }
            wanted = next;
        }
        files.into_iter().collect()
    });
    let protected: Vec<PathBuf> = host
        .protected
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let mut writes = BTreeSet::new();
    // The devices are granted to every command anyway (see `DEVICES`).
    for w in grant
        .writes
        .iter()
        .filter(|w| !DEVICES.iter().any(|d| w.as_path() == Path::new(d)))
    {
        let Some(target) = existing_target(w) else {
            continue;
        };
        split_around(&target, &protected, &mut writes);
    }
    Resolved {
        exec,
        writes: writes.into_iter().collect(),
        network: grant.network,
    }
}

/// Where a grant on `path` lands: the real path, if it exists. A grant
/// never falls back to a parent here: a missing `--approved-writes`
/// directory must not become `/`.
fn existing_target(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    std::fs::canonicalize(path).ok()
}

/// Adds `target` to `into`, or, when a protected path lies beneath it, each
/// of its entries instead (recursively), leaving out the protected path and
/// the directories that lead to it, whose own entries cannot be created or
/// removed then. Landlock can only allow, so "all of /home/u except the
/// guard's state" is spelled as the siblings of what is protected.
fn split_around(target: &Path, protected: &[PathBuf], into: &mut BTreeSet<PathBuf>) {
    if protected.iter().any(|p| target.starts_with(p)) {
        return;
    }
    if !protected.iter().any(|p| p.starts_with(target)) {
        into.insert(target.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(target) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // A symbolic link is not followed: a rule on it would grant where
        // it points, which may be the protected path itself.
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        split_around(&path, protected, into);
    }
}

/// The files a program name may mean: a path (joined to `cwd` when
/// relative), a bare name looked up on `path`, or an absolute pattern whose
/// last component is a glob.
fn find_programs(name: &str, cwd: &Path, path: &str) -> Vec<PathBuf> {
    if name.contains('/') {
        let full = cwd.join(name);
        return match full.file_name().and_then(|n| n.to_str()) {
            Some(last) if last.contains(['*', '?', '[']) => {
                let dir = full.parent().unwrap_or(Path::new("/"));
                glob_dir(dir, last)
            }
            _ => vec![full],
        };
    }
    // The first match on PATH is what bash runs.
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .into_iter()
        .collect()
}

fn glob_dir(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| glob_match(pattern, n))
        })
        .map(|e| e.path())
        .collect()
}

/// What the kernel executes to run `file`: its ELF interpreter (the
/// dynamic loader) or its `#!` interpreter (and, for `#!/usr/bin/env X`,
/// X on `path`).
fn interpreters(file: &Path, path: &str) -> Vec<PathBuf> {
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let Some(interp) = words.next() else {
            return Vec::new();
        };
        let mut found = vec![PathBuf::from(interp)];
        if Path::new(interp).file_name().is_some_and(|n| n == "env")
            && let Some(prog) = words.find(|w| !w.starts_with('-'))
        {
            found.extend(find_programs(prog, Path::new("/"), path));
        }
        return found;
    }
    if head.starts_with(b"\x7fELF")
        && let Ok(mut f) = std::fs::File::open(file)
    {
        // Only the headers are read: git's helpers are a hundred links to
        // one large binary.
        return elf_interpreter(&mut f).into_iter().collect();
    }
    Vec::new()
}

/// The `PT_INTERP` path of an ELF file (32 or 64 bit, either byte order),
/// reading only its headers and the path.
fn elf_interpreter(elf: &mut (impl std::io::Read + std::io::Seek)) -> Option<PathBuf> {
    use std::io::SeekFrom;
    let mut read_at = |at: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        elf.seek(SeekFrom::Start(at)).ok()?;
        elf.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    let header = read_at(0, 64).or_else(|| read_at(0, 52))?;
    let class64 = *header.get(4)? == 2;
    let little = *header.get(5)? == 1;
    let num = |b: &[u8], at: usize, len: usize| -> Option<u64> {
        let b = b.get(at..at.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = u64::from(if little { b[len - 1 - i] } else { b[i] });
            v = (v << 8) | byte;
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if class64 {
        (
            num(&header, 0x20, 8)?,
            num(&header, 0x36, 2)?,
            num(&header, 0x38, 2)?,
        )
    } else {
        (
            num(&header, 0x1c, 4)?,
            num(&header, 0x2a, 2)?,
            num(&header, 0x2c, 2)?,
        )
    };
    let table_len = usize::try_from(phentsize.checked_mul(phnum)?).ok()?;
    // Real program header tables are a few kilobytes.
    if table_len > 64 * 1024 {
        return None;
    }
    let table = read_at(phoff, table_len)?;
    const PT_INTERP: u64 = 3;
    for i in 0..usize::try_from(phnum).ok()? {
        let at = i.checked_mul(usize::try_from(phentsize).ok()?)?;
        if num(&table, at, 4)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if class64 {
            (num(&table, at + 8, 8)?, num(&table, at + 32, 8)?)
        } else {
            (num(&table, at + 4, 4)?, num(&table, at + 16, 4)?)
        };
        if size > 4096 {
            return None;
        }
        let raw = read_at(offset, usize::try_from(size).ok()?)?;
        let raw = raw.split(|b| *b == 0).next()?;
        return Some(PathBuf::from(String::from_utf8_lossy(raw).into_owned()));
    }
    None
}

/// What the kernel of this host can enforce of the wall.
pub fn probe(mode: KernelMode) -> KernelEnforcement {
    if mode == KernelMode::Off {
        return KernelEnforcement {
            level: EnforcementLevel::None,
            landlock_abi: None,
            missing: vec!["switched off by the host's forced command (--kernel off)".into()],
        };
    }
    // Creating a ruleset restricts nothing; asking for each generation of
    // rights as a hard requirement tells which the kernel has.
    let supports = |abi: ABI| {
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .and_then(|r| r.create())
            .is_ok()
    };
    let net = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessNet::from_all(ABI::V4))
        .and_then(|r| r.create())
        .is_ok();
    let scopes = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .scope(Scope::from_all(ABI::V6))
        .and_then(|r| r.create())
        .is_ok();
    let abi = [
        ABI::V7,
        ABI::V6,
        ABI::V5,
        ABI::V4,
        ABI::V3,
        ABI::V2,
        ABI::V1,
    ]
    .into_iter()
    .find(|a| supports(*a));
    let Some(abi) = abi else {
        return KernelEnforcement {
            level: EnforcementLevel::None,
            landlock_abi: None,
            missing: vec!["Landlock (the kernel has none, or it is not enabled)".into()],
        };
    };
    let mut missing = Vec::new();
    if abi < ABI::V3 {
        missing.push("truncation (Landlock ABI 3)".to_owned());
    }
    if !net {
        missing.push("TCP connect and bind (Landlock ABI 4)".to_owned());
    }
    if abi < ABI::V5 {
        missing.push("device ioctls (Landlock ABI 5)".to_owned());
    }
    if !scopes {
        missing.push("signal and abstract-socket scoping (Landlock ABI 6)".to_owned());
    }
    if !seccomp_filters() {
        missing.push("seccomp filters (UDP, raw and packet sockets)".to_owned());
    }
    KernelEnforcement {
        level: if missing.is_empty() {
            EnforcementLevel::Full
        } else {
            EnforcementLevel::Partial
        },
        landlock_abi: Some(abi as u32),
        missing,
    }
}

/// Whether the kernel can filter system calls (`Seccomp_filters` appears in
/// a process's status only on a kernel built with seccomp filters). Asked
/// once per process: the kernel does not change, and the status takes the
/// kernel a while to write.
fn seccomp_filters() -> bool {
    static FILTERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FILTERS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Seccomp_filters:")))
    })
}

/// The command that runs `argv` (bash and its arguments) under `resolved`:
/// the guard itself in confine mode, which restricts itself and execs it.
///
/// # Errors
/// When the spec cannot be encoded.
pub fn wrap(resolved: &Resolved, argv: &[OsString]) -> std::io::Result<Command> {
    let spec = serde_json::to_string(resolved).map_err(std::io::Error::other)?;
    // The running image, not the path it was started from: an upgrade that
    // replaced the binary meanwhile must not make the wall fail to start
    // (or start a different guard).
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(CONFINE_ARG).arg(spec).arg("--").args(argv);
    Ok(cmd)
}

/// Why the confine child could not restrict itself; it then runs nothing.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The spec the guard passed is not valid.
    #[error("bad confinement spec: {0}")]
    Spec(String),
    /// Landlock refused a rule or the restriction.
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The kernel enforced none of it.
    #[error("the kernel did not enforce the ruleset")]
    NotEnforced,
    /// The seccomp filter could not be built or applied.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Applies `resolved` to the calling process: Landlock file-system and TCP
/// rules, signal and abstract-socket scopes, and the seccomp socket filter.
///
/// # Errors
/// A [`ConfineError`]; the caller must then not run the command.
pub fn restrict_self(resolved: &Resolved) -> Result<(), ConfineError> {
    let writes = AccessFs::from_write(WANTED_ABI);
    let mut handled = writes;
    if resolved.exec.is_some() {
        handled |= AccessFs::Execute;
    }
    let mut ruleset = Ruleset::default()
        // Asked only for what `probe` found, so a gap here is a real
        // failure, not an old kernel.
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(handled)?
        .scope(Scope::from_all(WANTED_ABI))?;
    if !resolved.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(WANTED_ABI))?;
    }
    let mut created = ruleset.create()?;
    let beneath = |path: &Path, access| -> Option<PathBeneath<PathFd>> {
        // A path that vanished since it was resolved grants nothing.
        PathFd::new(path)
            .ok()
            .map(|fd| PathBeneath::new(fd, access))
    };
    for file in resolved.exec.iter().flatten() {
        if let Some(rule) = beneath(file, AccessFs::Execute.into()) {
            created = created.add_rule(rule)?;
        }
    }
    for dev in DEVICES {
        if let Some(rule) = beneath(
            Path::new(dev),
            AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev,
        ) {
            created = created.add_rule(rule)?;
        }
    }
    for path in &resolved.writes {
        // Rights a file cannot hold (making entries) are only for
        // directories; Landlock refuses them on a file.
        let access = if path.is_dir() {
            writes
        } else {
            writes & AccessFs::from_file(WANTED_ABI)
        };
        if let Some(rule) = beneath(path, access) {
            created = created.add_rule(rule)?;
        }
    }
    let status = created.restrict_self()?;
    // The guard wraps a command only on a kernel with Landlock; one that
    // lacks a later generation of rights (a `partial` host, which the
    // gateway runs unattended only under `best-effort`) gets the rest.
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(ConfineError::NotEnforced);
    }
    // A kernel without seccomp filters was reported as `partial`; the
    // gateway runs unattended actions there only under best-effort.
    if !resolved.network && seccomp_filters() {
        socket_filter()?;
    }
    Ok(())
}

/// Without a network effect a command may create only local sockets (unix,
/// and netlink, which `ss` and `ip` read through); io_uring is refused
/// because it can create sockets without the `socket` system call.
fn socket_filter() -> Result<(), ConfineError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    let err = |e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string());
    let not = |family: i32| {
        SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            u64::try_from(family).unwrap_or_default(),
        )
    };
    let foreign_socket = SeccompRule::new(vec![
        not(libc::AF_UNIX).map_err(err)?,
        not(libc::AF_NETLINK).map_err(err)?,
    ])
    .map_err(err)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(libc::SYS_socket, vec![foreign_socket]);
    rules.insert(libc::SYS_io_uring_setup, Vec::new());
    // On a kernel with the x32 ABI the same calls have numbers of their
    // own on x86_64 (the architecture check passes them); refuse those
    // outright. (32-bit calls fail the filter's architecture check and end
    // the process.)
    if cfg!(target_arch = "x86_64") {
        const X32: i64 = 0x4000_0000;
        rules.insert(X32 | libc::SYS_socket, Vec::new());
        rules.insert(X32 | libc::SYS_io_uring_setup, Vec::new());
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EACCES).unwrap_or(13)),
        arch,
    )
    .map_err(err)?;
    let program: BpfProgram = filter.try_into().map_err(err)?;
    seccompiler::apply_filter(&program).map_err(|e| ConfineError::Seccomp(e.to_string()))
}

/// The confine child: `jarvis-guard confine SPEC -- PROGRAM ARGS…`.
/// Restricts itself, then becomes PROGRAM; on any failure it runs nothing
/// and exits 126 (as a shell does for a command it cannot execute).
pub fn child_main(args: &[OsString]) -> ExitCode {
    let fail = |why: String| {
        eprintln!("jarvis-guard: the kernel wall could not be set up, so nothing ran: {why}");
        ExitCode::from(126)
    };
    let (Some(spec), Some(sep)) = (args.first(), args.get(1)) else {
        return fail("usage: jarvis-guard confine SPEC -- PROGRAM ARGS…".into());
    };
    if sep != "--" || args.len() < 3 {
        return fail("usage: jarvis-guard confine SPEC -- PROGRAM ARGS…".into());
    }
    let resolved: Resolved = match serde_json::from_str(&spec.to_string_lossy()) {
        Ok(r) => r,
        Err(e) => return fail(ConfineError::Spec(e.to_string()).to_string()),
    };
    if let Err(e) = restrict_self(&resolved) {
        return fail(e.to_string());
    }
    // The command (this process, once it is bash) is killed by the kernel
    // when its keeper dies, whatever else fails; read the parent first,
    // so a keeper that died before the request took effect is noticed.
    let parent = nix::unistd::getppid();
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL)) {
        return fail(format!("cannot ask for a parent-death signal: {e}"));
    }
    if nix::unistd::getppid() != parent {
        return fail("its keeper is gone".into());
    }
    let err = Command::new(&args[2]).args(&args[3..]).exec();
    fail(format!(
        "cannot execute {}: {err}",
        args[2].to_string_lossy()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_one_component() {
        assert!(glob_match("git-*", "git-upload-pack"));
        assert!(glob_match("docker-*", "docker-compose"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("git-*", "gitk"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acd"));
    }

    #[test]
    fn finds_the_dynamic_loader_of_this_test_binary() {
        let me = std::env::current_exe().expect("own path");
        let mut file = std::fs::File::open(&me).expect("own bytes");
        let interp = elf_interpreter(&mut file).expect("a dynamically linked test binary");
        assert!(interp.is_absolute(), "{interp:?}");
        assert!(interp.exists(), "{interp:?}");
    }

    #[test]
    fn elf_parsing_survives_garbage() {
        for bytes in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            let _ = elf_interpreter(&mut std::io::Cursor::new(bytes));
        }
        let mut header = vec![0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        header[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        header[0x36] = 56;
        header[0x38] = 0xff;
        assert_eq!(elf_interpreter(&mut std::io::Cursor::new(header)), None);
    }

    #[test]
    fn shebang_scripts_name_their_interpreter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh -e\necho\n").expect("write");
        assert_eq!(
            interpreters(&script, "/usr/bin:/bin"),
            vec![PathBuf::from("/bin/sh")]
        );
        std::fs::write(&script, "#!/usr/bin/env bash\n").expect("write");
        let found = interpreters(&script, "/usr/bin:/bin");
        assert_eq!(found[0], PathBuf::from("/usr/bin/env"));
        assert!(found[1].ends_with("bash"), "{found:?}");
    }

    #[test]
    fn a_grant_around_a_protected_path_leaves_it_and_its_parents_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("real");
        for d in ["a/state/x", "a/other", "b"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("a/file"), "x").expect("write");
        let mut got = BTreeSet::new();
        split_around(&root, &[root.join("a/state")], &mut got);
        let want: BTreeSet<PathBuf> = ["a/other", "a/file", "b"]
            .iter()
            .map(|p| root.join(p))
            .collect();
        assert_eq!(got, want);
        let mut none = BTreeSet::new();
        split_around(&root.join("a/state/x"), &[root.join("a/state")], &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn resolution_finds_programs_their_loader_and_bash() {
        let grant = Grant {
            exec: Some(["ls".to_owned(), "no-such-program-here".to_owned()].into()),
            writes: vec![PathBuf::from("/tmp/jarvis-no-such-dir/new-file")],
            network: false,
            waived: None,
        };
        let bash = PathBuf::from("/bin/bash");
        let r = resolve(
            &grant,
            &bash,
            Path::new("/"),
            "/usr/bin:/bin",
            &HostGrants::default(),
        );
        assert!(r.describe().starts_with("kernel: read-only"));
        let exec = r.exec.expect("a list");
        assert!(exec.iter().any(|p| p.ends_with("ls")), "{exec:?}");
        assert!(exec.iter().any(|p| p.ends_with("bash")), "{exec:?}");
        assert!(
            exec.iter()
                .any(|p| p.to_string_lossy().contains("ld-linux")),
            "{exec:?}"
        );
        // A grant on what does not exist is no grant at all.
        assert!(r.writes.is_empty());
    }
}
