//! QuickScorer: an ensemble scored feature by feature instead of node by node.
//!
//! Following Lucchese et al., "QuickScorer" (SIGIR 2015): a tree's leaves are numbered left to
//! right and a row keeps one bit per leaf, all set at first. A split the row does *not* take to
//! the left (a "false" split) rules out every leaf of its left subtree, so its precomputed mask
//! clears them. Once every false split of every tree has been applied, the exit leaf of each tree
//! is the lowest bit still set. The false splits are found per feature without walking trees:
//!
//! * numerical splits of a feature sit in one array sorted by threshold, so the false ones for a
//!   value `x` (`x > t` under LightGBM's `x <= t`) are a prefix, scanned until the first
//!   threshold at or above `x`;
//! * for a categorical feature the false splits depend only on the category, so each category
//!   (and "no category": NaN, negative, never seen in a split) has its list precomputed, one
//!   combined mask per tree;
//! * a NaN value's effect is fixed, so it is one precomputed list too; zero-as-missing splits get
//!   their own sorted array and a list for zero-like values.
//!
//! Nothing here branches on which way a split goes, so the cost is no longer mispredicted
//! branches and a chain of dependent loads per node, but short sequential scans. It needs at most
//! 64 leaves per tree (one `u64` of leaf bits); larger trees use the node walker.
//!
//! Trees are still added in model order once each exit leaf is known, so the margins are
//! bit-for-bit those of the node walker and of LightGBM.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::ensemble::{Comparison, MissingType, Split, ZERO_THRESHOLD};

/// Trees with more leaves than this are scored by the node walker.
pub(super) const MAX_LEAVES: usize = 64;

/// Precomputed categorical lists above this many entries (10 MiB) make the model score with the
/// node walker instead: the lists would no longer stay in cache.
const MAX_CATEGORY_ENTRIES: usize = 1 << 20;

/// A tree's split as QuickScorer needs it: which leaves its left subtree holds.
struct FalseMask {
    tree: u16,
    /// Clears the split's left-subtree leaves.
    mask: u64,
}

/// Where each of one feature's lists lies in the shared arrays.
#[derive(Debug, Clone, PartialEq)]
struct FeatureLists {
    feature: u32,
    /// Which lists the feature has, so the common kinds skip the tests for the others.
    kind: FeatureKind,
    /// Numerical splits whose missing type is None or NaN, sorted by threshold.
    compare: (u32, u32),
    /// When the `compare` splits use few distinct thresholds many times over: those thresholds
    /// (in `bin_thresholds`) and, for each, the combined list of every split at or below it
    /// (`bin_lists`), so a value costs one update per tree instead of one per split.
    bins: (u32, u32),
    /// Zero-as-missing numerical splits, sorted by threshold (skipped for zero-like values).
    compare_zero: (u32, u32),
    /// The false splits for a NaN value (all of them are fixed), per tree combined.
    nan: (u32, u32),
    /// The zero-as-missing splits whose default is right, for zero-like values.
    zero: (u32, u32),
    /// Categories `0..categories` have their lists at `category_offsets[category_start + c]`.
    categories: u32,
    category_start: u32,
    /// The false splits for a value in no split's category set: every categorical split.
    no_category: (u32, u32),
    /// The feature's splits as a dense table, when the model has one: its index in
    /// `Quick::dense` (see [`Dense`]).
    dense: Option<u32>,
}

/// One feature's splits as a table with a row per class of values: a row holds, for each word
/// of leaf bits in the chunks it covers, the combined mask of every split of the feature that
/// a value of the class does not send left (all ones for a tree with none). Applying the
/// feature is then one row, ANDed into the leaf bits with no branch on the value: QuickScorer's
/// lists cost a mispredicted loop exit or two per feature, half a small model's time.
///
/// Classes: 0 is NaN; a numerical feature's value is class `1 + k`, `k` the number of its
/// distinct thresholds the value lies above (see [`Search`]); a categorical feature's
/// category `c` is class `1 + c`, and a value in no split's category set is `1 + categories`.
///
/// It holds everything a row's dense pass needs of the feature, so that the pass reads a short
/// array of these and not the feature's lists.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Dense {
    /// The feature's value in a row: `row[column]`.
    column: u32,
    /// How a value's class is found.
    search: Search,
    /// Where class 0's row starts in `dense_chunks`; each row is `chunks` chunks.
    rows: u32,
    /// The chunks of leaf-bit words the rows cover: `first_chunk..first_chunk + chunks`.
    first_chunk: u32,
    chunks: u32,
}

/// How a value's class is found (see [`Dense`]). The dense features are ordered by this, so
/// that a row's pass over them branches the same way for long runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Search {
    /// A categorical feature: its category, or `categories` for none.
    Category { categories: u32 },
    /// A numerical feature with fewer than eight distinct thresholds: the block of eight at
    /// `dense_blocks[at]`, padded with NaN (see [`count_block`]).
    OneBlock { at: u32 },
    /// Fewer than `8 * BLOCKS`: the last threshold of each block of eight at `dense_blocks[at]`,
    /// then the blocks (see [`count_blocks`]).
    TwoBlocks { at: u32 },
    /// More: sorted in `dense_thresholds[start..end]` (see [`count_prefix`]).
    Sorted { start: u32, end: u32 },
}

/// Words of leaf bits in a chunk: what one row's dense pass keeps in registers while it ANDs
/// every dense feature's row into them (eight AVX registers; in the baseline copy, all sixteen
/// SSE ones). 32 rather than 16: half the entries, each with its index arithmetic and bounds
/// checks, for the same words: 13% fewer instructions on the 50×31 model (its 50 trees, in
/// pairs, fit one chunk), 5% less time; the 300×63 model has no dense tables.
const CHUNK_WORDS: usize = 32;

/// A chunk of a dense table's row (four cache lines, aligned to them).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(align(64))]
struct Chunk([u64; CHUNK_WORDS]);

impl Chunk {
    const ONES: Chunk = Chunk([u64::MAX; CHUNK_WORDS]);
}

/// A dense feature whose rows cover a chunk: `dense` indexes `Quick::dense` (and a row's
/// starts), `offset` is the chunk's place within the feature's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ChunkEntry {
    dense: u32,
    offset: u32,
}

/// What a feature's splits are: numerical without zero-as-missing (most features), categorical
/// only, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeatureKind {
    Numerical,
    Categorical,
    Mixed,
}

