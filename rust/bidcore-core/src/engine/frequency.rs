//! Frequency caps: at most `count` impressions per user and campaign in any `window` seconds
//! (`docs/budget.md`, Frequency caps).
//!
//! An impression is counted when its win or bill notice settles the bid (the moment its money
//! is decided, `SpendOn`); until then the bid in flight holds one of the user's slots, so a burst
//! of bids to one user cannot exceed the cap before the notices come back, as a budget's holds
//! keep a burst from spending past it. A slot whose bid loses or expires is given back.
//!
//! Memory is bounded: at most `capacity` (user, campaign) entries, each keeping at most `count`
//! timestamps; entries with nothing in their window and nothing in flight are swept by
//! [`Caps::sweep`]. A new user that finds the table full cannot be tracked, and a capped
//! campaign does not bid to them (counted in `refused`): a cap is never silently lifted.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::ledger::lock;

const SHARDS: usize = 64;

/// Impressions the table keeps for other processes to read (`take_impressions`) before the
/// oldest are dropped: a shared store that stops reading must not grow this process's memory.
const MAX_OUTBOX: usize = 1 << 20;

/// A campaign's cap, as the config sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub count: u32,
    pub window: u32,
}

/// An impression counted here, for other processes: the key, the cap it counted against and
/// its second.
pub type Impression = (u64, Cap, u32);

#[derive(Debug)]
struct Entry {
    /// The impressions' seconds, oldest first; at most `cap.count` of them.
    seen: VecDeque<u32>,
    /// Slots held by bids in flight.
    in_flight: u32,
    cap: Cap,
}

impl Entry {
    fn new(cap: Cap) -> Entry {
        Entry { seen: VecDeque::new(), in_flight: 0, cap }
    }

    /// Forgets impressions that left the window ending at `now`.
    fn prune(&mut self, now: u32) {
        // The window is (now - window, now]: an impression at t is in it while t + window > now.
        let window = u64::from(self.cap.window);
        while self.seen.front().is_some_and(|&t| u64::from(t) + window <= u64::from(now)) {
            self.seen.pop_front();
        }
    }

    fn used(&self) -> u32 {
        self.seen.len() as u32 + self.in_flight
    }

    fn record(&mut self, at: u32) {
        // Notices arrive out of order: keep the seconds sorted, so pruning stays a pop.
        let position = self.seen.iter().rposition(|&t| t <= at).map_or(0, |p| p + 1);
        self.seen.insert(position, at);
        while self.seen.len() > self.cap.count as usize {
            // Only the latest `count` can decide whether another fits.
            self.seen.pop_front();
        }
    }

    fn idle(&self) -> bool {
        self.seen.is_empty() && self.in_flight == 0
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CapStats {
    /// (user, campaign) entries held.
    pub entries: u64,
    /// Bids not made because the table was full for a new user.
    pub refused: u64,
    /// Impressions counted from this process's notices.
    pub counted: u64,
    /// Impressions other processes counted, added here.
    pub imported: u64,
    /// Impressions dropped from the outbox because nobody took them in time.
    pub dropped: u64,
}

#[derive(Debug)]
pub struct Caps {
    shards: Box<[Mutex<HashMap<u64, Entry>>]>,
    capacity: u64,
    entries: AtomicU64,
    refused: AtomicU64,
    counted: AtomicU64,
    imported: AtomicU64,
    dropped: AtomicU64,
    outbox: Mutex<VecDeque<Impression>>,
    /// Whether another process reads the impressions (`take_impressions` was called): only
    /// then are they kept in `outbox`, so a process on its own pays no lock and no memory.
    sharing: AtomicBool,
}

/// The second of `now` (seconds since the epoch) as the table keeps it.
pub fn second(now: f64) -> u32 {
    now.clamp(0.0, f64::from(u32::MAX)) as u32
}

/// 64-bit FNV-1a: stable across processes and builds, so every process of a fleet keys a
/// (user, campaign) alike.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The hash of a user key: where the keys of its campaigns start.
pub fn user_hash(user: &str) -> u64 {
    fnv1a(FNV_OFFSET, user.as_bytes())
}

/// [`user_hash`] of `kind` followed by `id`, without joining them.
pub fn user_hash_of(kind: &str, id: &str) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, kind.as_bytes()), id.as_bytes())
}

