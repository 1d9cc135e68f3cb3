//! LightGBM's model text, read into an [`Ensemble`] with LightGBM's own semantics.
//!
//! The text is what `Booster.save_model` writes: `key=value` header lines, then one block per
//! tree (`Tree=<n>` followed by `key=value` arrays), then `end of trees`. Thresholds are printed
//! with 17 significant digits, so parsing them gives back LightGBM's doubles exactly.

use std::collections::HashMap;

use super::ensemble::{check_shape, Comparison, Ensemble, EnsembleBuilder, MissingType, Split};
use super::error::ModelError;
use super::transform::Transform;

const CATEGORICAL_MASK: u8 = 1;
const DEFAULT_LEFT_MASK: u8 = 2;

impl Ensemble {
    /// Reads a LightGBM model text (`model.txt`).
    pub fn from_lightgbm_text(text: &str) -> Result<Ensemble, ModelError> {
        let (header, trees) = split_sections(text)?;
        let get = |key: &str| header.get(key).copied();
        let number = |key: &str, default: Option<usize>| -> Result<usize, ModelError> {
            match get(key) {
                Some(v) => v.trim().parse().map_err(|_| ModelError::new(format!("header {key}={v:?} is not a number"))),
                None => default.ok_or_else(|| ModelError::new(format!("the header has no {key}"))),
            }
        };
        let num_class = number("num_class", Some(1))?;
        let per_iteration = number("num_tree_per_iteration", Some(num_class))?;
        let num_features = number("max_feature_idx", None)?.saturating_add(1);
        check_shape(num_features, per_iteration)?;
        let transform =
            Transform::from_lightgbm_objective(get("objective").unwrap_or("regression")).map_err(ModelError::new)?;
        let names = get("feature_names").map(|v| v.split(' ').map(str::to_owned).collect()).unwrap_or_default();
        let mut builder = EnsembleBuilder::new(num_features, per_iteration, Comparison::LessEqualF64, transform)
            .feature_names(names)
            .average(header.contains_key("average_output"))
            .tiny_as_zero(true);
        for (index, tree) in trees.iter().enumerate() {
            read_tree(tree, index % per_iteration.max(1), &mut builder)
                .map_err(|e| ModelError::new(format!("Tree={index}: {e}")))?;
        }
        builder.build()
    }
}

/// The header's `key=value` pairs (flags without `=` map to ""), and each tree's pairs.
type Section<'t> = HashMap<&'t str, &'t str>;

fn split_sections(text: &str) -> Result<(Section<'_>, Vec<Section<'_>>), ModelError> {
    let mut header = HashMap::new();
    let mut trees: Vec<Section<'_>> = Vec::new();
    let mut ended = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line == "end of trees" {
            ended = true;
            break;
        }
        if line.is_empty() {
            continue;
        }
        if line.starts_with("Tree=") {
            trees.push(HashMap::new());
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match trees.last_mut() {
            Some(tree) => tree.insert(key, value),
            None => header.insert(key, value),
        };
    }
    if !header.contains_key("tree") && !text.starts_with("tree") {
        return Err(ModelError::new("not a LightGBM model text: it does not start with `tree`"));
    }
    if !ended {
        return Err(ModelError::new("the model text is cut short: `end of trees` is missing"));
    }
    if trees.is_empty() {
        return Err(ModelError::new("the model has no trees"));
    }
    Ok((header, trees))
}

fn array<T: std::str::FromStr>(tree: &Section<'_>, key: &str, len: usize) -> Result<Vec<T>, ModelError> {
    let text = tree.get(key).copied().ok_or_else(|| ModelError::new(format!("no {key}")))?;
    let values: Vec<T> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| ModelError::new(format!("{key} has a value that is not a number")))?
    };
    if values.len() != len {
        return Err(ModelError::new(format!("{key} has {} values, not {len}", values.len())));
    }
    Ok(values)
}

fn scalar(tree: &Section<'_>, key: &str) -> Result<usize, ModelError> {
    let text = tree.get(key).copied().ok_or_else(|| ModelError::new(format!("no {key}")))?;
    text.trim().parse().map_err(|_| ModelError::new(format!("{key}={text:?} is not a number")))
}