/// The whole ensemble in QuickScorer's layout.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Quick {
    comparison: Comparison,
    /// Values within 1e-35 of zero are scored as 0.0 (LightGBM's `predict`; see `Ensemble`).
    tiny_as_zero: bool,
    num_outputs: usize,
    tree_output: Vec<u32>,
    /// Leaf values per tree, padded to a power of two (at least 4, at most 64; 64 without
    /// `pairs`): tree `t`'s leaf `i` is `leaf_values[t * leaf_slots + i]`.
    leaf_slots: usize,
    /// Whether every tree has at most 32 leaves, so that two trees share a 64-bit word of leaf
    /// bits: tree `t` in word `t / 2`, its half `t % 2`. Masks are built in that form (the other
    /// tree's half all ones), so every loop over words does half the work: the dense tables'
    /// rows are half as long, and a list's entries for two trees of a word are one.
    pairs: bool,
    /// Per word of leaf bits (per tree, or per two trees with `pairs`): each leaf's bit set.
    initial: Vec<u64>,
    leaf_values: Vec<f64>,
    features: Vec<FeatureLists>,
    /// Sorted numerical splits: thresholds (for `LessF32`, already rounded to `f32`), and masks.
    thresholds: Vec<f64>,
    sorted_trees: Vec<u16>,
    sorted_masks: Vec<u64>,
    /// Unsorted lists (NaN, zero, categories): one entry per tree, masks combined.
    list_trees: Vec<u16>,
    list_masks: Vec<u64>,
    category_offsets: Vec<u32>,
    bin_thresholds: Vec<f64>,
    bin_lists: Vec<(u32, u32)>,
    /// The features with dense tables, ordered by [`Search`].
    dense: Vec<Dense>,
    /// The features without: scored from their lists.
    listed: Vec<u32>,
    dense_thresholds: Vec<f64>,
    dense_blocks: Vec<[f64; 8]>,
    dense_chunks: Vec<Chunk>,
    /// `initial` padded to whole chunks (empty without dense tables): a row's dense pass starts
    /// from it, and the padding is never read.
    dense_initial: Vec<u64>,
    /// Chunk `k`'s dense features: `chunk_entries[chunk_starts[k]..chunk_starts[k + 1]]`.
    chunk_entries: Vec<ChunkEntry>,
    chunk_starts: Vec<u32>,
    /// Score in baseline instructions even where the CPU has more (see [`instruction_set`]).
    pub(super) portable: bool,
}

/// A model whose dense tables would take more than this many bytes in all keeps QuickScorer's
/// lists: the rows a value picks would no longer stay in the nearer caches.
const MAX_DENSE_BYTES: usize = 1 << 20;

/// A dense feature with fewer than `8 * BLOCKS` distinct thresholds finds a value's class in
/// blocks of eight (see [`count_blocks`]); more are searched in the sorted list.
const BLOCKS: usize = 8;

/// Features whose splits use at most this many distinct thresholds can be binned.
const MAX_BINS: usize = 64;

/// Leaf bits for every tree a model can have (tree indices are `u16`): indexed by a `u16`, an
/// update needs no bounds check. Only the first pages, as many as the model has trees, are ever
/// touched.
type TreeMasks = [u64; 1 << 16];

/// Each thread's working memory: leaf bits after a block's shared features, one row's leaf
/// bits, the features that vary within the block, and where one row's dense rows start.
struct Scratch {
    shared: Box<TreeMasks>,
    masks: Box<TreeMasks>,
    /// A block's varying features: those scored from lists (indices into `Quick::features`),
    /// and the dense ones (indices into `Quick::dense`).
    varying: Vec<usize>,
    varying_dense: Vec<usize>,
    /// Per dense feature, where the row of the value's class starts in `dense_chunks`.
    starts: Vec<usize>,
    /// A block's dense entries of its varying features, per chunk (see `Quick::dense_pass`).
    entries: Vec<ChunkEntry>,
    entry_starts: Vec<u32>,
}

/// Zeroed leaf bits, allocated on the heap directly (a `[u64; 1 << 16]` built on the stack
/// first would be 512 KiB of it).
fn tree_masks() -> Box<TreeMasks> {
    // Invariant: a boxed slice of exactly 1 << 16 masks converts to `Box<[u64; 1 << 16]>`.
    vec![0u64; 1 << 16].into_boxed_slice().try_into().expect("a boxed slice of 1 << 16 masks is a TreeMasks")
}

thread_local! {
    static SCRATCH: RefCell<Scratch> =
        RefCell::new(Scratch { shared: tree_masks(), masks: tree_masks(), varying: Vec::new(),
            varying_dense: Vec::new(),
            starts: Vec::new(),
            entries: Vec::new(),
            entry_starts: Vec::new(),
        });
}

/// The instruction set scoring is compiled for: the best this CPU has among those pulp
/// dispatches to (on x86-64, AVX2 and BMI where present: a row's dense pass ANDs and compares
/// four words at a time instead of two, 0.83 of the time on the 50×31 model). Detected once.
fn instruction_set() -> pulp::Arch {
    static ARCH: OnceLock<pulp::Arch> = OnceLock::new();
    *ARCH.get_or_init(pulp::Arch::new)
}

/// One [`Quick::add_raw`] call, as pulp needs it: `with_simd` is compiled once per instruction
/// set, with everything it inlines (the whole scorer is `#[inline(always)]`), and pulp calls the
/// copy the CPU can run.
struct Scoring<'a> {
    quick: &'a Quick,
    rows: &'a [f64],
    num_features: usize,
    raw: &'a mut [f64],
    block_rows: usize,
    scratch: &'a mut Scratch,
}

impl pulp::WithSimd for Scoring<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Scoring { quick, rows, num_features, raw, block_rows, scratch } = self;
        quick.score(rows, num_features, raw, block_rows, scratch);
    }
}

/// Splits of one feature, gathered while reading the trees.
#[derive(Default)]
struct Gathered {
    compare: Vec<(f64, FalseMask)>,
    compare_zero: Vec<(f64, FalseMask)>,
    nan: Vec<FalseMask>,
    zero: Vec<FalseMask>,
    categorical: Vec<(Vec<u32>, FalseMask)>,
}

