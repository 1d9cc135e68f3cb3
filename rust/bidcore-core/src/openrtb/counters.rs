//! Counts of rejected requests by rule: bad input never goes unnoticed.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::Rule;

/// One counter per [`Rule`], plus the accepted requests. Relaxed atomics: the counts are
/// statistics read by a metrics scrape, never used to order other memory.
#[derive(Debug, Default)]
pub struct ParseCounters {
    accepted: AtomicU64,
    rejected: [AtomicU64; Rule::ALL.len()],
}

impl ParseCounters {
    pub fn record<T, E: AsRef<Rule>>(&self, outcome: &Result<T, E>) {
        match outcome {
            Ok(_) => self.accepted.fetch_add(1, Ordering::Relaxed),
            Err(err) => self.rejected[err.as_ref().index()].fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// `(rule, count)` for every rule, zeros included, in [`Rule::ALL`] order.
    pub fn rejected(&self) -> impl Iterator<Item = (Rule, u64)> + '_ {
        Rule::ALL.iter().map(|&rule| (rule, self.rejected[rule.index()].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openrtb::RequestError;

    #[test]
    fn counts_each_outcome_under_its_rule() {
        let counters = ParseCounters::default();
        counters.record::<(), RequestError>(&Ok(()));
        counters.record::<(), _>(&Err(RequestError::new(Rule::Floor, String::new(), String::new())));
        counters.record::<(), _>(&Err(RequestError::new(Rule::Floor, String::new(), String::new())));
        assert_eq!(counters.accepted(), 1);
        let floor = counters.rejected().find(|(rule, _)| *rule == Rule::Floor).map(|(_, n)| n);
        assert_eq!(floor, Some(2));
        assert_eq!(counters.rejected().map(|(_, n)| n).sum::<u64>(), 2);
    }
}
