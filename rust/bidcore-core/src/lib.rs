//! bidcore's core: everything the bidder does per request, in Rust with no Python in sight.
//!
//! The `bidcore-py` crate wraps it for Python; this crate is usable (and tested, and benched)
//! on its own.

// `unsafe` is denied everywhere but in `model::compiled`, which loads and calls TL2cgen's shared
// libraries (the one fenced module STYLE.md allows).
#![deny(unsafe_code)]

pub mod engine;
pub mod error;
pub mod experiments;
pub mod features;
pub mod model;
pub mod money;
pub mod openrtb;

pub use error::CoreError;
