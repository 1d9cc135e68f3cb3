//! The native evaluator's representation of a tree ensemble, and its traversal.
//!
//! All trees share one flat array of 16-byte nodes, each tree laid out depth first so a split's
//! left child is the next node and only the right child's index is stored; leaves are nodes too,
//! holding their value. Categorical splits over fewer than 64 categories keep their bitset in the
//! node itself; larger ones point into a side table. Each row is prepared once (NaN replaced by
//! 0.0, and a class byte saying NaN / zero) so a split's missing-value rule is one mask test.
//!
//! Each row adds the trees' outputs in model order, so results are bit-for-bit those of
//! LightGBM, which adds in the same order.

use super::error::ModelError;
use super::quick::Quick;
use super::transform::Transform;
use super::Scorer;

/// Rows evaluated together, tree by tree.
pub const BLOCK_ROWS: usize = 16;

use std::cell::RefCell;

// Node kinds (the low two bits of `flags`).
const KIND: u8 = 3;
const LEAF: u8 = 0;
const NUMERICAL: u8 = 1;
const CATEGORY_MASK: u8 = 2;
const CATEGORY_TABLE: u8 = 3;
const DEFAULT_LEFT: u8 = 4;

// A row value's class, as bits: which missing-value rules it triggers.
const IS_ZERO: u8 = 1;
const IS_NAN: u8 = 2;

/// LightGBM's `kZeroThreshold`: values this close to zero count as zero for "zero as missing".
/// LightGBM declares it `1e-35f`, a float: the double it compares with is float(1e-35), a little
/// above 1e-35, and models carry exactly that value as the threshold of splits at zero.
pub(super) const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// The most features and outputs a model may declare. Split features are stored in 16 bits, so
/// no split can use more features; a model file that claims more is corrupt or hostile (a fuzzed
/// one claiming 28 million features made the readers allocate gigabytes before finding out).
pub const MAX_FEATURES: usize = 1 << 16;
pub const MAX_OUTPUTS: usize = 1 << 16;

/// Refuses a declared shape beyond [`MAX_FEATURES`] or [`MAX_OUTPUTS`]: the readers call it
/// before allocating anything sized by the model's header.
pub fn check_shape(num_features: usize, num_outputs: usize) -> Result<(), ModelError> {
    if num_features > MAX_FEATURES {
        return Err(ModelError::new(format!("{num_features} features: bidcore scores at most {MAX_FEATURES}")));
    }
    if num_outputs > MAX_OUTPUTS {
        return Err(ModelError::new(format!("{num_outputs} outputs: bidcore scores at most {MAX_OUTPUTS}")));
    }
    Ok(())
}

/// One node. `value` is a leaf's output (`f64` bits), a numerical split's threshold (`f64` bits),
/// the bitset of a categorical split over categories below 64, or the start and word count of a
/// larger bitset in `Ensemble::cat_bits`. `missing` holds the row classes that take the default
/// direction (LightGBM: NaN-as-missing → `IS_NAN`; zero-as-missing → `IS_ZERO | IS_NAN`, since
/// NaN counts as zero there).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    value: u64,
    right: u32,
    feature: u16,
    flags: u8,
    missing: u8,
}

/// How a split compares: LightGBM's `x <= threshold` on doubles, or XGBoost's `x < threshold`
/// on floats (the feature value rounded to `f32` first), as Treelite describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    LessEqualF64,
    LessF32,
}

/// A tree ensemble ready to score. Immutable once built; share it between threads.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    num_features: usize,
    num_outputs: usize,
    /// Per tree: its root node, the output (class) it adds to, and its depth (the most splits
    /// on a path from the root to a leaf).
    roots: Vec<(u32, u32, u32)>,
    nodes: Vec<Node>,
    cat_bits: Vec<u32>,
    comparison: Comparison,
    transform: Transform,
    /// Added to every raw margin (Treelite's base scores; LightGBM folds its own into the trees).
    base: Vec<f64>,
    /// Random-forest mode: raw margins are averaged over the trees of each output.
    average: bool,
    /// LightGBM's `predict` reads a dense row as sparse, keeping only values above 1e-35 in
    /// magnitude: anything smaller is scored as exactly 0.0 (which differs from comparing it
    /// when a threshold sits at -1e-35). Models read from LightGBM's text do the same.
    tiny_as_zero: bool,
    feature_names: Vec<String>,
    /// The same trees in QuickScorer's layout, used when every tree fits it (see [`Quick`]).
    quick: Option<Quick>,
}

