//! What a snapshot adds to an action, and how it grows with the size of
//! what it captures, on the sandbox host.
//!
//! - `snapshot_repo/files/N`: the snapshot before an action (kept: a ref)
//!   plus the fingerprint after it, for a repository of N 1-KiB files with
//!   one modified and one untracked file, N from 100 to 100,000. Both are
//!   whole guard requests: SSH, the guard starting and its git work (which
//!   the guard's own `git::timing` harness breaks down per git process).
//! - `snapshot_container/diff_mib/M`: the same for a container whose
//!   filesystem differs from its image by M MiB (a `docker commit` of it).
//! - `action/*`: a whole action through the pipeline, `touch` in a
//!   100-file repository (snapshot before and fingerprint after) against
//!   `true` (read-only: no snapshot).
//!
//! What each iteration keeps is dropped outside the timed part. Run with
//! `scripts/bench-snapshot`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jarvis_core::{ActionId, HostName};
use jarvis_exec::snapshot::{DropRequest, PlanTarget, SnapshotPlan, SnapshotRequest};
use jarvis_gateway::{Config, Gateway, Proposal, Work};
use jarvis_store::Store;
use jarvis_tests::fixtures::{HostContainer, as_guard_user};
use jarvis_tests::{Env, marker, sandbox};

fn gateway(rt: &tokio::runtime::Runtime, env: &Env) -> Gateway {
    rt.block_on(async {
        let config = Config::load(&env.config).expect("config");
        let db = env.dir().join("jarvis.db");
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("store");
        Gateway::open(
            config,
            store,
            &std::env::temp_dir().join("jarvis-ssh-bench"),
            true,
        )
        .await
        .expect("gateway")
    })
}

/// A repository of `files` 1-KiB files, 100 to a directory, one modified,
/// one untracked.
fn repo(files: usize) -> String {
    let dir = format!("/srv/jarvis-demo/tests/{}", marker("bench-repo"));
    // One `split` per directory: a process per file would take minutes at
    // 100,000 files.
    as_guard_user(&[
        "sh",
        "-c",
        &format!(
            "set -e; mkdir -p {dir}; cd {dir}; git init -q -b main .; \
             git config user.name b; git config user.email b@localhost; \
             left={files}; d=0; while [ $left -gt 0 ]; do n=$((left < 100 ? left : 100)); \
             mkdir d$d; head -c $((n * 1024)) /dev/urandom | split -b 1024 -a 2 -d - d$d/f; \
             left=$((left - n)); d=$((d + 1)); done; \
             git add -A; git commit -qm files; echo x >> d0/f00; echo new > untracked"
        ),
    ]);
    dir
}

/// Times `snapshot(keep) + snapshot(fingerprint)` of `plan`, dropping what
/// was kept after each iteration.
fn time_snapshots(
    rt: &tokio::runtime::Runtime,
    gw: &Gateway,
    plan: &SnapshotPlan,
    iters: u64,
) -> Duration {
    let host = HostName::parse("sandbox").expect("valid");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let id = ActionId::new();
        let request = |keep| SnapshotRequest {
            action_id: id,
            plan: plan.clone(),
            keep,
            volume_image: None,
        };
        let started = Instant::now();
        let kept = rt
            .block_on(gw.executor().snapshot(&host, request(true)))
            .expect("snapshot");
        rt.block_on(gw.executor().snapshot(&host, request(false)))
            .expect("fingerprint");
        total += started.elapsed();
        rt.block_on(gw.executor().drop_snapshots(
            &host,
            DropRequest {
                snapshots: vec![kept],
            },
        ))
        .expect("drop");
    }
    total
}

fn snapshots(c: &mut Criterion) {
    sandbox();
    let env = Env::new(
        "bench-snap",
        "rate_per_minute = 1000000\nburst = 1000000",
        "rate_per_minute = 1000000\nburst = 1000000\nrequester_rate_per_minute = 1000000\n\
         requester_burst = 1000000\nloop_repeats = 1000000000",
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let gw = gateway(&rt, &env);
    let host = HostName::parse("sandbox").expect("valid");

    let mut group = c.benchmark_group("snapshot_repo");
    group.sample_size(10);
    let mut repos = Vec::new();
    for files in [100usize, 1_000, 10_000, 100_000] {
        let dir = repo(files);
        let plan = SnapshotPlan::of([PlanTarget::Repo(dir.clone())]);
        group.bench_with_input(BenchmarkId::new("files", files), &plan, |b, plan| {
            b.iter_custom(|iters| time_snapshots(&rt, &gw, plan, iters))
        });
        repos.push(dir);
    }
    group.finish();

    let mut group = c.benchmark_group("snapshot_container");
    group.sample_size(10);
    for mib in [0u32, 10, 100] {
        let container = HostContainer::new("bench");
        if mib > 0 {
            container.exec(&format!("head -c {} /dev/urandom > /root/blob", mib << 20));
        }
        let plan = SnapshotPlan::of([PlanTarget::Container(container.name.clone())]);
        group.bench_with_input(BenchmarkId::new("diff_mib", mib), &plan, |b, plan| {
            b.iter_custom(|iters| time_snapshots(&rt, &gw, plan, iters))
        });
    }
    group.finish();

    let small = repo(100);
    let run = |command: &str, cwd: Option<&str>| {
        rt.block_on(async {
            let p = gw
                .propose(Proposal {
                    requester: "bench".into(),
                    host: host.clone(),
                    work: Work::Command {
                        line: command.into(),
                        cwd: cwd.map(str::to_owned),
                    },
                    timeout: None,
                    purpose: None,
                })
                .await
                .expect("proposed");
            if p.action.state == jarvis_core::ActionState::PendingApproval {
                gw.approve(p.action.id, "bench", None)
                    .await
                    .expect("approved");
            }
            let done = gw
                .execute(p.action.id, "bench", &mut |_| {})
                .await
                .expect("ran");
            assert_eq!(done.state, jarvis_core::ActionState::Succeeded);
        })
    };
    let mut group = c.benchmark_group("action");
    group.sample_size(20);
    group.bench_function("true_no_snapshot", |b| b.iter(|| run("true", None)));
    group.bench_function("touch_in_100_file_repo", |b| {
        b.iter(|| run("touch bench-file", Some(&small)))
    });
    group.finish();

    rt.block_on(gw.close());
    // The store's pooled connections go back to their pool on a task when
    // dropped, which needs the runtime.
    let in_runtime = rt.enter();
    drop(gw);
    drop(in_runtime);
    for dir in repos.iter().chain([&small]) {
        let _ = std::process::Command::new("rm").args(["-rf", dir]).status();
    }
}

criterion_group!(benches, snapshots);
criterion_main!(benches);
