//! Any bytes as a bid request into the whole decision: a request the parser accepts is decided
//! (bid or no-bid, never a panic), a bid's response is JSON, and `explain` agrees with `bid`.
#![no_main]

use bidcore_core::engine::{Engine, Outcome, Plan, Scratch};
use bidcore_core::openrtb::{Limits, RequestParser};
use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;

const PLAN: &str = include_str!("../../rust/bidcore-core/tests/engine_plan.json");

fuzz_target!(|body: &[u8]| {
    let parser =
        RequestParser::new(Limits { max_body_bytes: 64 * 1024, max_depth: 24, max_imps: 16, max_string_bytes: 4096 });
    let engine = Engine::new(Plan::from_json(PLAN).expect("plan"), [None, None], parser, [None, None], None).expect("engine");
    let arena = Bump::new();
    let mut out = Vec::new();
    let now = [f64::NAN, -1e18, 1.8e9, f64::INFINITY][body.len() % 4];
    let Ok(outcome) = engine.bid(body, now, None, &arena, &mut Scratch::default(), &mut out) else { return };
    let (_, response) = engine.explain(body, now, &arena).expect("explain accepts what bid accepted");
    match outcome {
        Outcome::Bid => {
            assert_eq!(response.as_deref(), Some(out.as_slice()));
            serde_json::from_slice::<serde_json::Value>(&out).expect("the response is JSON");
        }
        Outcome::NoBid(_) => assert!(response.is_none()),
    }
});