impl Quick {
    /// The QuickScorer layout of `trees` (output, splits, leaf values), or `None` when a tree
    /// has more than 64 leaves or the categorical lists would be too large.
    pub(super) fn build(
        trees: &[(usize, Vec<Split>, Vec<f64>)],
        num_features: usize,
        num_outputs: usize,
        comparison: Comparison,
        tiny_as_zero: bool,
    ) -> Option<Quick> {
        if trees.len() > usize::from(u16::MAX) || trees.iter().any(|(_, _, leaves)| leaves.len() > MAX_LEAVES) {
            return None;
        }
        let pairs = trees.iter().all(|(_, _, leaves)| leaves.len() <= 32);
        let most_leaves = trees.iter().map(|(_, _, leaves)| leaves.len()).max().unwrap_or(1);
        let leaf_slots = if pairs { most_leaves.next_power_of_two().max(4) } else { MAX_LEAVES };
        let mut quick = Quick {
            comparison,
            tiny_as_zero,
            num_outputs,
            pairs,
            tree_output: Vec::with_capacity(trees.len()),
            leaf_slots,
            initial: Vec::with_capacity(trees.len()),
            leaf_values: Vec::new(),
            features: Vec::new(),
            thresholds: Vec::new(),
            sorted_trees: Vec::new(),
            sorted_masks: Vec::new(),
            list_trees: Vec::new(),
            list_masks: Vec::new(),
            category_offsets: Vec::new(),
            bin_thresholds: Vec::new(),
            bin_lists: Vec::new(),
            dense: Vec::new(),
            listed: Vec::new(),
            dense_thresholds: Vec::new(),
            dense_blocks: Vec::new(),
            dense_chunks: Vec::new(),
            dense_initial: Vec::new(),
            chunk_entries: Vec::new(),
            chunk_starts: Vec::new(),
            portable: false,
        };
        let mut gathered: Vec<Gathered> = (0..num_features).map(|_| Gathered::default()).collect();
        for (t, (output, splits, leaves)) in trees.iter().enumerate() {
            // The word of leaf bits the tree's masks apply to, and whether it is a pair's second.
            let (tree, high_half) = if pairs { ((t / 2) as u16, t % 2 == 1) } else { (t as u16, false) };
            quick.tree_output.push(*output as u32);
            let order = leaf_order(splits, leaves.len());
            quick.leaf_values.extend(order.leaves.iter().map(|&leaf| leaves[leaf]));
            quick.leaf_values.resize((t + 1) * leaf_slots, 0.0);
            match quick.initial.last_mut() {
                Some(word) if high_half => *word |= bits(0, leaves.len()) << 32,
                _ => quick.initial.push(bits(0, leaves.len())),
            }
            for (split, &(low, high)) in splits.iter().zip(&order.left_leaves) {
                // With at most 32 leaves the mask's upper half is all ones already; a pair's
                // second tree moves its half up and keeps the first's all ones.
                let mask = if high_half { (!bits(low, high) << 32) | u64::from(u32::MAX) } else { !bits(low, high) };
                match split {
                    Split::Numerical { feature, threshold, default_left, missing, .. } => {
                        let g = &mut gathered[*feature as usize];
                        let entry = || FalseMask { tree, mask };
                        match missing {
                            MissingType::None => {
                                // NaN is compared as 0.0.
                                if !goes_left(comparison, 0.0, *threshold) {
                                    g.nan.push(entry());
                                }
                                g.compare.push((*threshold, entry()));
                            }
                            MissingType::NaN => {
                                if !default_left {
                                    g.nan.push(entry());
                                }
                                g.compare.push((*threshold, entry()));
                            }
                            MissingType::Zero => {
                                if !default_left {
                                    g.nan.push(entry());
                                    g.zero.push(entry());
                                }
                                g.compare_zero.push((*threshold, entry()));
                            }
                        }
                    }
                    Split::Categorical { feature, left_categories, .. } => {
                        let g = &mut gathered[*feature as usize];
                        g.nan.push(FalseMask { tree, mask });
                        g.categorical.push((left_categories.clone(), FalseMask { tree, mask }));
                    }
                }
            }
        }
        let mut category_entries = 0usize;
        for (feature, g) in gathered.into_iter().enumerate() {
            if g.compare.is_empty() && g.compare_zero.is_empty() && g.categorical.is_empty() {
                continue;
            }
            let compare = quick.push_sorted(g.compare);
            let bins = quick.push_bins(compare);
            let compare_zero = quick.push_sorted(g.compare_zero);
            let nan = quick.push_list(&g.nan);
            let zero = quick.push_list(&g.zero);
            let categories = g.categorical.iter().flat_map(|(cats, _)| cats.iter().map(|&c| c + 1)).max().unwrap_or(0);
            category_entries += categories as usize * g.categorical.len();
            if category_entries > MAX_CATEGORY_ENTRIES {
                return None;
            }
            let category_start = u32::try_from(quick.category_offsets.len()).ok()?;
            for category in 0..categories {
                let falses: Vec<FalseMask> = g
                    .categorical
                    .iter()
                    .filter(|(cats, _)| !cats.contains(&category))
                    .map(|(_, m)| FalseMask { tree: m.tree, mask: m.mask })
                    .collect();
                let (start, _) = quick.push_list(&falses);
                quick.category_offsets.push(start);
            }
            let all: Vec<FalseMask> =
                g.categorical.iter().map(|(_, m)| FalseMask { tree: m.tree, mask: m.mask }).collect();
            let no_category = quick.push_list(&all);
            // The end of the last category's list.
            quick.category_offsets.push(no_category.0);
            let empty = |(start, end): (u32, u32)| start == end;
            let categorical = categories > 0 || !empty(no_category);
            let kind = if !categorical && empty(compare_zero) && empty(zero) {
                FeatureKind::Numerical
            } else if empty(compare) && empty(compare_zero) && empty(zero) {
                FeatureKind::Categorical
            } else {
                FeatureKind::Mixed
            };
            quick.features.push(FeatureLists {
                feature: feature as u32,
                kind,
                compare,
                bins,
                compare_zero,
                nan,
                zero,
                categories,
                category_start,
                no_category,
                dense: None,
            });
        }
        quick.build_dense();
        Some(quick)
    }

