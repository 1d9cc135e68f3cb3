//! `TreeEnsemble`: the native tree evaluator for Python.

use std::sync::Arc;

use bidcore_core::model::{Ensemble, Scorer};
use bidcore_core::CoreError;
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::detach::detached;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTreeEnsemble>()?;
    Ok(())
}

/// A tree ensemble scored by bidcore's native evaluator. Immutable; share it between threads.
#[pyclass(frozen, name = "TreeEnsemble", module = "bidcore._core")]
pub struct PyTreeEnsemble {
    ensemble: Arc<Ensemble>,
}

impl PyTreeEnsemble {
    pub(crate) fn scorer(&self) -> Arc<dyn Scorer> {
        self.ensemble.clone()
    }
}

#[pymethods]
impl PyTreeEnsemble {
    /// Reads a LightGBM model text (what `Booster.save_model` writes). Raises `ModelError`.
    #[staticmethod]
    fn from_lightgbm(py: Python<'_>, text: &str) -> PyResult<Self> {
        let text = text.to_owned();
        let ensemble = detached(py, move || Ok(Ensemble::from_lightgbm_text(&text)?))?;
        Ok(PyTreeEnsemble { ensemble: Arc::new(ensemble) })
    }

    /// Reads the JSON of a Treelite model (`treelite.Model.dump_as_json(pretty_print=False)`):
    /// XGBoost, scikit-learn and the other ensembles Treelite imports. Raises `ModelError`.
    /// Releases the GIL.
    #[staticmethod]
    fn from_treelite_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let text = text.to_owned();
        let ensemble = detached(py, move || Ok(Ensemble::from_treelite_json(&text)?))?;
        Ok(PyTreeEnsemble { ensemble: Arc::new(ensemble) })
    }

    #[getter]
    fn num_features(&self) -> usize {
        self.ensemble.num_features()
    }

    /// Values per row: 1, or the number of classes.
    #[getter]
    fn num_outputs(&self) -> usize {
        self.ensemble.num_outputs()
    }

    #[getter]
    fn num_trees(&self) -> usize {
        self.ensemble.num_trees()
    }

    /// How the trees are evaluated: `"quickscorer"` (every tree has at most 64 leaves) or
    /// `"nodes"`.
    #[getter]
    fn layout(&self) -> &'static str {
        self.ensemble.layout()
    }

    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.ensemble.feature_names().to_vec()
    }

    /// Predictions for a 2-D array of rows (NaN = missing): shape `(n,)`, or `(n, k)` for k
    /// classes. `raw=True` gives the raw margins. Releases the GIL.
    #[pyo3(signature = (rows, *, raw = false))]
    fn predict<'py>(&self, py: Python<'py>, rows: &Bound<'py, PyAny>, raw: bool) -> PyResult<Bound<'py, PyAny>> {
        predict_rows(py, &*self.ensemble, rows, raw)
    }

    /// The prediction for one row (a 1-D array of floats): a float, or a list of class
    /// probabilities. Releases the GIL.
    #[pyo3(signature = (row, *, raw = false))]
    fn predict_one<'py>(&self, py: Python<'py>, row: &Bound<'py, PyAny>, raw: bool) -> PyResult<Bound<'py, PyAny>> {
        predict_row(py, &*self.ensemble, row, raw)
    }
}

/// Arrays of at most this many values are copied while the GIL is held instead of borrowed
/// through numpy's borrow checker: its bookkeeping (a lock and a hash map, to acquire and again
/// to release) costs more than copying a block of 16 candidate rows. Larger ones are borrowed.
const COPIED_VALUES: usize = 4096;

