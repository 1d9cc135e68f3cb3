//! The budget ledger on the hot path: what each campaign may still spend in this process, the
//! bids in flight that hold part of it, and the notices that settle them (`docs/budget.md`).
//!
//! Money is in *nanos*: thousandths of a micro of the bidder's currency. A clearing price is a
//! CPM in micros, so the cost of one impression in nanos is the price's micros, exactly.
//!
//! A campaign's [`Account`] is shared by every engine built with the same [`Ledger`], so a
//! reload keeps the money and the bids in flight. The pacer or the shared ledger (Python, off
//! the hot path) grants money into `available`; a bid holds its cost out of it until its notice
//! settles it (a win or bill at the clearing price, a loss, or expiry), so a burst of bids
//! cannot spend past what was granted before the notices come back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use super::frequency::{Cap, Caps};

/// Registry shards: a bid's registration locks one, chosen by its token.
const SHARDS: usize = 64;

/// What a campaign (or its share under an experiment arm) may spend here, and where its money
/// is.
#[derive(Debug)]
pub struct Account {
    /// The account's id: a campaign's id, or `campaign@experiment:arm` for its share under an
    /// arm with a budget share (a campaign id has no `@`).
    id: Arc<str>,
    /// The campaign it belongs to: `id` up to its first `@`.
    campaign: Arc<str>,
    /// Whether bids are held against `available` (false: the campaign bids without a limit).
    limited: AtomicBool,
    /// Granted and not yet held or spent; may be negative after a notice above its bid.
    available: AtomicI64,
    /// Held by this process's bids in flight.
    exposure: AtomicI64,
    /// Spent, as notices counted it, since the ledger was made.
    spent: AtomicI64,
}

impl Account {
    fn new(id: &str) -> Account {
        Account {
            id: Arc::from(id),
            campaign: Arc::from(id.split('@').next().unwrap_or(id)),
            limited: AtomicBool::new(false),
            available: AtomicI64::new(0),
            exposure: AtomicI64::new(0),
            spent: AtomicI64::new(0),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn campaign(&self) -> &str {
        &self.campaign
    }

    pub fn limited(&self) -> bool {
        self.limited.load(Relaxed)
    }

    pub fn available(&self) -> i64 {
        self.available.load(Relaxed)
    }

    /// Takes `cost` out of `available` when it covers it; whether it did.
    fn hold(&self, cost: i64) -> bool {
        let held = self.available.fetch_update(Relaxed, Relaxed, |a| (a >= cost).then(|| a - cost)).is_ok();
        if held {
            self.exposure.fetch_add(cost, Relaxed);
        }
        held
    }

    /// Gives back a hold of `cost`, of which `spent` was spent.
    fn settle(&self, cost: i64, spent: i64) {
        self.exposure.fetch_sub(cost, Relaxed);
        self.available.fetch_add(cost - spent, Relaxed);
        self.spent.fetch_add(spent, Relaxed);
    }

    /// Spends `amount` that no hold covered (a bid the ledger did not hold, or had released).
    fn spend(&self, amount: i64) {
        self.available.fetch_sub(amount, Relaxed);
        self.spent.fetch_add(amount, Relaxed);
    }
}

/// When a bid's money counts as spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendOn {
    Win,
    Bill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Win,
    Bill,
    Loss,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 3] = [NoticeKind::Win, NoticeKind::Bill, NoticeKind::Loss];

    pub fn parse(name: &str) -> Option<NoticeKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Win => "win",
            NoticeKind::Bill => "bill",
            NoticeKind::Loss => "loss",
        }
    }
}

/// What became of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Taken: the bid's state moved on.
    Accepted,
    /// The same notice again (or a bill after the win that was counted): ignored.
    Duplicate,
    /// Contradicts the bid's state (a win after a loss, a loss after a win): ignored.
    Conflict,
    /// No such bid: never made here, or a forged token.
    Unknown,
    /// The bid was made, but longer ago than its time to live: its hold was released.
    Expired,
}

