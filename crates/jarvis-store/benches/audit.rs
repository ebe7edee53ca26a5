//! Appending to the audit chain on SQLite (a real file, WAL, synchronous =
//! FULL, one transaction per event), and walking it with `verify`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jarvis_store::{AuditKey, NewEvent, Store};
use serde_json::json;

fn event(i: u64) -> NewEvent {
    NewEvent {
        actor: "agent:bench".into(),
        action_id: None,
        host: Some("nas".into()),
        kind: "bench.event".into(),
        payload: json!({ "command": "docker compose -f /srv/monitoring/compose.yml up -d grafana", "i": i }),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("jarvis-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");

    let store = rt
        .block_on(Store::connect(&format!(
            "sqlite://{}",
            dir.join("append.db").display()
        )))
        .expect("store")
        .with_checkpoints(AuditKey::ephemeral(), 1000);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    let mut i = 0;
    g.bench_function("sqlite", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(store.append(event(i))).expect("append")
        })
    });
    g.finish();

    // A long chain to walk.
    const N: u64 = 100_000;
    let walk = rt
        .block_on(Store::connect(&format!(
            "sqlite://{}",
            dir.join("verify.db").display()
        )))
        .expect("store");
    rt.block_on(async {
        // Many writers at once keep filling fast; the chain stays one line.
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let s = walk.clone();
                tokio::spawn(async move {
                    for i in 0..N / 8 {
                        s.append(event(t * N + i)).await.expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    });
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("sqlite_100k", |b| {
        b.iter(|| {
            let r = rt.block_on(walk.verify(None)).expect("verify");
            assert!(r.is_intact());
            black_box(r)
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