/// The table key of `user`'s (its [`user_hash`]) impressions of `campaign`; never 0 (the
/// "no cap" of a bid).
pub fn key(user: u64, campaign: &str) -> u64 {
    // A 0 byte separates the two: no (user, campaign) pair spells another's bytes.
    let hash = fnv1a(fnv1a(user, &[0]), campaign.as_bytes());
    hash.max(1)
}

impl Caps {
    pub fn new(capacity: u64) -> Caps {
        Caps {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            capacity,
            entries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            counted: AtomicU64::new(0),
            imported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            outbox: Mutex::new(VecDeque::new()),
            sharing: AtomicBool::new(false),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        lock(&self.shards[(key >> 58) as usize % SHARDS])
    }

    /// How many of `key`'s slots are used at `now`: impressions in the window and bids in flight.
    pub fn used(&self, key: u64, now: f64) -> u32 {
        let mut shard = self.shard(key);
        shard.get_mut(&key).map_or(0, |entry| {
            entry.prune(second(now));
            entry.used()
        })
    }

    /// Whether `key` has room for `more` slots at `now` (a new user only if the table has room
    /// for one more entry).
    pub fn has_room(&self, key: u64, cap: Cap, more: u32, now: f64) -> bool {
        let mut shard = self.shard(key);
        match shard.get_mut(&key) {
            Some(entry) => {
                entry.cap = cap;
                entry.prune(second(now));
                entry.used() + more <= cap.count
            }
            None => more <= cap.count && self.entries.load(Relaxed) < self.capacity,
        }
    }

    /// `key`'s entry in its `shard`, made when the table has room (else counted as refused).
    fn entry<'s>(&self, shard: &'s mut HashMap<u64, Entry>, key: u64, cap: Cap) -> Option<&'s mut Entry> {
        if !shard.contains_key(&key) {
            if self.entries.load(Relaxed) >= self.capacity {
                self.refused.fetch_add(1, Relaxed);
                return None;
            }
            self.entries.fetch_add(1, Relaxed);
        }
        Some(shard.entry(key).or_insert_with(|| Entry::new(cap)))
    }

    /// Holds one of `key`'s slots for a bid in flight, when the cap leaves one; whether it did.
    pub fn hold(&self, key: u64, cap: Cap, now: f64) -> bool {
        let mut shard = self.shard(key);
        let Some(entry) = self.entry(&mut shard, key, cap) else {
            return false;
        };
        entry.cap = cap;
        entry.prune(second(now));
        if entry.used() >= cap.count {
            return false;
        }
        entry.in_flight += 1;
        true
    }

    /// Ends a bid's hold on a slot: an impression at `shown_at` when shown, else the slot is free.
    pub fn release(&self, key: u64, shown_at: Option<f64>) {
        let mut shard = self.shard(key);
        let Some(entry) = shard.get_mut(&key) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if let Some(now) = shown_at {
            let at = second(now);
            entry.record(at);
            let cap = entry.cap;
            drop(shard);
            self.counted.fetch_add(1, Relaxed);
            if !self.sharing.load(Relaxed) {
                return;
            }
            let mut outbox = lock(&self.outbox);
            if outbox.len() >= MAX_OUTBOX {
                outbox.pop_front();
                self.dropped.fetch_add(1, Relaxed);
            }
            outbox.push_back((key, cap, at));
        }
    }

    /// The impressions counted here since the last call, oldest first. The first call starts
    /// the sharing: impressions counted before it are not kept.
    pub fn take_impressions(&self) -> Vec<Impression> {
        self.sharing.store(true, Relaxed);
        lock(&self.outbox).drain(..).collect()
    }

    /// Adds impressions another process counted (an entry made for a new user when the table
    /// has room; otherwise the impression is not kept, and the user's next bid here is refused
    /// anyway, as a full table refuses new users).
    pub fn add_impressions(&self, impressions: &[Impression], now: f64) {
        let now = second(now);
        for &(key, cap, at) in impressions {
            if key == 0 || cap.count == 0 || u64::from(at) + u64::from(cap.window) <= u64::from(now) {
                continue; // already out of its window
            }
            let mut shard = self.shard(key);
            let Some(entry) = self.entry(&mut shard, key, cap) else {
                continue;
            };
            entry.record(at);
            self.imported.fetch_add(1, Relaxed);
        }
    }

    /// Forgets the entries with no impression in their window and no bid in flight at `now`.
    pub fn sweep(&self, now: f64) {
        let now = second(now);
        for shard in self.shards.iter() {
            lock(shard).retain(|_, entry| {
                entry.prune(now);
                let keep = !entry.idle();
                if !keep {
                    self.entries.fetch_sub(1, Relaxed);
                }
                keep
            });
        }
    }

    pub fn stats(&self) -> CapStats {
        CapStats {
            entries: self.entries.load(Relaxed),
            refused: self.refused.load(Relaxed),
            counted: self.counted.load(Relaxed),
            imported: self.imported.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Cap = Cap { count: 2, window: 60 };

    #[test]
    fn a_bid_in_flight_holds_a_slot_until_its_notice() {
        let caps = Caps::new(10);
        let k = key(user_hash("b:u1"), "c1");
        assert!(caps.take_impressions().is_empty(), "sharing starts: impressions are kept");
        assert!(caps.hold(k, CAP, 100.0));
        assert!(caps.hold(k, CAP, 100.0));
        assert!(!caps.hold(k, CAP, 100.0), "two in flight fill a cap of two");
        caps.release(k, None); // lost: the slot comes back
        assert!(caps.hold(k, CAP, 101.0));
        caps.release(k, Some(102.0));
        caps.release(k, Some(103.0));
        assert_eq!(caps.used(k, 110.0), 2);
        assert!(!caps.hold(k, CAP, 161.0), "the impression at 102 is in (101, 161]");
        assert!(caps.hold(k, CAP, 162.0), "the window has moved past 102");
        assert_eq!(caps.take_impressions(), vec![(k, CAP, 102), (k, CAP, 103)]);
        assert!(caps.take_impressions().is_empty());
    }

    #[test]
    fn impressions_are_kept_for_others_only_once_someone_takes_them() {
        let caps = Caps::new(10);
        let k = key(user_hash("b:u1"), "c1");
        assert!(caps.hold(k, CAP, 0.0));
        caps.release(k, Some(1.0));
        assert!(caps.take_impressions().is_empty(), "counted before sharing: not kept");
        assert!(caps.hold(k, CAP, 2.0));
        caps.release(k, Some(3.0));
        assert_eq!(caps.take_impressions(), vec![(k, CAP, 3)]);
        assert_eq!(caps.stats().counted, 2);
    }

    #[test]
    fn a_full_table_refuses_new_users_and_sweeping_makes_room() {
        let caps = Caps::new(1);
        let a = key(user_hash("b:a"), "c1");
        let b = key(user_hash("b:b"), "c1");
        assert!(caps.hold(a, CAP, 0.0));
        assert!(!caps.has_room(b, CAP, 1, 0.0));
        assert!(!caps.hold(b, CAP, 0.0));
        assert_eq!(caps.stats().refused, 1);
        caps.release(a, Some(0.0));
        caps.sweep(30.0);
        assert_eq!(caps.stats().entries, 1, "an impression in its window keeps the entry");
        caps.sweep(61.0);
        assert_eq!(caps.stats().entries, 0);
        assert!(caps.hold(b, CAP, 61.0));
    }

    #[test]
    fn imported_impressions_count_and_out_of_order_ones_stay_sorted() {
        let caps = Caps::new(10);
        let k = key(user_hash("d:ifa"), "c2");
        caps.add_impressions(&[(k, CAP, 50), (k, CAP, 40), (k, CAP, 1)], 61.0);
        assert_eq!(caps.stats().imported, 2, "the one at second 1 is out of its window");
        assert!(!caps.has_room(k, CAP, 1, 61.0));
        assert!(caps.has_room(k, CAP, 1, 100.0), "40 left the window (40, 100]");
    }

    #[test]
    fn keys_differ_by_user_and_campaign_and_are_stable() {
        let u = user_hash("b:u1");
        assert_ne!(key(u, "c1"), key(u, "c2"));
        assert_ne!(key(u, "c1"), key(user_hash("b:u2"), "c1"));
        // Fixed across builds and processes: a fleet shares impressions by this key (64-bit
        // FNV-1a of "b:u1", a 0 byte, "c1", computed independently).
        assert_eq!(key(u, "c1"), 0x41c4_55fd_8dfd_eb95);
        assert_eq!(user_hash_of("b:", "u1"), u);
    }
}
