//! `NativeEngine`: the bidding engine for Python (`bidcore.Engine` wraps it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bidcore_core::engine::{Engine, Explanation, Outcome, Plan, Reason, Role, RoleModel, Scratch};
use bidcore_core::openrtb::RequestParser;
use bidcore_core::CoreError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::compiled::PyCompiledModel;
use crate::detach::detached;
use crate::features::PyFeatureExtractor;
use crate::models::PyTreeEnsemble;
use crate::parser::{with_arena, PyLimits};

thread_local! {
    /// Each thread's working memory for decisions; grows to the largest request it has seen.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNativeEngine>()?;
    Ok(())
}

fn wall_clock() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The native engine state: built once, immutable, shared by threads (and still valid in a
/// child after `fork`: it holds no threads and no locks).
#[pyclass(frozen, name = "NativeEngine", module = "bidcore._core")]
pub struct PyNativeEngine {
    engine: Engine,
}

/// One model as `bidcore.Engine` hands it over: the scorer, the feature extractor, and the
/// campaign attribute names the spec reads.
type ModelTuple<'py> = (Bound<'py, PyAny>, PyRef<'py, PyFeatureExtractor>, Vec<String>);

#[pymethods]
impl PyNativeEngine {
    /// `plan`: the validated config as JSON (`bidcore.engine` builds it); `models`: role ->
    /// (TreeEnsemble | CompiledModel, FeatureExtractor, campaign attribute names). Raises
    /// `ConfigError` with the reason.
    #[new]
    #[pyo3(signature = (plan, models, limits = None))]
    fn new(
        py: Python<'_>,
        plan: &str,
        models: HashMap<String, ModelTuple<'_>>,
        limits: Option<PyRef<'_, PyLimits>>,
    ) -> PyResult<Self> {
        let plan = Plan::from_json(plan).map_err(|err| crate::errors::to_py_err(py, CoreError::Config(err)))?;
        let mut roles: [Option<RoleModel>; 2] = [None, None];
        for (name, (scorer, extractor, attributes)) in models {
            let role =
                Role::parse(&name).ok_or_else(|| PyValueError::new_err(format!("unknown model role {name:?}")))?;
            let scorer = if let Ok(native) = scorer.cast::<PyTreeEnsemble>() {
                native.get().scorer()
            } else if let Ok(compiled) = scorer.cast::<PyCompiledModel>() {
                compiled.get().scorer()
            } else {
                return Err(PyValueError::new_err("a model must be a TreeEnsemble or a CompiledModel"));
            };
            roles[role as usize] = Some(RoleModel { scorer, spec: extractor.spec(), attributes });
        }
        let parser = RequestParser::new(limits.map(|l| l.0).unwrap_or_default());
        let engine =
            Engine::new(plan, roles, parser).map_err(|err| crate::errors::to_py_err(py, CoreError::Config(err)))?;
        Ok(PyNativeEngine { engine })
    }

    /// The response bytes, or None for a no-bid (its reason counted). Raises
    /// `InvalidRequestError` for an invalid body. `now`: the request's time (seconds since the
    /// epoch), the wall clock by default. Releases the GIL; the body is read without a copy.
    #[pyo3(signature = (body, now = None))]
    fn bid<'py>(
        &self,
        py: Python<'py>,
        body: PyBackedBytes,
        now: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let now = now.unwrap_or_else(wall_clock);
        let out = detached(py, || {
            let mut out = Vec::new();
            let outcome = with_arena(|arena| {
                SCRATCH.with(|scratch| self.engine.bid(&body, now, arena, &mut scratch.borrow_mut(), &mut out))
            })?;
            Ok::<_, CoreError>(matches!(outcome, Outcome::Bid).then_some(out))
        })?;
        Ok(out.map(|bytes| PyBytes::new(py, &bytes)))
    }

    /// `bid` for each body, in one call with the GIL released throughout. An invalid body gives
    /// None here (counted as `invalid`); call `bid` on it to see the error.
    #[pyo3(signature = (bodies, now = None))]
    fn bid_many<'py>(
        &self,
        py: Python<'py>,
        bodies: Vec<PyBackedBytes>,
        now: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now.unwrap_or_else(wall_clock);
        let results = detached(py, || {
            let mut results = Vec::with_capacity(bodies.len());
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                for body in &bodies {
                    let mut out = Vec::new();
                    let outcome = with_arena(|arena| self.engine.bid(body, now, arena, &mut scratch, &mut out));
                    results.push(matches!(outcome, Ok(Outcome::Bid)).then_some(out));
                }
            });
            Ok::<_, CoreError>(results)
        })?;
        let items: Vec<Option<Bound<'py, PyBytes>>> =
            results.into_iter().map(|r| r.map(|bytes| PyBytes::new(py, &bytes))).collect();
        PyList::new(py, items)
    }

    /// The decision written out (see `bidcore.Engine.explain`). Counts nothing. Raises
    /// `InvalidRequestError` for an invalid body.
    #[pyo3(signature = (body, now = None))]
    fn explain<'py>(&self, py: Python<'py>, body: PyBackedBytes, now: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
        let now = now.unwrap_or_else(wall_clock);
        let (trace, response) = detached(py, || with_arena(|arena| Ok(self.engine.explain(&body, now, arena)?)))?;
        explanation_dict(py, &trace, response.as_deref())
    }

    /// Requests, bids, imps bid on, and no-bids by reason since the engine was built.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.engine.counters();
        let d = PyDict::new(py);
        d.set_item("requests", c.requests.load(Relaxed))?;
        d.set_item("bids", c.bids.load(Relaxed))?;
        d.set_item("imp_bids", c.imp_bids.load(Relaxed))?;
        let reasons = PyDict::new(py);
        for (reason, n) in c.no_bids() {
            reasons.set_item(reason.as_str(), n)?;
        }
        d.set_item("no_bids", reasons)?;
        Ok(d)
    }

    /// Every no-bid reason's name and OpenRTB `nbr` code, in tie-breaking order.
    #[staticmethod]
    fn reasons() -> Vec<(&'static str, i32)> {
        Reason::ALL.iter().map(|r| (r.as_str(), r.nbr())).collect()
    }
}

