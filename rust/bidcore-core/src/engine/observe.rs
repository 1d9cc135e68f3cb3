//! What the engine counts for its metrics: requests and outcomes, bids per campaign, the
//! decision's latency, and live histograms of every model's score and monitored features.
//!
//! Counts are sharded: each thread adds to its own cache-line-aligned shard and a snapshot sums
//! the shards. One set of atomics shared by every thread would have two cores trade the same
//! cache lines on every request, the cost that grows with the cores a server gives the bidder.
//! The first [`SHARDS`] threads a process starts own a shard each, which only they write: their
//! adds are a plain load and store (a locked add costs some twenty cycles, and a decision makes
//! a dozen). Threads started after them share one more shard with locked adds, so every count
//! stays exact whatever the number of threads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::reason::{Reason, NUM_REASONS};

/// Shards owned by one thread each; the threads after them share one more.
const SHARDS: usize = 16;
const SLOTS_PER_LINE: usize = 8;

/// Upper bounds of the decision-latency buckets, in nanoseconds (Prometheus' `le`): 1 µs to
/// 50 ms in 1-2-5 steps, then one bucket above.
pub const LATENCY_BOUNDS_NS: [u64; 15] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000,
    10_000_000, 20_000_000, 50_000_000,
];

#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; SLOTS_PER_LINE]);

/// Bins of a histogram as `bidcore.artifact.Histogram` defines them: `edges` sorted and finite,
/// value `v` in bin `bisect_right(edges[1..-1], v)`, NaN counted apart as missing.
#[derive(Debug, Clone)]
struct Bins {
    edges: Vec<f64>,
    /// The first of this histogram's slots: one per bin, then `missing`.
    base: usize,
}

impl Bins {
    fn len(&self) -> usize {
        self.edges.len() - 1
    }

    fn slot(&self, v: f64) -> usize {
        if v.is_nan() {
            return self.base + self.len();
        }
        let inner = &self.edges[1..self.edges.len() - 1];
        self.base + inner.partition_point(|&e| e <= v)
    }
}

/// What to watch of one model: its id for the metrics and the decision log, the edges of its
/// score histogram and of its monitored features (by column).
#[derive(Debug, Clone, Default)]
pub struct MonitorPlan {
    pub model: String,
    pub score_edges: Vec<f64>,
    pub features: Vec<(String, usize, Vec<f64>)>,
}

#[derive(Debug, Clone)]
struct Monitor {
    model: String,
    score: Bins,
    features: Vec<(String, usize, Bins)>,
}

/// A histogram in a snapshot: counts per bin and the values that were missing.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub missing: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSnapshot {
    pub role: &'static str,
    pub model: String,
    pub score: HistogramSnapshot,
    pub features: Vec<(String, HistogramSnapshot)>,
}

/// The counts at one moment (each exact; together not one instant).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub requests: u64,
    pub bids: u64,
    pub imp_bids: u64,
    pub no_bids: Vec<(Reason, u64)>,
    /// Per campaign, in config order: imps bid on and the bid prices summed, in micros of the
    /// bidder's currency.
    pub campaigns: Vec<(u64, u64)>,
    /// Per experiment arm, in config order: requests assigned to it, requests bid on, imps bid
    /// on, and the bid prices summed (micros of the bidder's currency).
    pub arms: Vec<[u64; 4]>,
    /// Per bucket of [`LATENCY_BOUNDS_NS`], then above the last bound (not cumulative).
    pub latency_counts: Vec<u64>,
    pub latency_sum_ns: u64,
    pub monitors: Vec<MonitorSnapshot>,
}

const REQUESTS: usize = 0;
const BIDS: usize = 1;
const IMP_BIDS: usize = 2;
const NO_BIDS: usize = 3;
const LATENCY: usize = NO_BIDS + NUM_REASONS;
const LATENCY_SUM: usize = LATENCY + LATENCY_BOUNDS_NS.len() + 1;
const CAMPAIGNS: usize = LATENCY_SUM + 1;
/// Slots per experiment arm (after the campaigns'): requests, bids, imp bids, bid value.
const ARM_SLOTS: usize = 4;

/// The engine's counters.
pub struct Observer {
    lines: Box<[Line]>,
    lines_per_shard: usize,
    campaigns: usize,
    arms: usize,
    monitors: [Option<Monitor>; 2],
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("campaigns", &self.campaigns).field("monitors", &self.monitors).finish()
    }
}

