//! Any bytes as a bid request into the whole decision: a request the parser accepts is decided
//! (bid or no-bid, never a panic), a bid's response is JSON, and `explain` agrees with `bid`.
//! The plan has experiment layers (multiplier, own-curve and campaign-subset arms) and a paced
//! campaign, so assignment and pacing run on every input too.
#![no_main]

use bidcore_core::engine::{Engine, Outcome, Plan, Scratch};
use bidcore_core::openrtb::{Limits, RequestParser};
use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;

const PLAN: &str = include_str!("../../rust/bidcore-core/tests/engine_plan.json");

fuzz_target!(|body: &[u8]| {
    let parser =
        RequestParser::new(Limits { max_body_bytes: 64 * 1024, max_depth: 24, max_imps: 16, max_string_bytes: 4096 });
    let engine =
        Engine::new(Plan::from_json(PLAN).expect("plan"), [None, None], Vec::new(), parser, [None, None], None)
            .expect("engine");
    // Pacing from the body's length: throttled, stopped or free campaigns, multipliers up and down.
    let throttle = [0, 1, 500_000, 999_999, 1_000_000][body.len() % 5];
    let multiplier = [1, 1_000_000, 3_000_000, 100_000_000][body.len() % 4];
    engine.set_pacing("everywhere", throttle, multiplier).expect("valid pacing");
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