impl Settled {
    pub const ALL: [Settled; 5] =
        [Settled::Accepted, Settled::Duplicate, Settled::Conflict, Settled::Unknown, Settled::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Accepted => "accepted",
            Settled::Duplicate => "duplicate",
            Settled::Conflict => "conflict",
            Settled::Unknown => "unknown",
            Settled::Expired => "expired",
        }
    }
}

/// A notice's result: its outcome, the bid's account (when the bid is known) and what it spent.
#[derive(Debug, Clone)]
pub struct NoticeResult {
    pub settled: Settled,
    pub account: Option<Arc<Account>>,
    pub spent: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Won,
    Billed,
    Lost,
}

#[derive(Debug)]
struct InFlight {
    account: Arc<Account>,
    /// The cost held against the account (0: none, the campaign is not limited).
    held: i64,
    expires: f64,
    state: State,
    /// The frequency-cap slot the bid holds (0: none, its campaign has no cap).
    cap: u64,
}

/// Why [`Ledger::open`] made no bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The campaign's money cannot cover the bid (or the registry is full).
    Budget,
    /// The user has no slot left under the campaign's frequency cap.
    FrequencyCap,
}

#[derive(Debug, Default)]
pub struct LedgerStats {
    pub in_flight: u64,
    /// Bids not registered because the registry was full.
    pub unregistered: u64,
    /// Holds released because their bid expired without a notice that settled it.
    pub expired: u64,
    /// Per notice kind, then per outcome (in `Settled::ALL`'s order).
    pub notices: [[u64; 5]; 3],
}

#[derive(Debug)]
pub struct Ledger {
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    shards: Box<[Mutex<HashMap<u64, InFlight>>]>,
    sequence: AtomicU32,
    in_flight: AtomicU64,
    unregistered: AtomicU64,
    expired: AtomicU64,
    notices: [[AtomicU64; 5]; 3],
    ttl_seconds: f64,
    spend_on: SpendOn,
    capacity: u64,
    caps: Caps,
}

