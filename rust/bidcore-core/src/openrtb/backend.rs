//! The JSON parsers a request view can be read with.
//!
//! All three read the same serde-derived view, so they are compared on equal terms with each
//! other and with bidcore's own reader (`benches/parse.rs`). The reader won by a wide margin and is
//! what bidcore ships; these are compiled only with the `serde-backends` feature, for the benches
//! and as independent oracles in the differential tests.

use serde::Deserialize;
use serde_json::error::Category;

use super::error::{RequestError, Rule};
use super::limits::{check_body, Limits};
use super::normalize::normalize;
use super::parse::invalid_utf8;
use super::raw_json::RawJson;
use super::request::BidRequest;
use super::validate::validate;

/// A JSON parser that can fill a [`BidRequest`] view from a body.
pub trait JsonBackend {
    /// How the backend holds an `ext` it keeps whole.
    type Raw<'a>: RawJson + Deserialize<'a>;

    /// The backend's name in benchmark output.
    const NAME: &'static str;

    /// Parses `body` (already checked to be UTF-8) into a view. `scratch` is for backends that parse in place (simd-json
    /// unescapes strings into its input), so they work on a copy and the view borrows that.
    fn parse<'a>(body: &'a str, scratch: &'a mut Vec<u8>) -> Result<BidRequest<'a, Self::Raw<'a>>, String>;
}

/// `sonic-rs`: SIMD parsing straight into serde types, borrowing from the immutable body.
pub struct Sonic;

impl Sonic {
    /// Parses without the scratch buffer the trait allows for: the view borrows `body` only.
    /// Takes `&str` because the caller has checked UTF-8 already (`from_slice` would again).
    #[inline]
    pub fn parse_borrowed(body: &str) -> Result<BidRequest<'_, sonic_rs::LazyValue<'_>>, String> {
        sonic_rs::from_str(body).map_err(|e| e.to_string())
    }
}

impl JsonBackend for Sonic {
    type Raw<'a> = sonic_rs::LazyValue<'a>;
    const NAME: &'static str = "sonic-rs";

    #[inline]
    fn parse<'a>(body: &'a str, _scratch: &'a mut Vec<u8>) -> Result<BidRequest<'a, Self::Raw<'a>>, String> {
        Sonic::parse_borrowed(body)
    }
}

/// `serde_json`: the reference serde parser, no SIMD.
pub struct SerdeJson;

impl JsonBackend for SerdeJson {
    type Raw<'a> = &'a serde_json::value::RawValue;
    const NAME: &'static str = "serde_json";

    #[inline]
    fn parse<'a>(body: &'a str, _scratch: &'a mut Vec<u8>) -> Result<BidRequest<'a, Self::Raw<'a>>, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }
}

/// `simd-json`: the Rust port of simdjson (stage 1 finds structure with SIMD, stage 2 fills
/// serde types). It parses in place, so it needs a mutable copy of the body.
pub struct SimdJson;

thread_local! {
    static SIMD_JSON_BUFFERS: std::cell::RefCell<simd_json::Buffers> =
        std::cell::RefCell::new(simd_json::Buffers::default());
}

impl JsonBackend for SimdJson {
    type Raw<'a> = simd_json::BorrowedValue<'a>;
    const NAME: &'static str = "simd-json";

    #[inline]
    fn parse<'a>(body: &'a str, scratch: &'a mut Vec<u8>) -> Result<BidRequest<'a, Self::Raw<'a>>, String> {
        scratch.clear();
        scratch.extend_from_slice(body.as_bytes());
        SIMD_JSON_BUFFERS.with(|buffers| {
            simd_json::serde::from_slice_with_buffers(scratch.as_mut_slice(), &mut buffers.borrow_mut())
                .map_err(|e| e.to_string())
        })
    }
}

/// The same pipeline with one of the serde backends: a limits scan, UTF-8, parse, validate,
/// normalize. For the benches and the differential tests; production uses [`RequestParser::parse`].
#[inline]
pub fn parse_with<'a, B: JsonBackend>(
    body: &'a [u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
) -> Result<BidRequest<'a, B::Raw<'a>>, RequestError> {
    pipeline(body, limits, |text| B::parse(text, scratch))
}

#[inline(always)]
fn pipeline<'a, J: RawJson>(
    body: &'a [u8],
    limits: &Limits,
    parse: impl FnOnce(&'a str) -> Result<BidRequest<'a, J>, String>,
) -> Result<BidRequest<'a, J>, RequestError> {
    check_body(body, limits)?;
    // JSON is UTF-8. Checked once for the whole body, so no string the view hands out (kept
    // `ext` slices included) can hold invalid bytes, whatever a backend checks on its own.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(err) => return Err(invalid_utf8(body, err.valid_up_to())),
    };
    let mut request = match parse(text) {
        Ok(request) => request,
        Err(message) => return Err(describe_parse_error(body, message)),
    };
    validate(&request, limits)?;
    normalize(&mut request);
    Ok(request)
}

/// Explains a serde backend's parse failure with the path where it happened: the body is parsed
/// again with serde_json under `serde_path_to_error`, which tracks the path as it goes.
#[cold]
#[inline(never)]
fn describe_parse_error(body: &[u8], backend_message: String) -> RequestError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let outcome: Result<BidRequest<'_, &serde_json::value::RawValue>, _> =
        serde_path_to_error::deserialize(&mut deserializer);
    match outcome {
        Err(err) => {
            let path = match err.path().to_string() {
                root if root == "." => String::new(),
                path => path,
            };
            let inner = err.into_inner();
            let rule = match inner.classify() {
                Category::Data => Rule::Type,
                Category::Syntax | Category::Eof | Category::Io => Rule::Json,
            };
            RequestError::new(rule, path, inner.to_string())
        }
        Ok(_) => match deserializer.end() {
            Err(trailing) => RequestError::new(Rule::Json, String::new(), trailing.to_string()),
            // The reference parser accepts what the fast one refused: report the fast one's words.
            Ok(()) => RequestError::new(Rule::Json, String::new(), backend_message),
        },
    }
}