/// Builds an [`Ensemble`] tree by tree, checking every reference.
#[derive(Debug)]
pub struct EnsembleBuilder {
    ensemble: Ensemble,
    trees: Vec<(usize, Vec<Split>, Vec<f64>)>,
}

/// A split of a tree being added, with children as tree-local references (`>= 0` a split of the
/// same tree, `< 0` leaf `!child` of the same tree).
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    Numerical {
        feature: u32,
        threshold: f64,
        default_left: bool,
        missing: MissingType,
        left: i32,
        right: i32,
    },
    /// Categories (non-negative integers) in `left_categories` go left; any other value, NaN
    /// and negatives included, goes right.
    Categorical {
        feature: u32,
        left_categories: Vec<u32>,
        left: i32,
        right: i32,
    },
}

/// Which values take a numerical split's default direction instead of being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingType {
    /// None: NaN is compared as 0.0 (LightGBM), so it goes where 0.0 goes.
    None,
    /// Values within 1e-35 of zero, and NaN, take the default direction.
    Zero,
    /// NaN takes the default direction (LightGBM's `NaN` type; XGBoost's only kind).
    NaN,
}

impl EnsembleBuilder {
    pub fn new(num_features: usize, num_outputs: usize, comparison: Comparison, transform: Transform) -> Self {
        EnsembleBuilder {
            ensemble: Ensemble {
                num_features,
                num_outputs: num_outputs.max(1),
                roots: Vec::new(),
                nodes: Vec::new(),
                cat_bits: Vec::new(),
                comparison,
                transform,
                base: vec![0.0; num_outputs.max(1)],
                average: false,
                tiny_as_zero: false,
                feature_names: Vec::new(),
                quick: None,
            },
            trees: Vec::new(),
        }
    }

    pub fn feature_names(mut self, names: Vec<String>) -> Self {
        self.ensemble.feature_names = names;
        self
    }

    pub fn base_scores(mut self, base: Vec<f64>) -> Result<Self, ModelError> {
        if base.len() != self.ensemble.num_outputs {
            return Err(ModelError::new(format!(
                "{} base scores for {} outputs",
                base.len(),
                self.ensemble.num_outputs
            )));
        }
        self.ensemble.base = base;
        Ok(self)
    }

    /// Score values within 1e-35 of zero as 0.0, as LightGBM's `predict` does.
    pub fn tiny_as_zero(mut self, tiny_as_zero: bool) -> Self {
        self.ensemble.tiny_as_zero = tiny_as_zero;
        self
    }

    pub fn average(mut self, average: bool) -> Self {
        self.ensemble.average = average;
        self
    }

    /// Adds a tree that adds to `output`. `splits[0]` is the root; a tree without splits is a
    /// single leaf.
    pub fn tree(&mut self, output: usize, splits: &[Split], leaf_values: &[f64]) -> Result<(), ModelError> {
        let e = &self.ensemble;
        if output >= e.num_outputs {
            return Err(ModelError::new(format!("tree adds to output {output} of {}", e.num_outputs)));
        }
        if leaf_values.len() != splits.len() + 1 {
            return Err(ModelError::new(format!(
                "a tree with {} splits has {} leaves, not {}",
                splits.len(),
                splits.len() + 1,
                leaf_values.len()
            )));
        }
        for split in splits {
            if let Split::Numerical { threshold, .. } = split {
                if threshold.is_nan() {
                    return Err(ModelError::new("a split with a NaN threshold"));
                }
            }
            let (feature, left, right) = match split {
                Split::Numerical { feature, left, right, .. } | Split::Categorical { feature, left, right, .. } => {
                    (*feature, *left, *right)
                }
            };
            if feature as usize >= e.num_features || feature > u32::from(u16::MAX) {
                return Err(ModelError::new(format!(
                    "a split on feature {feature} of a model with {} features",
                    e.num_features
                )));
            }
            for child in [left, right] {
                let in_range = if child >= 0 {
                    child != 0 && (child as usize) < splits.len()
                } else {
                    ((!child) as usize) < leaf_values.len()
                };
                if !in_range {
                    return Err(ModelError::new(format!("child {child} is out of range (or the root)")));
                }
            }
        }
        self.trees.push((output, splits.to_vec(), leaf_values.to_vec()));
        Ok(())
    }

