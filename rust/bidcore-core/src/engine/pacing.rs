//! Pacing on the hot path: per account (a campaign, or its share under an experiment arm with a
//! budget share), the share of requests it enters (its throttle) and the multiplier of its
//! value, as the pacer (`bidcore.budget`) last set them. The pacer runs off the hot path and
//! writes atomics; a request reads them, never waits.
//!
//! Whether a throttled campaign enters a request is a deterministic draw from the request id and
//! the campaign id (`docs/engine.md`, Pacing), so the reference reproduces it and a request
//! sent twice is answered alike; the throttle it is compared with is that of the account the
//! request spends on.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use super::bitset::Bitset;
use crate::features::fnv1a64;
use crate::openrtb::Request;

/// A throttle or a multiplier of one: every request, the value as it is.
pub const PPM: u32 = 1_000_000;
/// The largest multiplier the pacer may set (x100), as for an experiment arm's.
const MULTIPLIER_MAX: u32 = 100 * PPM;

#[derive(Debug)]
struct Cell {
    throttle_ppm: AtomicU32,
    multiplier_ppm: AtomicU32,
    /// FNV-1a 64 of the account's campaign id: its half of the draw, computed once.
    id_hash: u64,
}

#[derive(Debug)]
pub struct Pacing {
    cells: Box<[Cell]>,
    /// How many accounts have a throttle below one: a request draws only when some do.
    throttled: AtomicUsize,
    /// An empty set of the campaigns' width (what the paced set is reset from).
    none: Bitset,
}

impl Pacing {
    /// Pacing for `width` campaigns' accounts, given by the campaign of each in account order
    /// (the campaigns' own accounts first, then their shares under arms).
    pub fn new<'a>(width: usize, campaigns: impl Iterator<Item = &'a str>) -> Pacing {
        let cells: Box<[Cell]> = campaigns
            .map(|id| Cell {
                throttle_ppm: AtomicU32::new(PPM),
                multiplier_ppm: AtomicU32::new(PPM),
                id_hash: fnv1a64(id.as_bytes()),
            })
            .collect();
        Pacing { cells, throttled: AtomicUsize::new(0), none: Bitset::empty(width) }
    }

    pub fn set(&self, account: usize, throttle_ppm: u32, multiplier_ppm: u32) -> Result<(), String> {
        if throttle_ppm > PPM {
            return Err(format!("throttle must be at most {PPM} ppm (every request), got {throttle_ppm}"));
        }
        if !(1..=MULTIPLIER_MAX).contains(&multiplier_ppm) {
            return Err(format!("multiplier must be in (0, {MULTIPLIER_MAX}] ppm, got {multiplier_ppm}"));
        }
        let cell = &self.cells[account];
        cell.multiplier_ppm.store(multiplier_ppm, Relaxed);
        let before = cell.throttle_ppm.swap(throttle_ppm, Relaxed);
        match (before < PPM, throttle_ppm < PPM) {
            (false, true) => {
                self.throttled.fetch_add(1, Relaxed);
            }
            (true, false) => {
                self.throttled.fetch_sub(1, Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    pub fn get(&self, account: usize) -> (u32, u32) {
        let cell = &self.cells[account];
        (cell.throttle_ppm.load(Relaxed), cell.multiplier_ppm.load(Relaxed))
    }

    pub fn multiplier_ppm(&self, account: usize) -> i64 {
        i64::from(self.cells[account].multiplier_ppm.load(Relaxed))
    }

    /// Removes from `eligible` the campaigns whose throttle (that of the account `account_of`
    /// gives for the campaign in this request) keeps them out of `request`, and puts them in
    /// `paced`; whether any was removed. Nothing to do (and no hashing) while no account is
    /// throttled.
    pub fn throttle(
        &self,
        request: &Request<'_>,
        eligible: &mut Bitset,
        paced: &mut Bitset,
        account_of: impl Fn(usize) -> usize,
    ) -> bool {
        if self.throttled.load(Relaxed) == 0 {
            return false;
        }
        paced.copy_from(&self.none);
        let request_hash = fnv1a64(request.id.as_ref().map_or("", |s| s.as_str()).as_bytes());
        let mut any = false;
        for c in eligible.iter() {
            let cell = &self.cells[account_of(c)];
            let throttle = cell.throttle_ppm.load(Relaxed);
            if throttle < PPM && draw(request_hash, cell.id_hash) >= throttle {
                paced.insert(c);
                any = true;
            }
        }
        if any {
            eligible.and_not(paced);
        }
        any
    }
}

/// The request's draw for a campaign, uniform in `[0, 10^6)`: SplitMix64's finalizer of the two
/// ids' FNV-1a 64 hashes combined (`bidcore.budget.pacing_draw` in Python).
pub fn draw(request_hash: u64, campaign_hash: u64) -> u32 {
    let mut z = (request_hash ^ campaign_hash).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % u64::from(PPM)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_the_throttled_count_follows_the_settings() {
        let campaign = fnv1a64(b"c1");
        let n = 200_000u64;
        let below = (0..n).filter(|i| draw(fnv1a64(format!("r{i}").as_bytes()), campaign) < 250_000).count() as f64;
        // A quarter of the requests, within five standard deviations.
        let sd = (n as f64 * 0.25 * 0.75).sqrt();
        assert!((below - n as f64 * 0.25).abs() < 5.0 * sd, "{below}");

        let pacing = Pacing::new(2, ["a", "b"].into_iter());
        pacing.set(0, 500_000, PPM).expect("valid");
        pacing.set(0, 400_000, 2 * PPM).expect("valid");
        assert_eq!(pacing.throttled.load(Relaxed), 1);
        assert_eq!(pacing.get(0), (400_000, 2 * PPM));
        pacing.set(0, PPM, PPM).expect("valid");
        assert_eq!(pacing.throttled.load(Relaxed), 0);
        assert!(pacing.set(1, PPM + 1, PPM).is_err());
        assert!(pacing.set(1, PPM, 0).is_err());
    }
}
