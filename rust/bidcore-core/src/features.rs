//! Model inputs computed from a parsed bid request: one code path for training and serving.
//!
//! A [`FeatureSpec`] is the list of a model's inputs, in the model's column order. Each is read
//! from the request for one impression (numbers by path, strings through a vocabulary or a hash),
//! derived from it (hour and weekday, banner area, floor in USD, counts and flags), or taken from
//! the campaign being scored. Training matrices and the engine's per-request rows are both built
//! by [`FeatureSpec::extract`], so they cannot drift apart. Missing values are NaN, which every
//! scorer treats as missing.

use std::collections::HashMap;

use crate::model::ModelError;
use crate::openrtb::request::{BidRequest, Geo, Imp};

/// Numbers read from the request as they are (integer codes included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    ImpBidfloor,
    ImpSecure,
    ImpInstl,
    ImpRwdd,
    ImpExp,
    BannerW,
    BannerH,
    BannerPos,
    VideoW,
    VideoH,
    VideoMinduration,
    VideoMaxduration,
    VideoPlacement,
    VideoPlcmt,
    VideoStartdelay,
    DeviceW,
    DeviceH,
    DevicePxratio,
    DeviceDevicetype,
    DeviceConnectiontype,
    DeviceLmt,
    DeviceDnt,
    DeviceJs,
    DeviceGeoLat,
    DeviceGeoLon,
    DeviceGeoType,
    DeviceGeoUtcoffset,
    UserYob,
    Tmax,
    At,
    Test,
    RegsCoppa,
    RegsGdpr,
}

/// Strings read from the request, encoded through a vocabulary or a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    ImpTagid,
    ImpBidfloorcur,
    SiteDomain,
    SitePublisherId,
    AppBundle,
    AppPublisherId,
    /// The site's or else the app's publisher id.
    PublisherId,
    /// The site's domain or else the app's bundle: "where the ad runs".
    Placement,
    DeviceOs,
    DeviceMake,
    DeviceModel,
    DeviceLanguage,
    DeviceCarrier,
    DeviceGeoCountry,
    DeviceGeoRegion,
    DeviceGeoMetro,
    DeviceGeoCity,
    UserGender,
}

/// Values computed from several fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// 0-23 at the request's time, in UTC or the user's time zone (`device.geo.utcoffset`).
    Hour {
        local: bool,
    },
    /// 0 (Monday) to 6 (Sunday), likewise.
    Weekday {
        local: bool,
    },
    /// `banner.w * banner.h`, or the first format's.
    BannerArea,
    /// `imp.bidfloor` converted to USD with the spec's rates (`bidfloorcur` defaults to USD).
    FloorUsd,
    /// Segments over all of `user.data`.
    SegmentCount,
    HasIfa,
    IsApp,
    HasUserId,
    FormatCount,
    ImpCount,
    /// 0 banner, 1 video, 2 audio, 3 native: the first the imp offers.
    MediaType,
}

/// How a string becomes a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoding {
    /// The string's index in the training vocabulary; an unseen one gets `unseen` (its own
    /// code, `len(vocabulary)`, or NaN, as the model was trained).
    Vocabulary { codes: HashMap<String, u32>, unseen: f64 },
    /// FNV-1a (64-bit) of the UTF-8 bytes, modulo `buckets`.
    Hash { buckets: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Number(Number),
    Text(Text, Encoding),
    Derived(Derived),
    /// The campaign's attribute at this index of the campaign values passed to `extract`.
    Campaign(usize),
}

impl Feature {
    /// User-level data, missing when the request does not allow it (COPPA, LMT, GDPR without
    /// consent: [`BidRequest::personal_data_allowed`]).
    fn is_personal(&self) -> bool {
        matches!(
            self,
            Feature::Number(Number::UserYob | Number::DeviceGeoLat | Number::DeviceGeoLon)
                | Feature::Text(Text::UserGender, _)
                | Feature::Derived(Derived::HasIfa | Derived::HasUserId | Derived::SegmentCount)
        )
    }
}

