//! One pass of the parser over the corpus, for instruction counting under callgrind, which
//! counts the same whatever else the shared machine is doing:
//!
//! ```sh
//! cargo build --release --example parse_pass
//! valgrind --tool=callgrind target/release/examples/parse_pass bidcore [dense]
//! valgrind --tool=callgrind target/release/examples/parse_pass none [dense]   # the baseline
//! ```
//!
//! `CORPUS=file.jsonl` reads another file; `REPS=n` repeats the pass and prints the wall time.

use bidcore_core::openrtb::RequestParser;
use bumpalo::Bump;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bidcore".into());
    let dense = args.next().is_some_and(|a| a == "dense");
    let default_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/openrtb/requests.jsonl");
    let path = std::env::var("CORPUS").unwrap_or_else(|_| default_path.to_owned());
    let data = std::fs::read(path).expect("corpus file");
    let parser = RequestParser::default();
    let set: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && (!dense || l.len() >= 1024))
        .filter(|l| parser.parse(l, &Bump::new()).is_ok())
        .collect();
    let reps: usize = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let started = std::time::Instant::now();
    let mut arena = Bump::new();
    let mut accepted = 0;
    for _ in 0..reps {
        accepted = match mode.as_str() {
            "bidcore" => set
                .iter()
                .filter(|body| {
                    arena.reset();
                    parser.parse(body, &arena).is_ok()
                })
                .count(),
            "none" => set.len(),
            other => panic!("unknown mode {other}: bidcore or none"),
        };
    }
    eprintln!("{:.3} ms per pass", started.elapsed().as_secs_f64() * 1e3 / reps as f64);
    println!("{mode}: {accepted} of {} valid requests", set.len());
}
