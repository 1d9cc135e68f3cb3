//! One place for every signal: OpenRTB 2.5's `ext` locations moved to their 2.6 fields, and the
//! spec's defaults filled in where the bidder depends on them.

use std::borrow::Cow;

use super::request::{BidRequest, Deal, Imp};
use super::text::Str;

/// The auction type when the request does not say (OpenRTB: second price plus).
pub const DEFAULT_AUCTION_TYPE: i32 = 2;
/// The floor currency when an imp or deal does not say (OpenRTB's default).
pub const DEFAULT_CURRENCY: &str = "USD";

/// Rewrites a validated request in place so later stages look in one place for each signal.
///
/// A 2.6 field that is present wins over its 2.5 `ext` twin. Currency codes are upper-cased.
pub fn normalize<J>(request: &mut BidRequest<'_, J>) {
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
    if let Some(currencies) = &mut request.cur {
        currencies.iter_mut().for_each(upper_case);
    }
    for imp in request.imp.iter_mut().flatten() {
        normalize_imp(imp);
    }
}

fn normalize_imp<J>(imp: &mut Imp<'_, J>) {
    imp.bidfloor.get_or_insert(0.0);
    normalize_currency(&mut imp.bidfloorcur);
    if let Some(pmp) = &mut imp.pmp {
        pmp.private_auction.get_or_insert(0);
        for deal in pmp.deals.iter_mut().flatten() {
            normalize_deal(deal);
        }
    }
}

fn normalize_deal(deal: &mut Deal<'_>) {
    deal.bidfloor.get_or_insert(0.0);
    normalize_currency(&mut deal.bidfloorcur);
}

fn normalize_currency(code: &mut Option<Str<'_>>) {
    upper_case(code.get_or_insert(Str::from(DEFAULT_CURRENCY)));
}

fn upper_case(code: &mut Str<'_>) {
    if code.bytes().any(|b| b.is_ascii_lowercase()) {
        code.0 = Cow::Owned(code.to_ascii_uppercase());
    }
}
