//! Size limits on a request body.
//!
//! They bound the work an adversarial body can cost: the body size up front, nesting depth and
//! string lengths by the reader as it goes (also in values it skips), imps by validation.

/// Limits on what a request may contain. Every limit protects the hot path from a body that would
/// cost far more than a real bid request; the defaults sit well above anything real exchanges send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting of objects and arrays; the request object itself is depth 1.
    pub max_depth: usize,
    /// Most impressions in one request.
    pub max_imps: usize,
    /// Longest string (keys included), in bytes as written in the body.
    pub max_string_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits =
        Limits { max_body_bytes: 256 * 1024, max_depth: 32, max_imps: 64, max_string_bytes: 64 * 1024 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