/// A model's inputs, in column order. Immutable; share it between threads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureSpec {
    features: Vec<Feature>,
    /// USD per unit of each currency.
    usd_rates: HashMap<String, f64>,
}

/// Names of every number and string source, as the spec writes them (OpenRTB paths).
pub const NUMBER_SOURCES: &[(&str, Number)] = &[
    ("imp.bidfloor", Number::ImpBidfloor),
    ("imp.secure", Number::ImpSecure),
    ("imp.instl", Number::ImpInstl),
    ("imp.rwdd", Number::ImpRwdd),
    ("imp.exp", Number::ImpExp),
    ("imp.banner.w", Number::BannerW),
    ("imp.banner.h", Number::BannerH),
    ("imp.banner.pos", Number::BannerPos),
    ("imp.video.w", Number::VideoW),
    ("imp.video.h", Number::VideoH),
    ("imp.video.minduration", Number::VideoMinduration),
    ("imp.video.maxduration", Number::VideoMaxduration),
    ("imp.video.placement", Number::VideoPlacement),
    ("imp.video.plcmt", Number::VideoPlcmt),
    ("imp.video.startdelay", Number::VideoStartdelay),
    ("device.w", Number::DeviceW),
    ("device.h", Number::DeviceH),
    ("device.pxratio", Number::DevicePxratio),
    ("device.devicetype", Number::DeviceDevicetype),
    ("device.connectiontype", Number::DeviceConnectiontype),
    ("device.lmt", Number::DeviceLmt),
    ("device.dnt", Number::DeviceDnt),
    ("device.js", Number::DeviceJs),
    ("device.geo.lat", Number::DeviceGeoLat),
    ("device.geo.lon", Number::DeviceGeoLon),
    ("device.geo.type", Number::DeviceGeoType),
    ("device.geo.utcoffset", Number::DeviceGeoUtcoffset),
    ("user.yob", Number::UserYob),
    ("tmax", Number::Tmax),
    ("at", Number::At),
    ("test", Number::Test),
    ("regs.coppa", Number::RegsCoppa),
    ("regs.gdpr", Number::RegsGdpr),
];

pub const TEXT_SOURCES: &[(&str, Text)] = &[
    ("imp.tagid", Text::ImpTagid),
    ("imp.bidfloorcur", Text::ImpBidfloorcur),
    ("site.domain", Text::SiteDomain),
    ("site.publisher.id", Text::SitePublisherId),
    ("app.bundle", Text::AppBundle),
    ("app.publisher.id", Text::AppPublisherId),
    ("publisher.id", Text::PublisherId),
    ("placement", Text::Placement),
    ("device.os", Text::DeviceOs),
    ("device.make", Text::DeviceMake),
    ("device.model", Text::DeviceModel),
    ("device.language", Text::DeviceLanguage),
    ("device.carrier", Text::DeviceCarrier),
    ("device.geo.country", Text::DeviceGeoCountry),
    ("device.geo.region", Text::DeviceGeoRegion),
    ("device.geo.metro", Text::DeviceGeoMetro),
    ("device.geo.city", Text::DeviceGeoCity),
    ("user.gender", Text::UserGender),
];

pub const DERIVED_SOURCES: &[(&str, Derived)] = &[
    ("hour_utc", Derived::Hour { local: false }),
    ("hour_local", Derived::Hour { local: true }),
    ("weekday_utc", Derived::Weekday { local: false }),
    ("weekday_local", Derived::Weekday { local: true }),
    ("banner_area", Derived::BannerArea),
    ("floor_usd", Derived::FloorUsd),
    ("segment_count", Derived::SegmentCount),
    ("has_ifa", Derived::HasIfa),
    ("is_app", Derived::IsApp),
    ("has_user_id", Derived::HasUserId),
    ("format_count", Derived::FormatCount),
    ("imp_count", Derived::ImpCount),
    ("media_type", Derived::MediaType),
];

