//! A fixed-width set of campaign indices: the currency of the targeting index.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    pub fn empty(bits: usize) -> Self {
        Bitset { words: vec![0; bits.div_ceil(64)] }
    }

    pub fn full(bits: usize) -> Self {
        let mut set = Bitset::empty(bits);
        for i in 0..bits {
            set.insert(i);
        }
        set
    }

    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Becomes a copy of `other` without reallocating (the same width).
    pub fn copy_from(&mut self, other: &Bitset) {
        self.words.clear();
        self.words.extend_from_slice(&other.words);
    }

    pub fn and(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    pub fn and_not(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    pub fn or(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// The members in increasing order (config order).
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut a = Bitset::empty(130);
        for i in [0, 5, 64, 129] {
            a.insert(i);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 5, 64, 129]);
        let mut b = Bitset::empty(130);
        b.insert(5);
        b.insert(129);
        let mut c = a.clone();
        c.and(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![5, 129]);
        a.and_not(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 64]);
        a.or(&b);
        assert_eq!(a.iter().count(), 4);
        assert!(Bitset::full(130).contains(129) && !Bitset::full(130).contains(130));
    }
}
