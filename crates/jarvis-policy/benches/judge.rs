//! Parsing plus judgement per command line, over a corpus of realistic
//! homelab commands (benches/corpus.txt, made by scripts/make-corpus.py).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jarvis_policy::{Policy, Request};

fn corpus() -> Vec<String> {
    include_str!("corpus.txt")
        .lines()
        .map(|l| l.replace("\\n", "\n"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let policy = Policy::shipped().expect("shipped policy loads");
    let lines = corpus();
    let requests: Vec<Request> = lines.iter().map(Request::new).collect();
    let mut g = c.benchmark_group("judge");
    g.throughput(Throughput::Elements(requests.len() as u64));
    g.bench_function("corpus", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(policy.judge(black_box(r)));
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("single");
    for (name, line) in [
        ("simple", "docker ps -a"),
        (
            "pipeline",
            "journalctl -u grafana --no-pager | tail -n 50 | grep -i error",
        ),
        (
            "nested",
            "sudo sh -c \"cd /srv/monitoring && docker compose up -d grafana\"",
        ),
        ("guardrail", "rm -rf /"),
    ] {
        let r = Request::new(line);
        g.bench_function(name, |b| b.iter(|| black_box(policy.judge(black_box(&r)))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
