//! The bid response: one seat, one bid per imp that has a winner.

use std::ops::Range;

use super::creative::{Media, Placeholder, Template};
use super::ledger::token_text;
use super::pricing::price_bucket;
use super::{Candidate, Engine};
use crate::money::Micros;
use crate::openrtb::response::{write_response, Bid, BidResponse, SeatBid, Text};
use crate::openrtb::Request;

/// Where a bid's own strings sit in the response's one rendering buffer: its id as text, its
/// filled templates as JSON string literals.
struct Rendered {
    id: Range<usize>,
    adm: Option<Range<usize>>,
    nurl: Option<Range<usize>>,
    burl: Option<Range<usize>>,
    lurl: Option<Range<usize>>,
}

impl Engine {
    pub(super) fn write_response(
        &self,
        request: &Request<'_>,
        currency: &str,
        winners: &[Candidate],
        arms: &str,
        out: &mut Vec<u8>,
    ) {
        let request_id = request.id.as_ref().map_or("", |s| s.as_str());
        let imps = request.imp.as_deref().unwrap_or(&[]);
        // Every bid's id and filled templates go into one buffer (one allocation per
        // response, not five per bid); a template's literal text was JSON-escaped at load.
        let mut text = String::with_capacity(1024);
        let rendered: Vec<Rendered> = winners
            .iter()
            .map(|w| {
                let campaign = &self.campaigns[w.campaign];
                let creative = &campaign.creatives[w.creative];
                let imp_id = imps[w.imp].id.as_ref().map_or("", |s| s.as_str());
                let bucket = price_bucket(w.price);
                let mut token = [0u8; 16];
                let token = token_text(w.token, &mut token);
                let value = |p: Placeholder| -> &str {
                    match p {
                        Placeholder::Campaign => &campaign.id,
                        Placeholder::Creative => &creative.id,
                        Placeholder::Imp => imp_id,
                        Placeholder::Request => request_id,
                        Placeholder::Arm => arms,
                        Placeholder::PriceBucket => &bucket,
                        Placeholder::Bid => token,
                    }
                };
                let start = text.len();
                text.push_str(imp_id);
                text.push('-');
                text.push_str(&campaign.id);
                let id = start..text.len();
                let mut fill = |t: &Option<Template>| {
                    t.as_ref().map(|t| {
                        let start = text.len();
                        t.fill_json(&value, &mut text);
                        start..text.len()
                    })
                };
                Rendered {
                    id,
                    adm: fill(&creative.markup),
                    nurl: fill(&creative.nurl),
                    burl: fill(&creative.burl),
                    lurl: fill(&creative.lurl),
                }
            })
            .collect();
        let json = |span: &Option<Range<usize>>| span.clone().map(|span| Text::Json(&text[span]));
        let bids = winners
            .iter()
            .zip(&rendered)
            .map(|(w, r)| {
                let campaign = &self.campaigns[w.campaign];
                let creative = &campaign.creatives[w.creative];
                let deals = imps[w.imp].pmp.as_deref().and_then(|p| p.deals.as_deref()).unwrap_or(&[]);
                let sized = matches!(creative.media, Media::Banner | Media::Video);
                let timed = matches!(creative.media, Media::Video | Media::Audio);
                let as_i32 = |v: Option<u32>| v.and_then(|v| i32::try_from(v).ok());
                Bid {
                    id: &text[r.id.clone()],
                    impid: imps[w.imp].id.as_ref().map_or("", |s| s.as_str()),
                    price: Micros(w.price),
                    adid: Some(&creative.id),
                    nurl: json(&r.nurl),
                    burl: json(&r.burl),
                    lurl: json(&r.lurl),
                    adm: json(&r.adm),
                    adomain: creative.adomain.iter().map(String::as_str).collect(),
                    bundle: creative.bundle.as_deref(),
                    cid: Some(&campaign.id),
                    crid: Some(&creative.id),
                    cat: creative.cat.iter().map(String::as_str).collect(),
                    attr: creative.attr.clone(),
                    mtype: Some(creative.media.mtype()),
                    dealid: w.deal.and_then(|d| deals[d].id.as_ref().map(|s| s.as_str())),
                    w: if sized { as_i32(creative.w) } else { None },
                    h: if sized { as_i32(creative.h) } else { None },
                    dur: if timed { as_i32(creative.duration) } else { None },
                    ..Bid::default()
                }
            })
            .collect();
        let response = BidResponse {
            id: request_id,
            bidid: None,
            cur: Some(currency),
            seatbid: vec![SeatBid { seat: Some(&self.seat), group: None, bid: bids }],
            ext: (request.test == Some(1)).then_some(r#"{"bidcore":{"test":1}}"#),
        };
        write_response(&response, out);
    }
}
