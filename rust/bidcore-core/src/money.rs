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

/// The least whole number of micros not below `x` currency units, in double arithmetic: a
/// request's floor (a JSON number) as micros, rounded up so a bid at it is never below the
/// floor. `None` for a floor no bid can meet: 10^12 units or more (the config caps amounts far
/// below), or not a non-negative number.
pub fn floor_micros(x: f64) -> Option<Micros> {
    if !(x.is_finite() && (0.0..1e12).contains(&x)) {
        return None;
    }
    // `x * 1e6` is within an ulp of the answer, so the search takes at most three steps.
    let mut m = (x * 1e6).floor() as i64 - 1;
    while (m as f64) / 1e6 < x {
        m += 1;
    }
    Some(Micros(m.max(0)))
}

/// Exchange rates as exact integers: billionths of the base currency per unit of each currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FxTable {
    nanos: Vec<([u8; 3], i64)>,
}

impl FxTable {
    /// `rates`: (code, base nanos per unit); the base itself must be among them (1e9).
    pub fn new(rates: impl IntoIterator<Item = (String, i64)>) -> Result<FxTable, String> {
        let mut nanos = Vec::new();
        for (code, rate) in rates {
            let key: [u8; 3] = code
                .to_ascii_uppercase()
                .as_bytes()
                .try_into()
                .map_err(|_| format!("fx: {code:?} is not a 3-letter currency code"))?;
            if rate <= 0 {
                return Err(format!("fx: the rate of {code} must be positive"));
            }
            nanos.push((key, rate));
        }
        Ok(FxTable { nanos })
    }

    /// The rate of `currency` (upper case, as the parser normalizes codes).
    pub fn rate(&self, currency: &str) -> Option<i64> {
        let key = currency.as_bytes();
        self.nanos.iter().find(|(code, _)| code.as_slice() == key).map(|&(_, rate)| rate)
    }

    /// The table's own copy of `currency`'s code, when it has a rate for it.
    pub fn code(&self, currency: &str) -> Option<&str> {
        let key = currency.as_bytes();
        self.nanos.iter().find(|(code, _)| code.as_slice() == key).and_then(|(code, _)| std::str::from_utf8(code).ok())
    }

    /// Whether amounts in `from` can be converted to `to`.
    pub fn convertible(&self, from: &str, to: &str) -> bool {
        from == to || (self.rate(from).is_some() && self.rate(to).is_some())
    }

    /// `m` in `from` as `to`, rounded up (floors: a converted floor is never below the true
    /// one). `None` when a rate is missing (zero, and the same currency, need none).
    pub fn convert_up(&self, m: Micros, from: &str, to: &str) -> Option<Micros> {
        if from == to || m.0 == 0 {
            return Some(m);
        }
        let (a, b) = (i128::from(self.rate(from)?), i128::from(self.rate(to)?));
        let scaled = i128::from(m.0) * a;
        Some(Micros(i64::try_from(scaled.div_euclid(b) + i128::from(scaled.rem_euclid(b) != 0)).ok()?))
    }

    /// `m` in `from` as `to`, rounded down (prices and caps: never more than allowed). `None`
    /// when a rate is missing (zero, and the same currency, need none).
    pub fn convert_down(&self, m: Micros, from: &str, to: &str) -> Option<Micros> {
        if from == to || m.0 == 0 {
            return Some(m);
        }
        let (a, b) = (i128::from(self.rate(from)?), i128::from(self.rate(to)?));
        Some(Micros(i64::try_from((i128::from(m.0) * a).div_euclid(b)).ok()?))
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

    #[test]
    fn floors_round_up_to_the_micro() {
        assert_eq!(floor_micros(0.29), Some(Micros(290_000)));
        assert_eq!(floor_micros(1.5), Some(Micros(1_500_000)));
        assert_eq!(floor_micros(0.1234561), Some(Micros(123_457)));
        assert_eq!(floor_micros(0.0), Some(Micros(0)));
        assert_eq!(floor_micros(1e-9), Some(Micros(1)));
        assert_eq!(floor_micros(-1.0), None);
        assert_eq!(floor_micros(f64::NAN), None);
        assert_eq!(floor_micros(1e12), None);
    }

    #[test]
    fn fx_converts_exactly_and_in_the_safe_direction() {
        let fx = FxTable::new([("USD".into(), 1_000_000_000), ("EUR".into(), 1_080_000_000)]).unwrap();
        // 0.29 EUR = 0.3132 USD exactly.
        assert_eq!(fx.convert_up(Micros(290_000), "EUR", "USD"), Some(Micros(313_200)));
        // 1 USD = 0.925925925... EUR: up 925_926, down 925_925.
        assert_eq!(fx.convert_up(Micros(1_000_000), "USD", "EUR"), Some(Micros(925_926)));
        assert_eq!(fx.convert_down(Micros(1_000_000), "USD", "EUR"), Some(Micros(925_925)));
        assert_eq!(fx.convert_up(Micros(5), "JPY", "USD"), None);
        assert_eq!(fx.convert_up(Micros(0), "JPY", "USD"), Some(Micros(0)));
        assert_eq!(fx.convert_down(Micros(5), "JPY", "JPY"), Some(Micros(5)));
    }

    proptest! {
        #[test]
        fn floor_micros_is_the_least_micro_at_or_above(x in 0.0f64..1e9) {
            let m = floor_micros(x).unwrap().0;
            prop_assert!((m as f64) / 1e6 >= x);
            prop_assert!(m == 0 || ((m - 1) as f64) / 1e6 < x);
        }

        #[test]
        fn conversions_bracket_the_exact_value(m in 0i64..1_000_000_000_000, a in 1i64..10_000_000_000, b in 1i64..10_000_000_000) {
            let fx = FxTable::new([("AAA".into(), a), ("BBB".into(), b)]).unwrap();
            let up = fx.convert_up(Micros(m), "AAA", "BBB").unwrap().0;
            let down = fx.convert_down(Micros(m), "AAA", "BBB").unwrap().0;
            let exact = i128::from(m) * i128::from(a);
            prop_assert!(i128::from(down) * i128::from(b) <= exact && exact < (i128::from(down) + 1) * i128::from(b));
            prop_assert!(i128::from(up) * i128::from(b) >= exact && exact > (i128::from(up) - 1) * i128::from(b));
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
