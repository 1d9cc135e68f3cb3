//! The bid request as the bidder reads it: a borrowed, typed view of OpenRTB 2.6.
//!
//! Only the fields a bidder reads are here; everything else in the body is skipped by the parser
//! without being stored (OpenRTB requires unknown fields to be ignored). Integer codes such as
//! `devicetype` stay `i32`, so values a later spec adds pass through untouched; sizes, durations,
//! bitrates and counts are `u32`, so a negative one is refused where it is read.
//!
//! The `ext` objects kept whole (request and imp) and the Native request are [`Raw`] slices of the
//! body. Lists and nested objects live in the parse's arena (`&'a mut`), so the view is small,
//! never moved about, and freed all at once when the arena is reset.
//!
//! Signals OpenRTB 2.5 carried under `ext` (`regs.ext.gdpr`, `user.ext.consent`, …) are read into
//! the `*Ext` structs and moved to their 2.6 places by [`normalize`](super::normalize).

use super::json::{view_object, Lenient, Raw};
use super::text::Str;

view_object! {
    /// The top-level bid request.
    #[derive(Debug, PartialEq)]
    pub struct BidRequest<'a> {
        pub id: Option<Str<'a>>,
        pub imp: Option<&'a mut [Imp<'a>]>,
        pub site: Option<&'a mut Site<'a>>,
        pub app: Option<&'a mut App<'a>>,
        pub dooh: Option<&'a mut Dooh<'a>>,
        pub device: Option<&'a mut Device<'a>>,
        pub user: Option<&'a mut User<'a>>,
        pub regs: Option<&'a mut Regs<'a>>,
        pub source: Option<&'a mut Source<'a>>,
        pub at: Option<i32>,
        pub tmax: Option<u32>,
        pub cur: Option<&'a mut [Str<'a>]>,
        pub wseat: Option<&'a mut [Str<'a>]>,
        pub bseat: Option<&'a mut [Str<'a>]>,
        pub bcat: Option<&'a mut [Str<'a>]>,
        pub cattax: Option<i32>,
        pub badv: Option<&'a mut [Str<'a>]>,
        pub bapp: Option<&'a mut [Str<'a>]>,
        pub allimps: Option<i32>,
        pub test: Option<i32>,
        pub ext: Option<Raw<'a>>,
    }
}

view_object! {
    /// One impression offered in the request.
    #[derive(Debug, PartialEq)]
    pub struct Imp<'a> {
        pub id: Option<Str<'a>>,
        pub banner: Option<&'a mut Banner<'a>>,
        pub video: Option<&'a mut Video<'a>>,
        pub audio: Option<&'a mut Audio<'a>>,
        pub native: Option<&'a mut Native<'a>>,
        pub pmp: Option<&'a mut Pmp<'a>>,
        pub bidfloor: Option<f64>,
        pub bidfloorcur: Option<Str<'a>>,
        pub tagid: Option<Str<'a>>,
        pub displaymanager: Option<Str<'a>>,
        pub secure: Option<i32>,
        pub instl: Option<i32>,
        pub rwdd: Option<i32>,
        pub clickbrowser: Option<i32>,
        pub exp: Option<u32>,
        pub ext: Option<Raw<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Banner<'a> {
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub format: Option<&'a mut [Format]>,
        pub pos: Option<i32>,
        pub btype: Option<&'a mut [i32]>,
        pub battr: Option<&'a mut [i32]>,
        pub api: Option<&'a mut [i32]>,
        pub mimes: Option<&'a mut [Str<'a>]>,
        pub topframe: Option<i32>,
        pub expdir: Option<&'a mut [i32]>,
        pub vcm: Option<i32>,
    }
}

