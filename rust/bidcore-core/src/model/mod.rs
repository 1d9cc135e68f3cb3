//! Tree-ensemble models: read, checked, and scored natively.
//!
//! [`Ensemble`] is bidcore's own compact representation of a gradient-boosted ensemble, read
//! from LightGBM's model text ([`lightgbm`], LightGBM's exact semantics) or from Treelite's model
//! for the ensembles Treelite imports. [`Scorer`] is what the engine calls; the native
//! [`Ensemble`] and the TL2cgen-compiled library ([`CompiledScorer`]) both implement it.

mod compiled;
mod ensemble;
mod error;
mod lightgbm;
mod quick;
mod transform;
mod treelite;

pub use compiled::{CompiledScorer, AGREEMENT_TOLERANCE};
pub use ensemble::{Comparison, Ensemble, EnsembleBuilder, MissingType, Split, BLOCK_ROWS};
pub use error::ModelError;
pub use transform::Transform;

/// Scores rows of features. `rows` is row-major, `num_features` values per row (NaN = missing);
/// `raw` receives `num_outputs` raw margins per row (before the objective's transform).
pub trait Scorer: Send + Sync {
    fn num_features(&self) -> usize;
    fn num_outputs(&self) -> usize;
    /// The link from raw margins to predictions (sigmoid for binary, identity for regression…).
    fn transform(&self) -> Transform;
    fn predict_raw(&self, rows: &[f64], raw: &mut [f64]);

    /// Raw margins, then the transform: what LightGBM's `predict` returns.
    fn predict(&self, rows: &[f64], out: &mut [f64]) {
        self.predict_raw(rows, out);
        let transform = self.transform();
        for row in out.chunks_exact_mut(self.num_outputs().max(1)) {
            transform.apply(row);
        }
    }
}
