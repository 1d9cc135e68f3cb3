//! Why a request was rejected: a rule, the JSON path where it broke, and the detail.

use std::fmt;

use super::path;

/// The rule a rejected request broke. Stable names: they label metrics and show in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Not JSON (syntax error, truncated body, invalid UTF-8).
    Json,
    /// A field the bidder reads holds the wrong JSON type or an out-of-range number.
    Type,
    /// A required field is missing or empty.
    Required,
    /// Two impressions share an id.
    DuplicateImp,
    /// An impression offers none of banner, video, audio, native.
    NoMedia,
    /// More than one of `site`, `app`, `dooh`: a request comes from one channel.
    Channel,
    /// Two assets of a Native request share an id.
    DuplicateAsset,
    /// A Native asset carries none, or more than one, of title, img, video, data.
    NativeAsset,
    /// A floor is negative or not finite.
    Floor,
    /// A currency code is not three letters.
    Currency,
    /// The body is larger than `Limits::max_body_bytes`.
    BodySize,
    /// Nesting deeper than `Limits::max_depth`.
    Depth,
    /// More impressions than `Limits::max_imps`.
    ImpCount,
    /// A string longer than `Limits::max_string_bytes`.
    StringLength,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::Json,
        Rule::Type,
        Rule::Required,
        Rule::DuplicateImp,
        Rule::NoMedia,
        Rule::Channel,
        Rule::DuplicateAsset,
        Rule::NativeAsset,
        Rule::Floor,
        Rule::Currency,
        Rule::BodySize,
        Rule::Depth,
        Rule::ImpCount,
        Rule::StringLength,
    ];

    /// Position in [`Rule::ALL`], for arrays indexed by rule.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Json => "json",
            Rule::Type => "type",
            Rule::Required => "required",
            Rule::DuplicateImp => "duplicate_imp",
            Rule::NoMedia => "no_media",
            Rule::Channel => "channel",
            Rule::DuplicateAsset => "duplicate_asset",
            Rule::NativeAsset => "native_asset",
            Rule::Floor => "floor",
            Rule::Currency => "currency",
            Rule::BodySize => "body_size",
            Rule::Depth => "depth",
            Rule::ImpCount => "imp_count",
            Rule::StringLength => "string_length",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected request: which rule, where (`imp[0].bidfloor`; empty for the whole body), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub rule: Rule,
    pub path: String,
    pub detail: String,
}

impl RequestError {
    #[cold]
    pub fn new(rule: Rule, path: String, detail: String) -> Self {
        RequestError { rule, path, detail }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", path::display(&self.path), self.detail, self.rule)
    }
}

impl std::error::Error for RequestError {}

impl AsRef<Rule> for RequestError {
    fn as_ref(&self) -> &Rule {
        &self.rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_sits_at_its_index_with_a_unique_name() {
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(rule.index(), i);
        }
        let names: std::collections::HashSet<_> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rule::ALL.len());
    }
}
