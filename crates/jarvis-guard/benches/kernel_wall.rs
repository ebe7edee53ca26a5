//! What the kernel wall costs one action: the guard binary started as sshd
//! starts it (request in `SSH_ORIGINAL_COMMAND`), running a line with the
//! wall on and with `--kernel off`. The difference is the analysis of the
//! line for its confinement, resolving its programs on the host, the
//! confine child's exec and the Landlock and seccomp setup.

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use jarvis_exec::protocol::{Request, RunRequest};

const GUARD: &str = env!("CARGO_BIN_EXE_jarvis-guard");

fn run(dir: &Path, request: &str, kernel: &str) {
    let status = Command::new(GUARD)
        .arg("--policy")
        .arg(dir.join("policy.toml"))
        .arg("--log")
        .arg(dir.join("guard.log"))
        .arg("--state")
        .arg(dir.join("state"))
        .args(["--kernel", kernel])
        .env("SSH_ORIGINAL_COMMAND", request)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("guard runs");
    assert!(status.success());
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("policy.toml"),
        "[defaults]\ndecision = \"approve\"\n",
    )
    .expect("policy");
    let mut g = c.benchmark_group("guard");
    g.sample_size(30);
    for (name, line) in [
        ("true", "true"),
        ("pipeline", "ls -la /etc | grep -c conf"),
        ("git", "git -C / status 2>/dev/null; git --version"),
    ] {
        let request = Request::Run(RunRequest {
            action_id: "0193aaaa-0000-7000-8000-00000000be7c"
                .parse()
                .expect("a UUID v7"),
            command: line.into(),
            cwd: None,
            timeout_ms: 30_000,
            output_cap: 1 << 20,
            approved: false,
            scope: Vec::new(),
        })
        .encode();
        for kernel in ["off", "on"] {
            g.bench_function(format!("{name}/kernel-{kernel}"), |b| {
                b.iter(|| run(dir.path(), &request, kernel))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
