//! Request parsing with bidcore's own reader and each serde JSON backend, over the fixture corpus.
//!
//! `cargo bench -p bidcore-core --features serde-backends --bench parse`
//!
//! Each iteration parses (limits, UTF-8, parse, validate, normalize) every request of a set once;
//! throughput is body bytes. The sets are the whole corpus and its field-dense requests of 1 KB
//! and more, which look most like production traffic.

use std::hint::black_box;
use std::path::PathBuf;

use bidcore_core::openrtb::backend::{JsonBackend, SerdeJson, SimdJson, Sonic};
use bidcore_core::openrtb::{check_body, parse_with, Limits, RequestParser};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

fn corpus() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb/requests.jsonl");
    let data = std::fs::read(&path).expect("fixture corpus");
    let limits = Limits::default();
    data.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        // Only requests every backend accepts, so each one does the same whole job.
        .filter(|body| parse_with::<SerdeJson>(body, &mut Vec::new(), &limits).is_ok())
        .collect()
}

fn bench_backend<B: JsonBackend>(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, set: &[Vec<u8>]) {
    let limits = Limits::default();
    let mut scratch = Vec::with_capacity(16 * 1024);
    group.bench_function(B::NAME, |b| {
        b.iter(|| {
            for body in set {
                let parsed = parse_with::<B>(black_box(body), &mut scratch, &limits);
                black_box(parsed.is_ok());
            }
        })
    });
}

fn bench_set(c: &mut Criterion, name: &str, set: &[Vec<u8>]) {
    let bytes: usize = set.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group(format!("parse/{name}"));
    group.throughput(Throughput::Bytes(bytes as u64));
    // bidcore's own one-pass reader: limits enforced inline, no scan beforehand.
    let parser = RequestParser::default();
    group.bench_function("bidcore", |b| {
        b.iter(|| {
            for body in set {
                black_box(parser.parse(black_box(body)).is_ok());
            }
        })
    });
    // The serde backends, each after the limits scan they need.
    bench_backend::<Sonic>(&mut group, set);
    bench_backend::<SimdJson>(&mut group, set);
    bench_backend::<SerdeJson>(&mut group, set);
    // What the checks before the parser cost on their own.
    let limits = Limits::default();
    group.bench_function("limits+utf8 only", |b| {
        b.iter(|| {
            for body in set {
                black_box(check_body(black_box(body), &limits).is_ok());
                black_box(std::str::from_utf8(body).is_ok());
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
