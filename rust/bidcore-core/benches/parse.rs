//! Request parsing over the fixture corpus: `cargo bench -p bidcore-core --bench parse`.
//!
//! Each iteration parses (size and UTF-8 checks, the one-pass read with inline limits,
//! validation, normalization) every valid request of a set once, into an arena reset per request
//! as the binding does; throughput is body bytes. The sets are the whole corpus and its
//! field-dense requests of 1 KB and more, which look most like production traffic.
//!
//! sonic-rs, simd-json and serde_json were measured beside this reader when it was chosen; the
//! figures are in docs/architecture.md.

use std::hint::black_box;
use std::path::PathBuf;

use bidcore_core::openrtb::RequestParser;
use bumpalo::Bump;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn corpus() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb/requests.jsonl");
    let data = std::fs::read(&path).expect("fixture corpus");
    let parser = RequestParser::default();
    data.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .filter(|body| parser.parse(body, &Bump::new()).is_ok())
        .collect()
}

fn bench_set(c: &mut Criterion, name: &str, set: &[Vec<u8>]) {
    let bytes: usize = set.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    let parser = RequestParser::default();
    let mut arena = Bump::new();
    group.bench_function(name, |b| {
        b.iter(|| {
            for body in set {
                arena.reset();
                black_box(parser.parse(black_box(body), &arena).is_ok());
            }
        })
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    let all = corpus();
    let dense: Vec<Vec<u8>> = all.iter().filter(|b| b.len() >= 1024).cloned().collect();
    bench_set(c, "corpus", &all);
    bench_set(c, "dense", &dense);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = parse
}
criterion_main!(benches);
