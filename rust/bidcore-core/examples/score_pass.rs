//! Times the native evaluator on a LightGBM model and rows from a .npy-free raw file:
//! `score_pass MODEL.txt ROWS.f64 NUM_FEATURES [REPS]` (rows: little-endian f64, row-major).
use bidcore_core::model::{Ensemble, Scorer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = Ensemble::from_lightgbm_text(&std::fs::read_to_string(&args[1]).expect("model")).expect("valid model");
    // `score_pass ... nodes` times the node walker instead of the default layout, `... lists`
    // QuickScorer without its dense tables, `... portable` QuickScorer in baseline instructions.
    let model = match args.get(5).map(String::as_str) {
        Some("nodes") => model.node_walker(),
        Some("lists") => model.quickscorer_lists(),
        Some("portable") => model.quickscorer_portable(),
        _ => model,
    };
    println!("layout: {}", model.layout());
    let bytes = std::fs::read(&args[2]).expect("rows");
    let rows: Vec<f64> = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
    let nf: usize = args[3].parse().expect("features");
    let reps: usize = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(3);
    let n = rows.len() / nf;
    let mut out = vec![0.0; n * model.num_outputs()];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = std::time::Instant::now();
        model.predict_raw(&rows, &mut out);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut single = f64::MAX;
    let mut one = vec![0.0; model.num_outputs()];
    for _ in 0..reps {
        let t = std::time::Instant::now();
        for row in rows.chunks_exact(nf) {
            model.predict_raw(row, &mut one);
        }
        single = single.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{n} rows: batch {:.3} us/row, single {:.3} us/row, checksum {}",
        best * 1e6 / n as f64,
        single * 1e6 / n as f64,
        out.iter().sum::<f64>()
    );
}
