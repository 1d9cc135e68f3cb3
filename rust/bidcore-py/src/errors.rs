//! Core errors as the exceptions of `bidcore.errors`.
//!
//! The exception classes are defined in Python (`InvalidRequestError` is both a `BidcoreError`
//! and a `ValueError`, which a class made in Rust cannot easily be) and looked up once.

use bidcore_core::openrtb::RequestError;
use bidcore_core::CoreError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

static INVALID_REQUEST: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INTERNAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const ERRORS_MODULE: &str = "bidcore.errors";

#[cold]
pub fn to_py_err(py: Python<'_>, err: CoreError) -> PyErr {
    let built = match err {
        CoreError::InvalidRequest(err) => invalid_request(py, &err),
        CoreError::Model(err) => {
            MODEL.import(py, ERRORS_MODULE, "ModelError").and_then(|cls| cls.call1((err.0,))).map(PyErr::from_value)
        }
        CoreError::Config(message) => {
            CONFIG.import(py, ERRORS_MODULE, "ConfigError").and_then(|cls| cls.call1((message,))).map(PyErr::from_value)
        }
        CoreError::Internal(message) => INTERNAL
            .import(py, ERRORS_MODULE, "InternalError")
            .and_then(|cls| cls.call1((message,)))
            .map(PyErr::from_value),
    };
    // Only if bidcore.errors itself cannot be imported: raise that ImportError instead.
    built.unwrap_or_else(|import_error| import_error)
}

fn invalid_request(py: Python<'_>, err: &RequestError) -> PyResult<PyErr> {
    let cls = INVALID_REQUEST.import(py, ERRORS_MODULE, "InvalidRequestError")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("path", bidcore_core::openrtb::display_path(&err.path))?;
    kwargs.set_item("rule", err.rule.as_str())?;
    Ok(PyErr::from_value(cls.call((err.to_string(),), Some(&kwargs))?))
}
