//! Size limits on a request body, checked before the parser sees it.
//!
//! The parser skips what it does not read without storing it, so the only way to bound the work
//! an adversarial body costs (deep nesting in an unknown field, a megabyte string) is to look at
//! the bytes first. One linear pass checks depth and string lengths; string interiors are skipped
//! eight bytes at a time, so the pass costs a fraction of the parse.

use super::error::{RequestError, Rule};
use super::path::path_at_offset;

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

/// Checks body size, nesting depth and string lengths in one pass over the bytes.
///
/// Malformed JSON is not this function's business: it stops judging where the JSON stops making
/// sense (an unterminated string) and lets the parser report the syntax error.
pub fn check_body(body: &[u8], limits: &Limits) -> Result<(), RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(body_too_large(body.len(), limits));
    }
    // No string can be longer than the body: real requests skip the length arithmetic.
    let check_strings = body.len() > limits.max_string_bytes;
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let start = i + 1;
                let Some(end) = string_end(body, start) else {
                    return Ok(());
                };
                if check_strings && end - start > limits.max_string_bytes {
                    return Err(string_too_long(body, i, end - start, limits));
                }
                i = end + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(too_deep(body, i, limits));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Sets the high bit of each byte of `word` equal to `byte`. Bytes above the first match may be
/// flagged falsely (borrows propagate upwards), so only the lowest flag is to be trusted.
#[inline(always)]
fn flag_bytes(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Index of the quote closing the string whose contents start at `from`, or `None` if the body
/// ends first. Reads eight bytes at a time: most strings in a bid request are keys and short
/// values, too short for a call into `memchr` to pay off.
#[inline]
fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = body.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let flags = flag_bytes(word, b'"') | flag_bytes(word, b'\\');
        if flags == 0 {
            from += 8;
            continue;
        }
        let at = from + (flags.trailing_zeros() / 8) as usize;
        if body[at] == b'"' {
            return Some(at);
        }
        from = at + 2; // an escape: skip the backslash and the character it escapes
    }
    while from < body.len() {
        match body[from] {
            b'"' => return Some(from),
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
    None
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
fn string_too_long(body: &[u8], at: usize, len: usize, limits: &Limits) -> RequestError {
    RequestError::new(
        Rule::StringLength,
        path_at_offset(body, at),
        format!("string of {len} bytes is longer than the limit of {}", limits.max_string_bytes),
    )
}

#[cold]
fn too_deep(body: &[u8], at: usize, limits: &Limits) -> RequestError {
    RequestError::new(
        Rule::Depth,
        path_at_offset(body, at),
        format!("nesting is deeper than the limit of {}", limits.max_depth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_body_bytes: 200, max_depth: 3, max_imps: 4, max_string_bytes: 5 }
    }

    #[test]
    fn accepts_a_body_within_every_limit() {
        assert!(check_body(br#"{"id":"abc","imp":[{"id":"1"}]}"#, &limits()).is_ok());
    }

    #[test]
    fn rejects_a_body_over_the_size_limit() {
        let body = vec![b' '; 201];
        let err = check_body(&body, &limits()).unwrap_err();
        assert_eq!(err.rule, Rule::BodySize);
    }

    #[test]
    fn rejects_deep_nesting_and_names_where() {
        let err = check_body(br#"{"imp":[{"ext":{"a":1}}]}"#, &limits()).unwrap_err();
        assert_eq!(err.rule, Rule::Depth);
        assert_eq!(err.path, "imp[0].ext");
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(check_body(br#"{"a":"[[[[","b":[["{{"]]}"#, &limits()).is_ok());
    }

    #[test]
    fn rejects_a_long_string_and_names_where() {
        let err = check_body(br#"{"imp":[{"id":"1"},{"id":"123456"}]}"#, &limits()).unwrap_err();
        assert_eq!(err.rule, Rule::StringLength);
        assert_eq!(err.path, "imp[1].id");
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        // 5 bytes as written: a \" b c -> the closing quote is the last one
        assert!(check_body(br#"{"k":"a\"bc"}"#, &limits()).is_ok());
        let err = check_body(br#"{"k":"a\"bcd"}"#, &limits()).unwrap_err();
        assert_eq!(err.rule, Rule::StringLength);
    }

    /// The obvious byte-at-a-time scan: the oracle for the word-at-a-time one.
    fn reference(body: &[u8], limits: &Limits) -> Result<(), Rule> {
        let (mut depth, mut i) = (0usize, 0usize);
        while i < body.len() {
            match body[i] {
                b'"' => {
                    let mut j = i + 1;
                    loop {
                        match body.get(j) {
                            None => return Ok(()),
                            Some(b'"') => break,
                            Some(b'\\') => j += 2,
                            Some(_) => j += 1,
                        }
                    }
                    if j - i - 1 > limits.max_string_bytes {
                        return Err(Rule::StringLength);
                    }
                    i = j + 1;
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > limits.max_depth {
                        return Err(Rule::Depth);
                    }
                    i += 1;
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_byte_at_a_time_scan(
            body in proptest::collection::vec(proptest::sample::select(b"{}[]\"\\ax:,".to_vec()), 0..300),
            max_depth in 1usize..8,
            max_string_bytes in 0usize..40,
        ) {
            let limits = Limits { max_body_bytes: 1000, max_depth, max_imps: 1, max_string_bytes };
            proptest::prop_assert_eq!(check_body(&body, &limits).map_err(|e| e.rule), reference(&body, &limits));
        }
    }

    #[test]
    fn leaves_unterminated_strings_to_the_parser() {
        assert!(check_body(br#"{"k":"abc"#, &limits()).is_ok());
        assert!(check_body(br#"{"k":"ab\"#, &limits()).is_ok());
    }
}
