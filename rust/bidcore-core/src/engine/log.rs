//! The decision log: one record per decision, pushed by `bid` into a bounded buffer that a
//! background reader drains into a sink (files, Redis). Pushing never blocks: when the buffer
//! is full the record is dropped and counted. The record layout is a contract with whoever
//! reads the log (training, analysis): `bidcore/schemas/decision-v1.json` states it, and
//! `bidcore.decisionlog` tests every record against it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The version written into every record's `v`.
pub const RECORD_VERSION: u32 = 1;

/// Key-value pairs serialized as a map (`{"ctr": 0.012}`), kept as a short vector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs<V>(pub Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Pairs<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A map by experiment key: the arm the request got, or its unit's key.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ByExperiment(pub std::collections::BTreeMap<String, String>);

/// One decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionRecord {
    pub v: u32,
    /// The decision's time, seconds since the epoch.
    pub ts: f64,
    /// The request id; None when the body was invalid.
    pub request: Option<String>,
    pub bid: bool,
    /// The request's no-bid reason; None on a bid.
    pub reason: Option<&'static str>,
    pub nbr: Option<i32>,
    /// Why an invalid body was refused.
    pub error: Option<String>,
    pub currency: Option<String>,
    pub test: bool,
    pub latency_ns: u64,
    /// The arm by experiment key, for every experiment the request is in.
    pub arms: ByExperiment,
    /// The unit's pseudonymous key by experiment key (`bidcore.experiments.unit_key`): what the
    /// analysis groups decisions by.
    pub units: ByExperiment,
    /// Model id by role.
    pub models: Pairs<String>,
    pub imps: Vec<ImpRecord>,
}

/// One imp of a decision: the winner and its arithmetic, or why the imp got no bid.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImpRecord {
    pub imp: String,
    pub campaign: Option<String>,
    pub creative: Option<String>,
    pub deal: Option<String>,
    /// In micros of the record's currency.
    pub price_micros: Option<i64>,
    pub value_micros: Option<i64>,
    pub floor_micros: Option<i64>,
    pub reason: Option<&'static str>,
    /// The winner's model scores by role.
    pub scores: Pairs<f64>,
    /// The winner's feature rows by role, in the spec's column order; None is missing.
    pub features: Pairs<Vec<Option<f64>>>,
}

/// Serialized forms a reader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "msgpack" => Some(Format::Msgpack),
            _ => None,
        }
    }
}

/// The bounded buffer between the bidding threads and the log's reader.
#[derive(Debug)]
pub struct DecisionLog {
    sender: SyncSender<DecisionRecord>,
    receiver: Mutex<Receiver<DecisionRecord>>,
    capacity: usize,
    logged: AtomicU64,
    dropped: AtomicU64,
    drained: AtomicU64,
}

/// Counts since the log was made: records accepted, dropped because the buffer was full, and
/// taken out by readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    pub logged: u64,
    pub dropped: u64,
    pub drained: u64,
}

impl LogStats {
    pub fn pending(&self) -> u64 {
        self.logged.saturating_sub(self.drained)
    }
}

impl DecisionLog {
    pub fn new(capacity: usize) -> Result<DecisionLog, String> {
        if capacity == 0 {
            return Err("the decision log needs a capacity of at least 1".into());
        }
        let (sender, receiver) = sync_channel(capacity);
        Ok(DecisionLog {
            sender,
            receiver: Mutex::new(receiver),
            capacity,
            logged: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            drained: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a record, or drops it (counted) when the buffer is full. Never waits.
    pub fn push(&self, record: DecisionRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {
                self.logged.fetch_add(1, Relaxed);
            }
            // The receiver lives as long as the log, so only Full happens; both are drops.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Takes up to `max` records out, oldest first.
    pub fn drain(&self, max: usize) -> Vec<DecisionRecord> {
        // A reader that panicked mid-drain leaves nothing half-done in a Receiver: keep going.
        let receiver = self.receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let records: Vec<DecisionRecord> = receiver.try_iter().take(max).collect();
        self.drained.fetch_add(records.len() as u64, Relaxed);
        records
    }

    pub fn stats(&self) -> LogStats {
        LogStats {
            logged: self.logged.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            drained: self.drained.load(Relaxed),
        }
    }
}

/// One record in the reader's format.
pub fn serialize(record: &DecisionRecord, format: Format) -> Vec<u8> {
    // Neither serializer can fail on these types (string keys, no foreign Serialize impls);
    // an empty record would still be better than a panic in the log's reader.
    match format {
        Format::Json => serde_json::to_vec(record).unwrap_or_default(),
        Format::Msgpack => rmp_serde::to_vec_named(record).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> DecisionRecord {
        DecisionRecord {
            v: RECORD_VERSION,
            ts: 1.5,
            request: Some(id.into()),
            bid: true,
            reason: None,
            nbr: None,
            error: None,
            currency: Some("USD".into()),
            test: false,
            latency_ns: 1200,
            arms: ByExperiment::default(),
            units: ByExperiment::default(),
            models: Pairs(vec![("ctr", "m@1".into())]),
            imps: vec![ImpRecord {
                imp: "1".into(),
                campaign: Some("c".into()),
                creative: Some("cr".into()),
                deal: None,
                price_micros: Some(1_500_000),
                value_micros: Some(2_000_000),
                floor_micros: Some(0),
                reason: None,
                scores: Pairs(vec![("ctr", 0.25)]),
                features: Pairs(vec![("ctr", vec![Some(1.0), None])]),
            }],
        }
    }

    #[test]
    fn json_has_the_documented_layout() {
        let json = String::from_utf8(serialize(&record("r1"), Format::Json)).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"ts":1.5,"request":"r1","bid":true,"reason":null,"nbr":null,"error":null,"currency":"USD","test":false,"latency_ns":1200,"arms":{},"units":{},"models":{"ctr":"m@1"},"imps":[{"imp":"1","campaign":"c","creative":"cr","deal":null,"price_micros":1500000,"value_micros":2000000,"floor_micros":0,"reason":null,"scores":{"ctr":0.25},"features":{"ctr":[1.0,null]}}]}"#
        );
        let back: serde_json::Value = rmp_serde::from_slice(&serialize(&record("r1"), Format::Msgpack)).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(&json).unwrap());
    }

    #[test]
    fn a_full_log_drops_and_counts() {
        let log = DecisionLog::new(2).unwrap();
        for i in 0..5 {
            log.push(record(&i.to_string()));
        }
        assert_eq!(log.stats(), LogStats { logged: 2, dropped: 3, drained: 0 });
        let out = log.drain(10);
        assert_eq!(out.iter().map(|r| r.request.clone().unwrap()).collect::<Vec<_>>(), ["0", "1"]);
        log.push(record("5"));
        assert_eq!(log.stats().pending(), 1);
        assert!(DecisionLog::new(0).is_err());
    }
}
