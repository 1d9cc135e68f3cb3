//! Any text into the model readers (LightGBM's model text and Treelite's JSON): they must return
//! an ensemble or a `ModelError`, never panic. An ensemble that reads must score rows made from
//! the input without panicking, and its two layouts (QuickScorer and the node walker) must give
//! the same margins, bit for bit.
#![no_main]

use bidcore_core::model::{Ensemble, Scorer};
use libfuzzer_sys::fuzz_target;

/// Row values taken from the input bytes, with the edges that matter mixed in.
fn rows(data: &[u8], num_features: usize, count: usize) -> Vec<f64> {
    const EDGES: [f64; 8] = [f64::NAN, 0.0, -0.0, 1e-36, -0.5, 1.0, 63.0, 1e300];
    (0..num_features * count)
        .map(|i| {
            let b = data.get(i % data.len().max(1)).copied().unwrap_or(0);
            if b % 3 == 0 {
                EDGES[usize::from(b / 3) % EDGES.len()]
            } else {
                f64::from(b) / 8.0 - 8.0
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for read in [Ensemble::from_lightgbm_text, Ensemble::from_treelite_json] {
        let Ok(ensemble) = read(text) else { continue };
        let nf = ensemble.num_features();
        if nf == 0 || nf > 4096 {
            continue;
        }
        let rows = rows(data, nf, 20);
        let no = ensemble.num_outputs();
        let mut quick = vec![0.0; 20 * no];
        ensemble.predict_raw(&rows, &mut quick);
        let mut walked = vec![0.0; 20 * no];
        ensemble.clone().node_walker().predict_raw(&rows, &mut walked);
        for (a, b) in quick.iter().zip(&walked) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "layouts disagree: {a} != {b}");
        }
        let mut out = vec![0.0; 20 * no];
        ensemble.predict(&rows, &mut out);
    }
});
