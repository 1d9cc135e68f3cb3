//! Experiment assignment's hashing: GrowthBook's, bit for bit, so every GrowthBook SDK places a
//! unit where bidcore does (`docs/experiments.md`; `bidcore.experiments.hashing` is the Python
//! reference the tests hold this to).
//!
//! FNV-1a 32 runs over the UTF-16 code units of the text, as the JavaScript SDK's `charCodeAt`
//! loop does: a character outside the Basic Multilingual Plane counts as its two surrogates.
//! A Rust `str` cannot hold a lone surrogate, and the request parser refuses one in a `\u`
//! escape, so the native side never meets one (the Python reference defines their hash).
//! Buckets stay integers: hash v2 gives `[0, 10000)`, v1 `[0, 1000)`, and ranges are compared
//! as integer bounds computed once from GrowthBook's float bounds (`integer_bound` in Python).

const OFFSET: u32 = 0x811C_9DC5;
const PRIME: u32 = 0x0100_0193;

/// GrowthBook's hash versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// `fnv(id + seed) % 1000`.
    V1,
    /// `fnv(str(fnv(seed + id))) % 10000`.
    V2,
}

impl HashVersion {
    pub fn parse(version: i64) -> Option<HashVersion> {
        match version {
            1 => Some(HashVersion::V1),
            2 => Some(HashVersion::V2),
            _ => None,
        }
    }

    /// How many buckets the version has.
    pub fn buckets(self) -> u32 {
        match self {
            HashVersion::V1 => 1000,
            HashVersion::V2 => 10_000,
        }
    }
}

/// FNV-1a 32 over UTF-16 code units, fed piece by piece: a state can be kept after a prefix
/// (a seed, a unit id) and continued with different suffixes, hashing the prefix once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(u32);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// Continues the hash over `text`'s UTF-16 code units.
    #[inline]
    pub fn text(self, text: &str) -> Fnv {
        // An ASCII byte is its own UTF-16 code unit, and ids are ASCII but for rare ones: the
        // bytes are checked a word at a time, then hashed with nothing else in the loop.
        if !has_high_byte(text.as_bytes()) {
            return Fnv(ascii_chain(self.0, text.as_bytes()));
        }
        let mut h = self.0;
        for unit in text.encode_utf16() {
            h = (h ^ u32::from(unit)).wrapping_mul(PRIME);
        }
        Fnv(h)
    }

    pub fn finish(self) -> u32 {
        self.0
    }
}

/// FNV-1a 32 continued over one fixed text (a seed, a namespace suffix) in one step instead of
/// one per code unit.
///
/// XOR with a code unit below 256 changes only a state's low byte, so each step is
/// `h * PRIME + e * PRIME`, where `e = (lo ^ c) - lo` (wrapping) depends on the low byte `lo`
/// alone; and the next low byte depends on `lo` and `c` alone, as a product's low byte depends
/// only on its factors' low bytes. Over a text of `m` such units, then, every `e` follows from
/// the starting low byte, and `fnv(h, text) = h * PRIME^m + D[h & 0xFF]` with `D` a table of
/// 256 values computed when the config is loaded. A text with a code unit of 256 or more (its
/// XOR reaches higher bits) is hashed unit by unit.
#[derive(Debug, Clone)]
pub enum Suffix {
    /// A text of code units below 256: `PRIME^m` and the table `D`.
    Table { power: u32, offsets: Box<[u32; 256]> },
    /// Any other text, hashed unit by unit.
    Units(String),
}

impl Suffix {
    pub fn new(text: &str) -> Suffix {
        if text.encode_utf16().any(|unit| unit >= 256) {
            return Suffix::Units(text.to_owned());
        }
        let power = text.encode_utf16().fold(1u32, |p, _| p.wrapping_mul(PRIME));
        let offsets = std::array::from_fn(|lo| {
            let lo = lo as u32;
            Fnv(lo).text(text).0.wrapping_sub(lo.wrapping_mul(power))
        });
        Suffix::Table { power, offsets: Box::new(offsets) }
    }

