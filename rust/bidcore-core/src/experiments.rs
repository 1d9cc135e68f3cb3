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

    /// Two hashes continued over two texts in one loop: FNV-1a is a chain of dependent
    /// multiplications, so one hash runs at the multiplier's latency, and a second, independent
    /// chain interleaved with it costs almost nothing. The same as `(a.text(ta), b.text(tb))`.
    #[inline]
    pub fn pair(a: Fnv, ta: &str, b: Fnv, tb: &str) -> (Fnv, Fnv) {
        if has_high_byte(ta.as_bytes()) || has_high_byte(tb.as_bytes()) {
            return (a.text(ta), b.text(tb));
        }
        let (x, y) = (ta.as_bytes(), tb.as_bytes());
        let n = x.len().min(y.len());
        let (mut ha, mut hb) = (a.0, b.0);
        for (&p, &q) in x[..n].iter().zip(&y[..n]) {
            ha = (ha ^ u32::from(p)).wrapping_mul(PRIME);
            hb = (hb ^ u32::from(q)).wrapping_mul(PRIME);
        }
        // The rest of the longer text (ASCII, so its bytes are its code units).
        for &p in &x[n..] {
            ha = (ha ^ u32::from(p)).wrapping_mul(PRIME);
        }
        for &q in &y[n..] {
            hb = (hb ^ u32::from(q)).wrapping_mul(PRIME);
        }
        (Fnv(ha), Fnv(hb))
    }
}

/// FNV-1a 32 continued from `h` over `bytes`, four steps per loop turn (the chain is the same;
/// the loop's own instructions are a quarter).
#[inline(always)]
fn ascii_chain(mut h: u32, bytes: &[u8]) -> u32 {
    let step = |h: u32, b: u8| (h ^ u32::from(b)).wrapping_mul(PRIME);
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

/// Hash v2's outer step: the bucket from the inner hash `fnv(seed + unit)`, hashed again as its
/// decimal digits.
#[inline]
pub fn v2_bucket(inner: Fnv) -> u32 {
    // The decimal digits of the inner hash (JavaScript's `String(n)` of a u32), most
    // significant first, written two at a time into a stack buffer and hashed as ASCII.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    let mut n = inner.finish() as usize;
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    while n >= 100 {
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[2 * (n % 100)..2 * (n % 100) + 2]);
        n /= 100;
    }
    if n >= 10 {
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[2 * n..2 * n + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + n as u8;
    }
    ascii_chain(OFFSET, &digits[start..]) % 10_000
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
        // v2's outer step: the digits of the inner hash, as `str()` writes them.
        for inner in [0u32, 7, 10, 505, 4_294_967_295, 1_000_000_000] {
            assert_eq!(v2_bucket(Fnv(inner)), fnv1a32(&[&inner.to_string()]) % 10_000);
        }
        // Side by side or one after the other, the same hashes, ASCII or not, any lengths.
        for (ta, tb) in [("abc", "defgh"), ("", "x"), ("long unit id", ""), ("caf\u{e9}", "ab"), ("a", "\u{1F600}")] {
            let (a, b) = (Fnv::default().text("s1"), Fnv::default());
            assert_eq!(Fnv::pair(a, ta, b, tb), (a.text(ta), b.text(tb)));
        }
    }
}