fn reason_name(r: Option<Reason>) -> Option<&'static str> {
    r.map(Reason::as_str)
}

fn explanation_dict<'py>(py: Python<'py>, t: &Explanation, response: Option<&[u8]>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bid", response.is_some())?;
    d.set_item("reason", reason_name(t.reason))?;
    d.set_item("currency", t.currency.as_deref())?;
    d.set_item("personal", t.personal)?;
    let targeting = PyDict::new(py);
    for (campaign, failure) in &t.targeting {
        targeting.set_item(campaign, reason_name(*failure))?;
    }
    d.set_item("targeting", targeting)?;
    let imps = PyList::empty(py);
    for imp in &t.imps {
        let i = PyDict::new(py);
        i.set_item("imp", &imp.imp)?;
        i.set_item("campaign", imp.campaign.as_deref())?;
        i.set_item("creative", imp.creative.as_deref())?;
        i.set_item("price", imp.price)?;
        i.set_item("deal", imp.deal.as_deref())?;
        i.set_item("reason", reason_name(imp.reason))?;
        imps.append(i)?;
    }
    d.set_item("imps", imps)?;
    let candidates = PyList::empty(py);
    for c in &t.candidates {
        let x = PyDict::new(py);
        x.set_item("imp", &c.imp)?;
        x.set_item("campaign", &c.campaign)?;
        x.set_item("excluded_by", reason_name(c.excluded_by))?;
        x.set_item("creative", c.creative.as_deref())?;
        x.set_item("deal", c.deal.as_deref())?;
        let features = PyDict::new(py);
        for (role, row) in &c.features {
            features.set_item(role, row.clone())?;
        }
        x.set_item("features", features)?;
        let scores = PyDict::new(py);
        for (role, p) in &c.scores {
            scores.set_item(role, p)?;
        }
        x.set_item("scores", scores)?;
        for (key, value) in
            [("value", c.value), ("floor", c.floor), ("lower", c.lower), ("upper", c.upper), ("price", c.price)]
        {
            x.set_item(key, value)?;
        }
        x.set_item("surplus", c.surplus)?;
        candidates.append(x)?;
    }
    d.set_item("candidates", candidates)?;
    d.set_item("response", response.map(|r| PyBytes::new(py, r)))?;
    Ok(d)
}