/// A poisoned shard is still a consistent map (no code panics while holding one): use it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    /// `seed` starts the token sequence, so that two ledgers (processes) made in the same
    /// second hand out different tokens; `cap_capacity` bounds the frequency caps' entries.
    pub fn new(
        ttl_seconds: f64,
        spend_on: SpendOn,
        capacity: u64,
        cap_capacity: u64,
        seed: u32,
    ) -> Result<Ledger, String> {
        if !(ttl_seconds.is_finite() && ttl_seconds > 0.0 && ttl_seconds <= 86_400.0) {
            return Err(format!("ttl_seconds must be in (0, 86400], got {ttl_seconds}"));
        }
        if capacity == 0 {
            return Err("capacity must be at least 1".into());
        }
        Ok(Ledger {
            accounts: Mutex::new(HashMap::new()),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            sequence: AtomicU32::new(seed),
            in_flight: AtomicU64::new(0),
            unregistered: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            notices: Default::default(),
            ttl_seconds,
            spend_on,
            capacity,
            caps: Caps::new(cap_capacity),
        })
    }

    pub fn ttl_seconds(&self) -> f64 {
        self.ttl_seconds
    }

    pub fn spend_on(&self) -> SpendOn {
        self.spend_on
    }

    /// The frequency caps' table: shared, like the accounts, by every engine of this ledger.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The account of `campaign`, made (unlimited, empty) on first use.
    pub fn account(&self, campaign: &str) -> Arc<Account> {
        let mut accounts = lock(&self.accounts);
        Arc::clone(accounts.entry(campaign.to_owned()).or_insert_with(|| Arc::new(Account::new(campaign))))
    }

    /// Every account: (campaign, limited, available, exposure, spent).
    pub fn accounts(&self) -> Vec<(String, bool, i64, i64, i64)> {
        let accounts = lock(&self.accounts);
        let mut all: Vec<_> = accounts
            .iter()
            .map(|(id, a)| (id.clone(), a.limited(), a.available(), a.exposure.load(Relaxed), a.spent.load(Relaxed)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Limits `campaign` (its bids hold their cost and stop when `available` cannot cover one)
    /// or lifts its limit.
    pub fn set_limited(&self, campaign: &str, limited: bool) {
        self.account(campaign).limited.store(limited, Relaxed);
    }

    /// Adds `nanos` (negative: takes back) to `campaign`'s available money; the new amount.
    pub fn grant(&self, campaign: &str, nanos: i64) -> i64 {
        self.account(campaign).available.fetch_add(nanos, Relaxed) + nanos
    }

    fn shard(&self, token: u64) -> MutexGuard<'_, HashMap<u64, InFlight>> {
        // The low bits are the sequence: consecutive bids spread over the shards.
        lock(&self.shards[(token as usize) % SHARDS])
    }

    /// A token no other bid of this ledger has: the bid's second (its high 32 bits, so the
    /// token says when it was made) and a sequence number.
    fn token(&self, now: f64) -> u64 {
        let second = now.clamp(0.0, f64::from(u32::MAX)) as u64;
        loop {
            // 0 is the token of an untracked bid: never hand it out.
            let token = (second << 32) | u64::from(self.sequence.fetch_add(1, Relaxed));
            if token != 0 {
                return token;
            }
        }
    }

    /// Holds `cost` against `account` when it is limited, and a slot of the user's frequency
    /// cap (`cap`: its key and the campaign's cap) when the campaign has one, and registers the
    /// bid; its token (0 when the registry is full and the bid needs no hold: it goes out
    /// untracked). Nothing is held when either hold fails.
    pub fn open(&self, account: &Arc<Account>, cost: i64, cap: Option<(u64, Cap)>, now: f64) -> Result<u64, Refused> {
        let limited = account.limited();
        if self.in_flight.load(Relaxed) >= self.capacity {
            self.unregistered.fetch_add(1, Relaxed);
            // A hold could never be settled: no bid. Else the bid goes out untracked.
            return if limited {
                Err(Refused::Budget)
            } else if cap.is_some() {
                Err(Refused::FrequencyCap)
            } else {
                Ok(0)
            };
        }
        if limited && !account.hold(cost) {
            return Err(Refused::Budget);
        }
        if let Some((key, cap)) = cap {
            if !self.caps.hold(key, cap, now) {
                if limited {
                    account.settle(cost, 0);
                }
                return Err(Refused::FrequencyCap);
            }
        }
        let token = self.token(now);
        let bid = InFlight {
            account: Arc::clone(account),
            held: if limited { cost } else { 0 },
            expires: now + self.ttl_seconds,
            state: State::Open,
            cap: cap.map_or(0, |(key, _)| key),
        };
        self.shard(token).insert(token, bid);
        self.in_flight.fetch_add(1, Relaxed);
        Ok(token)
    }

    /// Takes back a bid opened but never sent (the response was not written).
    pub fn cancel(&self, token: u64) {
        let removed = self.shard(token).remove(&token);
        if let Some(bid) = removed {
            self.in_flight.fetch_sub(1, Relaxed);
            if bid.held > 0 {
                bid.account.settle(bid.held, 0);
            }
            if bid.cap != 0 {
                self.caps.release(bid.cap, None);
            }
        }
    }

    /// Settles a notice for the bid `token` at `price` (nanos of the bidder's currency; a loss
    /// notice's is ignored) received at `now`.
    pub fn notice(&self, kind: NoticeKind, token: u64, price: i64, now: f64) -> NoticeResult {
        let result = self.settle(kind, token, price.max(0), now);
        self.notices[kind as usize][result.settled as usize].fetch_add(1, Relaxed);
        result
    }

    fn settle(&self, kind: NoticeKind, token: u64, price: i64, now: f64) -> NoticeResult {
        let answer = |settled, account: Option<&Arc<Account>>, spent| NoticeResult {
            settled,
            account: account.map(Arc::clone),
            spent,
        };
        let mut shard = self.shard(token);
        let Some(bid) = shard.get_mut(&token) else {
            let made = (token >> 32) as f64;
            let settled = if token != 0 && made + self.ttl_seconds < now && made <= now {
                Settled::Expired
            } else {
                Settled::Unknown
            };
            return answer(settled, None, 0);
        };
        if bid.expires < now {
            // Not yet swept: the same answer as after the sweep.
            let account = Arc::clone(&bid.account);
            if let Some(bid) = shard.remove(&token) {
                drop(shard);
                self.release_expired(&bid);
            }
            return answer(Settled::Expired, Some(&account), 0);
        }
        use NoticeKind as K;
        use State as S;
        let spend_on_win = self.spend_on == SpendOn::Win;
        let (next, spent) = match (kind, bid.state) {
            (K::Win, S::Open) => (S::Won, if spend_on_win { price } else { 0 }),
            // A bill without a win (many exchanges send only one) spends when the win would have.
            (K::Bill, S::Open) => (S::Billed, price),
            (K::Bill, S::Won) => (S::Billed, if spend_on_win { 0 } else { price }),
            (K::Loss, S::Open) => (S::Lost, 0),
            (K::Win, S::Won | S::Billed) | (K::Bill, S::Billed) | (K::Loss, S::Lost) => {
                return answer(Settled::Duplicate, Some(&bid.account), 0)
            }
            (K::Win | K::Bill, S::Lost) | (K::Loss, S::Won | S::Billed) => {
                return answer(Settled::Conflict, Some(&bid.account), 0)
            }
        };
        bid.state = next;
        // The holds end once the money is decided: a loss, a bill, or a win that spends. Then
        // too the cap's slot becomes an impression (or, on a loss, free).
        let ends_hold = matches!(next, S::Lost | S::Billed) || (next == S::Won && spend_on_win);
        if ends_hold && bid.held > 0 {
            bid.account.settle(bid.held, spent);
            bid.held = 0;
        } else if spent > 0 {
            bid.account.spend(spent);
        }
        let account = Arc::clone(&bid.account);
        let cap = if ends_hold { std::mem::take(&mut bid.cap) } else { 0 };
        drop(shard);
        if cap != 0 {
            self.caps.release(cap, (next != S::Lost).then_some(now));
        }
        answer(Settled::Accepted, Some(&account), spent)
    }

    fn release_expired(&self, bid: &InFlight) {
        self.in_flight.fetch_sub(1, Relaxed);
        if bid.held > 0 {
            bid.account.settle(bid.held, 0);
            self.expired.fetch_add(1, Relaxed);
        }
        if bid.cap != 0 {
            self.caps.release(bid.cap, None);
        }
    }

    /// Forgets the bids whose time to live has passed at `now`, releasing what they held; how
    /// many holds were released.
    pub fn expire(&self, now: f64) -> u64 {
        let mut released = 0;
        for shard in self.shards.iter() {
            // Settling is a few atomic adds: done under the shard's lock, in the same pass.
            lock(shard).retain(|_, bid| {
                let keep = bid.expires >= now;
                if !keep {
                    released += u64::from(bid.held > 0);
                    self.release_expired(bid);
                }
                keep
            });
        }
        self.caps.sweep(now);
        released
    }

    pub fn stats(&self) -> LedgerStats {
        let mut notices = [[0; 5]; 3];
        for (k, row) in self.notices.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                notices[k][s] = n.load(Relaxed);
            }
        }
        LedgerStats {
            in_flight: self.in_flight.load(Relaxed),
            unregistered: self.unregistered.load(Relaxed),
            expired: self.expired.load(Relaxed),
            notices,
        }
    }
}

