//! From predictions to a price: value by goal, bounds from caps and floors, first-price shading.
//! Integer micros throughout; the few floating-point steps are written so the Python reference
//! can repeat them operation for operation (`docs/engine.md`, Money and Price).

use super::plan::GoalKind;

/// A win-rate curve: `w(b) = 1 / (1 + exp(-(ln b - ln center) / scale))`, `b` and `center` in
/// currency units (CPM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curve {
    /// `ln(center)`, computed once: the same double the formula computes at every call, and
    /// one logarithm fewer for each of the 33 grid prices of every candidate.
    ln_center: f64,
    scale: f64,
}

impl Curve {
    pub fn new(center: f64, scale: f64) -> Curve {
        Curve { ln_center: center.ln(), scale }
    }

    pub fn win_rate(&self, price_micros: i64) -> f64 {
        let b = price_micros as f64 / 1e6;
        1.0 / (1.0 + (-(b.ln() - self.ln_center) / self.scale).exp())
    }
}

/// The win-rate curve's center from a win-rate model's prediction `ln_center`, the natural log
/// of the CPM (bidder's currency units) that wins half the time: `floor(exp(ln_center) * 1e6)`
/// micros, at least 1 and at most 10^15. None when the prediction is not a number or its
/// exponential is not finite; the table's configured center applies then.
pub fn model_center(ln_center: f64) -> Option<i64> {
    let micros = (ln_center.exp() * 1e6).floor();
    if !micros.is_finite() {
        return None;
    }
    Some(micros.clamp(1.0, 1e15) as i64)
}

/// Grid steps of the shading search (33 prices from `lower` to `upper`).
pub const SHADING_STEPS: i64 = 32;

/// The value of an impression in micros CPM: a CPM goal's fixed price, or the expected value of
/// a click or an action per thousand impressions. A prediction that is not a number values the
/// impression at 0.
pub fn value(goal: GoalKind, amount: i64, p_ctr: f64, p_cvr: f64) -> i64 {
    let v = match goal {
        GoalKind::Cpm => return amount,
        GoalKind::Cpc => (p_ctr * amount as f64 * 1000.0).floor(),
        GoalKind::Cpa => (p_ctr * p_cvr * amount as f64 * 1000.0).floor(),
    };
    // NaN (a broken model) is worth 0, negatives (a regression model's) too; a product beyond
    // 10^18 micros is capped there (`max_bid` caps the bid far below anyway).
    if v.is_nan() {
        return 0;
    }
    v.clamp(0.0, 1e18) as i64
}

/// `value` times an experiment arm's multiplier of `ppm` millionths, rounded down (exact in
/// integers; at most 10^18 micros, like `value`).
pub fn scale(value: i64, ppm: i64) -> i64 {
    if ppm == 1_000_000 {
        return value;
    }
    let scaled = i128::from(value) * i128::from(ppm) / 1_000_000;
    scaled.clamp(0, 1_000_000_000_000_000_000) as i64
}

/// The first-price bid on `curve` between `lower` and `upper` (`lower <= upper`): the peak of
/// the expected surplus `(upper - b) * w(b)` on the grid, walking up from `lower` until a
/// surplus falls below the best so far (the first on ties). The surplus is log-concave in `b`,
/// so the first fall is past the grid's maximum, and the walk stops there instead of pricing
/// all 33 points (`docs/engine.md`, step 6). Never above `upper`, never below `lower`.
pub fn shade(lower: i64, upper: i64, curve: &Curve) -> i64 {
    let mut best = (lower, f64::NEG_INFINITY);
    for i in 0..=SHADING_STEPS {
        let b = lower + (upper - lower) * i / SHADING_STEPS;
        let surplus = (upper - b) as f64 * curve.win_rate(b);
        if surplus > best.1 {
            best = (b, surplus);
        } else if surplus < best.1 {
            break;
        }
    }
    best.0
}

/// The price rounded down to 0.10, at most 20.00, with two decimals: Prebid's "medium" price
/// granularity, for `{price_bucket}`.
pub fn price_bucket(price: i64) -> String {
    let cents = price.clamp(0, 20_000_000) / 100_000 * 10;
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_by_goal() {
        assert_eq!(value(GoalKind::Cpm, 2_500_000, f64::NAN, f64::NAN), 2_500_000);
        // pCTR 0.002 x $0.50 a click x 1000 = $1.00 CPM.
        assert_eq!(value(GoalKind::Cpc, 500_000, 0.002, 0.0), 1_000_000);
        // 0.01 x 0.05 x $20 x 1000 = $10 CPM.
        assert_eq!(value(GoalKind::Cpa, 20_000_000, 0.01, 0.05), 10_000_000);
        assert_eq!(value(GoalKind::Cpc, 500_000, f64::NAN, 0.0), 0);
        assert_eq!(value(GoalKind::Cpc, 500_000, -0.5, 0.0), 0);
        assert_eq!(value(GoalKind::Cpc, 500_000, f64::INFINITY, 0.0), 1_000_000_000_000_000_000);
    }

    #[test]
    fn model_centers() {
        // ln(2.5) predicts $2.50: 2,500,000 micros (floor of the double, which may fall a hair
        // below: the rule is the floor, the reference takes the same).
        let c = model_center(2.5f64.ln()).unwrap();
        assert!((2_499_999..=2_500_000).contains(&c));
        assert_eq!(model_center(0.0), Some(1_000_000));
        assert_eq!(model_center(-100.0), Some(1));
        assert_eq!(model_center(100.0), Some(1_000_000_000_000_000));
        assert_eq!(model_center(f64::NAN), None);
        assert_eq!(model_center(f64::INFINITY), None);
        assert_eq!(model_center(f64::NEG_INFINITY), Some(1));
    }

    #[test]
    fn buckets() {
        assert_eq!(price_bucket(1_234_567), "1.20");
        assert_eq!(price_bucket(99_999), "0.00");
        assert_eq!(price_bucket(25_000_000), "20.00");
    }

    /// Every grid price's surplus, and the first maximum among them.
    fn exhaustive(lower: i64, upper: i64, curve: &Curve) -> i64 {
        let grid = (0..=SHADING_STEPS).map(|i| lower + (upper - lower) * i / SHADING_STEPS);
        let surplus = |b: i64| (upper - b) as f64 * curve.win_rate(b);
        grid.fold((lower, f64::NEG_INFINITY), |best, b| if surplus(b) > best.1 { (b, surplus(b)) } else { best }).0
    }

    proptest! {
        /// The walk stops at the grid's maximum, not at a local one: the surplus is log-concave.
        /// (A double's rounding could in principle make a flat peak look dented; the prices
        /// would then differ by a grid step at the top of a flat surplus. It is not seen here.)
        #[test]
        fn the_walk_finds_the_grids_maximum(lower in 1i64..50_000_000, span in 0i64..50_000_000, center in 0.01f64..50.0, scale in 0.05f64..3.0) {
            let curve = Curve::new(center, scale);
            prop_assert_eq!(shade(lower, lower + span, &curve), exhaustive(lower, lower + span, &curve));
        }

        #[test]
        fn shading_stays_within_bounds(lower in 1i64..10_000_000, span in 0i64..10_000_000, center in 0.01f64..20.0, scale in 0.05f64..3.0) {
            let upper = lower + span;
            let b = shade(lower, upper, &Curve::new(center, scale));
            prop_assert!(lower <= b && b <= upper);
        }
    }
}