    /// Lays every tree out depth first and returns the ensemble, after checking that each tree
    /// is a tree (no split reached twice, so no walk can loop).
    pub fn build(mut self) -> Result<Ensemble, ModelError> {
        check_shape(self.ensemble.num_features, self.ensemble.num_outputs)?;
        let trees = std::mem::take(&mut self.trees);
        for (output, splits, leaves) in &trees {
            let (root, depth) = self.lay_out(splits, leaves)?;
            self.ensemble.roots.push((root, *output as u32, depth));
        }
        let e = &self.ensemble;
        self.ensemble.quick = Quick::build(&trees, e.num_features, e.num_outputs, e.comparison, e.tiny_as_zero);
        Ok(self.ensemble)
    }

    /// Appends one tree in depth-first order; returns the index of its root and its depth.
    fn lay_out(&mut self, splits: &[Split], leaves: &[f64]) -> Result<(u32, u32), ModelError> {
        let e = &mut self.ensemble;
        let root = u32::try_from(e.nodes.len()).map_err(|_| ModelError::new("too many nodes"))?;
        let mut seen = vec![false; splits.len()];
        // (tree-local child, index of the parent whose `right` it fills, or none for the root and
        // left children, which come right after their parent).
        let mut stack: Vec<(i32, Option<usize>, u32)> = vec![(if splits.is_empty() { !0 } else { 0 }, None, 0)];
        let mut depth = 0;
        while let Some((child, parent, level)) = stack.pop() {
            depth = depth.max(level);
            let index = e.nodes.len();
            if let Some(parent) = parent {
                e.nodes[parent].right = u32::try_from(index).map_err(|_| ModelError::new("too many nodes"))?;
            }
            if child < 0 {
                e.nodes.push(Node {
                    value: leaves[(!child) as usize].to_bits(),
                    right: 0,
                    feature: 0,
                    flags: LEAF,
                    missing: 0,
                });
                continue;
            }
            let i = child as usize;
            if std::mem::replace(&mut seen[i], true) {
                return Err(ModelError::new(format!("split {i} is reached twice: not a tree")));
            }
            let (node, left, right) = match &splits[i] {
                Split::Numerical { feature, threshold, default_left, missing, left, right } => {
                    let missing = match missing {
                        MissingType::None => 0,
                        MissingType::Zero => IS_ZERO | IS_NAN,
                        MissingType::NaN => IS_NAN,
                    };
                    let flags = NUMERICAL | if *default_left { DEFAULT_LEFT } else { 0 };
                    (
                        Node { value: threshold.to_bits(), right: 0, feature: *feature as u16, flags, missing },
                        *left,
                        *right,
                    )
                }
                Split::Categorical { feature, left_categories, left, right } => {
                    let node = if left_categories.iter().all(|&c| c < 64) {
                        let mask = left_categories.iter().fold(0u64, |m, &c| m | 1 << c);
                        Node { value: mask, right: 0, feature: *feature as u16, flags: CATEGORY_MASK, missing: 0 }
                    } else {
                        let words = left_categories.iter().map(|c| c / 32 + 1).max().unwrap_or(0) as usize;
                        let start = e.cat_bits.len();
                        e.cat_bits.resize(start + words, 0);
                        for &c in left_categories {
                            e.cat_bits[start + (c / 32) as usize] |= 1 << (c % 32);
                        }
                        let value = ((start as u64) << 32) | words as u64;
                        Node { value, right: 0, feature: *feature as u16, flags: CATEGORY_TABLE, missing: 0 }
                    };
                    (node, *left, *right)
                }
            };
            e.nodes.push(node);
            // The right subtree is laid out after the whole left one; the stack is LIFO.
            stack.push((right, Some(index), level + 1));
            stack.push((left, None, level + 1));
        }
        Ok((root, depth))
    }
}

