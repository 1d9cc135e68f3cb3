//! Money as integer micros: exact arithmetic, and decimal text without float noise.

use std::fmt;

/// An amount in millionths of a currency unit (1 USD = 1_000_000 micros). CPM prices are micros
/// per thousand impressions, as OpenRTB's `price` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub i64);

impl Micros {
    pub const PER_UNIT: i64 = 1_000_000;
    pub const ZERO: Micros = Micros(0);

    /// Writes the amount as a JSON number in currency units: `1500000` becomes `1.5`, `1` becomes
    /// `0.000001`, `0` becomes `0`. No float is involved, so no `1.4999999999`.
    pub fn write_decimal(self, out: &mut Vec<u8>) {
        let mut buffer = itoa::Buffer::new();
        let value = i128::from(self.0);
        if value < 0 {
            out.push(b'-');
        }
        let magnitude = value.unsigned_abs();
        let per_unit = Self::PER_UNIT.unsigned_abs() as u128;
        out.extend_from_slice(buffer.format(magnitude / per_unit).as_bytes());
        let mut fraction = magnitude % per_unit;
        if fraction == 0 {
            return;
        }
        let mut digits = 6;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let text = buffer.format(fraction);
        out.extend(std::iter::repeat_n(b'0', digits - text.len()));
        out.extend_from_slice(text.as_bytes());
    }

    /// Parses a plain decimal (`"1.25"`, `"-0.000001"`, `"3"`); `None` if it is not one or has
    /// more than six decimals (which micros cannot hold exactly).
    pub fn parse_decimal(text: &str) -> Option<Micros> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 6 {
            return None;
        }
        if digits.contains('.') && fraction.is_empty() {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let mut micros = whole.checked_mul(Self::PER_UNIT)?;
        if !fraction.is_empty() {
            let scale = 10i64.pow(6 - fraction.len() as u32);
            micros = micros.checked_add(fraction.parse::<i64>().ok()? * scale)?;
        }
        Some(Micros(if negative { -micros } else { micros }))
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(24);
        self.write_decimal(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(m: i64) -> String {
        Micros(m).to_string()
    }

    #[test]
    fn writes_decimals_without_float_noise() {
        assert_eq!(text(0), "0");
        assert_eq!(text(1), "0.000001");
        assert_eq!(text(1_500_000), "1.5");
        assert_eq!(text(2_010_000), "2.01");
        assert_eq!(text(-2_500_000), "-2.5");
        assert_eq!(text(123_456_789), "123.456789");
        assert_eq!(text(i64::MIN), "-9223372036854.775808");
        assert_eq!(text(i64::MAX), "9223372036854.775807");
    }

    #[test]
    fn parses_plain_decimals_only() {
        assert_eq!(Micros::parse_decimal("1.25"), Some(Micros(1_250_000)));
        assert_eq!(Micros::parse_decimal("-0.000001"), Some(Micros(-1)));
        assert_eq!(Micros::parse_decimal("3"), Some(Micros(3_000_000)));
        for bad in ["", ".5", "1.", "1.0000001", "1e3", "+1", "1,5", "--1"] {
            assert_eq!(Micros::parse_decimal(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips_exactly(m in any::<i64>()) {
            let written = text(m);
            prop_assert_eq!(Micros::parse_decimal(&written), Some(Micros(m)));
        }

        #[test]
        fn decimal_text_is_the_closest_json_number(m in -10_000_000_000_000i64..10_000_000_000_000) {
            // A JSON reader turning the text into a double lands on the double nearest m / 1e6.
            let parsed: f64 = serde_json::from_str(&text(m)).expect("valid JSON number");
            prop_assert_eq!(parsed, m as f64 / 1e6);
        }
    }
}
