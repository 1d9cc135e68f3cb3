//! `bidcore._core.Ledger`: the budget ledger's native half (`docs/budget.md`). Engines built
//! with one register their bids in it and hold the cost of a limited campaign's bids; the
//! Python side grants money and settles notices.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bidcore_core::engine::{cap_key, parse_token, user_hash, FrequencyCap, Ledger, NoticeKind, Settled, SpendOn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::detach::detached;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLedger>()?;
    Ok(())
}

#[pyclass(frozen, name = "Ledger", module = "bidcore._core")]
pub struct PyLedger(pub Arc<Ledger>);

#[pymethods]
impl PyLedger {
    /// `ttl_seconds`: how long a bid waits for its notices before its hold is released;
    /// `spend_on`: "bill" or "win", the notice whose price is spent; `capacity`: the most bids
    /// kept in flight (past it, a limited or capped campaign does not bid, another bids
    /// untracked); `cap_capacity`: the most (user, campaign) entries the frequency caps keep
    /// (past it, a capped campaign does not bid to a new user).
    #[new]
    #[pyo3(signature = (*, ttl_seconds = 300.0, spend_on = "bill", capacity = 4_000_000, cap_capacity = 1_000_000))]
    fn new(ttl_seconds: f64, spend_on: &str, capacity: u64, cap_capacity: u64) -> PyResult<Self> {
        let spend_on = match spend_on {
            "bill" => SpendOn::Bill,
            "win" => SpendOn::Win,
            other => return Err(PyValueError::new_err(format!("spend_on must be 'bill' or 'win', not {other:?}"))),
        };
        // Two processes started in the same second must not hand out the same tokens.
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(16);
        Ledger::new(ttl_seconds, spend_on, capacity, cap_capacity, seed)
            .map(|l| PyLedger(Arc::new(l)))
            .map_err(PyValueError::new_err)
    }

    #[getter]
    fn ttl_seconds(&self) -> f64 {
        self.0.ttl_seconds()
    }

    #[getter]
    fn spend_on(&self) -> &'static str {
        match self.0.spend_on() {
            SpendOn::Bill => "bill",
            SpendOn::Win => "win",
        }
    }

    /// Limits `campaign` (its bids hold their cost against the money granted) or lifts it.
    fn set_limited(&self, campaign: &str, limited: bool) {
        self.0.set_limited(campaign, limited);
    }

    /// Adds `nanos` (thousandths of a micro; negative takes back) to `campaign`'s money;
    /// returns what it has available now.
    fn grant(&self, campaign: &str, nanos: i64) -> i64 {
        self.0.grant(campaign, nanos)
    }

    /// Settles a `kind` ("win", "bill", "loss") notice for the bid whose `{bid}` token is
    /// `token`, at `price_nanos` (the clearing CPM in micros of the bidder's currency, which is
    /// one impression's cost in nanos) received at `now` (seconds since the epoch). Returns
    /// (outcome, campaign or None, account or None, nanos spent); outcome is "accepted",
    /// "duplicate", "conflict", "unknown" or "expired"; the account is the campaign's, or its
    /// share under an arm (`campaign@experiment:arm`). A token that is not 16 hex digits is
    /// unknown.
    fn notice(
        &self,
        py: Python<'_>,
        kind: &str,
        token: &str,
        price_nanos: i64,
        now: f64,
    ) -> PyResult<(&'static str, Option<String>, Option<String>, i64)> {
        let kind = NoticeKind::parse(kind)
            .ok_or_else(|| PyValueError::new_err(format!("kind must be 'win', 'bill' or 'loss', not {kind:?}")))?;
        let token = parse_token(token).unwrap_or(0);
        let result = detached(py, || Ok(self.0.notice(kind, token, price_nanos, now)))?;
        let (campaign, account) = match &result.account {
            Some(a) => (Some(a.campaign().to_owned()), Some(a.id().to_owned())),
            None => (None, None),
        };
        Ok((result.settled.as_str(), campaign, account, result.spent))
    }

    /// Forgets the bids whose time to live passed before `now`, releasing their holds; how many
    /// holds were released.
    fn expire(&self, py: Python<'_>, now: f64) -> PyResult<u64> {
        detached(py, || Ok(self.0.expire(now)))
    }

    /// How many of `user`'s slots under `campaign`'s frequency cap are used at `now`: its
    /// impressions in the window and its bids in flight. `user` is the key the engine reads
    /// from a request: `b:` and `user.buyeruid`, else `u:` and `user.id`, else `d:` and
    /// `device.ifa`.
    fn frequency(&self, user: &str, campaign: &str, now: f64) -> u32 {
        self.0.caps().used(cap_key(user_hash(user), campaign), now)
    }

    /// The impressions counted here since the last call, for other processes:
    /// (key, count, window_seconds, second), oldest first. The first call starts keeping them
    /// (a process nobody reads from keeps none).
    fn take_impressions(&self, py: Python<'_>) -> PyResult<Vec<(u64, u32, u32, u32)>> {
        let taken = detached(py, || Ok(self.0.caps().take_impressions()))?;
        Ok(taken.into_iter().map(|(key, cap, at)| (key, cap.count, cap.window, at)).collect())
    }

    /// Adds impressions another process counted (as `take_impressions` gave them); those
    /// already out of their window at `now` are skipped.
    fn add_impressions(&self, py: Python<'_>, impressions: Vec<(u64, u32, u32, u32)>, now: f64) -> PyResult<()> {
        let impressions: Vec<_> =
            impressions.into_iter().map(|(key, count, window, at)| (key, FrequencyCap { count, window }, at)).collect();
        detached(py, || {
            self.0.caps().add_impressions(&impressions, now);
            Ok(())
        })
    }

    /// Every account: campaign -> (limited, available, exposure, spent), in nanos.
    fn accounts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (campaign, limited, available, exposure, spent) in self.0.accounts() {
            d.set_item(campaign, (limited, available, exposure, spent))?;
        }
        Ok(d)
    }

    /// `in_flight` (bids registered and not yet forgotten), `unregistered` (bids the full
    /// registry could not take), `expired` (holds released by expiry), `notices`:
    /// kind -> outcome -> count, and `caps`: the frequency caps' `entries`, `refused` (bids to
    /// a new user the full table could not take), `counted` (impressions from notices here),
    /// `imported` (from other processes) and `dropped` (not taken by other processes in time).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.0.stats();
        let d = PyDict::new(py);
        d.set_item("in_flight", s.in_flight)?;
        d.set_item("unregistered", s.unregistered)?;
        d.set_item("expired", s.expired)?;
        let notices = PyDict::new(py);
        for kind in NoticeKind::ALL {
            let outcomes = PyDict::new(py);
            for settled in Settled::ALL {
                outcomes.set_item(settled.as_str(), s.notices[kind as usize][settled as usize])?;
            }
            notices.set_item(kind.as_str(), outcomes)?;
        }
        d.set_item("notices", notices)?;
        let c = self.0.caps().stats();
        let caps = PyDict::new(py);
        caps.set_item("entries", c.entries)?;
        caps.set_item("refused", c.refused)?;
        caps.set_item("counted", c.counted)?;
        caps.set_item("imported", c.imported)?;
        caps.set_item("dropped", c.dropped)?;
        d.set_item("caps", caps)?;
        Ok(d)
    }
}
