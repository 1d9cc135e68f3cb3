//! `bidcore._core`: the Python face of `bidcore-core`.
//!
//! A thin layer: argument conversion, the one GIL helper ([`detach`]), the error mapping
//! ([`errors`]) and one file per group of bound types.

use pyo3::prelude::*;

mod compiled;
mod detach;
mod engine;
mod errors;
mod experiments;
mod features;
mod ledger;
mod models;
mod parser;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    parser::register(m)?;
    models::register(m)?;
    features::register(m)?;
    compiled::register(m)?;
    engine::register(m)?;
    ledger::register(m)?;
    experiments::register(m)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    Ok(())
}

/// Panics inside the native core, for tests that check a panic becomes `InternalError` and never
/// unwinds into Python.
#[pyfunction]
fn _panic(py: Python<'_>, message: String) -> PyResult<()> {
    detach::detached(py, || -> Result<(), bidcore_core::CoreError> { panic!("{message}") })
}
