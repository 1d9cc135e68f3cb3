//! Body bytes in, validated and normalized request view out.

use bumpalo::Bump;

use super::error::{RequestError, Rule};
use super::json::{DecodeInPlace, Reader, ViewJson};
use super::limits::Limits;
use super::normalize::normalize;
use super::path::path_at_offset;
use super::request::BidRequest;
use super::validate::validate;

/// The request view the engine works on: borrowed from the body and the parse's arena.
pub type Request<'a> = BidRequest<'a>;

/// Parses bid requests under a fixed set of [`Limits`]. Cheap to build, immutable, shareable
/// across threads.
#[derive(Debug, Clone, Default)]
pub struct RequestParser {
    limits: Limits,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses, validates and normalizes one bid request. The view borrows from `body`, and its
    /// lists, nested objects and unescaped strings are allocated in `arena`: reset the arena
    /// between requests (a thread keeps one and reuses it) and a request costs no heap at all.
    ///
    /// One pass of bidcore's own reader: it enforces the depth and string limits as it goes, so
    /// it needs no scan of the body beforehand.
    pub fn parse<'a>(&self, body: &'a [u8], arena: &'a Bump) -> Result<Request<'a>, RequestError> {
        if body.len() > self.limits.max_body_bytes {
            return Err(body_too_large(body.len(), &self.limits));
        }
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(err) => return Err(invalid_utf8(body, err.valid_up_to())),
        };
        // Decoded in place into the one local that is returned: every move of the view (300
        // bytes) through a `Result` chain showed up as memcpy in profiles.
        let mut request = Request::default();
        let mut reader = Reader::new(text, &self.limits, arena);
        if let Err(err) = request.decode_in_place(&mut reader).and_then(|()| reader.finish()) {
            return Err(err.into_request_error());
        }
        validate(&request, &self.limits, arena)?;
        normalize(&mut request, arena);
        Ok(request)
    }
}

/// The view as compact JSON: what `bidcore.inspect_request` shows. Absent fields are left out;
/// kept `ext` values and native requests are written exactly as they arrived.
pub fn view_to_json(request: &BidRequest<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    request.write_json(&mut out);
    out
}

#[cold]
fn body_too_large(len: usize, limits: &Limits) -> RequestError {
    RequestError::new(
        Rule::BodySize,
        String::new(),
        format!("body is {len} bytes, more than the limit of {}", limits.max_body_bytes),
    )
}

#[cold]
fn invalid_utf8(body: &[u8], at: usize) -> RequestError {
    RequestError::new(Rule::Json, path_at_offset(body, at), format!("invalid UTF-8 at byte {at}"))
}