    /// Dense tables for every numerical and categorical feature, when they fit in
    /// [`MAX_DENSE_BYTES`] together (a mixed feature keeps its lists). Each table's size is
    /// known before it is built, so a large model gives up early, and a numerical feature's
    /// rows are built as one running AND over its sorted splits.
    fn build_dense(&mut self) {
        let mut bytes = 0usize;
        // (feature, its table), before they are ordered by search.
        let mut records: Vec<(usize, Dense)> = Vec::new();
        for f in 0..self.features.len() {
            let lists = self.features[f].clone();
            // The feature's lists: NaN's, then the categories' and no category's.
            let mut ranges = vec![lists.nan];
            let classes = match lists.kind {
                FeatureKind::Numerical => {
                    let sorted = &self.thresholds[lists.compare.0 as usize..lists.compare.1 as usize];
                    // NaN, above no threshold, above each distinct one.
                    2 + sorted.windows(2).filter(|w| w[0].to_bits() != w[1].to_bits()).count()
                        + usize::from(!sorted.is_empty())
                }
                FeatureKind::Categorical => {
                    let offsets = &self.category_offsets[lists.category_start as usize..];
                    ranges.extend((0..lists.categories as usize).map(|c| (offsets[c], offsets[c + 1])));
                    ranges.push(lists.no_category);
                    ranges.len()
                }
                FeatureKind::Mixed => continue,
            };
            let sorted_trees = &self.sorted_trees[lists.compare.0 as usize..lists.compare.1 as usize];
            let words = ranges
                .iter()
                .flat_map(|&(start, end)| &self.list_trees[start as usize..end as usize])
                .chain(sorted_trees)
                .copied();
            let (Some(first), Some(last)) = (words.clone().min(), words.max()) else {
                continue; // no split at all: nothing to apply
            };
            // The rows cover whole chunks: the dense pass ANDs a chunk at a time.
            let first_chunk = usize::from(first) / CHUNK_WORDS;
            let chunks = usize::from(last) / CHUNK_WORDS + 1 - first_chunk;
            bytes += classes * chunks * std::mem::size_of::<Chunk>();
            if bytes > MAX_DENSE_BYTES {
                self.drop_dense();
                return;
            }
            let Ok(rows) = u32::try_from(self.dense_chunks.len()) else {
                self.drop_dense();
                return;
            };
            let base = first_chunk * CHUNK_WORDS;
            let and_word = |row: &mut [Chunk], word: u16, mask: u64| {
                let at = usize::from(word) - base;
                row[at / CHUNK_WORDS].0[at % CHUNK_WORDS] &= mask;
            };
            let thresholds_start = self.dense_thresholds.len() as u32;
            for &(start, end) in &ranges {
                let mut row = vec![Chunk::ONES; chunks];
                for i in start as usize..end as usize {
                    and_word(&mut row, self.list_trees[i], self.list_masks[i]);
                }
                self.dense_chunks.extend_from_slice(&row);
            }
            if lists.kind == FeatureKind::Numerical {
                // Above no threshold: nothing fails. Above each distinct threshold: every split
                // up to it, the previous row and the threshold's own splits.
                let mut row = vec![Chunk::ONES; chunks];
                self.dense_chunks.extend_from_slice(&row);
                let (start, end) = (lists.compare.0 as usize, lists.compare.1 as usize);
                for i in start..end {
                    and_word(&mut row, self.sorted_trees[i], self.sorted_masks[i]);
                    let t = self.thresholds[i];
                    if i + 1 == end || self.thresholds[i + 1].to_bits() != t.to_bits() {
                        self.dense_thresholds.push(t);
                        self.dense_chunks.extend_from_slice(&row);
                    }
                }
            }
            let distinct = self.dense_thresholds.len() - thresholds_start as usize;
            let search = if lists.kind == FeatureKind::Categorical {
                Search::Category { categories: lists.categories }
            } else if distinct < 8 * BLOCKS {
                // Blocks of eight, then no more need of the sorted list.
                let sorted = self.dense_thresholds.split_off(thresholds_start as usize);
                let mut fine: Vec<[f64; 8]> = vec![[f64::NAN; 8]; distinct / 8 + 1];
                for (i, &t) in sorted.iter().enumerate() {
                    fine[i / 8][i % 8] = t;
                }
                let at = self.dense_blocks.len() as u32;
                if fine.len() > 1 {
                    let mut coarse = [f64::NAN; 8];
                    for (last, block) in coarse.iter_mut().zip(&fine) {
                        *last = block[7];
                    }
                    self.dense_blocks.push(coarse);
                }
                let search = if fine.len() > 1 { Search::TwoBlocks { at } } else { Search::OneBlock { at } };
                self.dense_blocks.extend(fine);
                search
            } else {
                Search::Sorted { start: thresholds_start, end: self.dense_thresholds.len() as u32 }
            };
            let (first_chunk, chunks) = (first_chunk as u32, chunks as u32);
            records.push((f, Dense { column: lists.feature, search, rows, first_chunk, chunks }));
        }
        records.sort_by_key(|(_, dense)| dense.search);
        for (at, (f, dense)) in records.into_iter().enumerate() {
            self.features[f].dense = Some(at as u32);
            self.dense.push(dense);
        }
        self.listed = (0..self.features.len() as u32).filter(|&f| self.features[f as usize].dense.is_none()).collect();
        // Each chunk's dense features.
        let total_chunks = self.initial.len().div_ceil(CHUNK_WORDS);
        self.chunk_starts.push(0);
        for k in 0..total_chunks as u32 {
            for (d, dense) in self.dense.iter().enumerate() {
                if (dense.first_chunk..dense.first_chunk + dense.chunks).contains(&k) {
                    self.chunk_entries.push(ChunkEntry { dense: d as u32, offset: k - dense.first_chunk });
                }
            }
            self.chunk_starts.push(self.chunk_entries.len() as u32);
        }
        self.dense_initial = self.initial.clone();
        self.dense_initial.resize(total_chunks * CHUNK_WORDS, u64::MAX);
    }

    /// Scores every feature from its lists.
    pub(super) fn drop_dense(&mut self) {
        for lists in &mut self.features {
            lists.dense = None;
        }
        self.dense = Vec::new();
        self.listed = (0..self.features.len() as u32).collect();
        self.dense_thresholds = Vec::new();
        self.dense_blocks = Vec::new();
        self.dense_chunks = Vec::new();
        self.dense_initial = Vec::new();
        self.chunk_entries = Vec::new();
        self.chunk_starts = Vec::new();
    }

    /// Appends numerical splits sorted by threshold; returns their range.
    fn push_sorted(&mut self, mut splits: Vec<(f64, FalseMask)>) -> (u32, u32) {
        if self.comparison == Comparison::LessF32 {
            for (t, _) in &mut splits {
                *t = f64::from(*t as f32);
            }
        }
        splits.sort_by(|a, b| a.0.total_cmp(&b.0));
        let start = self.thresholds.len() as u32;
        for (t, m) in splits {
            self.thresholds.push(t);
            self.sorted_trees.push(m.tree);
            self.sorted_masks.push(m.mask);
        }
        (start, self.thresholds.len() as u32)
    }

    /// Bins the sorted splits in `range` when that pays: few distinct thresholds, many splits
    /// per tree touched (a campaign attribute with a handful of values that hundreds of nodes
    /// split on). Each bin's list combines, per tree, every split at or below its threshold.
    fn push_bins(&mut self, (start, end): (u32, u32)) -> (u32, u32) {
        let (start, end) = (start as usize, end as usize);
        let first = self.bin_thresholds.len() as u32;
        let thresholds = &self.thresholds[start..end];
        let mut distinct: Vec<(f64, usize)> = Vec::new(); // (threshold, splits up to and with it)
        for (i, &t) in thresholds.iter().enumerate() {
            match distinct.last_mut() {
                Some((last, upto)) if last.to_bits() == t.to_bits() => *upto = i + 1,
                _ => distinct.push((t, i + 1)),
            }
        }
        let mut trees: Vec<u16> = self.sorted_trees[start..end].to_vec();
        trees.sort_unstable();
        trees.dedup();
        if distinct.len() > MAX_BINS || thresholds.len() < 2 * trees.len() {
            return (first, first);
        }
        for (t, upto) in distinct {
            let entries: Vec<FalseMask> = (start..start + upto)
                .map(|i| FalseMask { tree: self.sorted_trees[i], mask: self.sorted_masks[i] })
                .collect();
            let list = self.push_list(&entries);
            self.bin_thresholds.push(t);
            self.bin_lists.push(list);
        }
        (first, self.bin_thresholds.len() as u32)
    }

    /// Appends a list with the masks of each tree combined (in tree order); returns its range.
    fn push_list(&mut self, entries: &[FalseMask]) -> (u32, u32) {
        let start = self.list_trees.len() as u32;
        let mut combined: Vec<(u16, u64)> = Vec::new();
        for e in entries {
            match combined.iter_mut().find(|(tree, _)| *tree == e.tree) {
                Some((_, mask)) => *mask &= e.mask,
                None => combined.push((e.tree, e.mask)),
            }
        }
        combined.sort_by_key(|&(tree, _)| tree);
        for (tree, mask) in combined {
            self.list_trees.push(tree);
            self.list_masks.push(mask);
        }
        (start, self.list_trees.len() as u32)
    }

