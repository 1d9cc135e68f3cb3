//! The parser and the writer against the real OpenRTB corpus in `tests/fixtures/openrtb`.

use std::path::PathBuf;

use bidcore_core::money::Micros;
use bidcore_core::openrtb::response::{write_response, Bid, BidResponse, SeatBid};
use bidcore_core::openrtb::{view_to_json, RequestParser};
use bumpalo::Bump;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/openrtb").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(name: &str) -> Vec<Vec<u8>> {
    fixture(name).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

#[test]
fn the_corpus_is_mostly_accepted_and_each_view_is_a_fixed_point() {
    let parser = RequestParser::default();
    let mut arena = Bump::new();
    let mut accepted = 0;
    for (n, body) in lines("requests.jsonl").iter().enumerate() {
        arena.reset();
        let Ok(view) = parser.parse(body, &arena) else { continue };
        accepted += 1;
        // The view written as JSON is itself a valid request that normalizes to the same view.
        let written = view_to_json(&view);
        let again_arena = Bump::new();
        let again = parser.parse(&written, &again_arena).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        assert_eq!(view_to_json(&again), written, "line {}", n + 1);
    }
    // The corpus is mostly valid traffic; the refused remainder is listed, with reasons, in
    // tests/test_openrtb_differential.py, where the Python reference agrees on every line.
    assert!(accepted > 3500, "only {accepted} requests accepted");
}

#[test]
fn strings_without_escapes_are_borrowed_from_the_body() {
    let body =
        br#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"tagid":"a\"b"}],"site":{"domain":"example.com"}}"#;
    let arena = Bump::new();
    let request = RequestParser::default().parse(body, &arena).expect("valid");
    let in_body = |s: &str| body.as_ptr_range().contains(&s.as_ptr());
    let imp = &request.imp.as_ref().expect("imps")[0];
    assert!(in_body(request.id.expect("id").as_str()));
    assert!(in_body(request.site.as_ref().and_then(|s| s.domain).expect("domain").as_str()));
    let tagid = imp.tagid.expect("tagid");
    assert_eq!(tagid.as_str(), "a\"b");
    assert!(!in_body(tagid.as_str()), "an escaped string is unescaped into the arena");
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
                                    nurl: s(b, "nurl").map(Into::into),
                                    burl: s(b, "burl").map(Into::into),
                                    lurl: s(b, "lurl").map(Into::into),
                                    adm: s(b, "adm").map(Into::into),
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
                assert_eq!(bid_out["adm"].as_str().map(Into::into), bid_in.adm, "line {}", n + 1);
                assert_eq!(bid_out["nurl"].as_str().map(Into::into), bid_in.nurl, "line {}", n + 1);
                let price = bid_out["price"].as_f64().expect("price is a number");
                assert_eq!(price, bid_in.price.0 as f64 / 1e6, "line {}", n + 1);
                written_count += 1;
            }
        }
        assert_eq!(written["id"].as_str(), Some(input.id), "line {}", n + 1);
    }
    assert!(written_count > 1000, "only {written_count} bids written");
}
