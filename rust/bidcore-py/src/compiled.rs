//! `CompiledModel`: a model scored by its TL2cgen library, called from Rust (no ctypes).

use std::path::PathBuf;
use std::sync::Arc;

use bidcore_core::model::{categorical_split_features, CompiledScorer, Ensemble, Scorer};
use bidcore_core::CoreError;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::detach::detached;
use crate::models::{check_width, score};

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
            let categorical = categorical_split_features(&text)?;
            let scorer = CompiledScorer::load(&library, &sha256, &ensemble, &categorical)?;
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

    /// Predictions for a 2-D float64 array of rows (NaN = missing): shape `(n,)`, or `(n, k)`
    /// for k classes. `raw=True` gives the raw margins. Releases the GIL.
    #[pyo3(signature = (rows, *, raw = false))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray2<'py, f64>,
        raw: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (n, width) = (rows.shape()[0], rows.shape()[1]);
        check_width(width, self.scorer.num_features())?;
        let no = self.scorer.num_outputs();
        let input = rows.as_slice().map_err(|_| PyValueError::new_err("rows must be a C-contiguous float64 array"))?;
        let scorer = &*self.scorer;
        let out = detached(py, || {
            let mut out = vec![0.0; n * no];
            score(scorer, input, &mut out, raw);
            Ok::<_, CoreError>(out)
        })?;
        if no == 1 {
            Ok(PyArray1::from_vec(py, out).into_any())
        } else {
            Ok(PyArray1::from_vec(py, out).reshape([n, no])?.into_any())
        }
    }

    /// The prediction for one row (a 1-D float64 array): a float, or a list of class
    /// probabilities. Releases the GIL.
    #[pyo3(signature = (row, *, raw = false))]
    fn predict_one<'py>(
        &self,
        py: Python<'py>,
        row: PyReadonlyArray1<'py, f64>,
        raw: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_width(row.len(), self.scorer.num_features())?;
        let input = row.as_slice().map_err(|_| PyValueError::new_err("the row must be a contiguous float64 array"))?;
        let no = self.scorer.num_outputs();
        let scorer = &*self.scorer;
        if no == 1 {
            let mut out = [0.0; 1];
            detached(py, || {
                score(scorer, input, &mut out, raw);
                Ok::<_, CoreError>(())
            })?;
            return Ok(out[0].into_pyobject(py)?.into_any());
        }
        let mut many = vec![0.0; no];
        detached(py, || {
            score(scorer, input, &mut many, raw);
            Ok::<_, CoreError>(())
        })?;
        Ok(many.into_pyobject(py)?.into_any())
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