fn lookup<T: Copy>(table: &[(&str, T)], kind: &str, name: &str) -> Result<T, ModelError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, v)| v)
        .ok_or_else(|| ModelError::new(format!("feature spec: no {kind} source named {name:?}")))
}

impl FeatureSpec {
    /// `usd_rates`: USD per unit of each currency, by code (any case).
    pub fn new(usd_rates: HashMap<String, f64>) -> Self {
        // The parser upper-cases `bidfloorcur`, so upper-case codes make the lookup exact.
        let usd_rates = usd_rates.into_iter().map(|(code, rate)| (code.to_ascii_uppercase(), rate)).collect();
        FeatureSpec { features: Vec::new(), usd_rates }
    }

    pub fn number(&mut self, source: &str) -> Result<(), ModelError> {
        self.features.push(Feature::Number(lookup(NUMBER_SOURCES, "number", source)?));
        Ok(())
    }

    pub fn text(&mut self, source: &str, encoding: Encoding) -> Result<(), ModelError> {
        if let Encoding::Hash { buckets: 0 } = encoding {
            return Err(ModelError::new("feature spec: a hashed feature needs at least one bucket"));
        }
        self.features.push(Feature::Text(lookup(TEXT_SOURCES, "text", source)?, encoding));
        Ok(())
    }

    pub fn derived(&mut self, name: &str) -> Result<(), ModelError> {
        self.features.push(Feature::Derived(lookup(DERIVED_SOURCES, "derived", name)?));
        Ok(())
    }

