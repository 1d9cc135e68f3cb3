//! `FeatureExtractor`: a model's feature spec, computed natively from bid requests.

use std::collections::HashMap;
use std::sync::Arc;

use bidcore_core::features::{Encoding, FeatureSpec, DERIVED_SOURCES, NUMBER_SOURCES, TEXT_SOURCES};
use bidcore_core::openrtb::RequestParser;
use bidcore_core::CoreError;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::detach::detached;
use crate::parser::with_arena;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFeatureExtractor>()?;
    m.add_function(wrap_pyfunction!(feature_sources, m)?)?;
    Ok(())
}

/// The source names the core knows: `(numbers, texts, derived)`.
#[pyfunction]
fn feature_sources() -> (Vec<&'static str>, Vec<&'static str>, Vec<&'static str>) {
    (
        NUMBER_SOURCES.iter().map(|(n, _)| *n).collect(),
        TEXT_SOURCES.iter().map(|(n, _)| *n).collect(),
        DERIVED_SOURCES.iter().map(|(n, _)| *n).collect(),
    )
}

/// One feature as `bidcore.features` hands it over: `(kind, source, vocabulary, unseen,
/// buckets)`, kind one of `number`, `vocabulary`, `hash`, `derived`, `campaign` (whose source
/// is the index of the campaign attribute, as text).
type FeatureTuple = (String, String, Option<Vec<String>>, f64, u32);

/// A compiled feature spec. Immutable; share it between threads.
#[pyclass(frozen, name = "FeatureExtractor", module = "bidcore._core")]
pub struct PyFeatureExtractor {
    spec: Arc<FeatureSpec>,
    parser: RequestParser,
}

impl PyFeatureExtractor {
    pub(crate) fn spec(&self) -> Arc<FeatureSpec> {
        self.spec.clone()
    }
}

#[pymethods]
impl PyFeatureExtractor {
    /// Raises `ModelError` for a source the core does not know.
    #[new]
    fn new(py: Python<'_>, features: Vec<FeatureTuple>, usd_rates: HashMap<String, f64>) -> PyResult<Self> {
        let mut spec = FeatureSpec::new(usd_rates);
        for (kind, source, vocabulary, unseen, buckets) in features {
            let added = match kind.as_str() {
                "number" => spec.number(&source),
                "vocabulary" => {
                    let codes = vocabulary.unwrap_or_default().into_iter().zip(0u32..).collect();
                    spec.text(&source, Encoding::Vocabulary { codes, unseen })
                }
                "hash" => spec.text(&source, Encoding::Hash { buckets }),
                "derived" => spec.derived(&source),
                "campaign" => {
                    let index = source.parse().map_err(|_| PyValueError::new_err("campaign index"))?;
                    spec.campaign(index);
                    Ok(())
                }
                other => return Err(PyValueError::new_err(format!("unknown feature kind {other:?}"))),
            };
            added.map_err(|e| crate::errors::to_py_err(py, CoreError::Model(e)))?;
        }
        Ok(PyFeatureExtractor { spec: Arc::new(spec), parser: RequestParser::default() })
    }

    #[getter]
    fn num_features(&self) -> usize {
        self.spec.len()
    }

    /// The features of impression `imp` of one request. Raises `InvalidRequestError`, or
    /// `IndexError` when the request has no such impression. Releases the GIL.
    #[pyo3(signature = (body, *, imp = 0, timestamp = f64::NAN, campaign = None))]
    fn extract<'py>(
        &self,
        py: Python<'py>,
        body: PyBackedBytes,
        imp: usize,
        timestamp: f64,
        campaign: Option<Vec<f64>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let campaign = campaign.unwrap_or_default();
        let spec = &*self.spec;
        let parser = &self.parser;
        let row = detached(py, || {
            with_arena(|arena| {
                let request = parser.parse(&body, arena)?;
                let imps = request.imp.as_deref().map_or(0, <[_]>::len);
                if imp >= imps {
                    return Ok(None);
                }
                let mut row = vec![0.0; spec.len()];
                spec.extract(&request, imp, timestamp, &campaign, &mut row);
                Ok::<_, CoreError>(Some(row))
            })
        })?;
        match row {
            Some(row) => Ok(PyArray1::from_vec(py, row)),
            None => Err(pyo3::exceptions::PyIndexError::new_err(format!("the request has no imp {imp}"))),
        }
    }

    /// One row per impression of every request: `(values, index, rejected)` where `index[k]` is
    /// `(request, imp)` of row k and `rejected` lists the requests that failed to parse, with
    /// their reason, when `skip_invalid` (else the first raises `InvalidRequestError`). Releases
    /// the GIL.
    #[pyo3(signature = (bodies, *, timestamps = None, campaign = None, skip_invalid = false))]
    #[allow(clippy::type_complexity)]
    fn matrix<'py>(
        &self,
        py: Python<'py>,
        bodies: Vec<PyBackedBytes>,
        timestamps: Option<PyReadonlyArray1<'py, f64>>,
        campaign: Option<Vec<f64>>,
        skip_invalid: bool,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<i64>>, Vec<(usize, String)>)> {
        let times: Option<Vec<f64>> = match &timestamps {
            Some(t) => {
                if t.len()? != bodies.len() {
                    return Err(PyValueError::new_err("one timestamp per body"));
                }
                Some(t.as_slice()?.to_vec())
            }
            None => None,
        };
        let campaign = campaign.unwrap_or_default();
        let spec = &*self.spec;
        let parser = &self.parser;
        let width = spec.len();
        let (values, index, rejected) = detached(py, || {
            let mut values: Vec<f64> = Vec::new();
            let mut index: Vec<i64> = Vec::new();
            let mut rejected = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                let ts = times.as_ref().map_or(f64::NAN, |t| t[i]);
                let outcome = with_arena(|arena| {
                    let request = parser.parse(body, arena)?;
                    for imp in 0..request.imp.as_deref().map_or(0, <[_]>::len) {
                        let start = values.len();
                        values.resize(start + width, 0.0);
                        spec.extract(&request, imp, ts, &campaign, &mut values[start..]);
                        index.extend([i as i64, imp as i64]);
                    }
                    Ok::<_, CoreError>(())
                });
                match outcome {
                    Ok(()) => {}
                    Err(CoreError::InvalidRequest(err)) if skip_invalid => rejected.push((i, err.to_string())),
                    Err(err) => return Err(err),
                }
            }
            Ok((values, index, rejected))
        })?;
        let rows = index.len() / 2;
        let values = PyArray1::from_vec(py, values).reshape([rows, width])?;
        let index = PyArray1::from_vec(py, index).reshape([rows, 2])?;
        Ok((values, index, rejected))
    }
}
