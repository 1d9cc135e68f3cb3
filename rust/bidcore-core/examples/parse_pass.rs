//! One pass of the parser over the corpus, for instruction counting under callgrind:
//! `cargo build --release --example parse_pass --features serde-backends` then
//! `valgrind --tool=callgrind target/release/examples/parse_pass BACKEND [dense]`.
//! Instruction counts do not care what else the machine is doing, unlike wall time.

use bidcore_core::openrtb::backend::{JsonBackend, SerdeJson, SimdJson, Sonic};
use bidcore_core::openrtb::{check_body, parse_with, Limits};

fn pass<B: JsonBackend>(set: &[Vec<u8>]) -> usize {
    let limits = Limits::default();
    let mut scratch = Vec::new();
    set.iter().filter(|body| parse_with::<B>(body, &mut scratch, &limits).is_ok()).count()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sonic-rs".into());
    let dense = args.next().is_some_and(|a| a == "dense");
    let default_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/openrtb/requests.jsonl");
    let path = std::env::var("CORPUS").unwrap_or_else(|_| default_path.to_owned());
    let data = std::fs::read(path).expect("fixture corpus");
    let set: Vec<Vec<u8>> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && (!dense || l.len() >= 1024))
        .map(<[u8]>::to_vec)
        .filter(|b| {
            std::env::var_os("ONLY_VALID").is_none()
                || parse_with::<SerdeJson>(b, &mut Vec::new(), &Limits::default()).is_ok()
        })
        .collect();
    let reps: usize = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for _ in 0..reps {
        accepted = match backend.as_str() {
            "bidcore" => {
                let parser = bidcore_core::openrtb::RequestParser::default();
                set.iter().filter(|body| parser.parse(body).is_ok()).count()
            }
            "sonic-rs" => pass::<Sonic>(&set),
            "simd-json" => pass::<SimdJson>(&set),
            "serde_json" => pass::<SerdeJson>(&set),
            "skip-serde_json" => {
                set.iter().filter(|b| serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()).count()
            }
            "skip-sonic-rs" => set.iter().filter(|b| sonic_rs::from_slice::<serde::de::IgnoredAny>(b).is_ok()).count(),
            "none" => set.len(),
            "tape-simd-json" => {
                let mut buffer = Vec::new();
                let mut n = 0;
                for body in &set {
                    buffer.clear();
                    buffer.extend_from_slice(body);
                    n += usize::from(simd_json::to_tape(&mut buffer).is_ok());
                }
                n
            }
            "limits" => set.iter().filter(|b| check_body(b, &Limits::default()).is_ok()).count(),
            other => panic!("unknown backend {other}"),
        };
    }
    eprintln!("{:.3} ms per pass", started.elapsed().as_secs_f64() * 1e3 / reps as f64);
    println!("{backend}: {accepted} of {} accepted", set.len());
}
