//! Why a model was refused.

use std::fmt;

/// A model that cannot be read or trusted, with the reason (and where, for text formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl ModelError {
    #[cold]
    pub fn new(reason: impl Into<String>) -> Self {
        ModelError(reason.into())
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}
