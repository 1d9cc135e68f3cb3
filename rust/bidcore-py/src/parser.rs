//! `Limits` and `RequestParser`: the native OpenRTB parser for Python.

use std::cell::RefCell;

use bidcore_core::openrtb::json::DEPTH_CAP;
use bidcore_core::openrtb::{view_to_json, Limits, ParseCounters, RequestParser};
use bumpalo::Bump;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use crate::detach::detached;

thread_local! {
    /// Each thread's arena for request views: reset before every parse, so a request costs no
    /// heap allocation once the arena has grown to fit the largest view the thread has seen.
    static ARENA: RefCell<Bump> = RefCell::new(Bump::new());
}

/// An arena that grew past this (a huge request) is dropped after use rather than kept.
const ARENA_KEEP_BYTES: usize = 1 << 20;

/// Runs `work` with this thread's arena, freshly reset.
pub(crate) fn with_arena<T>(work: impl FnOnce(&Bump) -> T) -> T {
    ARENA.with(|cell| {
        let mut arena = cell.borrow_mut();
        arena.reset();
        let result = work(&arena);
        if arena.allocated_bytes() > ARENA_KEEP_BYTES {
            *arena = Bump::new();
        }
        result
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLimits>()?;
    m.add_class::<PyRequestParser>()?;
    Ok(())
}

/// Limits on what a bid request may contain; the defaults sit well above real traffic.
#[pyclass(frozen, eq, name = "Limits", module = "bidcore._core")]
#[derive(Clone, PartialEq)]
pub struct PyLimits(pub Limits);

#[pymethods]
impl PyLimits {
    /// Every limit is a count of bytes, levels or imps, so negative values are refused, and
    /// `max_depth` may not exceed 512: deeper JSON is not a bid request, and the bound keeps
    /// skipping unknown values within a modest stack. Both raise `ValueError`.
    #[new]
    #[pyo3(
        signature = (
            *,
            max_body_bytes = Limits::DEFAULT.max_body_bytes as i64,
            max_depth = Limits::DEFAULT.max_depth as i64,
            max_imps = Limits::DEFAULT.max_imps as i64,
            max_string_bytes = Limits::DEFAULT.max_string_bytes as i64,
        ),
        text_signature = "(*, max_body_bytes=262144, max_depth=32, max_imps=64, max_string_bytes=65536)"
    )]
    fn new(max_body_bytes: i64, max_depth: i64, max_imps: i64, max_string_bytes: i64) -> PyResult<Self> {
        let count = |name: &str, value: i64| {
            usize::try_from(value).map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {value}")))
        };
        let limits = Limits {
            max_body_bytes: count("max_body_bytes", max_body_bytes)?,
            max_depth: count("max_depth", max_depth)?,
            max_imps: count("max_imps", max_imps)?,
            max_string_bytes: count("max_string_bytes", max_string_bytes)?,
        };
        if limits.max_depth > DEPTH_CAP {
            return Err(PyValueError::new_err(format!("max_depth is at most {DEPTH_CAP}, got {max_depth}")));
        }
        Ok(PyLimits(limits))
    }

    #[getter]
    fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    #[getter]
    fn max_depth(&self) -> usize {
        self.0.max_depth
    }

    #[getter]
    fn max_imps(&self) -> usize {
        self.0.max_imps
    }

    #[getter]
    fn max_string_bytes(&self) -> usize {
        self.0.max_string_bytes
    }

    fn __repr__(&self) -> String {
        let l = &self.0;
        format!(
            "Limits(max_body_bytes={}, max_depth={}, max_imps={}, max_string_bytes={})",
            l.max_body_bytes, l.max_depth, l.max_imps, l.max_string_bytes
        )
    }
}

/// Parses and validates OpenRTB 2.5/2.6 bid requests natively. Build once, call per request;
/// safe to share between threads. Counts every outcome by rule.
#[pyclass(frozen, name = "RequestParser", module = "bidcore._core")]
pub struct PyRequestParser {
    parser: RequestParser,
    counters: ParseCounters,
}

#[pymethods]
impl PyRequestParser {
    #[new]
    #[pyo3(signature = (limits = None))]
    fn new(limits: Option<Bound<'_, PyLimits>>) -> Self {
        let limits = limits.map(|l| l.get().0).unwrap_or_default();
        PyRequestParser { parser: RequestParser::new(limits), counters: ParseCounters::default() }
    }

    #[getter]
    fn limits(&self) -> PyLimits {
        PyLimits(*self.parser.limits())
    }

    /// Parses and validates `body`; returns None or raises `InvalidRequestError`.
    /// Releases the GIL while parsing.
    fn validate(&self, py: Python<'_>, body: PyBackedBytes) -> PyResult<()> {
        detached(py, || {
            let outcome = with_arena(|arena| self.parser.parse(&body, arena).map(drop));
            self.counters.record(&outcome);
            Ok(outcome?)
        })
    }

    /// The normalized view of `body` as compact JSON bytes (what the engine sees), or raises
    /// `InvalidRequestError`. Releases the GIL while parsing.
    fn inspect_json<'py>(&self, py: Python<'py>, body: PyBackedBytes) -> PyResult<Bound<'py, PyBytes>> {
        let json = detached(py, || {
            with_arena(|arena| {
                let outcome = self.parser.parse(&body, arena);
                self.counters.record(&outcome);
                Ok(view_to_json(&outcome?))
            })
        })?;
        Ok(PyBytes::new(py, &json))
    }

    /// Requests accepted so far, and rejected ones by rule (every rule listed, zeros included).
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = PyDict::new(py);
        counts.set_item("accepted", self.counters.accepted())?;
        let rejected = PyDict::new(py);
        for (rule, n) in self.counters.rejected() {
            rejected.set_item(rule.as_str(), n)?;
        }
        counts.set_item("rejected", rejected)?;
        Ok(counts)
    }
}