    /// `state.text(suffix)`.
    #[inline]
    pub fn after(&self, state: Fnv) -> Fnv {
        match self {
            Suffix::Table { power, offsets } => {
                Fnv(state.0.wrapping_mul(*power).wrapping_add(offsets[(state.0 & 0xFF) as usize]))
            }
            Suffix::Units(text) => state.text(text),
        }
    }
}

/// FNV-1a 32 continued from `h` over `bytes`, four steps per loop turn (the chain is the same;
/// the loop's own instructions are a quarter).
#[inline(always)]
fn ascii_chain(mut h: u32, bytes: &[u8]) -> u32 {
    let mut quads = bytes.chunks_exact(4);
    for q in &mut quads {
        h = step(step(step(step(h, q[0]), q[1]), q[2]), q[3]);
    }
    quads.remainder().iter().fold(h, |h, &b| step(h, b))
}

/// Whether a byte of `bytes` has its high bit set, read eight bytes at a time (the last word
/// overlapping the one before it), with no branch per byte: the standard library's check goes
/// byte by byte below 16 bytes and over the tail, and ids are 10 to 40 bytes.
#[inline(always)]
fn has_high_byte(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().fold(0, |acc, &b| acc | b) & 0x80 != 0;
    };
    let acc = bytes
        .chunks_exact(8)
        .filter_map(<[u8]>::first_chunk::<8>)
        .fold(u64::from_le_bytes(*last), |acc, word| acc | u64::from_le_bytes(*word));
    acc & HIGH != 0
}

/// FNV-1a 32 over the UTF-16 code units of the concatenation of `parts` (no concatenated copy).
pub fn fnv1a32(parts: &[&str]) -> u32 {
    parts.iter().fold(Fnv::default(), |h, part| h.text(part)).finish()
}

/// The integer bucket of `unit` under `seed`.
pub fn bucket(seed: &str, unit: &str, version: HashVersion) -> u32 {
    match version {
        HashVersion::V1 => fnv1a32(&[unit, seed]) % 1000,
        HashVersion::V2 => v2_bucket(Fnv::default().text(seed).text(unit)),
    }
}

/// Two-digit strings, `00` to `99`.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                            2021222324252627282930313233343536373839\
                            4041424344454647484950515253545556575859\
                            6061626364656667686970717273747576777879\
                            8081828384858687888990919293949596979899";

/// Hash v2's outer step: the bucket from the inner hash `fnv(seed + unit)`, hashed again as its
/// decimal digits (JavaScript's `String(n)` of a u32).
///
/// 98% of u32 values have nine or ten digits. For them the digits come out most significant
/// first, as the hash consumes them: `y = n * C` with `C = 2^57 / 10^8` rounded up holds
/// `n / 10^8` above bit 57 and the rest of `n` as a binary fraction below, each next pair of
/// digits one multiplication by 100 away. Every pair is exact: the rounding adds
/// `n * (C - 2^57 / 10^8) < 0.25 * 2^32` to a fraction whose next step up is `2^57 / 10^8`
/// (1.4e9), and both scale alike by each 100. So the hash chain starts after one
/// multiplication, where cutting `n` by 100 from the low end would make it wait for all four
/// divisions.
#[inline]
pub fn v2_bucket(inner: Fnv) -> u32 {
    const FRACTION: u64 = (1 << 57) - 1;
    let n = inner.finish();
    if n < 100_000_000 {
        return short_v2_bucket(n);
    }
    let pair = |p: u64| {
        let p = p as usize * 2;
        (PAIRS[p], PAIRS[p + 1])
    };
    let mut y = u64::from(n) * 1_441_151_881;
    // 1 to 42: one digit for a nine-digit `n`, whose string starts at the pair's second byte.
    let lead = y >> 57;
    let (tens, ones) = pair(lead);
    let h = if lead >= 10 { step(OFFSET, tens) } else { OFFSET };
    let mut h = step(h, ones);
    for _ in 0..4 {
        y = (y & FRACTION) * 100;
        let (tens, ones) = pair(y >> 57);
        h = step(step(h, tens), ones);
    }
    h % 10_000
}

