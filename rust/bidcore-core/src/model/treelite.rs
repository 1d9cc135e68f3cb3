//! Treelite's model, read from the JSON that `treelite.Model.dump_as_json` writes (treelite
//! 4.8.1), into an [`Ensemble`] that routes every row as Treelite's reference predictor does.
//!
//! This is the door for the ensembles Treelite imports: XGBoost and scikit-learn (LightGBM too,
//! but its own text, read by [`super::lightgbm`], keeps LightGBM's zero-as-missing rule, which
//! Treelite cannot express). The rules kept are GTIL's (treelite `src/gtil/predict.cc`):
//!
//! * NaN takes the default child, at numerical and categorical splits alike.
//! * float32 models (XGBoost) compare `(float)x OP (float)threshold`, float64 models compare
//!   doubles. Each operator becomes the ensemble's one comparison (`<` on floats, `<=` on
//!   doubles) against the neighbouring threshold, children swapped for `>` and `>=`: the same
//!   side for every non-NaN input, infinities included.
//! * A categorical split matches a value that is not negative, truncated to an integer; the
//!   listed categories go right when `category_list_right_child`. The ensemble's categorical
//!   node sends NaN to its unlisted side and reads -0.5 as category 0, so where the default child
//!   is the listed side, or category 0 is listed, a numerical split on the same feature goes in
//!   front, and the subtree it also leads to is copied. (On the categorical XGBoost model of the
//!   tests this makes five times the leaves; a categorical split with a NaN direction in the
//!   ensemble itself would need none of it.) One difference is left: a float32 model reads a
//!   category from the value rounded to float32, so a code within float32 rounding of the next
//!   integer (2.9999999999999996) is category 3 there and 2 here. Codes are integers in practice.
//! * A leaf vector (scikit-learn classifiers) becomes one tree per output, splits repeated.
//!
//! Margins are summed in f64 in model order, then averaged, then the base scores are added.
//! XGBoost and GTIL sum float32 models in float32, so their margins differ from these by float32
//! rounding; the leaves reached are the same.

use serde_json::{Map, Value};

use super::ensemble::{check_shape, Comparison, Ensemble, EnsembleBuilder, MissingType, Split};
use super::error::ModelError;
use super::transform::Transform;

/// Copies made in front of categorical splits may grow a tree; past this many nodes it is refused.
const MAX_TREE_NODES: usize = 1 << 20;
/// Categories above this are refused: the ensemble keeps a bitset up to the largest one, and a
/// float32 model (XGBoost) cannot match them anyway.
const MAX_CATEGORY: u64 = 1 << 24;

type Object = Map<String, Value>;

impl Ensemble {
    /// Reads the JSON of a Treelite model (`treelite.Model.dump_as_json(pretty_print=False)`).
    pub fn from_treelite_json(text: &str) -> Result<Ensemble, ModelError> {
        let root: Value = serde_json::from_str(text).map_err(|e| {
            // rapidjson, which Treelite writes with, writes nothing for an infinite or NaN number.
            let hint = if text.contains("\":,") || text.contains("\":}") {
                " (a value is missing: Treelite writes infinite and NaN numbers as nothing; \
                 `bidcore.models.from_treelite` given the `treelite.Model` fills them in)"
            } else {
                ""
            };
            ModelError::new(format!("not a Treelite model JSON: {e}{hint}"))
        })?;
        let model = root.as_object().ok_or_else(|| ModelError::new("not a Treelite model JSON: not an object"))?;
        let header = Header::read(model)?;
        let trees = array(model, "trees")?;
        if trees.is_empty() {
            return Err(ModelError::new("the model has no trees"));
        }
        for (key, ids) in [("target_id", &header.target_id), ("class_id", &header.class_id)] {
            if ids.len() != trees.len() {
                return Err(ModelError::new(format!("{key} has {} entries for {} trees", ids.len(), trees.len())));
            }
        }
        let mut builder =
            EnsembleBuilder::new(header.num_features, header.num_outputs(), header.comparison, header.transform)
                .base_scores(header.base_scores.clone())?
                .average(header.average);
        let mut per_output = vec![0usize; header.num_outputs()];
        for (index, tree) in trees.iter().enumerate() {
            let outputs = header.outputs(index).map_err(|e| ModelError::new(format!("tree {index}: {e}")))?;
            let read = read_tree(tree, &header, &outputs).map_err(|e| ModelError::new(format!("tree {index}: {e}")))?;
            for (k, &output) in outputs.iter().enumerate() {
                builder.tree(output, &read.splits, &read.leaves[k])?;
                per_output[output] += 1;
            }
        }
        // The ensemble averages over trees per output; Treelite counts them per output too, and
        // the two agree only when every output has as many trees.
        if header.average && per_output.iter().any(|&n| n != per_output[0]) {
            return Err(ModelError::new(format!(
                "average_tree_output with outputs of unequal tree counts ({per_output:?}) is not supported"
            )));
        }
        builder.build()
    }
}

/// The model-wide fields, checked.
struct Header {
    num_features: usize,
    num_target: usize,
    /// Classes per target (Treelite allows a count per target; bidcore needs them equal).
    num_class: usize,
    leaf_vector_shape: (usize, usize),
    target_id: Vec<i64>,
    class_id: Vec<i64>,
    comparison: Comparison,
    transform: Transform,
    base_scores: Vec<f64>,
    average: bool,
}

