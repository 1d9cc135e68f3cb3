//! Any bytes into the request parser: it must return a view or an error, never panic, and a view
//! it returns must write back as JSON that it accepts again with the same view.
#![no_main]

use bidcore_core::openrtb::{view_to_json, Limits, RequestParser};
use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let parser =
        RequestParser::new(Limits { max_body_bytes: 64 * 1024, max_depth: 24, max_imps: 16, max_string_bytes: 4096 });
    let arena = Bump::new();
    if let Ok(request) = parser.parse(body, &arena) {
        let written = view_to_json(&request);
        let again_arena = Bump::new();
        let again = parser.parse(&written, &again_arena).expect("the normalized view is a valid request");
        assert_eq!(view_to_json(&again), written, "normalizing twice changes nothing");
    }
});