    pub fn campaign(&mut self, index: usize) {
        self.features.push(Feature::Campaign(index));
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The values of every feature for impression `imp` of `request`, into `out` (one per
    /// feature). `timestamp` is the request's time in seconds since the Unix epoch (NaN when
    /// unknown); `campaign` holds the campaign's attributes, as the spec indexes them.
    pub fn extract(&self, request: &BidRequest<'_>, imp: usize, timestamp: f64, campaign: &[f64], out: &mut [f64]) {
        let imps = request.imp.as_deref().unwrap_or(&[]);
        let slot = imps.get(imp);
        let personal = request.personal_data_allowed();
        for (feature, value) in self.features.iter().zip(out.iter_mut()) {
            if !personal && feature.is_personal() {
                *value = f64::NAN;
                continue;
            }
            *value = match feature {
                Feature::Number(n) => number(request, slot, *n),
                Feature::Text(t, encoding) => match text(request, slot, *t) {
                    Some(s) => encode(s, encoding),
                    None => f64::NAN,
                },
                Feature::Derived(d) => self.derived_value(request, slot, imps.len(), *d, timestamp),
                Feature::Campaign(i) => campaign.get(*i).copied().unwrap_or(f64::NAN),
            };
        }
    }

    /// Overwrites the campaign columns of a row `extract` built: the engine extracts an imp's
    /// row once and fills in each candidate campaign's attributes, which is all that differs.
    pub fn fill_campaign(&self, campaign: &[f64], out: &mut [f64]) {
        for (feature, value) in self.features.iter().zip(out.iter_mut()) {
            if let Feature::Campaign(i) = feature {
                *value = campaign.get(*i).copied().unwrap_or(f64::NAN);
            }
        }
    }

    fn derived_value(&self, r: &BidRequest<'_>, imp: Option<&Imp<'_>>, imps: usize, d: Derived, ts: f64) -> f64 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match d {
            Derived::Hour { local } => match local_seconds(r, ts, local) {
                Some(s) => s.rem_euclid(86_400).div_euclid(3_600) as f64,
                None => f64::NAN,
            },
            // 1970-01-01 was a Thursday (weekday 3).
            Derived::Weekday { local } => match local_seconds(r, ts, local) {
                Some(s) => (s.div_euclid(86_400) + 3).rem_euclid(7) as f64,
                None => f64::NAN,
            },
            Derived::BannerArea => {
                let Some(banner) = imp.and_then(|i| i.banner.as_deref()) else { return f64::NAN };
                let first = banner.format.as_deref().and_then(|f| f.first());
                match (banner.w, banner.h) {
                    (Some(w), Some(h)) => f64::from(w) * f64::from(h),
                    _ => match first.map(|f| (f.w, f.h)) {
                        Some((Some(w), Some(h))) => f64::from(w) * f64::from(h),
                        _ => f64::NAN,
                    },
                }
            }
            Derived::FloorUsd => {
                let Some(imp) = imp else { return f64::NAN };
                let floor = imp.bidfloor.unwrap_or(0.0);
                // Normalized by the parser: present and upper case.
                let currency = imp.bidfloorcur.as_ref().map_or("USD", |c| c.as_str());
                if currency == "USD" {
                    floor
                } else {
                    self.usd_rates.get(currency).map_or(f64::NAN, |rate| floor * rate)
                }
            }
            Derived::SegmentCount => {
                let data = r.user.as_deref().and_then(|u| u.data.as_deref()).unwrap_or(&[]);
                data.iter().map(|d| d.segment.as_deref().map_or(0, |s| s.len())).sum::<usize>() as f64
            }
            Derived::HasIfa => flag(r.device.as_deref().and_then(|d| d.ifa.as_ref()).is_some_and(|s| !s.is_empty())),
            Derived::IsApp => flag(r.app.is_some()),
            Derived::HasUserId => {
                let user = r.user.as_deref();
                let present = |s: Option<&crate::openrtb::Str<'_>>| s.is_some_and(|s| !s.is_empty());
                flag(user.is_some_and(|u| present(u.id.as_ref()) || present(u.buyeruid.as_ref())))
            }
            Derived::FormatCount => {
                imp.and_then(|i| i.banner.as_deref()).and_then(|b| b.format.as_deref()).map_or(0, |f| f.len()) as f64
            }
            Derived::ImpCount => imps as f64,
            Derived::MediaType => match imp {
                Some(i) if i.banner.is_some() => 0.0,
                Some(i) if i.video.is_some() => 1.0,
                Some(i) if i.audio.is_some() => 2.0,
                Some(i) if i.native.is_some() => 3.0,
                _ => f64::NAN,
            },
        }
    }
}

/// Seconds since the epoch, shifted into the user's time zone when asked and known.
fn local_seconds(r: &BidRequest<'_>, ts: f64, local: bool) -> Option<i64> {
    if !ts.is_finite() {
        return None;
    }
    let mut seconds = ts.floor() as i64;
    if local {
        if let Some(offset) = device_geo(r).and_then(|g| g.utcoffset) {
            seconds += i64::from(offset) * 60;
        }
    }
    Some(seconds)
}

fn device_geo<'r>(r: &'r BidRequest<'_>) -> Option<&'r Geo<'r>> {
    r.device.as_deref().and_then(|d| d.geo.as_ref())
}

fn opt<T: Into<f64>>(v: Option<T>) -> f64 {
    v.map_or(f64::NAN, Into::into)
}

