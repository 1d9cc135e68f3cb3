//! Property tests of the request parser: it never panics, what it accepts is well-formed JSON (an
//! independent parser, serde_json, reads it), and its normalized view is a fixed point (parsing
//! the view again gives the same view).

use std::path::PathBuf;
use std::sync::OnceLock;

use bidcore_core::openrtb::{view_to_json, Limits, RequestParser};
use bumpalo::Bump;
use proptest::prelude::*;

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb/requests.jsonl");
        let data = std::fs::read(path).expect("fixture corpus");
        data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    })
}

/// What the parser makes of `body`: the view as JSON, or the rule it broke.
fn judge(parser: &RequestParser, body: &[u8]) -> Result<Vec<u8>, String> {
    let arena = Bump::new();
    parser.parse(body, &arena).map(|view| view_to_json(&view)).map_err(|e| e.rule.to_string())
}

/// A body derived from a real request: cut, with bytes replaced, or with a span repeated.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Replace(usize, u8),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(b"{}[]\",:\\-0123456789.eEnulltrfa \x00\xff\xc3".to_vec());
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), interesting.clone()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), prop::collection::vec(interesting, 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..40, 1usize..40).prop_map(|(at, len, times)| Mutation::Repeat(at, len, times)),
    ]
}

fn apply(body: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut body = body.to_vec();
    for m in mutations {
        let at = |i: usize| if body.is_empty() { 0 } else { i % body.len() };
        match m {
            Mutation::Truncate(i) => body.truncate(at(*i)),
            Mutation::Replace(i, b) if !body.is_empty() => {
                let i = at(*i);
                body[i] = *b;
            }
            Mutation::Replace(..) => {}
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                body.splice(i..i, bytes.iter().copied());
            }
            Mutation::Repeat(i, len, times) => {
                let start = at(*i);
                let end = (start + len).min(body.len());
                let span = body[start..end].to_vec();
                for _ in 0..*times {
                    body.splice(end..end, span.iter().copied());
                }
            }
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = RequestParser::default().parse(&body, &Bump::new());
    }

    #[test]
    fn mutated_requests_are_well_formed_when_accepted_and_views_are_fixed_points(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let original: &Vec<u8> = pick.get(corpus());
        let body = apply(original, &mutations);
        let parser = RequestParser::new(Limits { max_depth: 24, ..Limits::default() });
        let ours = judge(&parser, &body);
        if let Ok(view) = &ours {
            // Accepted: the body is JSON to an independent parser too ...
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
            // ... and the view is a fixed point of parse-and-normalize.
            prop_assert_eq!(judge(&parser, view), Ok(view.clone()));
        }
    }
}
