//! The OpenRTB 2.6 bid response, written straight to bytes.
//!
//! A hand-written writer rather than serde: the shape is fixed, prices are integer micros that
//! must come out as exact decimals, and the escaping of markup (`adm` carries whole HTML or VAST
//! documents) is the one place speed matters.

use crate::money::Micros;

/// A bid response. Borrowed strings: nothing is copied until the bytes are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BidResponse<'a> {
    pub id: &'a str,
    pub bidid: Option<&'a str>,
    pub cur: Option<&'a str>,
    pub seatbid: Vec<SeatBid<'a>>,
    /// Raw JSON written as is; the caller guarantees it is valid JSON.
    pub ext: Option<&'a str>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeatBid<'a> {
    pub seat: Option<&'a str>,
    pub group: Option<i32>,
    pub bid: Vec<Bid<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bid<'a> {
    pub id: &'a str,
    pub impid: &'a str,
    pub price: Micros,
    pub adid: Option<&'a str>,
    pub nurl: Option<Text<'a>>,
    pub burl: Option<Text<'a>>,
    pub lurl: Option<Text<'a>>,
    pub adm: Option<Text<'a>>,
    pub adomain: Vec<&'a str>,
    pub bundle: Option<&'a str>,
    pub iurl: Option<&'a str>,
    pub cid: Option<&'a str>,
    pub crid: Option<&'a str>,
    pub cat: Vec<&'a str>,
    pub attr: Vec<i32>,
    pub mtype: Option<i32>,
    pub dealid: Option<&'a str>,
    pub w: Option<i32>,
    pub h: Option<i32>,
    pub dur: Option<i32>,
    pub exp: Option<i32>,
    /// Raw JSON written as is; the caller guarantees it is valid JSON.
    pub ext: Option<&'a str>,
}

/// A string member's value: text the writer escapes, or a JSON string literal written as is
/// (a filled template, escaped once when the config was loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    Plain(&'a str),
    /// A complete JSON string literal, quotes included; the caller guarantees it is one.
    Json(&'a str),
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text::Plain(text)
    }
}

/// Writes `response` as compact JSON, appending to `out`.
pub fn write_response(response: &BidResponse<'_>, out: &mut Vec<u8>) {
    let mut w = ObjectWriter::open(out);
    w.string("id", response.id);
    if !response.seatbid.is_empty() {
        w.key("seatbid");
        w.out.push(b'[');
        for (i, seatbid) in response.seatbid.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            write_seatbid(seatbid, w.out);
        }
        w.out.push(b']');
    }
    w.opt_string("bidid", response.bidid);
    w.opt_string("cur", response.cur);
    w.opt_raw("ext", response.ext);
    w.close();
}

/// Writes the no-bid form: the request id and the OpenRTB no-bid reason code (`nbr`).
pub fn write_no_bid(request_id: &str, nbr: i32, out: &mut Vec<u8>) {
    let mut w = ObjectWriter::open(out);
    w.string("id", request_id);
    w.int("nbr", nbr);
    w.close();
}

fn write_seatbid(seatbid: &SeatBid<'_>, out: &mut Vec<u8>) {
    let mut w = ObjectWriter::open(out);
    w.key("bid");
    w.out.push(b'[');
    for (i, bid) in seatbid.bid.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        write_bid(bid, w.out);
    }
    w.out.push(b']');
    w.opt_string("seat", seatbid.seat);
    if let Some(group) = seatbid.group {
        w.int("group", group);
    }
    w.close();
}

fn write_bid(bid: &Bid<'_>, out: &mut Vec<u8>) {
    let mut w = ObjectWriter::open(out);
    w.string("id", bid.id);
    w.string("impid", bid.impid);
    w.key("price");
    bid.price.write_decimal(w.out);
    w.opt_string("adid", bid.adid);
    w.opt_text("nurl", bid.nurl);
    w.opt_text("burl", bid.burl);
    w.opt_text("lurl", bid.lurl);
    w.opt_text("adm", bid.adm);
    w.strings("adomain", &bid.adomain);
    w.opt_string("bundle", bid.bundle);
    w.opt_string("iurl", bid.iurl);
    w.opt_string("cid", bid.cid);
    w.opt_string("crid", bid.crid);
    w.strings("cat", &bid.cat);
    w.ints("attr", &bid.attr);
    w.opt_int("mtype", bid.mtype);
    w.opt_string("dealid", bid.dealid);
    w.opt_int("w", bid.w);
    w.opt_int("h", bid.h);
    w.opt_int("dur", bid.dur);
    w.opt_int("exp", bid.exp);
    w.opt_raw("ext", bid.ext);
    w.close();
}

/// Writes one JSON object's members, putting the commas where they belong.
struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> ObjectWriter<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// Keys are this module's own ASCII literals: no escaping needed.
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        write_json_string(value, self.out);
    }

    fn opt_string(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    fn opt_text(&mut self, key: &str, value: Option<Text<'_>>) {
        match value {
            Some(Text::Plain(text)) => self.string(key, text),
            Some(Text::Json(literal)) => {
                self.key(key);
                self.out.extend_from_slice(literal.as_bytes());
            }
            None => {}
        }
    }

    fn int(&mut self, key: &str, value: i32) {
        self.key(key);
        self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn opt_int(&mut self, key: &str, value: Option<i32>) {
        if let Some(value) = value {
            self.int(key, value);
        }
    }

    fn strings(&mut self, key: &str, values: &[&str]) {
        if values.is_empty() {
            return;
        }
        self.key(key);
        self.out.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_json_string(value, self.out);
        }
        self.out.push(b']');
    }

    fn ints(&mut self, key: &str, values: &[i32]) {
        if values.is_empty() {
            return;
        }
        self.key(key);
        self.out.push(b'[');
        let mut buffer = itoa::Buffer::new();
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(buffer.format(*value).as_bytes());
        }
        self.out.push(b']');
    }

    fn opt_raw(&mut self, key: &str, raw: Option<&str>) {
        if let Some(raw) = raw {
            self.key(key);
            self.out.extend_from_slice(raw.as_bytes());
        }
    }
}