view_object! {
    /// An allowed banner size (`banner.format[]`).
    #[derive(Debug, PartialEq)]
    pub struct Format {
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub wratio: Option<u32>,
        pub hratio: Option<u32>,
        pub wmin: Option<u32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Video<'a> {
        pub mimes: Option<&'a mut [Str<'a>]>,
        pub minduration: Option<u32>,
        pub maxduration: Option<u32>,
        pub startdelay: Option<i32>,
        pub protocols: Option<&'a mut [i32]>,
        /// OpenRTB 2.2's single protocol, still sent by some exchanges.
        pub protocol: Option<i32>,
        pub w: Option<u32>,
        pub h: Option<u32>,
        /// 2.5's `placement`, superseded by `plcmt` in 2.6.
        pub placement: Option<i32>,
        pub plcmt: Option<i32>,
        pub linearity: Option<i32>,
        pub skip: Option<i32>,
        pub skipmin: Option<u32>,
        pub skipafter: Option<u32>,
        pub sequence: Option<u32>,
        pub battr: Option<&'a mut [i32]>,
        pub maxextended: Option<i32>,
        pub minbitrate: Option<u32>,
        pub maxbitrate: Option<u32>,
        pub boxingallowed: Option<i32>,
        pub playbackmethod: Option<&'a mut [i32]>,
        pub playbackend: Option<i32>,
        pub delivery: Option<&'a mut [i32]>,
        pub pos: Option<i32>,
        pub api: Option<&'a mut [i32]>,
        // Pod bidding (2.6).
        pub maxseq: Option<u32>,
        pub poddur: Option<u32>,
        pub podid: Option<Str<'a>>,
        pub podseq: Option<i32>,
        pub rqddurs: Option<&'a mut [u32]>,
        pub slotinpod: Option<i32>,
        pub mincpmpersec: Option<f64>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Audio<'a> {
        pub mimes: Option<&'a mut [Str<'a>]>,
        pub minduration: Option<u32>,
        pub maxduration: Option<u32>,
        pub startdelay: Option<i32>,
        pub protocols: Option<&'a mut [i32]>,
        pub sequence: Option<u32>,
        pub battr: Option<&'a mut [i32]>,
        pub maxextended: Option<i32>,
        pub minbitrate: Option<u32>,
        pub maxbitrate: Option<u32>,
        pub delivery: Option<&'a mut [i32]>,
        pub api: Option<&'a mut [i32]>,
        pub feed: Option<i32>,
        pub stitched: Option<i32>,
        pub nvol: Option<i32>,
        // Pod bidding (2.6).
        pub maxseq: Option<u32>,
        pub poddur: Option<u32>,
        pub podid: Option<Str<'a>>,
        pub podseq: Option<i32>,
        pub rqddurs: Option<&'a mut [u32]>,
        pub slotinpod: Option<i32>,
        pub mincpmpersec: Option<f64>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Native<'a> {
        /// The Native Ads request: a JSON string holding the Native request document, as OpenRTB 2.x
        /// specifies, or that document as an object, as some exchanges send it (Google's OpenRTB
        /// library reads both). Kept raw: only a bidder with native campaigns pays to read it.
        pub request: Option<Raw<'a>>,
        pub ver: Option<Str<'a>>,
        pub api: Option<&'a mut [i32]>,
        pub battr: Option<&'a mut [i32]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Pmp<'a> {
        pub private_auction: Option<i32>,
        pub deals: Option<&'a mut [Deal<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Deal<'a> {
        pub id: Option<Str<'a>>,
        pub bidfloor: Option<f64>,
        pub bidfloorcur: Option<Str<'a>>,
        pub at: Option<i32>,
        pub wseat: Option<&'a mut [Str<'a>]>,
        pub wadomain: Option<&'a mut [Str<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Site<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub domain: Option<Str<'a>>,
        pub cat: Option<&'a mut [Str<'a>]>,
        pub sectioncat: Option<&'a mut [Str<'a>]>,
        pub pagecat: Option<&'a mut [Str<'a>]>,
        pub cattax: Option<i32>,
        pub page: Option<Str<'a>>,
        pub referrer as "ref": Option<Str<'a>>,
        pub search: Option<Str<'a>>,
        pub mobile: Option<i32>,
        pub keywords: Option<Str<'a>>,
        pub publisher: Option<Publisher<'a>>,
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct App<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub bundle: Option<Str<'a>>,
        pub domain: Option<Str<'a>>,
        pub storeurl: Option<Str<'a>>,
        pub cat: Option<&'a mut [Str<'a>]>,
        pub sectioncat: Option<&'a mut [Str<'a>]>,
        pub pagecat: Option<&'a mut [Str<'a>]>,
        pub cattax: Option<i32>,
        pub ver: Option<Str<'a>>,
        pub paid: Option<i32>,
        pub keywords: Option<Str<'a>>,
        pub publisher: Option<Publisher<'a>>,
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    /// Digital out-of-home inventory (2.6).
    #[derive(Debug, PartialEq)]
    pub struct Dooh<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub venuetype: Option<&'a mut [Str<'a>]>,
        pub venuetypetax: Option<i32>,
        pub domain: Option<Str<'a>>,
        pub keywords: Option<Str<'a>>,
        pub publisher: Option<Publisher<'a>>,
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Publisher<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub domain: Option<Str<'a>>,
        pub cat: Option<&'a mut [Str<'a>]>,
        pub cattax: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Content<'a> {
        pub id: Option<Str<'a>>,
        pub title: Option<Str<'a>>,
        pub series: Option<Str<'a>>,
        pub genre: Option<Str<'a>>,
        pub cat: Option<&'a mut [Str<'a>]>,
        pub cattax: Option<i32>,
        pub language: Option<Str<'a>>,
        pub langb: Option<Str<'a>>,
        pub keywords: Option<Str<'a>>,
        pub livestream: Option<i32>,
        pub len: Option<u32>,
        pub contentrating: Option<Str<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Device<'a> {
        pub ua: Option<Str<'a>>,
        pub sua: Option<UserAgent<'a>>,
        pub ip: Option<Str<'a>>,
        pub ipv6: Option<Str<'a>>,
        pub geo: Option<Geo<'a>>,
        pub devicetype: Option<i32>,
        pub make: Option<Str<'a>>,
        pub model: Option<Str<'a>>,
        pub os: Option<Str<'a>>,
        pub osv: Option<Str<'a>>,
        pub hwv: Option<Str<'a>>,
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub ppi: Option<u32>,
        pub pxratio: Option<f64>,
        pub language: Option<Str<'a>>,
        pub langb: Option<Str<'a>>,
        pub carrier: Option<Str<'a>>,
        pub mccmnc: Option<Str<'a>>,
        pub connectiontype: Option<i32>,
        pub ifa: Option<Str<'a>>,
        pub lmt: Option<i32>,
        pub dnt: Option<i32>,
        pub js: Option<i32>,
        pub geofetch: Option<i32>,
    }
}

