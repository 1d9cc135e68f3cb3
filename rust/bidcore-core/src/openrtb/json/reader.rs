//! A JSON cursor for reading bid requests in one pass.
//!
//! Why not a general parser: measured on the fixture corpus, serde-driven parsing with sonic-rs,
//! simd-json or serde_json spent most of its time in generic machinery (and a separate pass to
//! enforce limits), whichever backend filled the view. This cursor is driven directly by the
//! view's field tables (`view_object!`), enforces the depth and string limits as it goes, borrows
//! every string without escapes, and builds an error path only on the way out of a failure.
//!
//! The input is checked to be UTF-8 before the cursor sees it, so slicing the text at quote and
//! bracket positions (all ASCII) always yields valid `str`s.

use bumpalo::Bump;

use super::error::{DecodeError, Result};
use crate::openrtb::{Limits, Rule, Str};

/// The deepest nesting a `Limits` may ask for: skipping is recursive, and this bounds its stack.
pub const DEPTH_CAP: usize = 512;

#[derive(Clone)]
pub struct Reader<'a> {
    /// Where lists, nested objects and unescaped strings of the view go.
    arena: &'a Bump,
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    max_string_bytes: usize,
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The value of a plain decimal literal (`-12.345`, `7`) with at most 15 significant digits and
/// no exponent, or `None`. Such a mantissa and a power of ten up to 1e15 are both exact doubles,
/// so one division rounds correctly (Clinger's fast path); floors and coordinates nearly always
/// qualify, everything else goes to the standard library's parser.
#[inline(always)]
fn simple_decimal(literal: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, digits) = match literal.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.len() > 16 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut fraction_digits = None;
    for (i, &d) in digits.iter().enumerate() {
        match d {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(d - b'0'),
            b'.' => fraction_digits = Some(digits.len() - i - 1),
            _ => return None, // an exponent
        }
    }
    let significant = digits.len() - usize::from(fraction_digits.is_some());
    if significant > 15 {
        return None;
    }
    let value = mantissa as f64 / POWERS[fraction_digits.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

/// High bit set in each byte of `word` equal to `byte`; only the lowest flag is exact (borrows
/// can flag bytes above a match), which is all the scanners use.
#[inline(always)]
fn flag_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// High bit set in each byte of `word` below 0x20 (a control character); lowest flag exact.
#[inline(always)]
fn flag_control(word: u64) -> u64 {
    word.wrapping_sub(LOW_BITS * 0x20) & !word & HIGH_BITS
}

#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).and_then(|chunk| chunk.try_into().ok()).map(u64::from_le_bytes)
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str, limits: &Limits, arena: &'a Bump) -> Self {
        Reader {
            arena,
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            max_depth: limits.max_depth.min(DEPTH_CAP),
            max_string_bytes: limits.max_string_bytes,
        }
    }

    #[inline(always)]
    pub fn arena(&self) -> &'a Bump {
        self.arena
    }

    /// Checks that nothing but whitespace follows the value just read.
    pub fn finish(&mut self) -> Result<()> {
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(self.syntax("trailing characters after the JSON value"));
        }
        Ok(())
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            // One comparison settles it for every byte that can start a token: exchanges send
            // compact JSON, so this loop nearly always ends here on its first byte.
            if b > b' ' {
                break;
            }
            if b == b' ' || b == b'\n' || b == b'\r' || b == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline(always)]
    pub fn peek(&mut self) -> Result<u8> {
        self.skip_whitespace();
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.syntax("unexpected end of the body")),
        }
    }

    /// Consumes `null` if it comes next.
    #[inline(always)]
    pub fn null(&mut self) -> Result<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    #[inline(always)]
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.too_deep());
        }
        Ok(())
    }

    /// Reads an object, calling `member` with each key; `member` must consume the value.
    #[inline]
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, &str) -> Result<()>) -> Result<()> {
        let first = self.peek()?;
        if first != b'{' {
            return Err(self.type_error(first, "an object"));
        }
        self.pos += 1;
        self.enter()?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(self.syntax("expected a key string"));
            }
            let key = self.string_at_quote()?;
            if self.peek()? != b':' {
                return Err(self.syntax("expected ':' after a key"));
            }
            self.pos += 1;
            if let Err(err) = member(self, &key) {
                return Err(err.in_key(&key));
            }
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or '}' in an object")),
            }
        }
    }

    /// Reads an array, calling `element` for each element; `element` must consume it.
    #[inline]
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        let first = self.peek()?;
        if first != b'[' {
            return Err(self.type_error(first, "an array"));
        }
        self.pos += 1;
        self.enter()?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            if let Err(err) = element(self) {
                return Err(err.in_index(index));
            }
            index += 1;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or ']' in an array")),
            }
        }
    }

    /// Reads a string value, borrowed from the body unless it has escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Str<'a>> {
        let first = self.peek()?;
        if first != b'"' {
            return Err(self.type_error(first, "a string"));
        }
        self.string_at_quote()
    }

    /// Reads the string whose opening quote is at `pos`.
    #[inline(always)]
    fn string_at_quote(&mut self) -> Result<Str<'a>> {
        let start = self.pos + 1;
        let (end, escaped) = self.scan_string(start)?;
        self.pos = end + 1;
        if escaped {
            return self.unescape(start, end).map(Str);
        }
        Ok(Str(&self.text[start..end]))
    }

    /// Finds the closing quote of the string whose contents start at `start`, checking the
    /// length limit and rejecting raw control characters. Returns `(index of the quote, whether
    /// the contents hold escapes)`; escapes are checked, not decoded.
    #[inline(always)]
    fn scan_string(&self, start: usize) -> Result<(usize, bool)> {
        let bytes = self.bytes;
        let mut i = start;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while no quote, backslash or control character is in sight:
            // keys and short values are most of a bid request.
            while let Some(word) = word_at(bytes, i) {
                let quote = flag_equal(word, b'"');
                let flags = quote | flag_equal(word, b'\\') | flag_control(word);
                if flags == 0 {
                    i += 8;
                    continue;
                }
                i += (flags.trailing_zeros() / 8) as usize;
                // The first flagged byte is the closing quote: done, without reading it again.
                if quote & flags & flags.wrapping_neg() != 0 {
                    if i - start > self.max_string_bytes {
                        return Err(self.string_too_long(start, i - start));
                    }
                    return Ok((i, escaped));
                }
                break;
            }
            match bytes.get(i) {
                None => return Err(self.syntax_at(i, "unterminated string")),
                Some(b'"') => {
                    if i - start > self.max_string_bytes {
                        return Err(self.string_too_long(start, i - start));
                    }
                    return Ok((i, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    i = self.check_escape(i)?;
                }
                Some(&b) if b < 0x20 => return Err(self.syntax_at(i, "control character in a string")),
                Some(_) => i += 1,
            }
        }
    }

    /// Checks the escape starting at the backslash at `at`; returns the index after it.
    fn check_escape(&self, at: usize) -> Result<usize> {
        match self.bytes.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
            Some(b'u') => self.unicode_escape(at).map(|(_, next)| next),
            Some(_) => Err(self.syntax_at(at, "invalid escape in a string")),
            None => Err(self.syntax_at(at, "unterminated string")),
        }
    }

    /// Decodes `\uXXXX` (and the low half of a surrogate pair) at the backslash at `at`.
    /// Returns the character and the index after the escape. Lone surrogates are errors, as in
    /// serde_json and msgspec: they cannot be represented in UTF-8.
    fn unicode_escape(&self, at: usize) -> Result<(char, usize)> {
        let high = self.hex4(at + 2)?;
        if (0xDC00..0xE000).contains(&high) {
            return Err(self.syntax_at(at, "lone low surrogate in a \\u escape"));
        }
        if !(0xD800..0xDC00).contains(&high) {
            let c = char::from_u32(high).ok_or_else(|| self.syntax_at(at, "invalid \\u escape"))?;
            return Ok((c, at + 6));
        }
        if self.bytes.get(at + 6..at + 8) != Some(b"\\u") {
            return Err(self.syntax_at(at, "lone high surrogate in a \\u escape"));
        }
        let low = self.hex4(at + 8)?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(self.syntax_at(at, "lone high surrogate in a \\u escape"));
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        let c = char::from_u32(code).ok_or_else(|| self.syntax_at(at, "invalid \\u escape"))?;
        Ok((c, at + 12))
    }

    fn hex4(&self, at: usize) -> Result<u32> {
        let digits = self.bytes.get(at..at + 4).ok_or_else(|| self.syntax_at(at, "unterminated \\u escape"))?;
        digits.iter().try_fold(0u32, |acc, &d| {
            let value = (d as char).to_digit(16).ok_or_else(|| self.syntax_at(at, "invalid \\u escape"))?;
            Ok(acc * 16 + value)
        })
    }

    /// The contents of an escaped string (already checked by `scan_string`), decoded into the
    /// arena.
    #[cold]
    fn unescape(&self, start: usize, end: usize) -> Result<&'a str> {
        let mut out = bumpalo::collections::String::with_capacity_in(end - start, self.arena);
        let mut run = start;
        let mut i = start;
        while i < end {
            if self.bytes[i] != b'\\' {
                i += 1;
                continue;
            }
            out.push_str(&self.text[run..i]);
            let next = match self.bytes[i + 1] {
                b'u' => {
                    let (c, next) = self.unicode_escape(i)?;
                    out.push(c);
                    next
                }
                other => {
                    out.push(match other {
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => other as char, // '"', '\\' and '/' stand for themselves
                    });
                    i + 2
                }
            };
            i = next;
            run = next;
        }
        out.push_str(&self.text[run..end]);
        Ok(out.into_bump_str())
    }

    /// Reads a number into an `i32`. A fraction or exponent is a type error, as is a value out
    /// of range (OpenRTB's integers are 32-bit codes and counts).
    #[inline]
    pub fn i32(&mut self) -> Result<i32> {
        let first = self.peek()?;
        // Fast path: a short run of digits (a code, a size, a count) ending at a delimiter.
        // Anything else (sign, leading zero, fraction, exponent, nine digits or more) takes the
        // general path below, which also produces the errors.
        if first.is_ascii_digit() && first != b'0' {
            let bytes = self.bytes;
            let mut i = self.pos;
            let mut value = 0i32;
            while let Some(&d) = bytes.get(i) {
                if !d.is_ascii_digit() || i - self.pos == 8 {
                    break;
                }
                value = value * 10 + i32::from(d - b'0');
                i += 1;
            }
            if !matches!(bytes.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
                self.pos = i;
                return Ok(value);
            }
        }
        self.i32_general(first)
    }

    #[inline(never)]
    fn i32_general(&mut self, first: u8) -> Result<i32> {
        if first != b'-' && !first.is_ascii_digit() {
            return Err(self.type_error(first, "an integer"));
        }
        let start = self.pos;
        let integral = self.scan_number()?;
        let literal = &self.text[start..self.pos];
        if !integral {
            return Err(self.type_error_at(start, &format!("floating point `{literal}`"), "an integer"));
        }
        let (negative, digits) = match literal.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, literal),
        };
        // Ten digits or fewer cannot overflow i64; longer literals are out of range anyway.
        let magnitude = if digits.len() <= 10 {
            digits.bytes().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
        } else {
            i64::MAX
        };
        let value = if negative { -magnitude } else { magnitude };
        i32::try_from(value).map_err(|_| self.type_error_at(start, &format!("integer `{literal}`"), "a 32-bit integer"))
    }

    /// Reads a number into an `f64`, correctly rounded. A value beyond `f64`'s range is an error.
    #[inline]
    pub fn f64(&mut self) -> Result<f64> {
        let first = self.peek()?;
        if first != b'-' && !first.is_ascii_digit() {
            return Err(self.type_error(first, "a number"));
        }
        let start = self.pos;
        self.scan_number()?;
        let literal = &self.text[start..self.pos];
        if let Some(value) = simple_decimal(literal) {
            return Ok(value);
        }
        match literal.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(self.syntax_at(start, "number out of range")),
        }
    }

    /// Consumes one JSON number, checking its grammar; returns whether it is an integer
    /// (no fraction, no exponent).
    fn scan_number(&mut self) -> Result<bool> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(self.syntax_at(start, "invalid number")),
        }
        let mut integral = true;
        if bytes.get(i) == Some(&b'.') {
            integral = false;
            i += 1;
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(self.syntax_at(start, "invalid number"));
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            integral = false;
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(self.syntax_at(start, "invalid number"));
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.pos = i;
        Ok(integral)
    }

    /// Skips one value of any type, checking that it is well-formed JSON within the limits;
    /// returns its text.
    pub fn skip(&mut self) -> Result<&'a str> {
        let first = self.peek()?;
        let start = self.pos;
        self.skip_value(first)?;
        Ok(&self.text[start..self.pos])
    }

    /// Skips the value starting with `first` (the byte at `pos`). Unlike `object`/`array` it
    /// builds no keys: in dense requests most skipped bytes are `ext` objects.
    fn skip_value(&mut self, first: u8) -> Result<()> {
        match first {
            b'"' => {
                let (end, _) = self.scan_string(self.pos + 1)?;
                self.pos = end + 1;
            }
            b'{' => self.skip_container(b'}')?,
            b'[' => self.skip_container(b']')?,
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                let integral = self.scan_number()?;
                // A skipped number must still be representable (msgspec refuses `1e400` wherever
                // it is); integers under 300 digits always are.
                let literal = &self.text[start..self.pos];
                let surely_finite = integral && literal.len() < 300;
                if !surely_finite && !literal.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(self.syntax_at(start, "number out of range"));
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => return Err(self.syntax("expected a JSON value")),
        }
        Ok(())
    }

    /// Skips an object (`close` is `}`) or array (`]`) whose opening bracket is at `pos`.
    fn skip_container(&mut self, close: u8) -> Result<()> {
        self.pos += 1;
        self.enter()?;
        let is_object = close == b'}';
        if self.peek()? == close {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if is_object {
                if self.peek()? != b'"' {
                    return Err(self.syntax("expected a key string"));
                }
                let (end, _) = self.scan_string(self.pos + 1)?;
                self.pos = end + 1;
                if self.peek()? != b':' {
                    return Err(self.syntax("expected ':' after a key"));
                }
                self.pos += 1;
            }
            let first = self.peek()?;
            self.skip_value(first)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected ',' or a closing bracket")),
            }
        }
    }

    /// The JSON type a value starting with `first` has, for messages.
    fn type_name(first: u8) -> &'static str {
        match first {
            b'{' => "an object",
            b'[' => "an array",
            b'"' => "a string",
            b't' | b'f' => "a boolean",
            b'n' => "null",
            b'-' | b'0'..=b'9' => "a number",
            _ => "invalid JSON",
        }
    }

    /// The value at `pos` has the wrong type, if it is JSON at all: a value that does not parse
    /// (`tru`, `-{}`, an unterminated string) is malformed JSON, and reported as that.
    #[cold]
    fn type_error(&self, first: u8, expected: &str) -> Box<DecodeError> {
        let mut probe = self.clone();
        if let Err(malformed) = probe.skip() {
            return malformed;
        }
        self.type_error_at(self.pos, Self::type_name(first), expected)
    }

    #[cold]
    fn type_error_at(&self, at: usize, found: &str, expected: &str) -> Box<DecodeError> {
        DecodeError::new(Rule::Type, format!("expected {expected}, found {found} at byte {at}"))
    }

    #[cold]
    pub fn syntax(&self, what: &str) -> Box<DecodeError> {
        self.syntax_at(self.pos, what)
    }

    #[cold]
    fn syntax_at(&self, at: usize, what: &str) -> Box<DecodeError> {
        DecodeError::new(Rule::Json, format!("{what} at byte {at}"))
    }

    #[cold]
    fn too_deep(&self) -> Box<DecodeError> {
        DecodeError::new(Rule::Depth, format!("nesting is deeper than the limit of {}", self.max_depth))
    }

    #[cold]
    fn string_too_long(&self, start: usize, len: usize) -> Box<DecodeError> {
        DecodeError::new(
            Rule::StringLength,
            format!("string of {len} bytes at byte {start} is longer than the limit of {}", self.max_string_bytes),
        )
    }

    /// A field that appears twice in one object: which value would the bidder use? Rejected,
    /// as serde does, rather than guessing (first and last both have defenders).
    #[cold]
    pub fn duplicate(&self) -> Box<DecodeError> {
        DecodeError::new(Rule::Type, "the field appears more than once in its object".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read<'a, T>(text: &'a str, f: impl FnOnce(&mut Reader<'a>) -> Result<T>) -> std::result::Result<T, Rule> {
        let limits = Limits::default();
        let arena = Box::leak(Box::new(Bump::new()));
        let mut reader = Reader::new(text, &limits, arena);
        f(&mut reader).and_then(|v| reader.finish().map(|()| v)).map_err(|e| e.into_request_error().rule)
    }

    #[test]
    fn integers_take_the_fast_path_or_the_careful_one() {
        assert_eq!(read("300", Reader::i32), Ok(300));
        assert_eq!(read("0", Reader::i32), Ok(0));
        assert_eq!(read("-7", Reader::i32), Ok(-7));
        assert_eq!(read("99999999", Reader::i32), Ok(99_999_999));
        assert_eq!(read("2147483647", Reader::i32), Ok(i32::MAX));
        assert_eq!(read("-2147483648", Reader::i32), Ok(i32::MIN));
        assert_eq!(read("2147483648", Reader::i32), Err(Rule::Type));
        assert_eq!(read("123456789012345678901234567890", Reader::i32), Err(Rule::Type));
        assert_eq!(read("1.0", Reader::i32), Err(Rule::Type));
        assert_eq!(read("1e2", Reader::i32), Err(Rule::Type));
        assert_eq!(read("01", Reader::i32), Err(Rule::Json));
        assert_eq!(read("\"1\"", Reader::i32), Err(Rule::Type));
    }

    #[test]
    fn floats_are_correctly_rounded_and_finite() {
        assert_eq!(read("0.1", Reader::f64), Ok(0.1));
        assert_eq!(read("-12.345", Reader::f64), Ok(-12.345));
        assert_eq!(read("1e400", Reader::f64), Err(Rule::Json));
        assert_eq!(read("123456789012345678", Reader::f64), Ok(123_456_789_012_345_680.0));
        assert_eq!(read("2.2250738585072014e-308", Reader::f64), Ok(2.2250738585072014e-308));
    }

    proptest! {
        #[test]
        fn the_decimal_fast_path_agrees_with_the_standard_parser(
            whole in 0u64..10_000_000_000, fraction in 0u64..1_000_000, places in 0usize..7, negative: bool,
        ) {
            let text = match places {
                0 => format!("{}{whole}", if negative { "-" } else { "" }),
                _ => format!("{}{whole}.{:0places$}", if negative { "-" } else { "" }, fraction % 10u64.pow(places as u32)),
            };
            let expected: f64 = text.parse().unwrap();
            prop_assert_eq!(read(&text, Reader::f64).map(f64::to_bits), Ok(expected.to_bits()));
        }

        #[test]
        fn integers_agree_with_the_standard_parser(value: i64) {
            let text = value.to_string();
            let expected = i32::try_from(value).map_err(|_| Rule::Type);
            prop_assert_eq!(read(&text, Reader::i32), expected);
        }

        #[test]
        fn strings_round_trip_through_escapes(s in any::<String>()) {
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(read(&json, Reader::string).map(|v| v.to_string()), Ok(s));
        }
    }
}
