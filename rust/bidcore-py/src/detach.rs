//! The one way binding code runs core work: without the GIL, with panics caught.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bidcore_core::CoreError;
use pyo3::prelude::*;

use crate::errors::to_py_err;

/// Runs `work` with the GIL released so other Python threads run meanwhile, turns a panic into
/// `CoreError::Internal` (a panic never unwinds into Python, where it would be a `BaseException`
/// that ordinary handlers miss), and maps a core error to its Python exception.
pub fn detached<T: Send>(py: Python<'_>, work: impl Send + FnOnce() -> Result<T, CoreError>) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| Err(panic_to_error(panic))))
        .map_err(|err| to_py_err(py, err))
}

#[cold]
fn panic_to_error(panic: Box<dyn std::any::Any + Send>) -> CoreError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned());
    CoreError::Internal(format!("panic in the native core: {message}"))
}