impl Observer {
    /// Counters for `campaigns` campaigns, `arms` experiment arms and, per role, the model to
    /// monitor. Edges must be sorted and finite with at least two entries.
    pub fn new(campaigns: usize, arms: usize, monitors: [Option<MonitorPlan>; 2]) -> Result<Observer, String> {
        let mut next = arm_base(campaigns) + ARM_SLOTS * arms;
        let mut bins = |edges: Vec<f64>, what: &str| -> Result<Bins, String> {
            if edges.len() < 2 || edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] > w[1]) {
                return Err(format!("{what}: histogram edges must be finite, sorted and at least two"));
            }
            let b = Bins { edges, base: next };
            next += b.len() + 1;
            Ok(b)
        };
        let mut built: [Option<Monitor>; 2] = [None, None];
        for (slot, plan) in built.iter_mut().zip(monitors) {
            let Some(plan) = plan else { continue };
            let score = bins(plan.score_edges, &format!("model {} score", plan.model))?;
            let features = plan
                .features
                .into_iter()
                .map(|(name, column, edges)| {
                    let b = bins(edges, &format!("model {} feature {name}", plan.model))?;
                    Ok((name, column, b))
                })
                .collect::<Result<Vec<_>, String>>()?;
            *slot = Some(Monitor { model: plan.model, score, features });
        }
        let lines_per_shard = next.div_ceil(SLOTS_PER_LINE);
        let lines = (0..(SHARDS + 1) * lines_per_shard).map(|_| Line::default()).collect();
        Ok(Observer { lines, lines_per_shard, campaigns, arms, monitors: built })
    }

    /// The model ids being monitored, by role index.
    pub fn model(&self, role: usize) -> Option<&str> {
        self.monitors[role].as_ref().map(|m| m.model.as_str())
    }

    fn shard(&self) -> Shard<'_> {
        thread_local! {
            // The thread's number in the process, from 0: the first SHARDS own a shard.
            static INDEX: usize = {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                NEXT.fetch_add(1, Relaxed)
            };
        }
        let index = INDEX.with(|i| *i);
        let (k, owned) = if index < SHARDS { (index, true) } else { (SHARDS, false) };
        let start = k * self.lines_per_shard;
        Shard { lines: &self.lines[start..start + self.lines_per_shard], owned }
    }

    pub fn request(&self) {
        self.shard().add(REQUESTS, 1);
    }

    pub fn no_bid(&self, reason: Reason) {
        self.shard().add(NO_BIDS + reason as usize, 1);
    }

    pub fn bid(&self, imps: u64) {
        let shard = self.shard();
        shard.add(BIDS, 1);
        shard.add(IMP_BIDS, imps);
    }

    /// One imp bid on by `campaign` at `micros` of the bidder's currency.
    pub fn campaign_bid(&self, campaign: usize, micros: u64) {
        let shard = self.shard();
        shard.add(CAMPAIGNS + campaign, 1);
        shard.add(CAMPAIGNS + self.campaigns + campaign, micros);
    }

    fn arm_slot(&self, arm: usize) -> usize {
        arm_base(self.campaigns) + ARM_SLOTS * arm
    }

    /// A request assigned to each of `arms`, and what it bid: `imps` imps at `micros` of the
    /// bidder's currency in all (zero and zero for a no-bid). An arm's four counters share a
    /// line, so each arm is one line's worth of adds.
    pub fn arm_outcome(&self, arms: impl Iterator<Item = usize>, bid: Option<(u64, u64)>) {
        let shard = self.shard();
        let (bids, imps, micros) = match bid {
            Some((imps, micros)) => (1, imps, micros),
            None => (0, 0, 0),
        };
        for arm in arms {
            shard.add_run(self.arm_slot(arm), [1, bids, imps, micros]);
        }
    }

    pub fn latency(&self, ns: u64) {
        let shard = self.shard();
        let bucket = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        shard.add(LATENCY + bucket, 1);
        shard.add(LATENCY_SUM, ns);
    }

    /// The scores of one block of `role`'s model and its rows (`width` values each); nothing
    /// for a role whose model is not monitored.
    pub fn scored(&self, role: usize, rows: &[f64], width: usize, scores: &[f64]) {
        let Some(m) = &self.monitors[role] else { return };
        let shard = self.shard();
        for &s in scores {
            shard.add(m.score.slot(s), 1);
        }
        for row in rows.chunks_exact(width) {
            for (_, column, bins) in &m.features {
                shard.add(bins.slot(row[*column]), 1);
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let total = |slot: usize| -> u64 {
            let (line, offset) = (slot / SLOTS_PER_LINE, slot % SLOTS_PER_LINE);
            (0..=SHARDS).map(|s| self.lines[s * self.lines_per_shard + line].0[offset].load(Relaxed)).sum()
        };
        let histogram = |b: &Bins| HistogramSnapshot {
            edges: b.edges.clone(),
            counts: (0..b.len()).map(|i| total(b.base + i)).collect(),
            missing: total(b.base + b.len()),
        };
        let roles = ["ctr", "cvr"];
        Snapshot {
            requests: total(REQUESTS),
            bids: total(BIDS),
            imp_bids: total(IMP_BIDS),
            no_bids: Reason::ALL.iter().map(|&r| (r, total(NO_BIDS + r as usize))).collect(),
            campaigns: (0..self.campaigns)
                .map(|c| (total(CAMPAIGNS + c), total(CAMPAIGNS + self.campaigns + c)))
                .collect(),
            arms: (0..self.arms).map(|a| std::array::from_fn(|i| total(self.arm_slot(a) + i))).collect(),
            latency_counts: (0..=LATENCY_BOUNDS_NS.len()).map(|i| total(LATENCY + i)).collect(),
            latency_sum_ns: total(LATENCY_SUM),
            monitors: self
                .monitors
                .iter()
                .zip(roles)
                .filter_map(|(m, role)| {
                    let m = m.as_ref()?;
                    Some(MonitorSnapshot {
                        role,
                        model: m.model.clone(),
                        score: histogram(&m.score),
                        features: m.features.iter().map(|(name, _, b)| (name.clone(), histogram(b))).collect(),
                    })
                })
                .collect(),
        }
    }
}

/// The first arm counter: after the campaigns', at a multiple of [`ARM_SLOTS`], so an arm's
/// counters never straddle two lines.
fn arm_base(campaigns: usize) -> usize {
    (CAMPAIGNS + 2 * campaigns).next_multiple_of(ARM_SLOTS)
}

/// A thread's shard: its own (`owned`: no other thread writes it) or the shared one.
struct Shard<'a> {
    lines: &'a [Line],
    owned: bool,
}

