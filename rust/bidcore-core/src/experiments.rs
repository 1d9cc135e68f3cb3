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

/// FNV-1a 32 over the UTF-16 code units of the concatenation of `parts` (no concatenated copy).
pub fn fnv1a32(parts: &[&str]) -> u32 {
    let mut value = OFFSET;
    for part in parts {
        if part.is_ascii() {
            // An ASCII byte is its own UTF-16 code unit.
            for &b in part.as_bytes() {
                value = (value ^ u32::from(b)).wrapping_mul(PRIME);
            }
        } else {
            for unit in part.encode_utf16() {
                value = (value ^ u32::from(unit)).wrapping_mul(PRIME);
            }
        }
    }
    value
}

/// The integer bucket of `unit` under `seed`.
pub fn bucket(seed: &str, unit: &str, version: HashVersion) -> u32 {
    match version {
        HashVersion::V1 => fnv1a32(&[unit, seed]) % 1000,
        HashVersion::V2 => {
            let mut digits = itoa::Buffer::new();
            fnv1a32(&[digits.format(fnv1a32(&[seed, unit]))]) % 10_000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
