//! The one error type the core returns; the binding maps each variant to a Python exception.

use crate::model::ModelError;
use crate::openrtb::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The request broke a rule of OpenRTB or a configured limit.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    /// A model that cannot be read, or does not match what it claims to be.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A bidder configuration the engine cannot run.
    #[error("{0}")]
    Config(String),
    /// A bug in bidcore (a caught panic, a broken invariant), never the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}
