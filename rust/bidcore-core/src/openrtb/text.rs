//! `Str`: a string of the request view.

use std::fmt;
use std::ops::Deref;

/// A string field of a request view: a slice of the request body when the JSON string has no
/// escapes (nearly every string in real bid requests), else the unescaped text in the parse's
/// arena. Either way no heap allocation, and nothing to free.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Str<'a>(pub &'a str);

impl<'a> Str<'a> {
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str(s)
    }
}