impl Header {
    fn read(model: &Object) -> Result<Header, ModelError> {
        let threshold_type = string(model, "threshold_type")?;
        let comparison = match threshold_type {
            "float32" => Comparison::LessF32,
            "float64" => Comparison::LessEqualF64,
            other => return Err(ModelError::new(format!("threshold_type {other:?} is not supported"))),
        };
        let leaf_type = string(model, "leaf_output_type")?;
        if leaf_type != "float32" && leaf_type != "float64" {
            return Err(ModelError::new(format!("leaf_output_type {leaf_type:?} is not supported")));
        }
        let num_target = count(model, "num_target")?;
        if num_target == 0 {
            return Err(ModelError::new("num_target is 0"));
        }
        let classes = array(model, "num_class")?
            .iter()
            .map(|v| {
                v.as_u64()
                    .filter(|&c| c > 0)
                    .ok_or_else(|| ModelError::new("num_class has a count that is not positive"))
            })
            .collect::<Result<Vec<u64>, _>>()?;
        if classes.len() != num_target {
            return Err(ModelError::new(format!("num_class has {} counts for {num_target} targets", classes.len())));
        }
        if classes.iter().any(|&c| c != classes[0]) {
            return Err(ModelError::new(format!(
                "targets with different class counts ({classes:?}) are not supported"
            )));
        }
        let num_class = usize::try_from(classes[0]).map_err(|_| ModelError::new("num_class is too large"))?;
        let shape = integers(model, "leaf_vector_shape")?;
        let leaf_vector_shape = match shape[..] {
            [t, c] if t >= 1 && c >= 1 => (t as usize, c as usize),
            _ => return Err(ModelError::new(format!("leaf_vector_shape {shape:?} is not two positive sizes"))),
        };
        let postprocessor = string(model, "postprocessor")?;
        let alpha = || number(model, "sigmoid_alpha");
        let transform = match postprocessor {
            "identity" | "identity_multiclass" => Transform::Identity,
            "sigmoid" => Transform::Sigmoid { alpha: alpha()? },
            "multiclass_ova" => Transform::SigmoidEach { alpha: alpha()? },
            "exponential" => Transform::Exp,
            "softmax" if num_target == 1 => Transform::Softmax,
            "softmax" => return Err(ModelError::new("softmax over several targets is not supported")),
            other => return Err(ModelError::new(format!("postprocessor {other:?} is not supported"))),
        };
        let header = Header {
            num_features: count(model, "num_feature")?,
            num_target,
            num_class,
            leaf_vector_shape,
            target_id: integers(model, "target_id")?,
            class_id: integers(model, "class_id")?,
            comparison,
            transform,
            base_scores: array(model, "base_scores")?
                .iter()
                .map(|v| as_number(v).ok_or_else(|| ModelError::new("base_scores has a value that is not a number")))
                .collect::<Result<_, _>>()?,
            average: boolean(model, "average_tree_output")?,
        };
        if header.base_scores.len() != header.num_outputs() {
            return Err(ModelError::new(format!(
                "{} base scores for {num_target} targets of {num_class} classes",
                header.base_scores.len()
            )));
        }
        check_shape(header.num_features, header.num_outputs())?;
        Ok(header)
    }

    /// Outputs are Treelite's (target, class) pairs, target-major. (Saturating: a count too large
    /// to hold matches no list of base scores, and is refused.)
    fn num_outputs(&self) -> usize {
        self.num_target.saturating_mul(self.num_class)
    }

    /// The outputs tree `index` adds to, in the order of its leaf vectors (GTIL's
    /// `OutputLeafVector`): one for a tree of one target and class, or all targets, or all
    /// classes, or all of both (-1 means all).
    fn outputs(&self, index: usize) -> Result<Vec<usize>, ModelError> {
        let (t, c) = (self.target_id[index], self.class_id[index]);
        let (nt, nc) = (self.num_target as i64, self.num_class as i64);
        if t < -1 || t >= nt || c < -1 || c >= nc {
            return Err(ModelError::new(format!("target {t}, class {c} out of range")));
        }
        let targets: Vec<i64> = if t == -1 { (0..nt).collect() } else { vec![t] };
        let classes: Vec<i64> = if c == -1 { (0..nc).collect() } else { vec![c] };
        if self.leaf_vector_shape != (targets.len(), classes.len()) {
            return Err(ModelError::new(format!(
                "leaf_vector_shape {:?} does not fit target {t}, class {c}",
                self.leaf_vector_shape
            )));
        }
        Ok(targets.iter().flat_map(|&t| classes.iter().map(move |&c| (t * nc + c) as usize)).collect())
    }
}

/// One Treelite tree in the builder's terms: splits (root first) and, per output, leaf values.
struct Tree {
    splits: Vec<Split>,
    leaves: Vec<Vec<f64>>,
}

/// Where a child reference is written: a side of an emitted split.
#[derive(Clone, Copy)]
enum Slot {
    Root,
    Left(usize),
    Right(usize),
}

