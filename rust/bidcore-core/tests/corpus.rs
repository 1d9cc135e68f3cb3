//! The parser and the writer against the real OpenRTB corpus in `tests/fixtures/openrtb`.

use std::path::PathBuf;

use bidcore_core::money::Micros;
use bidcore_core::openrtb::backend::{SerdeJson, Sonic};
use bidcore_core::openrtb::json::ViewJson;
use bidcore_core::openrtb::response::{write_response, Bid, BidResponse, SeatBid};
use bidcore_core::openrtb::{parse_with, view_to_json, Limits, RequestError, RequestParser};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(name: &str) -> Vec<Vec<u8>> {
    fixture(name).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// The view as JSON, or the rule and path of the rejection: what two parsers must agree on.
fn outcome_of<J: ViewJson>(
    result: Result<bidcore_core::openrtb::request::BidRequest<'_, J>, RequestError>,
) -> Result<Value, (String, String)> {
    match result {
        Ok(view) => Ok(serde_json::from_slice(&view_to_json(&view)).expect("the view is JSON")),
        Err(e) => Err((e.rule.to_string(), e.path)),
    }
}

#[test]
fn every_backend_reads_the_corpus_the_same_way() {
    let parser = RequestParser::default();
    let limits = Limits::default();
    let mut accepted = 0;
    for (n, body) in lines("requests.jsonl").iter().enumerate() {
        let production = outcome_of(parser.parse(body));
        let mut scratch = Vec::new();
        let reference = outcome_of(parse_with::<SerdeJson>(body, &mut scratch, &limits));
        assert_eq!(production, reference, "line {}: bidcore's reader and serde_json disagree", n + 1);
        let mut scratch = Vec::new();
        let sonic = outcome_of(parse_with::<Sonic>(body, &mut scratch, &limits));
        assert_eq!(production, sonic, "line {}: bidcore's reader and sonic-rs disagree", n + 1);
        #[cfg(feature = "serde-backends")]
        {
            let mut scratch = Vec::new();
            let simd = outcome_of(parse_with::<bidcore_core::openrtb::backend::SimdJson>(body, &mut scratch, &limits));
            assert_eq!(production, simd, "line {}: bidcore's reader and simd-json disagree", n + 1);
        }
        accepted += usize::from(production.is_ok());
    }
    // The corpus is mostly valid traffic; the rejected remainder is listed in the Python tests.
    assert!(accepted > 3500, "only {accepted} requests accepted");
}

#[test]
fn strings_without_escapes_are_borrowed_from_the_body() {
    let body =
        br#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"tagid":"a\"b"}],"site":{"domain":"example.com"}}"#;
    let request = RequestParser::default().parse(body).expect("valid");
    let imp = &request.imp.as_ref().expect("imps")[0];
    assert!(request.id.as_ref().expect("id").is_borrowed());
    assert!(request.site.as_ref().and_then(|s| s.domain.as_ref()).expect("domain").is_borrowed());
    let tagid = imp.tagid.as_ref().expect("tagid");
    assert_eq!(tagid.as_str(), "a\"b");
    assert!(!tagid.is_borrowed(), "an escaped string has to be unescaped into a copy");
}

fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

fn strs<'v>(v: &'v Value, k: &str) -> Vec<&'v str> {
    v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn int(v: &Value, k: &str) -> Option<i32> {
    v.get(k).and_then(Value::as_i64).map(|x| x as i32)
}

/// Builds the writer's input from a parsed response, borrowing its strings.
fn to_writer_input(v: &Value) -> BidResponse<'_> {
    let seatbid = v
        .get("seatbid")
        .and_then(Value::as_array)
        .map(|seats| {
            seats
                .iter()
                .map(|seat| SeatBid {
                    seat: s(seat, "seat"),
                    group: int(seat, "group"),
                    bid: seat
                        .get("bid")
                        .and_then(Value::as_array)
                        .map(|bids| {
                            bids.iter()
                                .map(|b| Bid {
                                    id: s(b, "id").unwrap_or_default(),
                                    impid: s(b, "impid").unwrap_or_default(),
                                    price: Micros((b["price"].as_f64().unwrap_or(0.0) * 1e6).round() as i64),
                                    adid: s(b, "adid"),
                                    nurl: s(b, "nurl"),
                                    burl: s(b, "burl"),
                                    lurl: s(b, "lurl"),
                                    adm: s(b, "adm"),
                                    adomain: strs(b, "adomain"),
                                    bundle: s(b, "bundle"),
                                    iurl: s(b, "iurl"),
                                    cid: s(b, "cid"),
                                    crid: s(b, "crid"),
                                    cat: strs(b, "cat"),
                                    attr: b
                                        .get("attr")
                                        .and_then(Value::as_array)
                                        .map(|a| a.iter().filter_map(Value::as_i64).map(|x| x as i32).collect())
                                        .unwrap_or_default(),
                                    mtype: int(b, "mtype"),
                                    dealid: s(b, "dealid"),
                                    w: int(b, "w"),
                                    h: int(b, "h"),
                                    dur: int(b, "dur"),
                                    exp: int(b, "exp"),
                                    ext: None,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    BidResponse { id: s(v, "id").unwrap_or_default(), bidid: s(v, "bidid"), cur: s(v, "cur"), seatbid, ext: None }
}

#[test]
fn the_writer_reproduces_real_responses() {
    let mut written_count = 0;
    for (n, line) in lines("responses.jsonl").iter().enumerate() {
        let original: Value = serde_json::from_slice(line).expect("fixture is JSON");
        let input = to_writer_input(&original);
        let mut out = Vec::new();
        write_response(&input, &mut out);
        let written: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        // Every string the writer was given comes back unchanged, escapes and all.
        for (seat_in, seat_out) in input.seatbid.iter().zip(written["seatbid"].as_array().into_iter().flatten()) {
            for (bid_in, bid_out) in seat_in.bid.iter().zip(seat_out["bid"].as_array().into_iter().flatten()) {
                assert_eq!(bid_out["adm"].as_str(), bid_in.adm, "line {}", n + 1);
                assert_eq!(bid_out["nurl"].as_str(), bid_in.nurl, "line {}", n + 1);
                let price = bid_out["price"].as_f64().expect("price is a number");
                assert_eq!(price, bid_in.price.0 as f64 / 1e6, "line {}", n + 1);
                written_count += 1;
            }
        }
        assert_eq!(written["id"].as_str(), Some(input.id), "line {}", n + 1);
    }
    assert!(written_count > 1000, "only {written_count} bids written");
}
