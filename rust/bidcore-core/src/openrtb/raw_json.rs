//! `ext` objects kept whole, as JSON text, whichever parser read them.

use std::borrow::Cow;

/// A JSON value held without being interpreted: the production parser keeps a slice of the
/// request body; the benchmarked alternatives keep what their API offers.
pub trait RawJson {
    /// The value as JSON text.
    fn json_text(&self) -> Cow<'_, str>;
}

#[cfg(feature = "serde-backends")]
impl RawJson for sonic_rs::LazyValue<'_> {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_raw_str())
    }
}

#[cfg(feature = "serde-backends")]
impl RawJson for &serde_json::value::RawValue {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.get())
    }
}

#[cfg(feature = "serde-backends")]
impl RawJson for simd_json::BorrowedValue<'_> {
    fn json_text(&self) -> Cow<'_, str> {
        use simd_json::prelude::Writable;
        Cow::Owned(self.encode())
    }
}