thread_local! {
    /// Each thread's prepared rows: values with NaN as 0.0, and their classes.
    static PREPARED: RefCell<(Vec<f64>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Ensemble {
    pub fn num_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The features some split reads as a category, in increasing order.
    pub fn categorical_features(&self) -> Vec<usize> {
        let mut features: Vec<usize> = self
            .nodes
            .iter()
            .filter(|n| matches!(n.flags & KIND, CATEGORY_MASK | CATEGORY_TABLE))
            .map(|n| usize::from(n.feature))
            .collect();
        features.sort_unstable();
        features.dedup();
        features
    }

    /// How the trees are evaluated: `"quickscorer"` when every tree has at most 64 leaves,
    /// else `"nodes"` (the node walker).
    pub fn layout(&self) -> &'static str {
        if self.quick.is_some() {
            "quickscorer"
        } else {
            "nodes"
        }
    }

    /// The same ensemble scored by the node walker only: for comparisons and benchmarks.
    #[doc(hidden)]
    pub fn node_walker(mut self) -> Self {
        self.quick = None;
        self
    }

    /// The same ensemble scored by QuickScorer's lists alone, without its dense tables: for
    /// comparisons and benchmarks.
    #[doc(hidden)]
    pub fn quickscorer_lists(mut self) -> Self {
        if let Some(quick) = &mut self.quick {
            quick.drop_dense();
        }
        self
    }

    /// The same ensemble scored by QuickScorer in baseline instructions only, whatever SIMD the
    /// CPU has: for the tests of the portable code and for comparisons.
    #[doc(hidden)]
    pub fn quickscorer_portable(mut self) -> Self {
        if let Some(quick) = &mut self.quick {
            quick.portable = true;
        }
        self
    }

    /// The output of the leaf a prepared row ends in, for the tree rooted at `node`.
    ///
    /// Each step is computed without data-dependent branches: which way a split goes is
    /// unpredictable by nature, and mispredicted branches bounded the first version of this loop
    /// (16 ns a node on the CTR-like test model). Every kind of test is computed and the right
    /// one selected; only the loop's exit at a leaf is a branch.
    #[inline(always)]
    fn walk(&self, mut node: usize, values: &[f64], classes: &[u8]) -> f64 {
        loop {
            let n = self.nodes[node];
            let kind = n.flags & KIND;
            if kind == LEAF {
                return f64::from_bits(n.value);
            }
            let f = n.feature as usize;
            let x = values[f];
            let class = classes[f];
            // Numerical: missing values take the default direction, the rest compare.
            let missing = class & n.missing != 0;
            let compared = match self.comparison {
                Comparison::LessEqualF64 => x <= f64::from_bits(n.value),
                Comparison::LessF32 => (x as f32) < (f64::from_bits(n.value) as f32),
            };
            let numerical = (missing & (n.flags & DEFAULT_LEFT != 0)) | (!missing & compared);
            // Categorical: NaN and negatives go right; otherwise the value truncated toward zero
            // (as C++ casts) goes left when its bit is set, in the node or in the side table.
            let category = x as i64;
            let valid = (class & IS_NAN == 0) & (category >= 0);
            let in_mask = valid & (category < 64) & ((n.value >> (category & 63)) & 1 == 1);
            let word = (category >> 5) as u64;
            let bits = self.cat_bits.get((n.value >> 32).wrapping_add(word) as usize).copied().unwrap_or(0);
            let in_table = valid & (word < (n.value & 0xffff_ffff)) & ((bits >> (category & 31)) & 1 == 1);
            let go_left = if kind == NUMERICAL {
                numerical
            } else if kind == CATEGORY_MASK {
                in_mask
            } else {
                in_table
            };
            node = if go_left { node + 1 } else { n.right as usize };
        }
    }

    /// Adds to `margins` the output of every tree for one prepared row, in model order.
    #[inline(always)]
    fn row_raw(&self, values: &[f64], classes: &[u8], margins: &mut [f64]) {
        for &(root, output, _) in &self.roots {
            margins[output as usize] += self.walk(root as usize, values, classes);
        }
    }

    /// Raw margins of a block of rows; `raw` is overwritten.
    fn block_raw(&self, rows: &[f64], raw: &mut [f64], values: &mut Vec<f64>, classes: &mut Vec<u8>) {
        let nf = self.num_features;
        let no = self.num_outputs;
        values.clear();
        classes.clear();
        for &x in rows {
            let nan = x.is_nan();
            let value = if nan || (self.tiny_as_zero && x.abs() <= ZERO_THRESHOLD) { 0.0 } else { x };
            values.push(value);
            classes.push(if nan { IS_NAN | IS_ZERO } else { u8::from(value.abs() <= ZERO_THRESHOLD) * IS_ZERO });
        }
        raw.fill(0.0);
        for ((v, c), margins) in values.chunks_exact(nf).zip(classes.chunks_exact(nf)).zip(raw.chunks_exact_mut(no)) {
            self.row_raw(v, c, margins);
        }
        self.finish_raw(raw);
    }

    /// Averaging (random forests) and base scores, applied as LightGBM and Treelite do.
    fn finish_raw(&self, raw: &mut [f64]) {
        let no = self.num_outputs;
        if self.average {
            let per_output = (self.roots.len() / no).max(1) as f64;
            for x in raw.iter_mut() {
                *x /= per_output;
            }
        }
        if self.base.iter().any(|&b| b != 0.0) {
            for margins in raw.chunks_exact_mut(no) {
                for (x, b) in margins.iter_mut().zip(&self.base) {
                    *x += b;
                }
            }
        }
    }
}

impl Scorer for Ensemble {
    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    fn transform(&self) -> Transform {
        self.transform
    }

    /// Rows in blocks of [`BLOCK_ROWS`]: by QuickScorer when the trees fit it, else walked
    /// tree by tree.
    fn predict_raw(&self, rows: &[f64], raw: &mut [f64]) {
        if let Some(quick) = self.quick.as_ref().filter(|_| self.num_features > 0) {
            raw.fill(0.0);
            quick.add_raw(rows, self.num_features, raw, BLOCK_ROWS);
            self.finish_raw(raw);
            return;
        }
        let nf = self.num_features.max(1);
        let no = self.num_outputs;
        PREPARED.with(|prepared| {
            let (values, classes) = &mut *prepared.borrow_mut();
            for (block, out) in rows.chunks(nf * BLOCK_ROWS).zip(raw.chunks_mut(no * BLOCK_ROWS)) {
                self.block_raw(block, out, values, classes);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x0 <= 1.5 ? (x1 in {1, 40} ? 10 : 20) : 30
    fn small() -> Ensemble {
        let mut b = EnsembleBuilder::new(2, 1, Comparison::LessEqualF64, Transform::Identity);
        b.tree(
            0,
            &[
                Split::Numerical {
                    feature: 0,
                    threshold: 1.5,
                    default_left: true,
                    missing: MissingType::NaN,
                    left: 1,
                    right: !2,
                },
                Split::Categorical { feature: 1, left_categories: vec![1, 40], left: !0, right: !1 },
            ],
            &[10.0, 20.0, 30.0],
        )
        .unwrap();
        b.tree(0, &[], &[0.5]).unwrap();
        b.build().unwrap()
    }

    fn score(e: &Ensemble, row: [f64; 2]) -> f64 {
        let mut out = [0.0];
        e.predict_raw(&row, &mut out);
        out[0]
    }

    #[test]
    fn walks_numerical_and_categorical_splits() {
        let e = small();
        assert_eq!(score(&e, [1.0, 1.0]), 10.5);
        assert_eq!(score(&e, [1.0, 40.0]), 10.5);
        assert_eq!(score(&e, [1.0, 40.9]), 10.5, "categories truncate like C++ casts");
        assert_eq!(score(&e, [1.0, 2.0]), 20.5);
        assert_eq!(score(&e, [1.0, f64::NAN]), 20.5, "NaN categories go right");
        assert_eq!(score(&e, [1.0, -1.0]), 20.5, "negative categories go right");
        assert_eq!(score(&e, [1.0, 1e300]), 20.5);
        assert_eq!(score(&e, [2.0, 1.0]), 30.5);
        assert_eq!(score(&e, [f64::NAN, 1.0]), 10.5, "NaN takes the default direction");
    }

    #[test]
    fn blocks_give_the_same_margins_as_single_rows() {
        let e = small();
        let rows: Vec<f64> = (0..37).flat_map(|i| [f64::from(i % 3), f64::from(i % 41)]).collect();
        let mut block = vec![0.0; 37];
        e.predict_raw(&rows, &mut block);
        for (i, row) in rows.chunks(2).enumerate() {
            assert_eq!(block[i], score(&e, [row[0], row[1]]));
        }
    }

    #[test]
    fn refuses_malformed_trees() {
        let mut b = EnsembleBuilder::new(1, 1, Comparison::LessEqualF64, Transform::Identity);
        let bad_feature = [Split::Numerical {
            feature: 3,
            threshold: 0.0,
            default_left: false,
            missing: MissingType::None,
            left: !0,
            right: !1,
        }];
        assert!(b.tree(0, &bad_feature, &[1.0, 2.0]).is_err());
        let bad_leaf = [Split::Numerical {
            feature: 0,
            threshold: 0.0,
            default_left: false,
            missing: MissingType::None,
            left: !0,
            right: !5,
        }];
        assert!(b.tree(0, &bad_leaf, &[1.0, 2.0]).is_err());
        let cycle = [
            Split::Numerical {
                feature: 0,
                threshold: 0.0,
                default_left: false,
                missing: MissingType::None,
                left: 1,
                right: !0,
            },
            Split::Numerical {
                feature: 0,
                threshold: 0.0,
                default_left: false,
                missing: MissingType::None,
                left: 1,
                right: !1,
            },
        ];
        b.tree(0, &cycle, &[1.0, 2.0, 3.0]).unwrap();
        assert!(b.build().is_err());
    }
}
