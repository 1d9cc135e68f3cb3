//! The rules a parsed request must meet before the bidder looks at it.
//!
//! Paths are built only when a rule fails, so a valid request costs a few comparisons.

use bumpalo::Bump;

use super::error::{RequestError, Rule};
use super::json::Raw;
use super::limits::Limits;
use super::native::check_native_request;
use super::request::{BidRequest, Deal, Imp};
use super::text::Str;

/// Checks the OpenRTB rules a bidder relies on, in this order (the first broken one is reported):
/// a request `id`; a non-empty `imp` array within the limit; at most one of site, app, dooh; then
/// per imp: an id, a media object, `mimes` for video and audio, a Native request that is a string
/// or an object holding a valid Native 1.2 document, floor and currency, deals (id, floor,
/// currency); then unique imp ids; then `cur` codes of three letters.
pub fn validate<'a>(request: &BidRequest<'a>, limits: &Limits, arena: &'a Bump) -> Result<(), RequestError> {
    if is_blank(request.id.as_ref()) {
        return Err(fail(Rule::Required, "id".into(), "the request id is required".into()));
    }
    let imps = match request.imp.as_deref() {
        None => return Err(fail(Rule::Required, "imp".into(), "at least one imp is required".into())),
        Some([]) => return Err(fail(Rule::Required, "imp".into(), "imp is empty; at least one is required".into())),
        Some(imps) => imps,
    };
    if imps.len() > limits.max_imps {
        return Err(fail(
            Rule::ImpCount,
            "imp".into(),
            format!("{} imps, more than the limit of {}", imps.len(), limits.max_imps),
        ));
    }
    check_one_channel(request)?;
    for (i, imp) in imps.iter().enumerate() {
        validate_imp(i, imp, limits, arena)?;
    }
    check_unique_imp_ids(imps)?;
    if let Some(currencies) = &request.cur {
        for (i, code) in currencies.iter().enumerate() {
            check_currency(code, || format!("cur[{i}]"))?;
        }
    }
    Ok(())
}

fn validate_imp<'a>(i: usize, imp: &Imp<'a>, limits: &Limits, arena: &'a Bump) -> Result<(), RequestError> {
    if is_blank(imp.id.as_ref()) {
        return Err(fail(Rule::Required, format!("imp[{i}].id"), "the imp id is required".into()));
    }
    if imp.banner.is_none() && imp.video.is_none() && imp.audio.is_none() && imp.native.is_none() {
        return Err(fail(
            Rule::NoMedia,
            format!("imp[{i}]"),
            "the imp offers none of banner, video, audio, native".into(),
        ));
    }
    if let Some(video) = &imp.video {
        if video.mimes.as_ref().is_none_or(|mimes| mimes.is_empty()) {
            return Err(fail(
                Rule::Required,
                format!("imp[{i}].video.mimes"),
                "video needs at least one MIME type".into(),
            ));
        }
    }
    if let Some(audio) = &imp.audio {
        if audio.mimes.as_ref().is_none_or(|mimes| mimes.is_empty()) {
            return Err(fail(
                Rule::Required,
                format!("imp[{i}].audio.mimes"),
                "audio needs at least one MIME type".into(),
            ));
        }
    }
    if let Some(native) = &imp.native {
        let Some(request) = &native.request else {
            return Err(fail(Rule::Required, format!("imp[{i}].native.request"), "native needs its request".into()));
        };
        let path = format!("imp[{i}].native.request");
        check_native_shape(request, &path)?;
        check_native_request(request, limits, &path, arena)?;
    }
    check_floor(imp.bidfloor, || format!("imp[{i}].bidfloor"))?;
    if let Some(code) = &imp.bidfloorcur {
        check_currency(code, || format!("imp[{i}].bidfloorcur"))?;
    }
    if let Some(deals) = imp.pmp.as_ref().and_then(|pmp| pmp.deals.as_deref()) {
        for (d, deal) in deals.iter().enumerate() {
            validate_deal(deal, || format!("imp[{i}].pmp.deals[{d}]"))?;
        }
    }
    Ok(())
}

fn validate_deal(deal: &Deal<'_>, path: impl Fn() -> String) -> Result<(), RequestError> {
    if is_blank(deal.id.as_ref()) {
        return Err(fail(Rule::Required, format!("{}.id", path()), "the deal id is required".into()));
    }
    check_floor(deal.bidfloor, || format!("{}.bidfloor", path()))?;
    if let Some(code) = &deal.bidfloorcur {
        check_currency(code, || format!("{}.bidfloorcur", path()))?;
    }
    Ok(())
}

/// Imp ids must be unique: bids name the imp they are for. Requests carry a handful of imps,
/// so comparing pairs beats hashing.
fn check_unique_imp_ids(imps: &[Imp<'_>]) -> Result<(), RequestError> {
    for (i, imp) in imps.iter().enumerate().skip(1) {
        let id = imp.id.as_ref().map(Str::as_str);
        if let Some(first) = imps[..i].iter().position(|other| other.id.as_ref().map(Str::as_str) == id) {
            return Err(fail(
                Rule::DuplicateImp,
                format!("imp[{i}].id"),
                format!("imp id {:?} is already used by imp[{first}]", id.unwrap_or_default()),
            ));
        }
    }
    Ok(())
}

#[inline]
fn check_floor(floor: Option<f64>, path: impl Fn() -> String) -> Result<(), RequestError> {
    match floor {
        Some(value) if !(value.is_finite() && value >= 0.0) => {
            Err(fail(Rule::Floor, path(), format!("a floor must be finite and >= 0, got {value}")))
        }
        _ => Ok(()),
    }
}

/// ISO 4217 codes are three letters; lower case is accepted and upper-cased by normalization.
#[inline]
fn check_currency(code: &str, path: impl Fn() -> String) -> Result<(), RequestError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(())
    } else {
        Err(fail(Rule::Currency, path(), format!("a currency is a three-letter code, got {code:?}")))
    }
}

/// The Native request is a JSON string (OpenRTB 2.x) or, as some exchanges send it, the object
/// itself; nothing else carries one.
fn check_native_shape(request: &Raw<'_>, path: &str) -> Result<(), RequestError> {
    match request.0.trim_start().as_bytes().first() {
        Some(b'"' | b'{') => Ok(()),
        _ => Err(fail(Rule::Type, path.to_owned(), "the native request must be a string or an object".into())),
    }
}

/// A request comes from one channel: a site, an app, or a digital out-of-home screen.
fn check_one_channel(request: &BidRequest<'_>) -> Result<(), RequestError> {
    let present = [("site", request.site.is_some()), ("app", request.app.is_some()), ("dooh", request.dooh.is_some())];
    let mut found = present.iter().filter(|(_, is)| *is).map(|(name, _)| *name);
    match (found.next(), found.next()) {
        (Some(first), Some(second)) => Err(fail(
            Rule::Channel,
            second.to_owned(),
            format!("a request carries at most one of site, app, dooh; found {first} and {second}"),
        )),
        _ => Ok(()),
    }
}

fn is_blank(value: Option<&Str<'_>>) -> bool {
    value.is_none_or(|s| s.is_empty())
}

#[cold]
fn fail(rule: Rule, path: String, detail: String) -> RequestError {
    RequestError::new(rule, path, detail)
}