    /// Raw margins of `rows` (row-major, `num_features` values each), added to `raw`, which
    /// holds `num_outputs` zeros per row.
    ///
    /// Rows are taken in blocks. A feature with the same value in every row of a block is
    /// applied once for the block: the engine scores the candidate campaigns of one impression
    /// together, and their rows differ only in the campaign's own features, so most of the work
    /// is shared. (Applying the same masks in another order gives the same bits, so the margins
    /// are the same as row by row.)
    pub(super) fn add_raw(&self, rows: &[f64], num_features: usize, raw: &mut [f64], block_rows: usize) {
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            let arch = if self.portable { pulp::Arch::Scalar } else { instruction_set() };
            arch.dispatch(Scoring { quick: self, rows, num_features, raw, block_rows, scratch });
        });
    }

    /// [`Self::add_raw`]'s work, inlined into each instruction set's copy of [`Scoring`].
    #[inline(always)]
    fn score(&self, rows: &[f64], num_features: usize, raw: &mut [f64], block_rows: usize, scratch: &mut Scratch) {
        let trees = self.initial.len();
        let dense = !self.dense_initial.is_empty();
        // The leaf bits a row starts from: whole chunks for the dense pass.
        let initial = if dense { &self.dense_initial } else { &self.initial };
        {
            let Scratch { shared, masks, varying, varying_dense, starts, entries, entry_starts } = scratch;
            if rows.len() == num_features {
                // One row: nothing to share.
                if dense {
                    starts.resize(self.dense.len(), 0);
                    self.fill_starts(rows, starts);
                    self.dense_pass(starts, &self.chunk_entries, &self.chunk_starts, initial, masks);
                } else {
                    masks[..trees].copy_from_slice(initial);
                }
                for &f in &self.listed {
                    let lists = &self.features[f as usize];
                    self.apply_feature(lists, rows[lists.feature as usize], masks);
                }
                self.add_leaves(&masks[..trees], raw);
                return;
            }
            for (block, out) in
                rows.chunks(num_features * block_rows).zip(raw.chunks_mut(self.num_outputs * block_rows))
            {
                shared[..initial.len()].copy_from_slice(initial);
                varying.clear();
                varying_dense.clear();
                let first = &block[..num_features];
                for (i, lists) in self.features.iter().enumerate() {
                    let f = lists.feature as usize;
                    let x = first[f];
                    if block.chunks_exact(num_features).all(|row| row[f].to_bits() == x.to_bits()) {
                        self.apply_feature(lists, x, shared);
                    } else if let Some(d) = lists.dense {
                        varying_dense.push(d as usize);
                    } else {
                        varying.push(i);
                    }
                }
                varying_dense.sort_unstable();
                if dense {
                    // The dense pass of each row starts from the shared bits and takes only the
                    // varying features' entries.
                    entries.clear();
                    entry_starts.clear();
                    entry_starts.push(0);
                    for k in 0..self.dense_initial.len() / CHUNK_WORDS {
                        let chunk =
                            &self.chunk_entries[self.chunk_starts[k] as usize..self.chunk_starts[k + 1] as usize];
                        entries
                            .extend(chunk.iter().filter(|e| varying_dense.binary_search(&(e.dense as usize)).is_ok()));
                        entry_starts.push(entries.len() as u32);
                    }
                    starts.resize(self.dense.len(), 0);
                }
                for (row, margins) in block.chunks_exact(num_features).zip(out.chunks_exact_mut(self.num_outputs)) {
                    if dense {
                        for &d in varying_dense.iter() {
                            starts[d] = self.row_start(&self.dense[d], row);
                        }
                        self.dense_pass(starts, entries, entry_starts, &shared[..initial.len()], masks);
                    } else {
                        masks[..trees].copy_from_slice(&shared[..trees]);
                    }
                    for &i in varying.iter() {
                        let lists = &self.features[i];
                        self.apply_feature(lists, row[lists.feature as usize], masks);
                    }
                    self.add_leaves(&masks[..trees], margins);
                }
            }
        }
    }

    /// Clears, in one row's leaf bits, the leaves ruled out by the splits on one feature.
    #[inline(always)]
    fn apply_feature(&self, lists: &FeatureLists, x: f64, masks: &mut TreeMasks) {
        if let Some(d) = lists.dense {
            let dense = &self.dense[d as usize];
            self.and_row(dense, self.class(dense, x), masks);
            return;
        }
        if x.is_nan() {
            self.apply_list(lists.nan, masks);
            return;
        }
        let x = if self.tiny_as_zero && x.abs() <= ZERO_THRESHOLD { 0.0 } else { x };
        match lists.kind {
            FeatureKind::Numerical if lists.bins.0 < lists.bins.1 => self.apply_bin(lists.bins, x, masks),
            FeatureKind::Numerical => self.scan(lists.compare, x, masks),
            FeatureKind::Categorical => self.apply_category(lists, x, masks),
            FeatureKind::Mixed => self.apply_mixed(lists, x, masks),
        }
    }

    /// The class of value `x` of a feature with a dense table (see [`Dense`]), found with no
    /// branch on the value.
    #[inline(always)]
    fn class(&self, dense: &Dense, x: f64) -> usize {
        match (self.tiny_as_zero, self.comparison) {
            (false, Comparison::LessEqualF64) => self.class_with::<false, false>(dense, x),
            (false, Comparison::LessF32) => self.class_with::<false, true>(dense, x),
            (true, Comparison::LessEqualF64) => self.class_with::<true, false>(dense, x),
            (true, Comparison::LessF32) => self.class_with::<true, true>(dense, x),
        }
    }

    /// [`Self::class`] with the model's flags as constants: `TINY_AS_ZERO` is `tiny_as_zero`,
    /// `F32` a `LessF32` comparison.
    #[inline(always)]
    fn class_with<const TINY_AS_ZERO: bool, const F32: bool>(&self, dense: &Dense, x: f64) -> usize {
        let present = usize::from(!x.is_nan());
        let x = if TINY_AS_ZERO && x.abs() <= ZERO_THRESHOLD { 0.0 } else { x };
        let class = 1 + match dense.search {
            // NaN casts to category 0, then `present` makes it class 0.
            Search::Category { categories } => category(categories, x).unwrap_or(categories as usize),
            search if F32 => {
                let x = f64::from(x as f32);
                self.thresholds_below(search, |t| t <= x)
            }
            search => self.thresholds_below(search, |t| t < x),
        };
        class * present
    }

    /// Every dense feature's row start for one row: the model's flags are tested once, not per
    /// feature (see [`Self::class_with`]).
    #[inline(always)]
    fn fill_starts(&self, row: &[f64], starts: &mut [usize]) {
        match (self.tiny_as_zero, self.comparison) {
            (false, Comparison::LessEqualF64) => self.fill_starts_with::<false, false>(row, starts),
            (false, Comparison::LessF32) => self.fill_starts_with::<false, true>(row, starts),
            (true, Comparison::LessEqualF64) => self.fill_starts_with::<true, false>(row, starts),
            (true, Comparison::LessF32) => self.fill_starts_with::<true, true>(row, starts),
        }
    }

    #[inline(always)]
    fn fill_starts_with<const TINY_AS_ZERO: bool, const F32: bool>(&self, row: &[f64], starts: &mut [usize]) {
        // A plain loop, not `extend`: the closure `extend` takes would be compiled apart from
        // the dispatched function, without its SIMD instructions.
        for (start, dense) in starts.iter_mut().zip(&self.dense) {
            let class = self.class_with::<TINY_AS_ZERO, F32>(dense, row[dense.column as usize]);
            *start = dense.rows as usize + class * dense.chunks as usize;
        }
    }

    /// How many of a dense numerical feature's thresholds satisfy `below` (a prefix of them).
    #[inline(always)]
    fn thresholds_below(&self, search: Search, below: impl Fn(f64) -> bool) -> usize {
        match search {
            Search::OneBlock { at } => self.dense_blocks.get(at as usize).map_or(0, |block| count_block(block, below)),
            Search::TwoBlocks { at } => count_blocks(&self.dense_blocks[at as usize..], below),
            Search::Sorted { start, end } => count_prefix(&self.dense_thresholds[start as usize..end as usize], below),
            Search::Category { .. } => 0,
        }
    }

    /// Where the row of `row`'s class starts in a dense feature's table.
    #[inline(always)]
    fn row_start(&self, dense: &Dense, row: &[f64]) -> usize {
        dense.rows as usize + self.class(dense, row[dense.column as usize]) * dense.chunks as usize
    }

    /// ANDs row `class` of a dense table into the leaf bits of its trees.
    #[inline(always)]
    fn and_row(&self, dense: &Dense, class: usize, masks: &mut TreeMasks) {
        let start = dense.rows as usize + class * dense.chunks as usize;
        let row = &self.dense_chunks[start..start + dense.chunks as usize];
        let first = dense.first_chunk as usize * CHUNK_WORDS;
        for (words, chunk) in masks[first..].chunks_exact_mut(CHUNK_WORDS).zip(row) {
            for (word, &bits) in words.iter_mut().zip(&chunk.0) {
                *word &= bits;
            }
        }
    }

    /// One row's leaf bits after the dense features of `entries` (chunk `k`'s are
    /// `entries[entry_starts[k]..entry_starts[k + 1]]`), from the bits `from`, with `starts`
    /// each feature's row ([`Self::dense_start`]). Chunk by chunk: the chunk stays in registers
    /// while each feature's row is ANDed into it, instead of a load and a store of every word
    /// per feature. The rows are all found before: the searches are independent of each other
    /// and of the leaf bits, so they overlap.
    #[inline(always)]
    fn dense_pass(
        &self,
        starts: &[usize],
        entries: &[ChunkEntry],
        entry_starts: &[u32],
        from: &[u64],
        masks: &mut TreeMasks,
    ) {
        for (k, (from, to)) in from.chunks_exact(CHUNK_WORDS).zip(masks.chunks_exact_mut(CHUNK_WORDS)).enumerate() {
            let mut bits = [0u64; CHUNK_WORDS];
            bits.copy_from_slice(from);
            for entry in &entries[entry_starts[k] as usize..entry_starts[k + 1] as usize] {
                let chunk = &self.dense_chunks[starts[entry.dense as usize] + entry.offset as usize].0;
                for (word, &mask) in bits.iter_mut().zip(chunk) {
                    *word &= mask;
                }
            }
            to.copy_from_slice(&bits);
        }
    }

    /// A feature with splits of several kinds (`x` is not NaN).
    #[inline(always)]
    fn apply_mixed(&self, lists: &FeatureLists, x: f64, masks: &mut TreeMasks) {
        self.scan(lists.compare, x, masks);
        if x.abs() <= ZERO_THRESHOLD {
            self.apply_list(lists.zero, masks);
        } else {
            self.scan(lists.compare_zero, x, masks);
        }
        // A feature whose categorical splits all list no category has no per-category lists, but
        // its splits still send every value right.
        if lists.categories > 0 || lists.no_category.0 < lists.no_category.1 {
            self.apply_category(lists, x, masks);
        }
    }

    /// The categorical splits of a feature (`x` is not NaN).
    #[inline(always)]
    fn apply_category(&self, lists: &FeatureLists, x: f64, masks: &mut TreeMasks) {
        match category(lists.categories, x) {
            Some(c) => {
                let at = lists.category_start as usize + c;
                self.apply_list((self.category_offsets[at], self.category_offsets[at + 1]), masks);
            }
            None => self.apply_list(lists.no_category, masks),
        }
    }

    /// How many of the sorted `thresholds` value `x` is not sent left by (a prefix), under the
    /// model's comparison.
    #[inline(always)]
    fn falses(&self, thresholds: &[f64], x: f64) -> usize {
        match self.comparison {
            Comparison::LessEqualF64 => count_prefix(thresholds, |t| t < x),
            Comparison::LessF32 => {
                let x = f64::from(x as f32);
                count_prefix(thresholds, |t| t <= x)
            }
        }
    }

    /// Applies the sorted splits `x` does not send left: a prefix of the range, counted first
    /// ([`count_prefix`]) so that applying it needs no test per split.
    #[inline(always)]
    fn scan(&self, (start, end): (u32, u32), x: f64, masks: &mut TreeMasks) {
        let (start, end) = (start as usize, end as usize);
        let thresholds = &self.thresholds[start..end];
        let falses = self.falses(thresholds, x);
        let range = start..start + falses;
        for (&tree, &mask) in self.sorted_trees[range.clone()].iter().zip(&self.sorted_masks[range]) {
            masks[tree as usize] &= mask;
        }
    }

    /// The binned splits of a feature: the list of the last bin whose threshold `x` is not
    /// sent left by, the same splits [`Self::scan`] would apply one by one.
    #[inline(always)]
    fn apply_bin(&self, (start, end): (u32, u32), x: f64, masks: &mut TreeMasks) {
        let thresholds = &self.bin_thresholds[start as usize..end as usize];
        let falses = self.falses(thresholds, x);
        if falses > 0 {
            self.apply_list(self.bin_lists[start as usize + falses - 1], masks);
        }
    }

    #[inline(always)]
    fn apply_list(&self, (start, end): (u32, u32), masks: &mut TreeMasks) {
        let range = start as usize..end as usize;
        for (&tree, &mask) in self.list_trees[range.clone()].iter().zip(&self.list_masks[range]) {
            masks[tree as usize] &= mask;
        }
    }

    /// Adds each tree's exit leaf, in model order.
    #[inline(always)]
    fn add_leaves(&self, masks: &[u64], margins: &mut [f64]) {
        if let [margin] = margins {
            // One output: the sum stays in a register (through memory, each addition waited for
            // the previous one's store; that was a tenth of a row's time). Each slot count has
            // its own loop, where a leaf's index needs no bounds check.
            *margin = match (self.pairs, self.leaf_slots) {
                (true, 4) => self.sum_pairs::<4>(masks, *margin),
                (true, 8) => self.sum_pairs::<8>(masks, *margin),
                (true, 16) => self.sum_pairs::<16>(masks, *margin),
                (true, 32) => self.sum_pairs::<32>(masks, *margin),
                _ => self.sum_words::<64>(masks, *margin),
            };
            return;
        }
        // With `pairs`, tree `t`'s bits are word `t / 2` shifted down by its half (a first
        // tree's lowest set bit is in the lower half, as one of its leaves is always left).
        let pairs = usize::from(self.pairs);
        for (t, &output) in self.tree_output.iter().enumerate() {
            let word = masks[t >> pairs] >> ((t & pairs) * 32);
            margins[output as usize] += self.leaf_values[t * self.leaf_slots + word.trailing_zeros() as usize];
        }
    }

    /// `sum` plus every tree's exit leaf, two trees per word of leaf bits, `S` leaf slots per
    /// tree. (A tree's exit leaf is its lowest bit left set, below `S`: the `% S` only tells
    /// the compiler so.)
    #[inline(always)]
    fn sum_pairs<const S: usize>(&self, masks: &[u64], mut sum: f64) -> f64 {
        for (&word, pair) in masks.iter().zip(self.leaf_values.chunks_exact(2 * S)) {
            sum += pair[(word as u32).trailing_zeros() as usize % S];
            sum += pair[S + ((word >> 32) as u32).trailing_zeros() as usize % S];
        }
        // An odd tree out has a word of its own.
        let trees = self.tree_output.len();
        if trees % 2 == 1 {
            if let (Some(&word), Some(last)) = (masks.get(trees / 2), self.leaf_values.chunks_exact(S).nth(trees - 1)) {
                sum += last[(word as u32).trailing_zeros() as usize % S];
            }
        }
        sum
    }

    /// `sum` plus every tree's exit leaf, one tree per word of leaf bits, `S` leaf slots each.
    #[inline(always)]
    fn sum_words<const S: usize>(&self, masks: &[u64], mut sum: f64) -> f64 {
        for (&word, leaves) in masks.iter().zip(self.leaf_values.chunks_exact(S)) {
            sum += leaves[word.trailing_zeros() as usize % S];
        }
        sum
    }
}

