//! The engine on its own (no models): every corpus request decided without a panic, and every
//! bid within its money bounds. The rule-by-rule tests and the differential test against the
//! Python reference are in tests/test_engine*.py.

use std::path::PathBuf;

use bidcore_core::engine::{Engine, Outcome, Plan, Scratch};
use bidcore_core::openrtb::RequestParser;
use bumpalo::Bump;
use serde_json::Value;

/// Cpm campaigns with every kind of rule, several currencies, deals, a daypart and shading
/// (also the plan of the `engine_bid` fuzz target).
const PLAN: &str = include_str!("engine_plan.json");

fn lines(name: &str) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb").join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn engine() -> Engine {
    Engine::new(Plan::from_json(PLAN).expect("plan"), [None, None], RequestParser::default()).expect("engine")
}

#[test]
fn every_corpus_request_is_decided_and_every_bid_is_within_bounds() {
    let engine = engine();
    let mut scratch = Scratch::default();
    let mut arena = Bump::new();
    let (mut valid, mut bids) = (0, 0);
    for (n, body) in lines("requests.jsonl").iter().enumerate() {
        arena.reset();
        let mut out = Vec::new();
        let Ok(outcome) = engine.bid(body, 1.8e9, &arena, &mut scratch, &mut out) else { continue };
        valid += 1;
        if outcome != Outcome::Bid {
            continue;
        }
        bids += 1;
        let response: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let (explanation, again) = engine.explain(body, 1.8e9, &arena).expect("explain");
        assert_eq!(again.as_deref(), Some(out.as_slice()), "line {}: explain and bid agree", n + 1);
        for bid in response["seatbid"][0]["bid"].as_array().expect("bids") {
            let price = bid["price"].as_f64().expect("price");
            assert!(price > 0.0 && !bid["crid"].is_null() && !bid["adomain"].is_null(), "line {}", n + 1);
        }
        for c in explanation.candidates.iter().filter(|c| c.excluded_by.is_none()) {
            let (price, lower, upper) = (c.price.expect("price"), c.lower.expect("lower"), c.upper.expect("upper"));
            assert!(lower <= price && price <= upper && c.floor.expect("floor") <= price, "line {}", n + 1);
        }
    }
    assert!(valid > 3500 && bids > 1000, "{valid} valid, {bids} bids");
    assert_eq!(engine.counters().bids.load(std::sync::atomic::Ordering::Relaxed), bids);
}