/// For each byte: 0 if it is written as is, else the letter of its short escape (`n` for `\n`)
/// or `u` for the `\u00XX` form. Non-ASCII bytes pass through: the output is UTF-8 like the input.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Writes `value` as a JSON string: quotes, backslashes and control characters escaped, runs of
/// plain bytes copied in one go.
pub fn write_json_string(value: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(escape);
        if escape == b'u' {
            out.extend_from_slice(&[b'0', b'0', HEX[(byte >> 4) as usize], HEX[(byte & 0xf) as usize]]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `value` as the inside of a JSON string (no quotes), escaped as `write_json_string` escapes
/// it: for text escaped once and written many times.
pub fn json_string_body(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    write_json_string(value, &mut out);
    // UTF-8 runs are copied whole and the escapes are ASCII, so this is `value`'s escaped text.
    String::from_utf8_lossy(&out[1..out.len() - 1]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn written(response: &BidResponse<'_>) -> Value {
        let mut out = Vec::new();
        write_response(response, &mut out);
        serde_json::from_slice(&out).expect("the writer writes valid JSON")
    }

    #[test]
    fn writes_every_bid_field() {
        let bid = Bid {
            id: "b1",
            impid: "1",
            price: Micros(2_345_000),
            adid: Some("ad"),
            nurl: Some("https://win.example/?p=${AUCTION_PRICE}".into()),
            burl: Some("https://bill.example/".into()),
            lurl: Some("https://loss.example/?r=${AUCTION_LOSS}".into()),
            adm: Some("<div class=\"ad\">\n</div>".into()),
            adomain: vec!["advertiser.com"],
            bundle: Some("com.example.app"),
            iurl: Some("https://img.example/1.png"),
            cid: Some("c1"),
            crid: Some("cr1"),
            cat: vec!["IAB1", "IAB2-3"],
            attr: vec![1, 6],
            mtype: Some(1),
            dealid: Some("deal-1"),
            w: Some(300),
            h: Some(250),
            dur: Some(30),
            exp: Some(300),
            ext: Some(r#"{"k":[1,null]}"#),
        };
        let response = BidResponse {
            id: "req-1",
            bidid: Some("resp-1"),
            cur: Some("USD"),
            seatbid: vec![SeatBid { seat: Some("seat-1"), group: Some(0), bid: vec![bid] }],
            ext: None,
        };
        let expected = json!({
            "id": "req-1", "bidid": "resp-1", "cur": "USD",
            "seatbid": [{"seat": "seat-1", "group": 0, "bid": [{
                "id": "b1", "impid": "1", "price": 2.345, "adid": "ad",
                "nurl": "https://win.example/?p=${AUCTION_PRICE}", "burl": "https://bill.example/",
                "lurl": "https://loss.example/?r=${AUCTION_LOSS}", "adm": "<div class=\"ad\">\n</div>",
                "adomain": ["advertiser.com"], "bundle": "com.example.app",
                "iurl": "https://img.example/1.png", "cid": "c1", "crid": "cr1",
                "cat": ["IAB1", "IAB2-3"], "attr": [1, 6], "mtype": 1, "dealid": "deal-1",
                "w": 300, "h": 250, "dur": 30, "exp": 300, "ext": {"k": [1, null]}
            }]}]
        });
        assert_eq!(written(&response), expected);
    }

    #[test]
    fn prices_are_exact_decimals() {
        let bid = Bid { id: "b", impid: "i", price: Micros(10_000), ..Bid::default() };
        let response = BidResponse {
            id: "r",
            seatbid: vec![SeatBid { bid: vec![bid], ..SeatBid::default() }],
            ..Default::default()
        };
        let mut out = Vec::new();
        write_response(&response, &mut out);
        assert_eq!(out, br#"{"id":"r","seatbid":[{"bid":[{"id":"b","impid":"i","price":0.01}]}]}"#);
    }

    #[test]
    fn writes_the_no_bid_form() {
        let mut out = Vec::new();
        write_no_bid("req \"7\"", 2, &mut out);
        assert_eq!(out, br#"{"id":"req \"7\"","nbr":2}"#);
    }

    #[test]
    fn escapes_control_characters_quotes_and_backslashes() {
        let mut out = Vec::new();
        write_json_string("a\"b\\c\u{1}\u{1f}\t\n\r\u{8}\u{c}é€😀\u{7f}", &mut out);
        assert_eq!(std::str::from_utf8(&out).expect("utf-8"), "\"a\\\"b\\\\c\\u0001\\u001f\\t\\n\\r\\b\\fé€😀\u{7f}\"");
    }

    proptest! {
        #[test]
        fn any_string_survives_a_round_trip(s in any::<String>()) {
            let mut out = Vec::new();
            write_json_string(&s, &mut out);
            let back: String = serde_json::from_slice(&out).expect("valid JSON string");
            prop_assert_eq!(back, s);
        }
    }
}