fn read_tree(tree: &Section<'_>, output: usize, builder: &mut EnsembleBuilder) -> Result<(), ModelError> {
    if tree.get("is_linear").is_some_and(|v| v.trim() == "1") {
        return Err(ModelError::new("linear trees (linear_tree=true) are not supported"));
    }
    let leaves = scalar(tree, "num_leaves")?;
    if leaves == 0 {
        return Err(ModelError::new("num_leaves is 0"));
    }
    let splits_count = leaves - 1;
    let leaf_values: Vec<f64> = array(tree, "leaf_value", leaves)?;
    if splits_count == 0 {
        return builder.tree(output, &[], &leaf_values);
    }
    let features: Vec<u32> = array(tree, "split_feature", splits_count)?;
    let thresholds: Vec<f64> = array(tree, "threshold", splits_count)?;
    let decision: Vec<i16> = array(tree, "decision_type", splits_count)?;
    let left: Vec<i32> = array(tree, "left_child", splits_count)?;
    let right: Vec<i32> = array(tree, "right_child", splits_count)?;
    let num_cat = scalar(tree, "num_cat").unwrap_or(0);
    let (boundaries, bits): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let boundaries: Vec<usize> = array(tree, "cat_boundaries", num_cat + 1)?;
        let total = *boundaries.last().unwrap_or(&0);
        (boundaries, array(tree, "cat_threshold", total)?)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut splits = Vec::with_capacity(splits_count);
    for i in 0..splits_count {
        let kind = decision[i] as u8;
        let split = if kind & CATEGORICAL_MASK != 0 {
            // The threshold of a categorical split is the index of its bitset.
            let t = thresholds[i];
            let index = if t >= 0.0 && t.fract() == 0.0 && t < 1e9 { t as usize } else { usize::MAX };
            let (from, to) = match (boundaries.get(index), boundaries.get(index.saturating_add(1))) {
                (Some(&from), Some(&to)) if from <= to && to <= bits.len() => (from, to),
                _ => return Err(ModelError::new(format!("split {i}: categorical bitset {index} is out of range"))),
            };
            let left_categories = bits[from..to]
                .iter()
                .enumerate()
                .flat_map(|(w, &word)| (0..32).filter(move |b| word >> b & 1 == 1).map(move |b| (w * 32 + b) as u32))
                .collect();
            Split::Categorical { feature: features[i], left_categories, left: left[i], right: right[i] }
        } else {
            let missing = match (kind >> 2) & 3 {
                0 => MissingType::None,
                1 => MissingType::Zero,
                2 => MissingType::NaN,
                other => return Err(ModelError::new(format!("split {i}: unknown missing type {other}"))),
            };
            Split::Numerical {
                feature: features[i],
                threshold: thresholds[i],
                default_left: kind & DEFAULT_LEFT_MASK != 0,
                missing,
                left: left[i],
                right: right[i],
            }
        };
        splits.push(split);
    }
    builder.tree(output, &splits, &leaf_values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scorer;

    const MODEL: &str = "tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=a b
feature_infos=[0:10] 1:2:3
tree_sizes=1 1

Tree=0
num_leaves=3
num_cat=1
split_feature=0 1
split_gain=1 1
threshold=1.5 0
decision_type=10 1
left_child=1 -1
right_child=-3 -2
leaf_value=0.25 -0.5 1
leaf_weight=1 1 1
leaf_count=1 1 1
internal_value=0 0
internal_weight=0 0
internal_count=2 1
cat_boundaries=0 1
cat_threshold=6
is_linear=0
shrinkage=1


Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.125
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
a=1
";

    fn raw(e: &Ensemble, row: [f64; 2]) -> f64 {
        let mut out = [0.0];
        e.predict_raw(&row, &mut out);
        out[0]
    }

    #[test]
    fn values_within_1e35_of_zero_score_as_zero_like_lightgbm_predict() {
        // LightGBM's predict keeps only |x| > 1e-35 of a dense row: -1e-35 is scored as 0.0,
        // which goes right at a threshold of -1e-35 (found by the edge-row property test).
        let tiny = f64::from(1e-35_f32);
        let text = MODEL.replace("threshold=1.5 0\n", &format!("threshold={} 0\n", -tiny));
        let e = Ensemble::from_lightgbm_text(&text).unwrap();
        for (x, expected) in [(-tiny, 1.125), (-2.0 * tiny, -0.375), (-1e-36, 1.125), (0.0, 1.125)] {
            let mut out = [0.0];
            e.predict_raw(&[x, 6.0], &mut out);
            assert_eq!(out[0], expected, "x = {x}");
            e.clone().node_walker().predict_raw(&[x, 6.0], &mut out);
            assert_eq!(out[0], expected, "x = {x}, node walker");
        }
    }

    #[test]
    fn a_categorical_split_must_name_its_bitset_by_a_small_whole_number() {
        // Found by the read_model fuzz target: a huge index overflowed `index + 1`.
        for bad in ["1e300", "-1", "0.5", "inf"] {
            let text = MODEL.replace("threshold=1.5 0\n", &format!("threshold=1.5 {bad}\n"));
            let err = Ensemble::from_lightgbm_text(&text).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_header_claiming_millions_of_features_is_refused_before_allocating() {
        let text = MODEL.replace("max_feature_idx=1", "max_feature_idx=28720856");
        let err = Ensemble::from_lightgbm_text(&text).unwrap_err();
        assert!(err.to_string().contains("28720857 features"), "{err}");
    }

    #[test]
    fn reads_splits_bitsets_and_single_leaf_trees() {
        let e = Ensemble::from_lightgbm_text(MODEL).unwrap();
        assert_eq!(e.num_trees(), 2);
        assert_eq!(e.feature_names(), ["a", "b"]);
        // decision_type 10 = default left (2) + NaN missing (8); bitset 6 = categories {1, 2}.
        assert_eq!(raw(&e, [1.0, 1.0]), 0.25 + 0.125);
        assert_eq!(raw(&e, [1.0, 2.0]), 0.25 + 0.125);
        assert_eq!(raw(&e, [1.0, 3.0]), -0.5 + 0.125);
        assert_eq!(raw(&e, [2.0, 1.0]), 1.0 + 0.125);
        assert_eq!(raw(&e, [f64::NAN, 1.0]), 0.25 + 0.125);
        let mut p = [0.0];
        e.predict(&[2.0, 1.0], &mut p);
        assert_eq!(p[0], 1.0 / (1.0 + (-1.125f64).exp()));
    }

    #[test]
    fn lists_the_features_of_categorical_splits() {
        assert_eq!(Ensemble::from_lightgbm_text(MODEL).unwrap().categorical_features(), vec![1]);
        let numeric = MODEL.replace("decision_type=10 1", "decision_type=10 0");
        assert_eq!(Ensemble::from_lightgbm_text(&numeric).unwrap().categorical_features(), Vec::<usize>::new());
        assert!(Ensemble::from_lightgbm_text(&MODEL[..MODEL.find("Tree=1").unwrap()]).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let cut = &MODEL[..MODEL.find("Tree=1").unwrap()];
        assert!(Ensemble::from_lightgbm_text(cut).unwrap_err().0.contains("end of trees"));
        assert!(Ensemble::from_lightgbm_text(
            &MODEL.replace("is_linear=0\nshrinkage=1\n\n\nTree=1", "is_linear=1\nshrinkage=1\n\n\nTree=1")
        )
        .unwrap_err()
        .0
        .contains("linear"));
        assert!(Ensemble::from_lightgbm_text(&MODEL.replace("left_child=1 -1", "left_child=1 -7")).is_err());
        assert!(Ensemble::from_lightgbm_text(&MODEL.replace("split_feature=0 1", "split_feature=0 5")).is_err());
        assert!(Ensemble::from_lightgbm_text(&MODEL.replace("leaf_value=0.25 -0.5 1", "leaf_value=0.25 x 1")).is_err());
        assert!(Ensemble::from_lightgbm_text("hello").is_err());
    }
}
