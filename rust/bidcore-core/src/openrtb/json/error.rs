//! Decoding errors that learn their JSON path on the way out.
//!
//! Nothing about the path is tracked while decoding succeeds: each enclosing object or array
//! adds its key or index as the error travels up, so the happy path pays nothing.

use crate::openrtb::path::push_key;
use crate::openrtb::{RequestError, Rule};

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug)]
pub struct DecodeError {
    rule: Rule,
    detail: String,
    /// Innermost first.
    path: Vec<Segment>,
}

/// Boxed, so a `Result` stays two words wide on the hot path.
pub type Result<T> = std::result::Result<T, Box<DecodeError>>;

impl DecodeError {
    #[cold]
    pub fn new(rule: Rule, detail: String) -> Box<Self> {
        Box::new(DecodeError { rule, detail, path: Vec::new() })
    }

    #[cold]
    pub fn in_key(mut self: Box<Self>, key: &str) -> Box<Self> {
        self.path.push(Segment::Key(key.to_owned()));
        self
    }

    #[cold]
    pub fn in_index(mut self: Box<Self>, index: usize) -> Box<Self> {
        self.path.push(Segment::Index(index));
        self
    }

    /// Takes the box as it comes out of a `Result` (`map_err(DecodeError::into_request_error)`).
    #[cold]
    #[allow(clippy::boxed_local)]
    pub fn into_request_error(self: Box<Self>) -> RequestError {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) => push_key(&mut path, key),
                Segment::Index(index) => {
                    path.push('[');
                    path.push_str(&index.to_string());
                    path.push(']');
                }
            }
        }
        RequestError::new(self.rule, path, self.detail)
    }
}