view_object! {
    /// Structured user agent (`device.sua`, 2.6): the client-hints view of the browser.
    #[derive(Debug, PartialEq)]
    pub struct UserAgent<'a> {
        pub browsers: Option<&'a mut [BrandVersion<'a>]>,
        pub platform: Option<BrandVersion<'a>>,
        pub mobile: Option<i32>,
        pub architecture: Option<Str<'a>>,
        pub bitness: Option<Str<'a>>,
        pub model: Option<Str<'a>>,
        pub source: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct BrandVersion<'a> {
        pub brand: Option<Str<'a>>,
        pub version: Option<&'a mut [Str<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Geo<'a> {
        pub lat: Option<f64>,
        pub lon: Option<f64>,
        pub kind as "type": Option<i32>,
        pub accuracy: Option<u32>,
        pub lastfix: Option<u32>,
        pub ipservice: Option<i32>,
        pub country: Option<Str<'a>>,
        pub region: Option<Str<'a>>,
        pub metro: Option<Str<'a>>,
        pub city: Option<Str<'a>>,
        pub zip: Option<Str<'a>>,
        pub utcoffset: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct User<'a> {
        pub id: Option<Str<'a>>,
        pub buyeruid: Option<Str<'a>>,
        pub yob: Option<i32>,
        pub gender: Option<Str<'a>>,
        pub keywords: Option<Str<'a>>,
        pub geo: Option<Geo<'a>>,
        pub data: Option<&'a mut [Data<'a>]>,
        pub eids: Option<&'a mut [Eid<'a>]>,
        pub consent: Option<Str<'a>>,
        pub ext: Lenient<UserExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 (and Prebid) put `consent` and `eids`.
    #[derive(Debug, PartialEq)]
    pub struct UserExt<'a> {
        pub consent: Option<Str<'a>>,
        pub eids: Option<&'a mut [Eid<'a>]>,
    }
}

view_object! {
    /// A data provider's segments for the user (`user.data[]`).
    #[derive(Debug, PartialEq)]
    pub struct Data<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub segment: Option<&'a mut [Segment<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Segment<'a> {
        pub id: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub value: Option<Str<'a>>,
    }
}

view_object! {
    /// An extended identifier (`user.eids[]`): one identity provider's ids for the user.
    #[derive(Debug, PartialEq)]
    pub struct Eid<'a> {
        pub source: Option<Str<'a>>,
        pub uids: Option<&'a mut [Uid<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Uid<'a> {
        pub id: Option<Str<'a>>,
        pub atype: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Regs<'a> {
        pub coppa: Option<i32>,
        pub gdpr: Option<i32>,
        pub us_privacy: Option<Str<'a>>,
        pub gpp: Option<Str<'a>>,
        pub gpp_sid: Option<&'a mut [i32]>,
        pub ext: Lenient<RegsExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 put `gdpr` and `us_privacy`.
    #[derive(Debug, PartialEq)]
    pub struct RegsExt<'a> {
        pub gdpr: Option<i32>,
        pub us_privacy: Option<Str<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct Source<'a> {
        pub fd: Option<i32>,
        pub tid: Option<Str<'a>>,
        pub pchain: Option<Str<'a>>,
        pub schain: Option<SupplyChain<'a>>,
        pub ext: Lenient<SourceExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 put the supply chain.
    #[derive(Debug, PartialEq)]
    pub struct SourceExt<'a> {
        pub schain: Option<SupplyChain<'a>>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct SupplyChain<'a> {
        pub complete: Option<i32>,
        pub ver: Option<Str<'a>>,
        pub nodes: Option<&'a mut [SupplyChainNode<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct SupplyChainNode<'a> {
        pub asi: Option<Str<'a>>,
        pub sid: Option<Str<'a>>,
        pub rid: Option<Str<'a>>,
        pub name: Option<Str<'a>>,
        pub domain: Option<Str<'a>>,
        pub hp: Option<i32>,
    }
}

impl BidRequest<'_> {
    /// Whether user-level data may be used for this request: not under COPPA, not when the
    /// device limits ad tracking, not under GDPR without a consent string. When it may not, the
    /// engine turns off user-level targeting and features.
    pub fn personal_data_allowed(&self) -> bool {
        let regs = self.regs.as_deref();
        let coppa = regs.and_then(|r| r.coppa) == Some(1);
        let gdpr = regs.and_then(|r| r.gdpr) == Some(1);
        let consent = self.user.as_deref().and_then(|u| u.consent.as_ref()).is_some_and(|c| !c.is_empty());
        let lmt = self.device.as_deref().and_then(|d| d.lmt) == Some(1);
        !(coppa || lmt || (gdpr && !consent))
    }
}