/// The category of value `x` of a feature with categorical splits, when some split's set can
/// hold it: C++'s cast truncates toward zero (saturating here); negatives and categories no
/// split lists are none.
#[inline(always)]
fn category(categories: u32, x: f64) -> Option<usize> {
    let category = x as i64;
    (category >= 0 && category < i64::from(categories)).then_some(category as usize)
}

/// How many of the sorted `thresholds` satisfy `below` (a prefix), without a chain of dependent
/// loads: a binary search's took a quarter of a row's time on a 50-tree model, and counting
/// every threshold took as many instructions. Every 8th threshold is tested first (the blocks of
/// 8 wholly below `x`), then the 8 of the block `x` falls in: about k/8 + 8 independent tests.
/// Long arrays (hundreds of splits on one feature) are binary-searched.
#[inline(always)]
fn count_prefix(thresholds: &[f64], below: impl Fn(f64) -> bool) -> usize {
    const STRIDE: usize = 8;
    if thresholds.len() > 32 * STRIDE {
        return thresholds.partition_point(|&t| below(t));
    }
    let blocks: usize = thresholds.iter().skip(STRIDE - 1).step_by(STRIDE).map(|&t| usize::from(below(t))).sum();
    let start = blocks * STRIDE;
    let end = (start + STRIDE).min(thresholds.len());
    start + thresholds[start..end].iter().map(|&t| usize::from(below(t))).sum::<usize>()
}