/// `predict` of every scorer class: rows in, predictions out as numpy, the GIL released.
///
/// `Model.predict` is this method itself, so it takes anything numpy reads as a matrix: a
/// C-contiguous float64 array as it is, anything else converted by numpy first.
pub(crate) fn predict_rows<'py>(
    py: Python<'py>,
    scorer: &dyn Scorer,
    rows: &Bound<'py, PyAny>,
    raw: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let converted;
    let matrix = match rows.cast::<PyArray2<f64>>() {
        Ok(matrix) if matrix.is_c_contiguous() => matrix,
        _ => {
            converted = as_float64(py, rows, 2)?.cast_into::<PyArray2<f64>>()?;
            &converted
        }
    };
    let (n, width) = (matrix.shape()[0], matrix.shape()[1]);
    check_width(width, scorer.num_features())?;
    let no = scorer.num_outputs();
    let contiguous = || PyValueError::new_err("rows must be a C-contiguous float64 array");
    let predict = |input: &[f64]| {
        detached(py, || {
            let mut out = vec![0.0; n * no];
            score(scorer, input, &mut out, raw);
            Ok::<_, CoreError>(out)
        })
    };
    let out = if n * width <= COPIED_VALUES {
        predict(&matrix.to_vec().map_err(|_| contiguous())?)?
    } else {
        let borrowed = matrix
            .try_readonly()
            .map_err(|_| PyValueError::new_err("the rows are being written elsewhere: they cannot be read"))?;
        predict(borrowed.as_slice().map_err(|_| contiguous())?)?
    };
    if no == 1 {
        Ok(PyArray1::from_vec(py, out).into_any())
    } else {
        Ok(PyArray1::from_vec(py, out).reshape([n, no])?.into_any())
    }
}

/// `predict_one` of every scorer class: a float for one output, else a list.
///
/// `Model.predict_one` is this method itself (a Python wrapper's frame cost a sixth of a small
/// model's single-row time), so it takes anything numpy reads as a vector. A contiguous float64
/// array, the hot path, is copied as it is; anything else is converted by numpy first.
///
/// The row is copied while the GIL is held instead of borrowed through numpy's borrow checker:
/// for one row the checker's bookkeeping (a lock and a hash map, to acquire and again to release)
/// cost more than scoring a 50-tree model, and a copy of a few hundred bytes cannot change under
/// the scorer once the GIL is released.
pub(crate) fn predict_row<'py>(
    py: Python<'py>,
    scorer: &dyn Scorer,
    row: &Bound<'py, PyAny>,
    raw: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let copied = match row.cast::<PyArray1<f64>>() {
        Ok(vector) => vector.to_vec().ok(),
        Err(_) => None,
    };
    let input = match copied {
        Some(input) => input,
        None => {
            as_float64(py, row, 1)?.to_vec().map_err(|_| PyValueError::new_err("the row must be a contiguous array"))?
        }
    };
    check_width(input.len(), scorer.num_features())?;
    let input = input.as_slice();
    if scorer.num_outputs() == 1 {
        let mut out = [0.0; 1];
        detached(py, || {
            score(scorer, input, &mut out, raw);
            Ok::<_, CoreError>(())
        })?;
        return Ok(out[0].into_pyobject(py)?.into_any());
    }
    let mut many = vec![0.0; scorer.num_outputs()];
    detached(py, || {
        score(scorer, input, &mut many, raw);
        Ok::<_, CoreError>(())
    })?;
    Ok(many.into_pyobject(py)?.into_any())
}

fn score(scorer: &dyn Scorer, rows: &[f64], out: &mut [f64], raw: bool) {
    if raw {
        scorer.predict_raw(rows, out);
    } else {
        scorer.predict(rows, out);
    }
}

/// `value` as a C-contiguous float64 array of `ndim` dimensions, through
/// `numpy.ascontiguousarray` (lists, other dtypes, strided views); a `ValueError` for another
/// number of dimensions.
#[cold]
fn as_float64<'py>(py: Python<'py>, value: &Bound<'py, PyAny>, ndim: usize) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let numpy = py.import("numpy")?;
    let array = numpy.getattr("ascontiguousarray")?.call1((value, numpy.getattr("float64")?))?;
    let array = array.cast_into::<PyArrayDyn<f64>>()?;
    if array.ndim() != ndim {
        let what = if ndim == 1 { "a row must be a 1-D array" } else { "rows must be a 2-D array" };
        return Err(PyValueError::new_err(format!("{what}, got {} dimensions", array.ndim())));
    }
    Ok(array)
}

fn check_width(width: usize, expected: usize) -> PyResult<()> {
    if width != expected {
        return Err(PyValueError::new_err(format!("rows have {width} features; the model takes {expected}")));
    }
    Ok(())
}