/// A token as the `{bid}` placeholder writes it: 16 lower-case hex digits.
pub fn token_text(token: u64, out: &mut [u8; 16]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((token >> (60 - 4 * i)) & 0xf) as usize];
    }
    std::str::from_utf8(out).unwrap_or_default()
}

/// The token in a notice: exactly 16 hex digits, either case.
pub fn parse_token(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(spend_on: SpendOn) -> (Ledger, Arc<Account>) {
        let ledger = Ledger::new(60.0, spend_on, 1000, 1000, 7).expect("valid");
        let account = ledger.account("c1");
        (ledger, account)
    }

    #[test]
    fn holds_stop_bids_at_the_granted_money_and_notices_settle_them() {
        let (l, a) = ledger(SpendOn::Bill);
        l.set_limited("c1", true);
        assert_eq!(l.grant("c1", 5_000), 5_000);
        let t1 = l.open(&a, 2_000, None, 100.0).expect("covered");
        let t2 = l.open(&a, 2_000, None, 100.0).expect("covered");
        assert_eq!(l.open(&a, 2_000, None, 100.0), Err(Refused::Budget), "1000 left cannot cover 2000");
        assert_eq!((a.available(), a.exposure.load(Relaxed)), (1_000, 4_000));
        // A win in bill mode keeps the hold; the bill spends the clearing price.
        assert_eq!(l.notice(NoticeKind::Win, t1, 1_500, 101.0).settled, Settled::Accepted);
        assert_eq!(a.available(), 1_000);
        let billed = l.notice(NoticeKind::Bill, t1, 1_500, 102.0);
        assert_eq!((billed.settled, billed.spent), (Settled::Accepted, 1_500));
        assert_eq!((a.available(), a.exposure.load(Relaxed), a.spent.load(Relaxed)), (1_500, 2_000, 1_500));
        assert_eq!(l.notice(NoticeKind::Bill, t1, 1_500, 103.0).settled, Settled::Duplicate);
        assert_eq!(l.notice(NoticeKind::Loss, t2, 0, 103.0).settled, Settled::Accepted);
        assert_eq!((a.available(), a.exposure.load(Relaxed)), (3_500, 0));
        assert_eq!(l.notice(NoticeKind::Win, t2, 9, 104.0).settled, Settled::Conflict);
        // A token never handed out is unknown; one stamped longer ago than the time to live
        // can only be expired (or forged: either way it is refused).
        assert_eq!(l.notice(NoticeKind::Win, (104 << 32) | 12345, 9, 104.0).settled, Settled::Unknown);
        assert_eq!(l.notice(NoticeKind::Win, 12345, 9, 104.0).settled, Settled::Expired);
        assert_eq!(l.stats().notices[NoticeKind::Bill as usize][Settled::Duplicate as usize], 1);
        // A notice names the bid's account, and the campaign it belongs to.
        let share = l.account("c1@e:treatment");
        let t3 = l.open(&share, 0, None, 105.0).expect("unlimited");
        let settled = l.notice(NoticeKind::Bill, t3, 10, 106.0).account.expect("known");
        assert_eq!((settled.id(), settled.campaign()), ("c1@e:treatment", "c1"));
    }

    #[test]
    fn expiry_releases_holds_and_later_notices_are_expired() {
        let (l, a) = ledger(SpendOn::Win);
        l.set_limited("c1", true);
        l.grant("c1", 3_000);
        let t = l.open(&a, 3_000, None, 100.0).expect("covered");
        assert_eq!(l.expire(150.0), 0);
        assert_eq!(l.expire(161.0), 1);
        assert_eq!((a.available(), a.exposure.load(Relaxed)), (3_000, 0));
        assert_eq!(l.notice(NoticeKind::Win, t, 3_000, 170.0).settled, Settled::Expired);
        // Not yet swept: the notice finds the bid past its time and releases it itself.
        let t = l.open(&a, 3_000, None, 200.0).expect("covered");
        assert_eq!(l.notice(NoticeKind::Win, t, 3_000, 300.0).settled, Settled::Expired);
        assert_eq!((a.available(), l.stats().in_flight), (3_000, 0));
    }

    #[test]
    fn win_mode_spends_on_the_win_and_a_bill_alone_spends_too() {
        let (l, a) = ledger(SpendOn::Win);
        let t1 = l.open(&a, 2_000, None, 10.0).expect("unlimited");
        let t2 = l.open(&a, 2_000, None, 10.0).expect("unlimited");
        assert_eq!(l.notice(NoticeKind::Win, t1, 1_000, 11.0).spent, 1_000);
        assert_eq!(l.notice(NoticeKind::Bill, t1, 1_000, 12.0).spent, 0);
        assert_eq!(l.notice(NoticeKind::Bill, t2, 700, 12.0).spent, 700);
        assert_eq!((a.spent.load(Relaxed), a.available()), (1_700, -1_700));
    }

    #[test]
    fn a_full_registry_refuses_limited_bids_and_sends_the_others_untracked() {
        let l = Ledger::new(60.0, SpendOn::Bill, 1, 1000, 0).expect("valid");
        let a = l.account("c1");
        assert!(l.open(&a, 1, None, 0.0).is_ok_and(|t| t != 0));
        assert_eq!(l.open(&a, 1, None, 0.0), Ok(0));
        l.set_limited("c1", true);
        l.grant("c1", 10);
        assert_eq!(l.open(&a, 1, None, 0.0), Err(Refused::Budget));
        assert_eq!(l.stats().unregistered, 2);
    }

    #[test]
    fn a_capped_bid_holds_a_slot_its_notice_turns_into_an_impression_or_frees() {
        let (l, a) = ledger(SpendOn::Bill);
        l.set_limited("c1", true);
        l.grant("c1", 10_000);
        let cap = Cap { count: 2, window: 60 };
        let key = super::super::frequency::key(super::super::frequency::user_hash("b:u1"), "c1");
        let t1 = l.open(&a, 1_000, Some((key, cap)), 100.0).expect("room");
        let t2 = l.open(&a, 1_000, Some((key, cap)), 100.0).expect("room");
        assert_eq!(l.open(&a, 1_000, Some((key, cap)), 100.0), Err(Refused::FrequencyCap));
        assert_eq!(a.available(), 8_000, "a bid the cap refused holds no money");
        l.notice(NoticeKind::Win, t1, 900, 101.0);
        assert_eq!(l.caps().used(key, 101.0), 2, "a win before its bill still holds the slot");
        l.notice(NoticeKind::Bill, t1, 900, 102.0);
        l.notice(NoticeKind::Loss, t2, 0, 102.0);
        assert_eq!(l.caps().used(key, 102.0), 1, "one impression, one slot freed by the loss");
        let t3 = l.open(&a, 1_000, Some((key, cap)), 103.0).expect("room");
        l.expire(103.0 + 61.0);
        assert_eq!(l.caps().used(key, 103.0 + 61.0), 0, "expiry frees the slot, the window the impression");
        assert_eq!(l.notice(NoticeKind::Bill, t3, 900, 200.0).settled, Settled::Expired);
    }

    #[test]
    fn tokens_print_and_parse() {
        let mut buf = [0u8; 16];
        let text = token_text(0x0123_4567_89ab_cdef, &mut buf).to_owned();
        assert_eq!(text, "0123456789abcdef");
        assert_eq!(parse_token(&text), Some(0x0123_4567_89ab_cdef));
        assert_eq!(parse_token("0123456789ABCDEF"), Some(0x0123_4567_89ab_cdef));
        assert_eq!(parse_token("123"), None);
        assert_eq!(parse_token("+123456789abcdef"), None);
        assert_eq!(parse_token("0123456789abcdeg"), None);
    }
}