/// How many of a dense feature's thresholds satisfy `below` (a prefix of them), from its
/// `blocks`: the last threshold of each block of eight, then the blocks, all padded with NaN,
/// which fails every test. The blocks wholly below are counted from their last thresholds,
/// then the eight of the next block: sixteen independent tests in two fixed groups (a few
/// vector compares), with no branch on the value and one dependent load. The last block always
/// ends in padding, so the next block is always there. (Where all the thresholds fit in one
/// block, [`count_block`] alone.) A binary search over them had taken twice as long: each of
/// its steps waits for the previous one's load.
#[inline(always)]
fn count_blocks(blocks: &[[f64; 8]], below: impl Fn(f64) -> bool) -> usize {
    let below_blocks = blocks.first().map_or(0, |block| count_block(block, &below));
    8 * below_blocks + blocks.get(1 + below_blocks).map_or(0, |block| count_block(block, &below))
}

/// How many of a block's eight thresholds satisfy `below` (NaN padding never does).
#[inline(always)]
fn count_block(block: &[f64; 8], below: impl Fn(f64) -> bool) -> usize {
    block.iter().map(|&t| usize::from(below(t))).sum()
}

fn goes_left(comparison: Comparison, x: f64, threshold: f64) -> bool {
    match comparison {
        Comparison::LessEqualF64 => x <= threshold,
        Comparison::LessF32 => (x as f32) < (threshold as f32),
    }
}

/// Bits `low..high` set.
fn bits(low: usize, high: usize) -> u64 {
    let upto = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    upto(high) & !upto(low)
}

/// A tree's leaves in left-to-right order, and for each split the positions (in that order) of
/// the leaves of its left subtree.
struct LeafOrder {
    leaves: Vec<usize>,
    left_leaves: Vec<(usize, usize)>,
}

