//! One place for every signal: OpenRTB 2.5's `ext` locations moved to their 2.6 fields, and the
//! spec's defaults filled in where the bidder depends on them.

use bumpalo::Bump;

use super::request::{BidRequest, Deal, Imp};
use super::text::Str;

/// The auction type when the request does not say (OpenRTB: second price plus).
pub const DEFAULT_AUCTION_TYPE: i32 = 2;
/// The floor currency when an imp or deal does not say (OpenRTB's default).
pub const DEFAULT_CURRENCY: &str = "USD";

/// Rewrites a validated request in place so later stages look in one place for each signal.
///
/// A 2.6 field that is present wins over its 2.5 `ext` twin. Currency codes are upper-cased
/// (into the arena, in the rare case they were not already).
pub fn normalize<'a>(request: &mut BidRequest<'a>, arena: &'a Bump) {
    if let Some(regs) = &mut request.regs {
        if let Some(ext) = regs.ext.take() {
            regs.gdpr = regs.gdpr.or(ext.gdpr);
            regs.us_privacy = regs.us_privacy.take().or(ext.us_privacy);
        }
    }
    if let Some(user) = &mut request.user {
        if let Some(ext) = user.ext.take() {
            user.consent = user.consent.take().or(ext.consent);
            user.eids = user.eids.take().or(ext.eids);
        }
    }
    if let Some(source) = &mut request.source {
        if let Some(ext) = source.ext.take() {
            source.schain = source.schain.take().or(ext.schain);
        }
    }
    request.at.get_or_insert(DEFAULT_AUCTION_TYPE);
    for code in request.cur.iter_mut().flat_map(|codes| codes.iter_mut()) {
        upper_case(code, arena);
    }
    for imp in request.imp.iter_mut().flat_map(|imps| imps.iter_mut()) {
        normalize_imp(imp, arena);
    }
}

fn normalize_imp<'a>(imp: &mut Imp<'a>, arena: &'a Bump) {
    imp.bidfloor.get_or_insert(0.0);
    normalize_currency(&mut imp.bidfloorcur, arena);
    if let Some(pmp) = &mut imp.pmp {
        pmp.private_auction.get_or_insert(0);
        for deal in pmp.deals.iter_mut().flat_map(|deals| deals.iter_mut()) {
            normalize_deal(deal, arena);
        }
    }
}

fn normalize_deal<'a>(deal: &mut Deal<'a>, arena: &'a Bump) {
    deal.bidfloor.get_or_insert(0.0);
    normalize_currency(&mut deal.bidfloorcur, arena);
}

fn normalize_currency<'a>(code: &mut Option<Str<'a>>, arena: &'a Bump) {
    upper_case(code.get_or_insert(Str(DEFAULT_CURRENCY)), arena);
}

fn upper_case<'a>(code: &mut Str<'a>, arena: &'a Bump) {
    if code.bytes().any(|b| b.is_ascii_lowercase()) {
        *code = Str(arena.alloc_str(&code.to_ascii_uppercase()));
    }
}
