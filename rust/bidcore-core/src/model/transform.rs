//! From raw margins to predictions, computed exactly as LightGBM computes them.

/// The objective's link function. LightGBM's formulas, operation for operation, so transformed
/// predictions agree to the bit, not only the raw margins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// Regression, ranking, raw scores.
    Identity,
    /// `1 / (1 + exp(-alpha * x))`: binary, cross-entropy.
    Sigmoid { alpha: f64 },
    /// Poisson, gamma, Tweedie.
    Exp,
    /// Multiclass: softmax over the classes of a row.
    Softmax,
    /// One-vs-all multiclass: a sigmoid per class.
    SigmoidEach { alpha: f64 },
}

impl Transform {
    /// Transforms the raw margins of one row in place.
    pub fn apply(self, row: &mut [f64]) {
        match self {
            Transform::Identity => {}
            Transform::Sigmoid { alpha } | Transform::SigmoidEach { alpha } => {
                for x in row.iter_mut() {
                    *x = 1.0 / (1.0 + (-alpha * *x).exp());
                }
            }
            Transform::Exp => {
                for x in row.iter_mut() {
                    *x = x.exp();
                }
            }
            Transform::Softmax => {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                for x in row.iter_mut() {
                    *x /= sum;
                }
            }
        }
    }

    /// The transform LightGBM applies for an `objective=` line of its model text.
    pub fn from_lightgbm_objective(line: &str) -> Result<Transform, String> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        let params: Vec<&str> = words.collect();
        if params.contains(&"sqrt") {
            return Err(format!("objective {line:?}: the sqrt label transform is not supported"));
        }
        let alpha = || {
            params
                .iter()
                .find_map(|p| p.strip_prefix("sigmoid:"))
                .map_or(Ok(1.0), |v| v.parse::<f64>().map_err(|_| format!("objective {line:?}: bad sigmoid parameter")))
        };
        Ok(match name {
            "binary" => Transform::Sigmoid { alpha: alpha()? },
            "cross_entropy" | "xentropy" => Transform::Sigmoid { alpha: 1.0 },
            "multiclass" | "softmax" => Transform::Softmax,
            "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Transform::SigmoidEach { alpha: alpha()? },
            "poisson" | "gamma" | "tweedie" => Transform::Exp,
            "regression"
            | "regression_l2"
            | "l2"
            | "mean_squared_error"
            | "mse"
            | "regression_l1"
            | "l1"
            | "mean_absolute_error"
            | "mae"
            | "huber"
            | "fair"
            | "quantile"
            | "mape"
            | "mean_absolute_percentage_error"
            | "lambdarank"
            | "rank_xendcg"
            | "xendcg"
            | "custom"
            | "none" => Transform::Identity,
            other => return Err(format!("objective {other:?} is not supported")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lightgbm_objective_lines() {
        assert_eq!(Transform::from_lightgbm_objective("binary sigmoid:1"), Ok(Transform::Sigmoid { alpha: 1.0 }));
        assert_eq!(Transform::from_lightgbm_objective("binary sigmoid:2.5"), Ok(Transform::Sigmoid { alpha: 2.5 }));
        assert_eq!(Transform::from_lightgbm_objective("regression"), Ok(Transform::Identity));
        assert_eq!(Transform::from_lightgbm_objective("multiclass num_class:3"), Ok(Transform::Softmax));
        assert_eq!(Transform::from_lightgbm_objective("poisson"), Ok(Transform::Exp));
        assert!(Transform::from_lightgbm_objective("regression sqrt").is_err());
        assert!(Transform::from_lightgbm_objective("mystery").is_err());
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut row = [1.0, 2.0, 3.0];
        Transform::Softmax.apply(&mut row);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(row[2] > row[1] && row[1] > row[0]);
    }
}
