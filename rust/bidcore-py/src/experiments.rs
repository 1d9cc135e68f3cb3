//! Experiment hashing for Python: the native twin of `bidcore.experiments.hashing.bucket`.

use bidcore_core::experiments::{bucket, HashVersion};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(experiment_bucket, m)?)?;
    Ok(())
}

/// The integer bucket of `unit` under `seed` with GrowthBook's hash `version` (1: `[0, 1000)`,
/// 2: `[0, 10000)`), as the engine computes it. Raises `ValueError` for another version and
/// `UnicodeEncodeError` for a str holding a lone surrogate (the request parser refuses those).
#[pyfunction]
fn experiment_bucket(seed: &str, unit: &str, version: i64) -> PyResult<u32> {
    let version = HashVersion::parse(version)
        .ok_or_else(|| PyValueError::new_err(format!("unknown hash version {version} (1 or 2)")))?;
    Ok(bucket(seed, unit, version))
}
