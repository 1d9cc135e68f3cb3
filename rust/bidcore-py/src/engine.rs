//! `NativeEngine`: the bidding engine for Python (`bidcore.Engine` wraps it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bidcore_core::engine::{
    serialize, DecisionLog, Engine, Explanation, Format, HistogramSnapshot, MonitorPlan, Outcome, Plan, Reason, Role,
    RoleModel, Scratch, LATENCY_BOUNDS_NS,
};
use bidcore_core::openrtb::RequestParser;
use bidcore_core::CoreError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::compiled::PyCompiledModel;
use crate::detach::detached;
use crate::features::PyFeatureExtractor;
use crate::ledger::PyLedger;
use crate::models::PyTreeEnsemble;
use crate::parser::{with_arena, PyLimits};

/// A thread's working memory for decisions and its response buffer; both grow to the largest
/// request the thread has seen.
#[derive(Default)]
struct ThreadScratch {
    decision: Scratch,
    out: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<ThreadScratch> = RefCell::new(ThreadScratch::default());
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNativeEngine>()?;
    m.add_class::<PyDecisionLog>()?;
    Ok(())
}

/// `time.monotonic_ns()`: the clock a server stamps a request's arrival with.
fn monotonic_ns(py: Python<'_>) -> PyResult<u64> {
    static MONOTONIC_NS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    MONOTONIC_NS
        .get_or_try_init(py, || py.import("time")?.getattr("monotonic_ns").map(Bound::unbind))?
        .call0(py)?
        .extract(py)
}

