//! Benchmark of `Traffic::second`: records generated per second of CPU at rate 40,000.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lux_generate::{GeneratorConfig, Network, Traffic};

fn traffic_second(c: &mut Criterion) {
    let cfg = GeneratorConfig { rate: 40_000.0, daily_curve: false, ..GeneratorConfig::default() };
    let start = cfg.start_ms().expect("default start");
    let network = Network::generate_at(&cfg, start).expect("default network");
    let traffic = Traffic::new(&network, &cfg, start).expect("default traffic");
    // Seconds 20.. are inside the default incident: its records are included.
    let per_second = traffic.second(20).len() as u64;
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(per_second));
    group.sample_size(30);
    let mut s = 20u64;
    group.bench_function("second_at_40k_per_s", |b| {
        b.iter(|| {
            s = 20 + (s + 1) % 500;
            traffic.second(s)
        })
    });
    group.finish();
}

criterion_group!(benches, traffic_second);
criterion_main!(benches);