fn number(r: &BidRequest<'_>, imp: Option<&Imp<'_>>, n: Number) -> f64 {
    let banner = imp.and_then(|i| i.banner.as_deref());
    let video = imp.and_then(|i| i.video.as_deref());
    let device = r.device.as_deref();
    let geo = device_geo(r);
    match n {
        Number::ImpBidfloor => imp.and_then(|i| i.bidfloor).unwrap_or(f64::NAN),
        Number::ImpSecure => opt(imp.and_then(|i| i.secure)),
        Number::ImpInstl => opt(imp.and_then(|i| i.instl)),
        Number::ImpRwdd => opt(imp.and_then(|i| i.rwdd)),
        Number::ImpExp => opt(imp.and_then(|i| i.exp)),
        Number::BannerW => opt(banner.and_then(|b| b.w)),
        Number::BannerH => opt(banner.and_then(|b| b.h)),
        Number::BannerPos => opt(banner.and_then(|b| b.pos)),
        Number::VideoW => opt(video.and_then(|v| v.w)),
        Number::VideoH => opt(video.and_then(|v| v.h)),
        Number::VideoMinduration => opt(video.and_then(|v| v.minduration)),
        Number::VideoMaxduration => opt(video.and_then(|v| v.maxduration)),
        Number::VideoPlacement => opt(video.and_then(|v| v.placement)),
        Number::VideoPlcmt => opt(video.and_then(|v| v.plcmt)),
        Number::VideoStartdelay => opt(video.and_then(|v| v.startdelay)),
        Number::DeviceW => opt(device.and_then(|d| d.w)),
        Number::DeviceH => opt(device.and_then(|d| d.h)),
        Number::DevicePxratio => device.and_then(|d| d.pxratio).unwrap_or(f64::NAN),
        Number::DeviceDevicetype => opt(device.and_then(|d| d.devicetype)),
        Number::DeviceConnectiontype => opt(device.and_then(|d| d.connectiontype)),
        Number::DeviceLmt => opt(device.and_then(|d| d.lmt)),
        Number::DeviceDnt => opt(device.and_then(|d| d.dnt)),
        Number::DeviceJs => opt(device.and_then(|d| d.js)),
        Number::DeviceGeoLat => geo.and_then(|g| g.lat).unwrap_or(f64::NAN),
        Number::DeviceGeoLon => geo.and_then(|g| g.lon).unwrap_or(f64::NAN),
        Number::DeviceGeoType => opt(geo.and_then(|g| g.kind)),
        Number::DeviceGeoUtcoffset => opt(geo.and_then(|g| g.utcoffset)),
        Number::UserYob => opt(r.user.as_deref().and_then(|u| u.yob)),
        Number::Tmax => opt(r.tmax),
        Number::At => opt(r.at),
        Number::Test => opt(r.test),
        Number::RegsCoppa => opt(r.regs.as_deref().and_then(|g| g.coppa)),
        Number::RegsGdpr => opt(r.regs.as_deref().and_then(|g| g.gdpr)),
    }
}

fn text<'r>(r: &'r BidRequest<'_>, imp: Option<&'r Imp<'_>>, t: Text) -> Option<&'r str> {
    let device = r.device.as_deref();
    let geo = device_geo(r);
    let site = r.site.as_deref();
    let app = r.app.as_deref();
    let s = match t {
        Text::ImpTagid => imp.and_then(|i| i.tagid.as_ref()),
        Text::ImpBidfloorcur => imp.and_then(|i| i.bidfloorcur.as_ref()),
        Text::SiteDomain => site.and_then(|s| s.domain.as_ref()),
        Text::SitePublisherId => site.and_then(|s| s.publisher.as_ref()).and_then(|p| p.id.as_ref()),
        Text::AppBundle => app.and_then(|a| a.bundle.as_ref()),
        Text::AppPublisherId => app.and_then(|a| a.publisher.as_ref()).and_then(|p| p.id.as_ref()),
        Text::PublisherId => site
            .and_then(|s| s.publisher.as_ref())
            .or_else(|| app.and_then(|a| a.publisher.as_ref()))
            .and_then(|p| p.id.as_ref()),
        Text::Placement => site.and_then(|s| s.domain.as_ref()).or_else(|| app.and_then(|a| a.bundle.as_ref())),
        Text::DeviceOs => device.and_then(|d| d.os.as_ref()),
        Text::DeviceMake => device.and_then(|d| d.make.as_ref()),
        Text::DeviceModel => device.and_then(|d| d.model.as_ref()),
        Text::DeviceLanguage => device.and_then(|d| d.language.as_ref()),
        Text::DeviceCarrier => device.and_then(|d| d.carrier.as_ref()),
        Text::DeviceGeoCountry => geo.and_then(|g| g.country.as_ref()),
        Text::DeviceGeoRegion => geo.and_then(|g| g.region.as_ref()),
        Text::DeviceGeoMetro => geo.and_then(|g| g.metro.as_ref()),
        Text::DeviceGeoCity => geo.and_then(|g| g.city.as_ref()),
        Text::UserGender => r.user.as_deref().and_then(|u| u.gender.as_ref()),
    };
    s.map(|s| s.as_str())
}