fn wall_clock() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The native engine state: built once, immutable, shared by threads (and still valid in a
/// child after `fork`: it holds no threads and no locks).
///
/// `bidcore.Engine` subclasses it, so `Engine.bid` is this method itself: no Python frame
/// between the caller and the native call, the least time holding the GIL per decision.
#[pyclass(frozen, subclass, name = "NativeEngine", module = "bidcore._core")]
pub struct PyNativeEngine {
    engine: Engine,
}

/// One model as `bidcore.Engine` hands it over: its id, the scorer, the feature extractor, and
/// the campaign attribute names the spec reads.
type ModelTuple<'py> = (String, Bound<'py, PyAny>, PyRef<'py, PyFeatureExtractor>, Vec<String>);

/// What to monitor of one model: its id, its score histogram's edges, and per monitored feature
/// (name, column, edges).
type MonitorTuple = (String, Vec<f64>, Vec<(String, usize, Vec<f64>)>);

#[pymethods]
impl PyNativeEngine {
    /// `plan`: the validated config as JSON (`bidcore.engine` builds it); `models`: role (or,
    /// for an experiment arm's model, the key its plan names) -> (id, TreeEnsemble |
    /// CompiledModel, FeatureExtractor, campaign attribute names). Raises `ConfigError` with
    /// the reason.
    #[new]
    #[pyo3(signature = (plan, models, limits = None, monitors = None, log = None, ledger = None))]
    fn new(
        py: Python<'_>,
        plan: &str,
        models: HashMap<String, ModelTuple<'_>>,
        limits: Option<PyRef<'_, PyLimits>>,
        monitors: Option<HashMap<String, MonitorTuple>>,
        log: Option<PyRef<'_, PyDecisionLog>>,
        ledger: Option<PyRef<'_, PyLedger>>,
    ) -> PyResult<Self> {
        let plan = Plan::from_json(plan).map_err(|err| crate::errors::to_py_err(py, CoreError::Config(err)))?;
        let mut roles: [Option<RoleModel>; 2] = [None, None];
        let mut arm_models = Vec::new();
        let mut win_rate = None;
        for (name, (id, scorer, extractor, attributes)) in models {
            let scorer = if let Ok(native) = scorer.cast::<PyTreeEnsemble>() {
                native.get().scorer()
            } else if let Ok(compiled) = scorer.cast::<PyCompiledModel>() {
                compiled.get().scorer()
            } else {
                return Err(PyValueError::new_err("a model must be a TreeEnsemble or a CompiledModel"));
            };
            let model = RoleModel { id, scorer, spec: extractor.spec(), attributes };
            match Role::parse(&name) {
                Some(role) => roles[role as usize] = Some(model),
                None if name == "win_rate" => win_rate = Some(model),
                // An arm's model: the plan names it by this key.
                None if name.contains('/') => arm_models.push((name, model)),
                None => return Err(PyValueError::new_err(format!("unknown model role {name:?}"))),
            }
        }
        let mut watch: [Option<MonitorPlan>; 2] = [None, None];
        for (name, (model, score_edges, features)) in monitors.unwrap_or_default() {
            let role =
                Role::parse(&name).ok_or_else(|| PyValueError::new_err(format!("unknown model role {name:?}")))?;
            watch[role as usize] = Some(MonitorPlan { model, score_edges, features });
        }
        let parser = RequestParser::new(limits.map(|l| l.0).unwrap_or_default());
        let log = log.map(|l| l.0.clone());
        let mut engine = Engine::new(plan, roles, arm_models, parser, watch, log)
            .map_err(|err| crate::errors::to_py_err(py, CoreError::Config(err)))?;
        if let Some(model) = win_rate {
            engine = engine.with_win_rate(model).map_err(|err| crate::errors::to_py_err(py, CoreError::Config(err)))?;
        }
        if let Some(ledger) = ledger {
            engine = engine.with_ledger(Arc::clone(&ledger.0));
        }
        Ok(PyNativeEngine { engine })
    }

    /// The OpenRTB response for `body`, or None for a no-bid (its reason counted).
    ///
    /// Raises `bidcore.InvalidRequestError` for an invalid request. `now` is the request's time
    /// in seconds since the epoch (the wall clock by default). `received_ns` is
    /// `time.monotonic_ns()` when the request arrived: with it the request's `tmax`, less the
    /// config's `bidder.tmax_margin_ms`, is a deadline, and a decision that would finish past
    /// it is a no-bid (reason `late`) instead of an answer the exchange would drop. Releases
    /// the GIL; the body is read in place, not copied.
    #[pyo3(signature = (body, *, now = None, received_ns = None))]
    fn bid<'py>(
        &self,
        py: Python<'py>,
        body: PyBackedBytes,
        now: Option<f64>,
        received_ns: Option<u64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let now = now.unwrap_or_else(wall_clock);
        let waited = match received_ns {
            Some(received) => Some(Duration::from_nanos(monotonic_ns(py)?.saturating_sub(received))),
            None => None,
        };
        // The response is written into this thread's kept buffer and copied once into the
        // `bytes` answer: no allocation and regrowth of a fresh vector per bid.
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            let bid = detached(py, || {
                scratch.out.clear();
                let outcome = with_arena(|arena| {
                    self.engine.bid(&body, now, waited, arena, &mut scratch.decision, &mut scratch.out)
                })?;
                Ok::<_, CoreError>(matches!(outcome, Outcome::Bid))
            })?;
            Ok(bid.then(|| PyBytes::new(py, &scratch.out)))
        })
    }

    /// `bid` for each body, in one native call with the GIL released throughout. An invalid
    /// body gives None here (counted as `invalid`); call `bid` on it to see the error.
    #[pyo3(signature = (bodies, *, now = None))]
    fn bid_many<'py>(
        &self,
        py: Python<'py>,
        bodies: Vec<PyBackedBytes>,
        now: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now.unwrap_or_else(wall_clock);
        // Every response goes into one buffer, each marked by its span: no vector allocated
        // and regrown per body.
        let (responses, spans) = detached(py, || {
            let mut responses = Vec::new();
            let mut spans = Vec::with_capacity(bodies.len());
            SCRATCH.with(|scratch| {
                let scratch = &mut scratch.borrow_mut().decision;
                for body in &bodies {
                    let start = responses.len();
                    let outcome = with_arena(|arena| self.engine.bid(body, now, None, arena, scratch, &mut responses));
                    if matches!(outcome, Ok(Outcome::Bid)) {
                        spans.push(Some(start..responses.len()));
                    } else {
                        responses.truncate(start);
                        spans.push(None);
                    }
                }
            });
            Ok::<_, CoreError>((responses, spans))
        })?;
        let items: Vec<Option<Bound<'py, PyBytes>>> =
            spans.into_iter().map(|span| span.map(|span| PyBytes::new(py, &responses[span]))).collect();
        PyList::new(py, items)
    }

    /// Why the engine bid or did not: per campaign the targeting rule that excluded it; per imp
    /// and campaign the rule that excluded it, or its features, scores and price arithmetic
    /// (micros); per imp the winner or the reason; and the response. Counts nothing. Raises
    /// `InvalidRequestError` for an invalid body. Releases the GIL.
    #[pyo3(signature = (body, *, now = None))]
    fn explain<'py>(&self, py: Python<'py>, body: PyBackedBytes, now: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
        let now = now.unwrap_or_else(wall_clock);
        let (trace, response) = detached(py, || with_arena(|arena| Ok(self.engine.explain(&body, now, arena)?)))?;
        explanation_dict(py, &trace, response.as_deref())
    }

    /// Requests, bids, imps bid on, and no-bids by reason since the engine was built.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.engine.snapshot();
        let d = PyDict::new(py);
        d.set_item("requests", s.requests)?;
        d.set_item("bids", s.bids)?;
        d.set_item("imp_bids", s.imp_bids)?;
        let reasons = PyDict::new(py);
        for (reason, n) in &s.no_bids {
            reasons.set_item(reason.as_str(), n)?;
        }
        d.set_item("no_bids", reasons)?;
        Ok(d)
    }

    /// Sets an account's pacing (what `bidcore.budget.Pacer` does off the hot path): a
    /// campaign's, or its share under an arm with a budget share (`campaign@experiment:arm`):
    /// the share of requests it enters and the multiplier of its value, in millionths. The next
    /// request of every thread reads them. Raises `ValueError` for an unknown account or
    /// out-of-range values (throttle above 1,000,000; multiplier 0 or above 100,000,000).
    #[pyo3(signature = (account, *, throttle_ppm, multiplier_ppm))]
    fn set_pacing(&self, account: &str, throttle_ppm: i64, multiplier_ppm: i64) -> PyResult<()> {
        // Any integer is taken and checked here, so a negative or huge one is a ValueError like
        // every other value out of range (not the OverflowError of a u32 conversion).
        let narrow = |v: i64, what: &str| {
            u32::try_from(v).map_err(|_| PyValueError::new_err(format!("{what} out of range: {v}")))
        };
        let (throttle, multiplier) = (narrow(throttle_ppm, "throttle_ppm")?, narrow(multiplier_ppm, "multiplier_ppm")?);
        self.engine.set_pacing(account, throttle, multiplier).map_err(PyValueError::new_err)
    }

    /// Every account's pacing, the campaigns' then the arms' shares: id -> (throttle ppm,
    /// multiplier ppm).
    fn pacing<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (id, throttle, multiplier) in self.engine.pacing() {
            d.set_item(id, (throttle, multiplier))?;
        }
        Ok(d)
    }

    /// Every experiment arm in config order (the order of `metrics()["arms"]`): experiment
    /// key, arm name, budget share (None when the arm has none).
    fn arms(&self) -> Vec<(String, String, Option<f64>)> {
        self.engine.arms().map(|(e, a, share)| (e.to_owned(), a.to_owned(), share)).collect()
    }

    /// What `bidcore.metrics` exports, counted natively since the engine was built: `requests`,
    /// `bids`, `imp_bids`, `no_bids` (every reason, zeros included); `campaigns`: per campaign
    /// id, `imp_bids` and `bid_micros` (bid prices summed, micros of the bidder's currency);
    /// `arms`: per experiment arm in config order, `experiment`, `arm`, `requests` (assigned to
    /// it), `bids` (requests bid on), `imp_bids` and `bid_micros`;
    /// `latency`: the native decision time as a histogram, `bounds_s` (upper bounds), `counts`
    /// per bucket (not cumulative; one more than the bounds, the last above the last bound),
    /// `sum_s` and `count`; `models`: per role, `model` (its name) and live histograms of its
    /// `scores` and of the `features` its artifact keeps reference histograms of, binned on
    /// the reference's edges (`edges`, `counts`, `missing`), so drift is one comparison.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.engine.snapshot();
        let d = self.counters(py)?;
        let campaigns = PyDict::new(py);
        for (id, (imp_bids, micros)) in self.engine.campaign_ids().zip(&s.campaigns) {
            let c = PyDict::new(py);
            c.set_item("imp_bids", imp_bids)?;
            c.set_item("bid_micros", micros)?;
            campaigns.set_item(id, c)?;
        }
        d.set_item("campaigns", campaigns)?;
        let arms = PyList::empty(py);
        for ((experiment, arm, _), [requests, bids, imp_bids, micros]) in self.engine.arms().zip(&s.arms) {
            let a = PyDict::new(py);
            a.set_item("experiment", experiment)?;
            a.set_item("arm", arm)?;
            a.set_item("requests", requests)?;
            a.set_item("bids", bids)?;
            a.set_item("imp_bids", imp_bids)?;
            a.set_item("bid_micros", micros)?;
            arms.append(a)?;
        }
        d.set_item("arms", arms)?;
        let latency = PyDict::new(py);
        latency.set_item("bounds_s", LATENCY_BOUNDS_NS.iter().map(|&ns| ns as f64 / 1e9).collect::<Vec<_>>())?;
        latency.set_item("counts", &s.latency_counts)?;
        latency.set_item("sum_s", s.latency_sum_ns as f64 / 1e9)?;
        latency.set_item("count", s.latency_counts.iter().sum::<u64>())?;
        d.set_item("latency", latency)?;
        let models = PyDict::new(py);
        for m in &s.monitors {
            let entry = PyDict::new(py);
            entry.set_item("model", &m.model)?;
            entry.set_item("scores", histogram_dict(py, &m.score)?)?;
            let features = PyDict::new(py);
            for (name, h) in &m.features {
                features.set_item(name, histogram_dict(py, h)?)?;
            }
            entry.set_item("features", features)?;
            models.set_item(m.role, entry)?;
        }
        d.set_item("models", models)?;
        Ok(d)
    }

    /// Every no-bid reason's name and OpenRTB `nbr` code, in tie-breaking order.
    #[staticmethod]
    fn reasons() -> Vec<(&'static str, i32)> {
        Reason::ALL.iter().map(|r| (r.as_str(), r.nbr())).collect()
    }
}