/// The tree is known to be a tree (checked by the builder) with at most 64 leaves, so the
/// recursion is at most 63 deep.
fn leaf_order(splits: &[Split], num_leaves: usize) -> LeafOrder {
    fn visit(child: i32, splits: &[Split], order: &mut LeafOrder) -> (usize, usize) {
        if child < 0 {
            order.leaves.push((!child) as usize);
            let at = order.leaves.len();
            return (at - 1, at);
        }
        let (left, right) = match &splits[child as usize] {
            Split::Numerical { left, right, .. } | Split::Categorical { left, right, .. } => (*left, *right),
        };
        let (low, middle) = visit(left, splits, order);
        let (_, high) = visit(right, splits, order);
        order.left_leaves[child as usize] = (low, middle);
        (low, high)
    }
    let mut order = LeafOrder { leaves: Vec::with_capacity(num_leaves), left_leaves: vec![(0, 0); splits.len()] };
    visit(if splits.is_empty() { !0 } else { 0 }, splits, &mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::super::ensemble::EnsembleBuilder;
    use super::super::{Ensemble, Scorer, Transform};
    use super::*;
    use proptest::prelude::*;

    /// A deterministic generator for random trees and rows (proptest shrinks the seed).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Values that hit every edge: thresholds themselves, zeros of both signs, values
        /// within 1e-35 of zero, NaN, negatives, fractional categories, huge numbers.
        fn value(&mut self) -> f64 {
            const EDGES: [f64; 12] = [0.0, -0.0, 1e-36, -1e-36, f64::NAN, -1.0, 0.5, 1.0, 2.0, 3.7, 63.0, 1e300];
            if self.below(2) == 0 {
                EDGES[self.below(EDGES.len() as u64) as usize]
            } else {
                (self.below(200) as f64 - 50.0) / 4.0
            }
        }
    }

    /// A random tree with at most `max_leaves` leaves over `num_features` features.
    /// With `few_numeric`, only numerical splits without zero-as-missing, on four thresholds:
    /// the shape that makes features binned (a campaign attribute many nodes split on).
    fn random_tree(rng: &mut Rng, num_features: u32, max_leaves: usize, few_numeric: bool) -> (Vec<Split>, Vec<f64>) {
        let leaves = 1 + rng.below(max_leaves as u64) as usize;
        let mut splits: Vec<Split> = Vec::new();
        // Grow by splitting a random leaf reference until the tree has `leaves` leaves.
        let mut open: Vec<(Option<(usize, bool)>,)> = vec![(None,)];
        while splits.len() + 1 < leaves {
            let pick = rng.below(open.len() as u64) as usize;
            let (parent,) = open.swap_remove(pick);
            let index = splits.len();
            let feature = rng.below(u64::from(num_features)) as u32;
            let split = if few_numeric {
                let missing = [MissingType::None, MissingType::NaN][rng.below(2) as usize];
                let threshold = [0.5, 1.0, 2.0, 3.7][rng.below(4) as usize];
                Split::Numerical { feature, threshold, default_left: rng.below(2) == 0, missing, left: 0, right: 0 }
            } else if rng.below(3) == 0 {
                let left_categories = (0..rng.below(5)).map(|_| rng.below(70) as u32).collect();
                Split::Categorical { feature, left_categories, left: 0, right: 0 }
            } else {
                let missing = [MissingType::None, MissingType::NaN, MissingType::Zero][rng.below(3) as usize];
                let threshold = match rng.below(3) {
                    0 => 0.0,
                    1 => 1e-35_f32 as f64,
                    _ => (rng.below(100) as f64 - 30.0) / 8.0,
                };
                Split::Numerical { feature, threshold, default_left: rng.below(2) == 0, missing, left: 0, right: 0 }
            };
            splits.push(split);
            if let Some((p, is_left)) = parent {
                set_child(&mut splits[p], is_left, index as i32);
            }
            open.push((Some((index, true)),));
            open.push((Some((index, false)),));
        }
        // The open references become the leaves.
        let mut values = Vec::new();
        for (parent,) in open {
            let leaf = values.len() as i32;
            values.push((rng.below(1000) as f64 - 500.0) / 64.0);
            if let Some((p, is_left)) = parent {
                set_child(&mut splits[p], is_left, !leaf);
            }
        }
        (splits, values)
    }

    fn set_child(split: &mut Split, is_left: bool, child: i32) {
        let (left, right) = match split {
            Split::Numerical { left, right, .. } | Split::Categorical { left, right, .. } => (left, right),
        };
        if is_left {
            *left = child;
        } else {
            *right = child;
        }
    }

    fn random_ensemble(rng: &mut Rng, comparison: Comparison, max_leaves: usize, few_numeric: bool) -> Ensemble {
        let num_features = 1 + rng.below(5) as u32;
        let num_outputs = 1 + rng.below(2) as usize;
        let mut b = EnsembleBuilder::new(num_features as usize, num_outputs, comparison, Transform::Identity)
            .tiny_as_zero(rng.below(2) == 0);
        // Up to 40 trees: leaf bits of up to three chunks of the dense pass, features whose
        // rows start past the first, odd trees out of a pair.
        for t in 0..1 + rng.below(40) as usize {
            let (splits, leaves) = random_tree(rng, num_features, max_leaves, few_numeric);
            b.tree(t % num_outputs, &splits, &leaves).unwrap();
        }
        b.build().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// QuickScorer's margins, with its dense tables and with its lists alone, in the CPU's
        /// SIMD instructions and in baseline ones, equal the node walker's, bit for bit, single
        /// rows and blocks (blocks with columns shared by every row too).
        #[test]
        fn quickscorer_equals_the_node_walker(seed in any::<u64>(), f32_compare in any::<bool>(), few_numeric in any::<bool>(), narrow in any::<bool>()) {
            let mut rng = Rng(seed | 1);
            let comparison = if f32_compare { Comparison::LessF32 } else { Comparison::LessEqualF64 };
            // Trees of at most 32 leaves share words of leaf bits in pairs; larger ones do not.
            let quick = random_ensemble(&mut rng, comparison, if narrow { 32 } else { MAX_LEAVES }, few_numeric);
            prop_assert_eq!(quick.layout(), "quickscorer");
            let walker = quick.clone().node_walker();
            let lists = quick.clone().quickscorer_lists();
            let portable = quick.clone().quickscorer_portable();
            let nf = quick.num_features();
            let no = quick.num_outputs();
            let n = 1 + rng.below(40) as usize;
            let shared: Vec<bool> = (0..nf).map(|_| rng.below(2) == 0).collect();
            let template: Vec<f64> = (0..nf).map(|_| rng.value()).collect();
            let rows: Vec<f64> = (0..n * nf)
                .map(|i| if shared[i % nf] { template[i % nf] } else { rng.value() })
                .collect();
            let (mut a, mut b, mut c, mut d) = (vec![0.0; n * no], vec![0.0; n * no], vec![0.0; n * no], vec![0.0; n * no]);
            quick.predict_raw(&rows, &mut a);
            walker.predict_raw(&rows, &mut b);
            lists.predict_raw(&rows, &mut c);
            portable.predict_raw(&rows, &mut d);
            for (((x, y), z), w) in a.iter().zip(&b).zip(&c).zip(&d) {
                prop_assert_eq!(x.to_bits(), y.to_bits(), "rows {:?}", rows);
                prop_assert_eq!(z.to_bits(), y.to_bits(), "lists, rows {:?}", rows);
                prop_assert_eq!(w.to_bits(), y.to_bits(), "portable, rows {:?}", rows);
            }
            for (row, expected) in rows.chunks(nf).zip(b.chunks(no)) {
                for scorer in [&quick, &lists, &portable] {
                    let mut one = vec![0.0; no];
                    scorer.predict_raw(row, &mut one);
                    prop_assert_eq!(&one, expected);
                }
            }
        }
    }

    #[test]
    fn dense_tables_are_built_while_they_fit() {
        let mut rng = Rng(11);
        let trees: Vec<_> = (0..6)
            .map(|_| {
                let (splits, leaves) = random_tree(&mut rng, 3, 31, true);
                (0, splits, leaves)
            })
            .collect();
        let quick = Quick::build(&trees, 3, 1, Comparison::LessEqualF64, false).unwrap();
        assert!(!quick.features.is_empty());
        assert!(quick.features.iter().all(|f| f.dense.is_some()));
        // One split listing category 200,000: its table would take 1.6 MB, so the model keeps
        // its lists.
        let split = Split::Categorical { feature: 0, left_categories: vec![200_000], left: !0, right: !1 };
        let quick = Quick::build(&[(0, vec![split], vec![1.0, 2.0])], 1, 1, Comparison::LessEqualF64, false).unwrap();
        assert!(quick.features.iter().all(|f| f.dense.is_none()));
        assert!(quick.dense_chunks.is_empty() && quick.dense_initial.is_empty());
    }

    #[test]
    fn trees_over_64_leaves_use_the_node_walker() {
        let mut rng = Rng(7);
        let mut b = EnsembleBuilder::new(3, 1, Comparison::LessEqualF64, Transform::Identity);
        let (splits, leaves) = loop {
            let tree = random_tree(&mut rng, 3, 200, false);
            if tree.1.len() > MAX_LEAVES {
                break tree;
            }
        };
        b.tree(0, &splits, &leaves).unwrap();
        assert_eq!(b.build().unwrap().layout(), "nodes");
    }

    #[test]
    fn leaf_bits() {
        assert_eq!(bits(0, 64), u64::MAX);
        assert_eq!(bits(1, 3), 0b110);
        assert_eq!(bits(5, 5), 0);
    }
}
