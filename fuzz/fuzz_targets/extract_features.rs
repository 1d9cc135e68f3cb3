//! Any bytes as a bid request into feature extraction with every source the extractor knows:
//! a request the parser accepts must give a value (or NaN) for every feature of every imp, never
//! a panic, whatever its strings, numbers and timestamps.
#![no_main]

use std::collections::HashMap;

use bidcore_core::features::{Encoding, FeatureSpec, DERIVED_SOURCES, NUMBER_SOURCES, TEXT_SOURCES};
use bidcore_core::openrtb::{Limits, RequestParser};
use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;

fn spec() -> FeatureSpec {
    let mut spec = FeatureSpec::new(HashMap::from([("EUR".to_owned(), 1.1), ("JPY".to_owned(), 0.0067)]));
    for (name, _) in NUMBER_SOURCES {
        spec.number(name).expect("known");
    }
    for (i, (name, _)) in TEXT_SOURCES.iter().enumerate() {
        let encoding = if i % 2 == 0 {
            Encoding::Hash { buckets: 1 + i as u32 }
        } else {
            let codes = HashMap::from([("a".to_owned(), 0), ("USA".to_owned(), 1)]);
            Encoding::Vocabulary { codes, unseen: 2.0 }
        };
        spec.text(name, encoding).expect("known");
    }
    for (name, _) in DERIVED_SOURCES {
        spec.derived(name).expect("known");
    }
    spec.campaign(3);
    spec
}

fuzz_target!(|body: &[u8]| {
    let parser =
        RequestParser::new(Limits { max_body_bytes: 64 * 1024, max_depth: 24, max_imps: 16, max_string_bytes: 4096 });
    let arena = Bump::new();
    let Ok(request) = parser.parse(body, &arena) else { return };
    let spec = spec();
    let mut out = vec![0.0; spec.len()];
    let timestamp = match body.len() % 4 {
        0 => f64::NAN,
        1 => -1e18,
        2 => 1.8e9,
        _ => f64::INFINITY,
    };
    for imp in 0..request.imp.as_deref().map_or(0, <[_]>::len) + 1 {
        spec.extract(&request, imp, timestamp, &[1.0], &mut out);
    }
});