fn histogram_dict<'py>(py: Python<'py>, h: &HistogramSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("edges", &h.edges)?;
    d.set_item("counts", &h.counts)?;
    d.set_item("missing", h.missing)?;
    Ok(d)
}

/// The decision log's buffer (`bidcore.DecisionLog`): engines built with it push one record per
/// decision, never waiting (a full buffer drops and counts); a reader drains it.
#[pyclass(frozen, name = "DecisionLog", module = "bidcore._core")]
pub struct PyDecisionLog(Arc<DecisionLog>);

#[pymethods]
impl PyDecisionLog {
    #[new]
    #[pyo3(signature = (capacity = 65536))]
    fn new(capacity: usize) -> PyResult<Self> {
        DecisionLog::new(capacity).map(|l| PyDecisionLog(Arc::new(l))).map_err(PyValueError::new_err)
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Takes up to `max_records` records out, oldest first, each serialized on its own: a JSON
    /// object (`format="json"`) or a msgpack map (`"msgpack"`). Releases the GIL.
    #[pyo3(signature = (max_records = 4096, format = "json"))]
    fn drain<'py>(&self, py: Python<'py>, max_records: usize, format: &str) -> PyResult<Bound<'py, PyList>> {
        let format = Format::parse(format)
            .ok_or_else(|| PyValueError::new_err(format!("format must be 'json' or 'msgpack', not {format:?}")))?;
        let encoded = detached(py, || {
            Ok::<_, CoreError>(self.0.drain(max_records).iter().map(|r| serialize(r, format)).collect::<Vec<_>>())
        })?;
        PyList::new(py, encoded.iter().map(|b| PyBytes::new(py, b)))
    }

    /// Records logged, dropped (the buffer was full) and waiting to be drained.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.0.stats();
        let d = PyDict::new(py);
        d.set_item("logged", s.logged)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("pending", s.pending())?;
        Ok(d)
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
    let arms = PyDict::new(py);
    for (experiment, arm) in &t.arms {
        arms.set_item(experiment, arm)?;
    }
    d.set_item("arms", arms)?;
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