fn encode(s: &str, encoding: &Encoding) -> f64 {
    match encoding {
        Encoding::Vocabulary { codes, unseen } => codes.get(s).map_or(*unseen, |&c| f64::from(c)),
        Encoding::Hash { buckets } => (fnv1a64(s.as_bytes()) % u64::from(*buckets)) as f64,
    }
}

/// FNV-1a, 64 bits: stable across processes and languages (Python's `hash` is salted).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openrtb::RequestParser;
    use bumpalo::Bump;

    const BODY: &str = r#"{"id":"r","at":1,"tmax":120,"imp":[{"id":"1","bidfloor":2.5,"bidfloorcur":"EUR",
        "banner":{"format":[{"w":300,"h":250},{"w":320,"h":50}]},"tagid":"t1"},
        {"id":"2","video":{"mimes":["video/mp4"],"w":640,"h":480}}],
        "app":{"bundle":"com.example","publisher":{"id":"p9"}},
        "device":{"ifa":"abc","devicetype":4,"os":"iOS","geo":{"country":"FRA","utcoffset":60,"lat":48.5}},
        "user":{"data":[{"segment":[{"id":"a"},{"id":"b"}]},{"segment":[{"id":"c"}]}]}}"#;

    fn spec() -> FeatureSpec {
        let mut spec = FeatureSpec::new(HashMap::from([("EUR".to_owned(), 1.1)]));
        spec.number("imp.bidfloor").unwrap();
        spec.number("device.geo.lat").unwrap();
        spec.number("imp.banner.w").unwrap();
        let codes = HashMap::from([("USA".to_owned(), 0), ("FRA".to_owned(), 1)]);
        spec.text("device.geo.country", Encoding::Vocabulary { codes, unseen: 2.0 }).unwrap();
        spec.text("placement", Encoding::Hash { buckets: 1000 }).unwrap();
        for d in ["hour_utc", "hour_local", "weekday_local", "banner_area", "floor_usd", "segment_count", "has_ifa"] {
            spec.derived(d).unwrap();
        }
        for d in ["is_app", "has_user_id", "format_count", "imp_count", "media_type"] {
            spec.derived(d).unwrap();
        }
        spec.campaign(1);
        spec
    }

    #[test]
    fn extracts_every_kind_of_feature() {
        let arena = Bump::new();
        let request = RequestParser::default().parse(BODY.as_bytes(), &arena).unwrap();
        let spec = spec();
        let mut out = vec![0.0; spec.len()];
        // 2026-11-22 23:30:00 UTC, a Sunday; 00:30 Monday in UTC+1.
        let ts = 1_795_390_200.0;
        spec.extract(&request, 0, ts, &[7.0, 8.0], &mut out);
        let hash = (fnv1a64(b"com.example") % 1000) as f64;
        let expected = [
            2.5,
            48.5,
            f64::NAN,
            1.0,
            hash,
            23.0,
            0.0,
            0.0,
            75_000.0,
            2.5 * 1.1,
            3.0,
            1.0,
            1.0,
            0.0,
            2.0,
            2.0,
            0.0,
            8.0,
        ];
        for (i, (a, b)) in out.iter().zip(expected).enumerate() {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "feature {i}: {a} != {b}");
        }
        spec.extract(&request, 1, f64::NAN, &[], &mut out);
        assert_eq!(out[0], 0.0, "an absent floor is normalized to 0");
        assert!(out[5].is_nan(), "no time, no hour");
        assert_eq!(out[16], 1.0, "video");
        assert!(out[17].is_nan(), "no campaign value");
    }

    #[test]
    fn unknown_sources_are_refused() {
        let mut spec = FeatureSpec::default();
        assert!(spec.number("imp.nope").is_err());
        assert!(spec.text("site.domain", Encoding::Hash { buckets: 0 }).is_err());
        assert!(spec.derived("moon_phase").is_err());
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