/// [`v2_bucket`] of an inner hash below 10^8: its digits written from the low end into a stack
/// buffer, then hashed.
#[cold]
fn short_v2_bucket(mut n: u32) -> u32 {
    let mut digits = [0u8; 8];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    ascii_chain(OFFSET, &digits[start..]) % 10_000
}

/// One FNV-1a step over an ASCII byte (its own UTF-16 code unit).
#[inline(always)]
fn step(h: u32, byte: u8) -> u32 {
    (h ^ u32::from(byte)).wrapping_mul(PRIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a over UTF-16 code units, one step at a time: the definition.
    fn plain(text: &str) -> u32 {
        text.encode_utf16().fold(OFFSET, |h, unit| (h ^ u32::from(unit)).wrapping_mul(PRIME))
    }

    proptest::proptest! {
        #[test]
        fn text_and_v2_follow_the_definition(text in "\\PC{0,40}", ascii in "[ -~]{0,40}", inner in proptest::prelude::any::<u32>()) {
            proptest::prop_assert_eq!(Fnv::default().text(&text).finish(), plain(&text));
            proptest::prop_assert_eq!(Fnv::default().text(&ascii).finish(), plain(&ascii));
            proptest::prop_assert_eq!(has_high_byte(text.as_bytes()), !text.is_ascii());
            proptest::prop_assert!(!has_high_byte(ascii.as_bytes()));
            proptest::prop_assert_eq!(v2_bucket(Fnv(inner)), plain(&inner.to_string()) % 10_000);
            proptest::prop_assert_eq!(v2_bucket(Fnv(inner % 100_000_000)), plain(&(inner % 100_000_000).to_string()) % 10_000);
        }

        #[test]
        fn a_suffix_continues_any_state(state in proptest::prelude::any::<u32>(), latin in "[\\x00-\\u{ff}]{0,40}", text in "\\PC{0,20}") {
            for suffix in [latin.as_str(), text.as_str()] {
                let table = Suffix::new(suffix);
                proptest::prop_assert_eq!(table.after(Fnv(state)), Fnv(state).text(suffix));
                proptest::prop_assert_eq!(matches!(table, Suffix::Table { .. }), suffix.chars().all(|c| u32::from(c) < 256));
            }
        }
    }

    #[test]
    fn growthbook_values() {
        // From GrowthBook's cross-language cases (`hash`): seed, id, version, hash * buckets.
        assert_eq!(fnv1a32(&[""]), 2_166_136_261);
        assert_eq!(fnv1a32(&["a"]), 3_826_002_220);
        assert_eq!(bucket("seed", "a", HashVersion::V2), 505);
        // Split or whole, the same text hashes alike.
        assert_eq!(fnv1a32(&["se", "ed", "a"]), fnv1a32(&["seeda"]));
        // A character outside the BMP is two code units: U+1F600 is D83D DE00.
        let mut expected = OFFSET;
        for unit in [0xD83Du32, 0xDE00] {
            expected = (expected ^ unit).wrapping_mul(PRIME);
        }
        assert_eq!(fnv1a32(&["\u{1F600}"]), expected);
        assert_eq!(HashVersion::parse(3), None);
        // v2's outer step: the digits of the inner hash, as `str()` writes them: every digit
        // count, each side of every power of ten.
        let mut edges = vec![0u32, 7, 505, 99_999_999, 100_000_000, 999_999_999, 1_000_000_000, u32::MAX];
        for k in 1..10 {
            let p = 10u32.pow(k);
            edges.extend([p - 1, p, p + 1]);
        }
        for inner in edges {
            assert_eq!(v2_bucket(Fnv(inner)), plain(&inner.to_string()) % 10_000, "{inner}");
        }
    }
}