fn read_tree(tree: &Value, header: &Header, outputs: &[usize]) -> Result<Tree, ModelError> {
    let tree = tree.as_object().ok_or_else(|| ModelError::new("not an object"))?;
    let nodes = array(tree, "nodes")?;
    if let Some(n) = tree.get("num_nodes") {
        if n.as_u64() != Some(nodes.len() as u64) {
            return Err(ModelError::new(format!("num_nodes {n} but {} nodes", nodes.len())));
        }
    }
    let nodes = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| Node::read(node, i, nodes.len(), header, outputs.len()).map_err(|e| at_node(i, e)))
        .collect::<Result<Vec<Node>, _>>()?;
    if nodes.is_empty() {
        return Err(ModelError::new("no nodes"));
    }
    // Every node but the root has at most one parent, and the root none: what is reachable from
    // the root is then a tree, and the walk below ends.
    let mut parents = vec![0u8; nodes.len()];
    for node in &nodes {
        if let Node::Numerical { left, right, .. } | Node::Categorical { left, right, .. } = node {
            for child in [*left, *right] {
                parents[child] += 1;
                if child == 0 {
                    return Err(ModelError::new("the root is a child: not a tree"));
                }
                if parents[child] > 1 {
                    return Err(ModelError::new(format!("node {child} is reached twice: not a tree")));
                }
            }
        }
    }
    let mut out = Tree { splits: Vec::new(), leaves: vec![Vec::new(); outputs.len()] };
    let mut pending = vec![(0usize, Slot::Root)];
    while let Some((id, slot)) = pending.pop() {
        if out.splits.len() + out.leaves[0].len() > MAX_TREE_NODES {
            return Err(ModelError::new(format!(
                "more than {MAX_TREE_NODES} nodes once categorical splits are rewritten"
            )));
        }
        let reference = match &nodes[id] {
            Node::Leaf(values) => {
                let leaf = out.leaves[0].len();
                for (column, &v) in out.leaves.iter_mut().zip(values) {
                    column.push(v);
                }
                !(leaf as i32)
            }
            node => {
                let entry = out.splits.len() as i32;
                emit_split(node, header.comparison, &mut out.splits, &mut pending);
                entry
            }
        };
        match slot {
            Slot::Root => {}
            Slot::Left(s) => set_child(&mut out.splits[s], true, reference),
            Slot::Right(s) => set_child(&mut out.splits[s], false, reference),
        }
    }
    Ok(out)
}

fn at_node(i: usize, e: ModelError) -> ModelError {
    ModelError::new(format!("node {i}: {e}"))
}

