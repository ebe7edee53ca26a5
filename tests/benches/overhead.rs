//! Overhead of the whole pipeline over plain `ssh`, on the sandbox host.
//!
//! Both sides use the same multiplexed connection (the gateway's
//! ControlMaster), so the difference is what Jarvis adds: policy judgement,
//! five audited store writes (SQLite, `synchronous = FULL`), rate limits,
//! the guard's re-check and limits. "plain ssh" is the system `ssh` sending
//! one framed request for `true` over the master's socket: the least a key
//! restricted to the guard can do. Run with `cargo bench -p jarvis-tests`.

use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use jarvis_core::{ActionId, HostName};
use jarvis_exec::protocol::{Request, RunRequest};
use jarvis_gateway::{Config, Gateway, Proposal, Work};
use jarvis_store::Store;
use jarvis_tests::{Env, sandbox};

fn overhead(c: &mut Criterion) {
    sandbox();
    let env = Env::new(
        "bench",
        "rate_per_minute = 1000000\nburst = 1000000",
        "rate_per_minute = 1000000\nburst = 1000000\nrequester_rate_per_minute = 1000000\n\
         requester_burst = 1000000\nloop_repeats = 1000000000",
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let host = HostName::parse("sandbox").expect("valid");
    let gw = rt.block_on(async {
        let config = Config::load(&env.config).expect("config");
        let db = env.dir().join("jarvis.db");
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("store");
        let control = std::env::temp_dir().join("jarvis-ssh-bench");
        Gateway::open(config, store, &control, true)
            .await
            .expect("gateway")
    });
    let through_jarvis = || {
        rt.block_on(async {
            let p = gw
                .propose(Proposal {
                    requester: "bench".into(),
                    host: host.clone(),
                    work: Work::Command {
                        line: "true".into(),
                        cwd: None,
                    },
                    timeout: None,
                    purpose: None,
                })
                .await
                .expect("proposed");
            let done = gw
                .execute(p.action.id, "bench", &mut |_| {})
                .await
                .expect("ran");
            assert_eq!(done.state, jarvis_core::ActionState::Succeeded);
        })
    };
    through_jarvis(); // opens the master
    let socket = rt
        .block_on(gw.executor().control_socket(&host))
        .expect("master is open");
    let frame = Request::Run(RunRequest {
        action_id: ActionId::new(),
        command: "true".into(),
        cwd: None,
        timeout_ms: 60_000,
        output_cap: 1 << 20,
        approved: false,
        scope: Vec::new(),
    })
    .encode();
    let plain_ssh = || {
        let out = Command::new("ssh")
            .arg("-S")
            .arg(&socket)
            .args(["-o", "BatchMode=yes", "-T", "-p", "9", "none"])
            .arg(&frame)
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs");
        assert!(out.status.success());
    };
    let mut group = c.benchmark_group("true_on_sandbox");
    group.sample_size(30);
    group.bench_function("plain_ssh_same_master", |b| b.iter(plain_ssh));
    group.bench_function("jarvis_pipeline", |b| b.iter(through_jarvis));
    group.finish();
    rt.block_on(gw.close());
}

criterion_group!(benches, overhead);
criterion_main!(benches);
