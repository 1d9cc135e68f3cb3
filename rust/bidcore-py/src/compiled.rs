//! `CompiledModel`: a model scored by its TL2cgen library, called from Rust (no ctypes).

use std::path::PathBuf;
use std::sync::Arc;

use bidcore_core::model::{CompiledScorer, Ensemble, Scorer};
use bidcore_core::CoreError;
use pyo3::prelude::*;

use crate::detach::detached;
use crate::models::{predict_row, predict_rows};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCompiledModel>()?;
    Ok(())
}

/// A tree ensemble scored by its TL2cgen-compiled library. Immutable; share it between threads.
#[pyclass(frozen, name = "CompiledModel", module = "bidcore._core")]
pub struct PyCompiledModel {
    scorer: Arc<CompiledScorer>,
    num_trees: usize,
    feature_names: Vec<String>,
}

impl PyCompiledModel {
    pub(crate) fn scorer(&self) -> Arc<dyn Scorer> {
        self.scorer.clone()
    }
}

#[pymethods]
impl PyCompiledModel {
    /// Loads the library built from `model_text` (LightGBM's model text), after checking its
    /// SHA-256 against `sha256` (hex, the artifact manifest's), its feature and output counts,
    /// and its raw margins against the native evaluator's on rows made up at load. Raises
    /// `ModelError` with the reason. Releases the GIL.
    #[staticmethod]
    #[pyo3(signature = (library, model_text, *, sha256))]
    fn load(py: Python<'_>, library: PathBuf, model_text: &str, sha256: &str) -> PyResult<Self> {
        let text = model_text.to_owned();
        let sha256 = sha256.to_owned();
        detached(py, move || {
            let ensemble = Ensemble::from_lightgbm_text(&text)?;
            let scorer = CompiledScorer::load(&library, &sha256, &ensemble)?;
            Ok::<_, CoreError>(PyCompiledModel {
                scorer: Arc::new(scorer),
                num_trees: ensemble.num_trees(),
                feature_names: ensemble.feature_names().to_vec(),
            })
        })
    }

    #[getter]
    fn num_features(&self) -> usize {
        self.scorer.num_features()
    }

    /// Values per row: 1, or the number of classes.
    #[getter]
    fn num_outputs(&self) -> usize {
        self.scorer.num_outputs()
    }

    #[getter]
    fn num_trees(&self) -> usize {
        self.num_trees
    }

    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.feature_names.clone()
    }

    /// The library's file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.scorer.path().to_owned()
    }

    /// Predictions for a 2-D array of rows (NaN = missing): shape `(n,)`, or `(n, k)` for k
    /// classes. `raw=True` gives the raw margins. Releases the GIL.
    #[pyo3(signature = (rows, *, raw = false))]
    fn predict<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>, raw: bool) -> PyResult<Bound<'py, PyAny>> {
        predict_rows(py, &*self.scorer, rows, raw)
    }

    /// The prediction for one row (a 1-D array of floats): a float, or a list of class
    /// probabilities. Releases the GIL.
    #[pyo3(signature = (row, *, raw = false))]
    fn predict_one<'py>(&self, py: Python<'py>, row: &Bound<'py, PyAny>, raw: bool) -> PyResult<Bound<'py, PyAny>> {
        predict_row(py, &*self.scorer, row, raw)
    }

    fn __repr__(&self) -> String {
        format!(
            "CompiledModel({:?}, num_features={}, num_outputs={})",
            self.scorer.path(),
            self.scorer.num_features(),
            self.scorer.num_outputs()
        )
    }
}