/// A Treelite node, checked. Children are node indices.
enum Node {
    Leaf(Vec<f64>),
    Numerical {
        feature: u32,
        op: Op,
        threshold: f64,
        default_left: bool,
        left: usize,
        right: usize,
    },
    Categorical {
        feature: u32,
        categories: Vec<u32>,
        listed_right: bool,
        default_left: bool,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

impl Node {
    fn read(node: &Value, index: usize, num_nodes: usize, header: &Header, width: usize) -> Result<Node, ModelError> {
        let node = node.as_object().ok_or_else(|| ModelError::new("not an object"))?;
        if let Some(id) = node.get("node_id") {
            if id.as_u64() != Some(index as u64) {
                return Err(ModelError::new(format!("node_id {id} out of order")));
            }
        }
        if let Some(value) = node.get("leaf_value") {
            let values = match value {
                Value::Array(items) => items.iter().map(as_number).collect::<Option<Vec<f64>>>(),
                scalar => as_number(scalar).map(|v| vec![v]),
            }
            .ok_or_else(|| ModelError::new("leaf_value is not a number or a list of numbers"))?;
            if values.len() != width {
                return Err(ModelError::new(format!("a leaf of {} values for {width} outputs", values.len())));
            }
            return Ok(Node::Leaf(values));
        }
        let feature = count(node, "split_feature_id")?;
        if feature >= header.num_features {
            return Err(ModelError::new(format!("a split on feature {feature} of {}", header.num_features)));
        }
        let feature = feature as u32;
        let default_left = boolean(node, "default_left")?;
        let child = |key: &str| -> Result<usize, ModelError> {
            let c = count(node, key)?;
            if c >= num_nodes {
                return Err(ModelError::new(format!("{key} {c} is out of range")));
            }
            Ok(c)
        };
        let (left, right) = (child("left_child")?, child("right_child")?);
        match string(node, "node_type")? {
            "numerical_test_node" => {
                let op = match string(node, "comparison_op")? {
                    "<" => Op::Less,
                    "<=" => Op::LessEqual,
                    ">" => Op::Greater,
                    ">=" => Op::GreaterEqual,
                    other => return Err(ModelError::new(format!("comparison_op {other:?} is not supported"))),
                };
                let threshold = number(node, "threshold")?;
                if threshold.is_nan() {
                    return Err(ModelError::new("the threshold is NaN"));
                }
                Ok(Node::Numerical { feature, op, threshold, default_left, left, right })
            }
            "categorical_test_node" => {
                let categories = array(node, "category_list")?
                    .iter()
                    .map(|v| v.as_u64().filter(|&c| c <= MAX_CATEGORY).map(|c| c as u32))
                    .collect::<Option<Vec<u32>>>()
                    .ok_or_else(|| {
                        ModelError::new(format!(
                            "category_list has a value that is not a category up to {MAX_CATEGORY}"
                        ))
                    })?;
                let listed_right = boolean(node, "category_list_right_child")?;
                Ok(Node::Categorical { feature, categories, listed_right, default_left, left, right })
            }
            other => Err(ModelError::new(format!("node_type {other:?} is not supported"))),
        }
    }
}

/// Appends the split (or the short chain of splits) that routes as `node` does, and queues its
/// exits: children of the Treelite node, some of them twice (copied) behind a guard.
fn emit_split(node: &Node, comparison: Comparison, splits: &mut Vec<Split>, pending: &mut Vec<(usize, Slot)>) {
    match *node {
        Node::Leaf(_) => unreachable!("leaves are not splits"),
        Node::Numerical { feature, op, threshold, default_left, left, right } => {
            let (threshold, swap) = rewrite(op, threshold, comparison);
            let (l, r) = if swap { (right, left) } else { (left, right) };
            let index = splits.len();
            splits.push(numerical(feature, threshold, default_left != swap));
            pending.push((l, Slot::Left(index)));
            pending.push((r, Slot::Right(index)));
        }
        Node::Categorical { feature, ref categories, listed_right, default_left, left, right } => {
            let (listed, other) = if listed_right { (right, left) } else { (left, right) };
            // The ensemble's categorical node sends NaN to its unlisted side and reads -0.5 as
            // category 0; guards on the same feature go in front where that differs. Each guard
            // passes the rest on to the split appended right after it.
            if default_left != listed_right {
                // NaN defaults to the listed side: it goes to (a copy of) `listed`.
                let index = splits.len();
                let next = (index + 1) as i32;
                splits.push(match comparison {
                    // (float)x < -inf never holds: everything but NaN goes right.
                    Comparison::LessF32 => guard(feature, f64::NEG_INFINITY, true, 0, next),
                    // x <= +inf always holds: everything but NaN goes left.
                    Comparison::LessEqualF64 => guard(feature, f64::INFINITY, false, next, 0),
                });
                let side = if comparison == Comparison::LessF32 { Slot::Left(index) } else { Slot::Right(index) };
                pending.push((listed, side));
            }
            if categories.contains(&0) {
                // Negative values are no category: they go to (a copy of) `other`, and so does
                // NaN, which only gets here when it defaults to `other`.
                let below_zero = match comparison {
                    Comparison::LessF32 => 0.0,
                    // The largest double below zero: x <= it is x < 0 (-0.0 is not below).
                    Comparison::LessEqualF64 => -f64::from_bits(1),
                };
                let index = splits.len();
                splits.push(guard(feature, below_zero, true, 0, (index + 1) as i32));
                pending.push((other, Slot::Left(index)));
            }
            let index = splits.len();
            splits.push(Split::Categorical { feature, left_categories: categories.clone(), left: 0, right: 0 });
            pending.push((listed, Slot::Left(index)));
            pending.push((other, Slot::Right(index)));
        }
    }
}

/// A numerical split in front of a categorical one; a child of 0 is filled in later.
fn guard(feature: u32, threshold: f64, default_left: bool, left: i32, right: i32) -> Split {
    Split::Numerical { feature, threshold, default_left, missing: MissingType::NaN, left, right }
}

fn numerical(feature: u32, threshold: f64, default_left: bool) -> Split {
    Split::Numerical { feature, threshold, default_left, missing: MissingType::NaN, left: 0, right: 0 }
}

fn set_child(split: &mut Split, left_side: bool, reference: i32) {
    let (Split::Numerical { left, right, .. } | Split::Categorical { left, right, .. }) = split;
    if left_side {
        *left = reference;
    } else {
        *right = reference;
    }
}

/// `(threshold, swap)` such that, for every non-NaN `x`, `x op t` holds exactly when the
/// ensemble's comparison of `x` with `threshold` differs from `swap`.
fn rewrite(op: Op, t: f64, comparison: Comparison) -> (f64, bool) {
    match comparison {
        // (float)x < (float)threshold.
        Comparison::LessF32 => {
            let t = t as f32;
            // x <= t is x < next_up(t), except for t = +inf, where it always holds: not x < -inf.
            let at_most = |negate: bool| {
                if t == f32::INFINITY {
                    (f64::NEG_INFINITY, !negate)
                } else {
                    (f64::from(next_up_f32(t)), negate)
                }
            };
            match op {
                Op::Less => (f64::from(t), false),
                Op::GreaterEqual => (f64::from(t), true),
                Op::LessEqual => at_most(false),
                Op::Greater => at_most(true),
            }
        }
        // x <= threshold, on doubles.
        Comparison::LessEqualF64 => {
            // x < t is x <= next_down(t), except for t = -inf, where it never holds: not x <= +inf.
            let below = |negate: bool| {
                if t == f64::NEG_INFINITY {
                    (f64::INFINITY, !negate)
                } else {
                    (next_down_f64(t), negate)
                }
            };
            match op {
                Op::LessEqual => (t, false),
                Op::Greater => (t, true),
                Op::Less => below(false),
                Op::GreaterEqual => below(true),
            }
        }
    }
}

/// The least float above `x` (not NaN, not +inf). `f32::next_up` is newer than our MSRV.
fn next_up_f32(x: f32) -> f32 {
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// The greatest double below `x` (not NaN, not -inf).
fn next_down_f64(x: f64) -> f64 {
    if x == 0.0 {
        return -f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits - 1 } else { bits + 1 })
}

fn field<'v>(object: &'v Object, key: &str) -> Result<&'v Value, ModelError> {
    object.get(key).ok_or_else(|| ModelError::new(format!("no {key}")))
}

fn string<'v>(object: &'v Object, key: &str) -> Result<&'v str, ModelError> {
    field(object, key)?.as_str().ok_or_else(|| ModelError::new(format!("{key} is not a string")))
}

fn boolean(object: &Object, key: &str) -> Result<bool, ModelError> {
    field(object, key)?.as_bool().ok_or_else(|| ModelError::new(format!("{key} is not true or false")))
}

/// A JSON number, or one of the strings `"inf"`, `"-inf"`, `"nan"`. rapidjson, which Treelite
/// writes with, writes nothing at all for those values (scikit-learn's splits that send only
/// missing values right have threshold +inf); `bidcore.models.from_treelite` fills the holes in
/// from the model's arrays, as these strings.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => match s.as_str() {
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" => Some(f64::NAN),
            _ => None,
        },
        number => number.as_f64(),
    }
}

fn number(object: &Object, key: &str) -> Result<f64, ModelError> {
    as_number(field(object, key)?).ok_or_else(|| ModelError::new(format!("{key} is not a number")))
}

fn count(object: &Object, key: &str) -> Result<usize, ModelError> {
    field(object, key)?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ModelError::new(format!("{key} is not a count")))
}

fn array<'v>(object: &'v Object, key: &str) -> Result<&'v Vec<Value>, ModelError> {
    field(object, key)?.as_array().ok_or_else(|| ModelError::new(format!("{key} is not a list")))
}

