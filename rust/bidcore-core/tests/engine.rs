//! The engine on its own (no models): every corpus request decided without a panic, and every
//! bid within its money bounds. The rule-by-rule tests and the differential test against the
//! Python reference are in tests/test_engine*.py.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bidcore_core::engine::{serialize, DecisionLog, Engine, Format, Outcome, Plan, Reason, Scratch};
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

fn engine(log: Option<Arc<DecisionLog>>) -> Engine {
    Engine::new(
        Plan::from_json(PLAN).expect("plan"),
        [None, None],
        Vec::new(),
        RequestParser::default(),
        [None, None],
        log,
    )
    .expect("engine")
}

#[test]
fn every_corpus_request_is_decided_and_every_bid_is_within_bounds() {
    let requests = lines("requests.jsonl");
    let log = Arc::new(DecisionLog::new(requests.len()).expect("log"));
    let engine = engine(Some(log.clone()));
    let mut scratch = Scratch::default();
    let mut arena = Bump::new();
    let (mut valid, mut bids) = (0, 0);
    let mut bid_ids = Vec::new();
    for (n, body) in requests.iter().enumerate() {
        arena.reset();
        let mut out = Vec::new();
        let Ok(outcome) = engine.bid(body, 1.8e9, None, &arena, &mut scratch, &mut out) else { continue };
        valid += 1;
        if outcome != Outcome::Bid {
            continue;
        }
        bids += 1;
        let response: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        bid_ids.push(response["id"].clone());
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
    let snapshot = engine.snapshot();
    assert_eq!((snapshot.requests, snapshot.bids), (requests.len() as u64, bids));
    let no_bids: u64 = snapshot.no_bids.iter().map(|(_, n)| n).sum();
    assert_eq!(snapshot.bids + no_bids, snapshot.requests, "every request counted once");
    let invalid = snapshot.no_bids.iter().find(|(r, _)| *r == Reason::Invalid).expect("invalid").1;
    assert_eq!(invalid, (requests.len() - valid) as u64);
    assert_eq!(snapshot.latency_counts.iter().sum::<u64>(), snapshot.requests);
    assert_eq!(snapshot.campaigns.iter().map(|c| c.0).sum::<u64>(), snapshot.imp_bids);

    // The decision log: one record per request, invalid ones included, in order.
    let records = log.drain(usize::MAX);
    assert_eq!(records.len(), requests.len());
    assert_eq!(log.stats().dropped, 0);
    let logged_bids: Vec<Value> =
        records.iter().filter(|r| r.bid).map(|r| Value::from(r.request.clone().expect("id"))).collect();
    assert_eq!(logged_bids, bid_ids);
    for r in &records {
        let json: Value = serde_json::from_slice(&serialize(r, Format::Json)).expect("json");
        assert_eq!(json["v"], 1);
        assert_eq!(json["bid"].as_bool(), Some(r.bid));
        if r.bid {
            assert!(r.imps.iter().any(|i| i.price_micros.is_some_and(|p| p > 0) && i.campaign.is_some()));
        } else {
            assert!(r.reason.is_some() && r.imps.iter().all(|i| i.campaign.is_none()));
        }
    }
}

#[test]
fn a_request_past_its_deadline_is_a_late_no_bid() {
    let engine = engine(None);
    let body =
        br#"{"id":"r","tmax":120,"imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"country":"USA"}}}"#;
    let arena = Bump::new();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let outcome = |waited: Option<Duration>, out: &mut Vec<u8>, scratch: &mut Scratch| {
        engine.bid(body, 1.8e9, waited, &arena, scratch, out).expect("valid")
    };
    let on_time = outcome(None, &mut out, &mut scratch);
    // The plan keeps no margin: waiting 120 ms of a 120 ms tmax leaves nothing.
    assert_eq!(outcome(Some(Duration::from_millis(120)), &mut out, &mut scratch), Outcome::NoBid(Reason::Late));
    assert_eq!(outcome(Some(Duration::from_millis(1)), &mut out, &mut scratch), on_time);
    let late = engine.snapshot().no_bids.iter().find(|(r, _)| *r == Reason::Late).expect("late").1;
    assert_eq!(late, 1);
}

/// The plan's experiments: `boost` (layer `pricing`, by user id) multiplies the value of
/// `everywhere` by 1.5 in arm `x1.5`; `curve` (layer `shading`, by request id) shades on its own
/// curve in `steep` and leaves `night` out there.
#[test]
fn arms_change_the_decision_as_planned() {
    let log = Arc::new(DecisionLog::new(4096).expect("log"));
    let engine = engine(Some(log.clone()));
    let arena = Bump::new();
    let mut scratch = Scratch::default();
    // Second price, no floor, a banner only `everywhere` (value 2) and `night` (1) can take.
    let body = |user: usize| {
        format!(
            r#"{{"id":"q{user}","at":2,"imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],"user":{{"id":"u{user}"}},"site":{{"domain":"x.example"}}}}"#
        )
    };
    let mut prices = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for user in 0..400 {
        let body = body(user);
        let (explanation, response) = engine.explain(body.as_bytes(), 1.8e9, &arena).expect("valid");
        let arm = explanation.arms.iter().find(|(e, _)| e == "boost").map(|(_, a)| a.clone());
        let Some(response) = response else { continue };
        let response: Value = serde_json::from_slice(&response).expect("json");
        let bid = &response["seatbid"][0]["bid"][0];
        if bid["cid"] == "everywhere" {
            let arm = arm.expect("the boost experiment covers every unit with a user id");
            prices.entry(arm).or_default().push(bid["price"].as_f64().expect("price"));
            // `{arm}` lists the request's arms, `experiment:arm`, comma-separated.
            let nurl = bid["nurl"].as_str().expect("nurl");
            let listed: Vec<String> = explanation.arms.iter().map(|(e, a)| format!("{e}%3A{a}")).collect();
            assert!(nurl.ends_with(&format!("&arm={}", listed.join("%2C"))), "{nurl}");
        }
        let mut out = Vec::new();
        engine.bid(body.as_bytes(), 1.8e9, None, &arena, &mut scratch, &mut out).expect("valid");
    }
    // Second price: the bid is the value, 2 in control and 3 in x1.5.
    assert!(prices["control"].len() > 50 && prices["x1.5"].len() > 50, "{prices:?}");
    assert!(prices["control"].iter().all(|&p| p == 2.0), "{:?}", prices["control"]);
    assert!(prices["x1.5"].iter().all(|&p| p == 3.0), "{:?}", prices["x1.5"]);
    // Every decision's record carries its arms and the units' keys.
    let records = log.drain(usize::MAX);
    assert_eq!(records.len(), 400);
    assert!(records.iter().all(|r| r.arms.0.contains_key("boost") && r.units.0.contains_key("boost")));
    let snapshot = engine.snapshot();
    let assigned: u64 = snapshot.arms.iter().map(|a| a[0]).sum();
    let in_arms = records.iter().map(|r| r.arms.0.len() as u64).sum::<u64>();
    assert_eq!(assigned, in_arms);

    // `steep` shades first-price bids on its own curve and has no `night`.
    let first_price = |id: &str| {
        format!(
            r#"{{"id":"{id}","at":1,"imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],"site":{{"domain":"x.example"}}}}"#
        )
    };
    // 23:00 at the daypart's UTC-4: `night` is targeted, and only an arm can leave it out.
    let night_time = 1.8e9 - 5.0 * 3600.0;
    let (mut control, mut steep) = (None, None);
    for n in 0..400 {
        let id = format!("r{n}");
        let (explanation, response) = engine.explain(first_price(&id).as_bytes(), night_time, &arena).expect("valid");
        let arm = explanation.arms.iter().find(|(e, _)| e == "curve").map(|(_, a)| a.as_str());
        let price = response
            .map(|r| serde_json::from_slice::<Value>(&r).expect("json")["seatbid"][0]["bid"][0]["price"].clone());
        match arm {
            Some("control") => {
                let night = explanation.targeting.iter().find(|(c, _)| c == "night").expect("night").1;
                assert_eq!(night, None, "control keeps night");
                control = price.or(control);
            }
            Some("steep") => {
                let night = explanation.targeting.iter().find(|(c, _)| c == "night").expect("night").1;
                assert_eq!(night, Some(Reason::NoCampaign), "steep leaves night out");
                steep = price.or(steep);
            }
            _ => {}
        }
    }
    let (control, steep) = (control.expect("a control bid"), steep.expect("a steep bid"));
    assert_ne!(control, steep, "the curves differ, so do the shaded prices");
}