impl Shard<'_> {
    #[inline]
    fn add(&self, slot: usize, n: u64) {
        self.bump(&self.lines[slot / SLOTS_PER_LINE].0[slot % SLOTS_PER_LINE], n);
    }

    #[inline]
    fn bump(&self, counter: &AtomicU64, n: u64) {
        if self.owned {
            // Only this thread writes the counter; a snapshot's concurrent load sees the old or
            // the new value, never a torn one.
            counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Adds `values` to the [`ARM_SLOTS`] counters from `slot`, a multiple of [`ARM_SLOTS`]:
    /// they are one line's (its first half or its second), found once.
    #[inline]
    fn add_run(&self, slot: usize, values: [u64; ARM_SLOTS]) {
        debug_assert_eq!(slot % ARM_SLOTS, 0);
        let line = &self.lines[slot / SLOTS_PER_LINE].0;
        // `slot % SLOTS_PER_LINE` is 0 or 4: written as a mask, the indices are provably in
        // the line.
        let offset = slot & ARM_SLOTS;
        for (counter, n) in line[offset..offset + ARM_SLOTS].iter().zip(values) {
            self.bump(counter, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MonitorPlan {
        MonitorPlan {
            model: "m@1".into(),
            score_edges: vec![0.0, 0.25, 0.5, 1.0],
            features: vec![("f".into(), 1, vec![0.0, 10.0, 20.0])],
        }
    }

    #[test]
    fn bins_follow_the_artifact_rule() {
        let o = Observer::new(2, 0, [Some(plan()), None]).unwrap();
        // Scores: below the first edge -> bin 0; an inner edge goes right; above -> last bin.
        o.scored(0, &[0.0, 5.0, 0.0, f64::NAN], 2, &[-1.0, 0.25]);
        o.scored(0, &[0.0, 25.0], 2, &[2.0]);
        let s = o.snapshot();
        let m = &s.monitors[0];
        assert_eq!((m.role, m.model.as_str()), ("ctr", "m@1"));
        assert_eq!(m.score.counts, vec![1, 1, 1]);
        assert_eq!(m.features[0].1.counts, vec![1, 1]);
        assert_eq!(m.features[0].1.missing, 1);
    }

    #[test]
    fn counts_sum_over_threads() {
        let o = Observer::new(3, 2, [None, None]).unwrap();
        std::thread::scope(|scope| {
            for _ in 0..20 {
                scope.spawn(|| {
                    for i in 0..1000u64 {
                        o.request();
                        o.campaign_bid(2, 7);
                        o.latency(i * 100);
                        o.no_bid(Reason::BelowFloor);
                        o.arm_outcome([0].into_iter(), None);
                        o.arm_outcome([1].into_iter(), Some((2, 5)));
                    }
                });
            }
        });
        let s = o.snapshot();
        assert_eq!(s.requests, 20_000);
        assert_eq!(s.campaigns[2], (20_000, 140_000));
        assert_eq!(s.campaigns[0], (0, 0));
        assert_eq!(s.arms, vec![[20_000, 0, 0, 0], [20_000, 20_000, 40_000, 100_000]]);
        assert_eq!(s.latency_counts.iter().sum::<u64>(), 20_000);
        // 0..=1000 ns land in the first bucket (le 1 µs): i in 0..=10.
        assert_eq!(s.latency_counts[0], 20 * 11);
        assert_eq!(s.latency_sum_ns, 20 * 100 * (999 * 1000 / 2));
        assert_eq!(s.no_bids.iter().find(|(r, _)| *r == Reason::BelowFloor).unwrap().1, 20_000);
    }

    #[test]
    fn bad_edges_are_refused() {
        let mut p = plan();
        p.score_edges = vec![1.0, 0.0];
        assert!(Observer::new(0, 0, [Some(p), None]).is_err());
        let mut p = plan();
        p.features[0].2 = vec![0.0, f64::INFINITY];
        assert!(Observer::new(0, 0, [Some(p), None]).is_err());
    }
}