fn integers(object: &Object, key: &str) -> Result<Vec<i64>, ModelError> {
    array(object, key)?
        .iter()
        .map(Value::as_i64)
        .collect::<Option<_>>()
        .ok_or_else(|| ModelError::new(format!("{key} has a value that is not an integer")))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::model::Scorer;

    /// A model's header around `trees`, one target and one output unless `extra` says otherwise.
    fn model(threshold_type: &str, trees: Value, extra: Value) -> Value {
        let count = trees.as_array().map_or(0, Vec::len);
        let mut m = json!({
            "threshold_type": threshold_type, "leaf_output_type": threshold_type, "num_feature": 3,
            "task_type": "kRegressor", "average_tree_output": false, "num_target": 1, "num_class": [1],
            "leaf_vector_shape": [1, 1], "target_id": vec![0; count], "class_id": vec![0; count],
            "postprocessor": "identity", "sigmoid_alpha": 1.0, "ratio_c": 1.0, "base_scores": [0.0],
            "attributes": "{}", "trees": trees,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        m
    }

    fn num(id: usize, feature: u32, op: &str, threshold: f64, default_left: bool, l: usize, r: usize) -> Value {
        json!({"node_id": id, "split_feature_id": feature, "default_left": default_left,
               "node_type": "numerical_test_node", "comparison_op": op, "threshold": threshold,
               "left_child": l, "right_child": r})
    }

    fn cat(id: usize, feature: u32, list: &[u32], right: bool, default_left: bool, l: usize, r: usize) -> Value {
        json!({"node_id": id, "split_feature_id": feature, "default_left": default_left,
               "node_type": "categorical_test_node", "category_list_right_child": right,
               "category_list": list, "left_child": l, "right_child": r})
    }

    fn leaf(id: usize, value: Value) -> Value {
        json!({"node_id": id, "leaf_value": value})
    }

    fn read(m: &Value) -> Result<Ensemble, ModelError> {
        Ensemble::from_treelite_json(&m.to_string())
    }

    fn raw(e: &Ensemble, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; e.num_outputs()];
        e.predict_raw(row, &mut out);
        out
    }

    /// GTIL's walk (treelite `src/gtil/predict.cc`), summing in f64: the reference.
    fn gtil(m: &Value, row: &[f64]) -> Vec<f64> {
        let float32 = m["threshold_type"] == "float32";
        let input = |x: f64| if float32 { f64::from(x as f32) } else { x };
        let nt = m["num_target"].as_u64().unwrap() as usize;
        let nc = m["num_class"][0].as_u64().unwrap() as usize;
        let mut out = vec![0.0; nt * nc];
        let mut counts = vec![0.0; nt * nc];
        for (i, tree) in m["trees"].as_array().unwrap().iter().enumerate() {
            let nodes = tree["nodes"].as_array().unwrap();
            let mut id = 0;
            while nodes[id].get("leaf_value").is_none() {
                let n = &nodes[id];
                let x = input(row[n["split_feature_id"].as_u64().unwrap() as usize]);
                let (l, r) = (n["left_child"].as_u64().unwrap() as usize, n["right_child"].as_u64().unwrap() as usize);
                id = if x.is_nan() {
                    if n["default_left"].as_bool().unwrap() {
                        l
                    } else {
                        r
                    }
                } else if n["node_type"] == "categorical_test_node" {
                    let max = if float32 { 16_777_216.0 } else { f64::from(u32::MAX) };
                    let list: Vec<u64> =
                        n["category_list"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
                    let matched = !(x < 0.0 || x.abs() > max) && list.contains(&u64::from(x as u32));
                    if matched == n["category_list_right_child"].as_bool().unwrap() {
                        r
                    } else {
                        l
                    }
                } else {
                    let t = input(n["threshold"].as_f64().unwrap());
                    let holds = match n["comparison_op"].as_str().unwrap() {
                        "<" => x < t,
                        "<=" => x <= t,
                        ">" => x > t,
                        ">=" => x >= t,
                        other => panic!("{other}"),
                    };
                    if holds {
                        l
                    } else {
                        r
                    }
                };
            }
            let values: Vec<f64> = match &nodes[id]["leaf_value"] {
                Value::Array(v) => v.iter().map(|x| x.as_f64().unwrap()).collect(),
                x => vec![x.as_f64().unwrap()],
            };
            let (t, c) = (m["target_id"][i].as_i64().unwrap(), m["class_id"][i].as_i64().unwrap());
            let targets: Vec<usize> = if t < 0 { (0..nt).collect() } else { vec![t as usize] };
            let classes: Vec<usize> = if c < 0 { (0..nc).collect() } else { vec![c as usize] };
            let pairs = targets.iter().flat_map(|&t| classes.iter().map(move |&c| t * nc + c));
            for (k, o) in pairs.enumerate() {
                out[o] += values[k];
                counts[o] += 1.0;
            }
        }
        for (o, x) in out.iter_mut().enumerate() {
            if m["average_tree_output"] == true {
                *x /= counts[o];
            }
            *x += m["base_scores"][o].as_f64().unwrap();
        }
        out
    }

    const SPECIAL: [f64; 14] =
        [0.0, -0.0, 0.5, -0.5, 1.0, 2.0, 2.5, 3.0, 70.0, -1.0, 1e10, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

    /// The values where a walk can change its mind: every threshold and its neighbours (as
    /// doubles and as floats), the categories listed, and the special values.
    fn edge_values(m: &Value) -> Vec<f64> {
        let mut values = SPECIAL.to_vec();
        for tree in m["trees"].as_array().unwrap() {
            for n in tree["nodes"].as_array().unwrap() {
                if let Some(t) = n.get("threshold").and_then(Value::as_f64) {
                    let t32 = t as f32;
                    values.extend([t, next_down_f64(t), -next_down_f64(-t)]);
                    if t32.is_finite() {
                        values.extend([f64::from(next_up_f32(t32)), f64::from(-next_up_f32(-t32))]);
                    }
                }
                for c in n.get("category_list").and_then(Value::as_array).into_iter().flatten() {
                    values.push(c.as_f64().unwrap());
                }
            }
        }
        values
    }

    fn assert_agrees(m: &Value) {
        let e = read(m).unwrap();
        let float32 = m["threshold_type"] == "float32";
        // Known difference: a float32 model reads a category from the value rounded to a float
        // (2.9999999999999996 is category 3), the ensemble from the double (category 2).
        let same_category = |x: f64| !float32 || !x.is_finite() || f64::from(x as f32).trunc() == x.trunc();
        let values = edge_values(m);
        for &a in &values {
            for &b in &values {
                let row = [a, b, (a - b).abs()];
                if row.iter().all(|&x| same_category(x)) {
                    assert_eq!(raw(&e, &row), gtil(m, &row), "row {row:?}");
                }
            }
        }
    }

    #[test]
    fn reads_an_xgboost_like_float32_model() {
        // XGBoost writes `<` on floats and lists the categories that go right.
        let m = model(
            "float32",
            json!([
                {"num_nodes": 5, "has_categorical_split": true, "nodes": [
                    num(0, 0, "<", 0.1, true, 1, 2),
                    cat(1, 1, &[0, 2, 70], true, false, 3, 4),
                    leaf(2, json!(3.0)), leaf(3, json!(1.0)), leaf(4, json!(2.0)),
                ]},
                {"num_nodes": 1, "has_categorical_split": false, "nodes": [leaf(0, json!(0.25))]},
            ]),
            json!({"postprocessor": "sigmoid", "sigmoid_alpha": 1.0, "base_scores": [0.5]}),
        );
        let e = read(&m).unwrap();
        assert_eq!(e.num_trees(), 2);
        let at = |x0: f64, x1: f64| raw(&e, &[x0, x1, 0.0])[0];
        assert_eq!(at(0.0, 2.0), 2.0 + 0.25 + 0.5, "listed categories go right");
        assert_eq!(at(0.0, 1.0), 1.0 + 0.75);
        assert_eq!(at(0.0, 999.0), 1.0 + 0.75, "unseen categories go left");
        assert_eq!(at(0.0, -0.5), 1.0 + 0.75, "a negative value is no category, not category 0");
        assert_eq!(at(0.0, -0.0), 2.0 + 0.75, "-0.0 is category 0");
        assert_eq!(at(0.0, f64::NAN), 2.0 + 0.75, "NaN takes the default child, the listed side");
        assert_eq!(at(f64::NAN, 1.0), 1.0 + 0.75);
        // Compared as floats: 0.1 rounds to the threshold, 0.1f32, and is not below it.
        assert_eq!(at(0.1, 1.0), 3.0 + 0.75);
        assert_eq!(at(f64::from(-next_up_f32(-0.1f32)), 1.0), 1.0 + 0.75);
        let mut p = [0.0];
        e.predict(&[1.0, 0.0, 0.0], &mut p);
        assert_eq!(p[0], 1.0 / (1.0 + (-3.75f64).exp()));
        assert_agrees(&m);
    }

    #[test]
    fn rewrites_every_operator_exactly() {
        for threshold_type in ["float32", "float64"] {
            for op in ["<", "<=", ">", ">="] {
                for t in [0.1, -2.5, 0.0, 1e-40, f64::from(f32::MAX), -f64::MAX, 1e300] {
                    for default_left in [false, true] {
                        let split = num(0, 0, op, t, default_left, 1, 2);
                        let m = model(
                            threshold_type,
                            json!([{"nodes": [split, leaf(1, json!(1.0)), leaf(2, json!(2.0))]}]),
                            json!({}),
                        );
                        let e = read(&m).unwrap();
                        let mut values = edge_values(&m);
                        values.extend([f64::MAX, 3.5e38, -3.5e38, 1e-45, -1e-45, 1e-300]);
                        for x in values {
                            let row = [x, 0.0, 0.0];
                            assert_eq!(raw(&e, &row), gtil(&m, &row), "{threshold_type}: {x} {op} {t}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reads_infinite_thresholds_written_as_strings() {
        // scikit-learn's split for "missing or not": x <= +inf goes left, NaN right.
        let m = model(
            "float64",
            json!([{"nodes": [num(0, 0, "<=", 0.0, false, 1, 2), leaf(1, json!(1.0)), leaf(2, json!(2.0))]}]),
            json!({}),
        );
        let text = m.to_string().replace("\"threshold\":0.0", "\"threshold\":\"inf\"");
        let e = Ensemble::from_treelite_json(&text).unwrap();
        for (x, want) in [(f64::INFINITY, 1.0), (1e308, 1.0), (f64::NEG_INFINITY, 1.0), (f64::NAN, 2.0)] {
            assert_eq!(raw(&e, &[x, 0.0, 0.0]), [want], "{x}");
        }
        let nan = m.to_string().replace("\"threshold\":0.0", "\"threshold\":\"nan\"");
        assert!(Ensemble::from_treelite_json(&nan).unwrap_err().0.contains("NaN"));
        let other = m.to_string().replace("\"threshold\":0.0", "\"threshold\":\"big\"");
        assert!(Ensemble::from_treelite_json(&other).unwrap_err().0.contains("threshold is not a number"));
    }

    /// Treelite's JSON cannot hold an infinite threshold (it writes nothing), but a rewritten
    /// split can need one, and must still be exact there.
    #[test]
    fn rewrites_infinite_thresholds_exactly() {
        let values = [f64::NEG_INFINITY, -f64::MAX, -3.5e38, -1.0, -0.0, 0.0, 1.0, 3.5e38, f64::MAX, f64::INFINITY];
        for (op, name) in [(Op::Less, "<"), (Op::LessEqual, "<="), (Op::Greater, ">"), (Op::GreaterEqual, ">=")] {
            for t in [f64::INFINITY, f64::NEG_INFINITY, f64::from(f32::MAX), -f64::from(f32::MAX)] {
                for comparison in [Comparison::LessF32, Comparison::LessEqualF64] {
                    let (threshold, swap) = rewrite(op, t, comparison);
                    for x in values {
                        let (xx, tt) = match comparison {
                            Comparison::LessF32 => (f64::from(x as f32), f64::from(t as f32)),
                            Comparison::LessEqualF64 => (x, t),
                        };
                        let want = match op {
                            Op::Less => xx < tt,
                            Op::LessEqual => xx <= tt,
                            Op::Greater => xx > tt,
                            Op::GreaterEqual => xx >= tt,
                        };
                        let got = match comparison {
                            Comparison::LessF32 => (x as f32) < (threshold as f32),
                            Comparison::LessEqualF64 => x <= threshold,
                        } != swap;
                        assert_eq!(got, want, "{comparison:?}: {x} {name} {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn reads_leaf_vectors_with_averaging() {
        // A scikit-learn random forest classifier: leaf vectors of class fractions, averaged.
        let m = model(
            "float64",
            json!([
                {"nodes": [num(0, 0, "<=", 0.5, true, 1, 2), leaf(1, json!([1.0, 0.0, 0.0])), leaf(2, json!([0.0, 0.25, 0.75]))]},
                {"nodes": [cat(0, 1, &[1, 3], false, false, 1, 2), leaf(1, json!([0.0, 1.0, 0.0])), leaf(2, json!([0.5, 0.5, 0.0]))]},
            ]),
            json!({"task_type": "kMultiClf", "num_class": [3], "leaf_vector_shape": [1, 3], "target_id": [-1, -1],
                   "class_id": [-1, -1], "average_tree_output": true, "postprocessor": "identity_multiclass",
                   "base_scores": [0.0, 0.0, 0.0]}),
        );
        let e = read(&m).unwrap();
        assert_eq!(e.num_outputs(), 3);
        assert_eq!(raw(&e, &[0.0, 3.0, 0.0]), [0.5, 0.5, 0.0]);
        assert_eq!(raw(&e, &[1.0, 0.0, 0.0]), [0.25, 0.375, 0.375]);
        assert_eq!(raw(&e, &[f64::NAN, f64::NAN, 0.0]), [0.75, 0.25, 0.0]);
        assert_agrees(&m);
    }

    #[test]
    fn reads_one_tree_per_class() {
        // XGBoost multi:softprob: trees take turns over the classes.
        let tree = |v: f64| json!({"nodes": [num(0, 2, "<", 1.0, false, 1, 2), leaf(1, json!(v)), leaf(2, json!(-v))]});
        let m = model(
            "float32",
            json!([tree(1.0), tree(2.0), tree(3.0), tree(0.5)]),
            json!({"task_type": "kMultiClf", "num_class": [3], "target_id": [0, 0, 0, 0], "class_id": [0, 1, 2, 0],
                   "postprocessor": "softmax", "base_scores": [0.5, 0.5, 0.5]}),
        );
        let e = read(&m).unwrap();
        assert_eq!(raw(&e, &[0.0, 0.0, 0.0]), [2.0, 2.5, 3.5]);
        let mut p = [0.0; 3];
        e.predict(&[0.0, 0.0, 0.0], &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15 && p[2] > p[1]);
        assert_agrees(&m);
    }

    #[test]
    fn an_empty_category_list_matches_nothing() {
        // Treelite allows it: every value but NaN goes to the unlisted side.
        for threshold_type in ["float32", "float64"] {
            let m = model(
                threshold_type,
                json!([{"nodes": [
                    num(0, 0, "<", 0.1, false, 1, 2),
                    cat(1, 0, &[], false, false, 3, 4),
                    leaf(2, json!(1.0)), leaf(3, json!(2.0)), leaf(4, json!(3.0)),
                ]}]),
                json!({}),
            );
            assert_eq!(raw(&read(&m).unwrap(), &[0.0, 0.0, 0.0]), [3.0], "{threshold_type}");
            assert_agrees(&m);
        }
    }

    #[test]
    fn maps_the_postprocessors_it_can_and_refuses_the_rest() {
        let one = json!([{"nodes": [leaf(0, json!(1.0))]}]);
        let transform = |name: &str, alpha: f64| {
            read(&model("float64", one.clone(), json!({"postprocessor": name, "sigmoid_alpha": alpha})))
                .map(|e| e.transform())
        };
        assert_eq!(transform("sigmoid", 2.0), Ok(Transform::Sigmoid { alpha: 2.0 }));
        assert_eq!(transform("identity", 1.0), Ok(Transform::Identity));
        assert_eq!(transform("exponential", 1.0), Ok(Transform::Exp));
        assert_eq!(transform("multiclass_ova", 1.0), Ok(Transform::SigmoidEach { alpha: 1.0 }));
        for name in ["hinge", "signed_square", "exponential_standard_ratio", "logarithm_one_plus_exp", "mystery"] {
            assert!(transform(name, 1.0).unwrap_err().0.contains("not supported"), "{name}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let good = json!([{"nodes": [num(0, 0, "<", 1.0, false, 1, 2), leaf(1, json!(1.0)), leaf(2, json!(2.0))]}]);
        assert!(read(&model("float32", good.clone(), json!({}))).is_ok());
        let broken = |path: &[&str], value: Value| {
            let mut m = model("float32", good.clone(), json!({}));
            let mut at = &mut m;
            for key in path {
                at = match key.parse::<usize>() {
                    Ok(i) => &mut at[i],
                    Err(_) => &mut at[*key],
                };
            }
            *at = value;
            read(&m).unwrap_err().0
        };
        let node = ["trees", "0", "nodes", "0"];
        let at_node = |key: &'static str| -> Vec<&str> { node.iter().copied().chain([key]).collect() };
        assert!(broken(&at_node("comparison_op"), json!("==")).contains("comparison_op"));
        assert!(broken(&at_node("node_type"), json!("linear_node")).contains("node_type"));
        assert!(broken(&at_node("left_child"), json!(7)).contains("out of range"));
        assert!(broken(&at_node("left_child"), json!(2)).contains("reached twice"));
        assert!(broken(&at_node("left_child"), json!(0)).contains("root is a child"));
        assert!(broken(&at_node("split_feature_id"), json!(3)).contains("feature 3"));
        assert!(broken(&["trees", "0", "nodes", "1", "leaf_value"], json!([1.0, 2.0])).contains("2 values"));
        assert!(broken(&["threshold_type"], json!("uint32")).contains("threshold_type"));
        assert!(broken(&["num_class"], json!([2])).contains("base scores"));
        assert!(broken(&["num_target"], json!(u64::MAX)).contains("counts for"));
        let mut huge = model("float32", good.clone(), json!({"num_class": [u64::MAX]}));
        assert!(read(&huge).unwrap_err().0.contains("base scores"));
        huge["num_class"] = json!([-1]);
        assert!(read(&huge).unwrap_err().0.contains("not positive"));
        assert!(broken(&["class_id"], json!([1])).contains("out of range"));
        assert!(broken(&["target_id"], json!([0, 0])).contains("entries"));
        assert!(broken(&["trees"], json!([])).contains("no trees"));
        assert!(Ensemble::from_treelite_json("tree\nversion=v4").unwrap_err().0.contains("not a Treelite model"));
        let infinite =
            model("float64", good.clone(), json!({})).to_string().replace("\"threshold\":1.0", "\"threshold\":");
        assert!(Ensemble::from_treelite_json(&infinite).unwrap_err().0.contains("infinite"));
        let mut no_type = model("float32", good, json!({}));
        no_type.as_object_mut().unwrap().remove("threshold_type");
        assert!(read(&no_type).unwrap_err().0.contains("no threshold_type"));
    }

    /// A random tree as nested nodes, numbered depth first when written out.
    #[derive(Debug, Clone)]
    enum Shape {
        Leaf(i8),
        Num { feature: u32, op: usize, threshold: usize, default_left: bool, kids: Box<(Shape, Shape)> },
        Cat { feature: u32, list: Vec<u32>, right: bool, default_left: bool, kids: Box<(Shape, Shape)> },
    }

    const OPS: [&str; 4] = ["<", "<=", ">", ">="];
    const THRESHOLDS: [f64; 6] = [0.1, -0.5, 0.0, 2.5, 1e-3, 3.0];

    fn shapes() -> impl Strategy<Value = Shape> {
        any::<i8>().prop_map(Shape::Leaf).prop_recursive(5, 40, 2, |inner| {
            prop_oneof![
                (0u32..3, 0..OPS.len(), 0..THRESHOLDS.len(), any::<bool>(), inner.clone(), inner.clone()).prop_map(
                    |(feature, op, threshold, default_left, l, r)| Shape::Num {
                        feature,
                        op,
                        threshold,
                        default_left,
                        kids: Box::new((l, r))
                    }
                ),
                (
                    0u32..3,
                    // Empty lists have their own test (an_empty_category_list_matches_nothing).
                    proptest::sample::subsequence(vec![0u32, 1, 2, 3, 5, 63, 64, 70], 0..5),
                    any::<bool>(),
                    any::<bool>(),
                    inner.clone(),
                    inner
                )
                    .prop_map(|(feature, list, right, default_left, l, r)| Shape::Cat {
                        feature,
                        list,
                        right,
                        default_left,
                        kids: Box::new((l, r))
                    }),
            ]
        })
    }

    fn write(shape: &Shape, nodes: &mut Vec<Value>) -> usize {
        let id = nodes.len();
        nodes.push(Value::Null);
        nodes[id] = match shape {
            Shape::Leaf(v) => leaf(id, json!(f64::from(*v) / 8.0)),
            Shape::Num { feature, op, threshold, default_left, kids } => {
                let (l, r) = (write(&kids.0, nodes), write(&kids.1, nodes));
                num(id, *feature, OPS[*op], THRESHOLDS[*threshold], *default_left, l, r)
            }
            Shape::Cat { feature, list, right, default_left, kids } => {
                let (l, r) = (write(&kids.0, nodes), write(&kids.1, nodes));
                cat(id, *feature, list, *right, *default_left, l, r)
            }
        };
        id
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn routes_every_row_as_gtil_does(
            trees in proptest::collection::vec(shapes(), 1..4), float32: bool, base in -2i8..2,
        ) {
            let trees: Vec<Value> = trees.iter().map(|s| { let mut nodes = Vec::new(); write(s, &mut nodes); json!({"nodes": nodes}) }).collect();
            let m = model(if float32 { "float32" } else { "float64" }, json!(trees), json!({"base_scores": [f64::from(base)]}));
            assert_agrees(&m);
        }
    }
}
