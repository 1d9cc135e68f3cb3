//! The bid request as the bidder reads it: a borrowed, typed view of OpenRTB 2.6.
//!
//! Only the fields a bidder reads are here; everything else in the body is skipped by the parser
//! without being stored (OpenRTB requires unknown fields to be ignored). Integer codes such as
//! `devicetype` stay `i32`, so values a later spec adds pass through untouched; sizes, durations,
//! bitrates and counts are `u32`, so a negative one is refused where it is read.
//!
//! `J` is how the `ext` objects that are kept whole are held: a raw JSON slice of the body for the
//! production parser, or whatever each benchmarked JSON backend offers for that.
//!
//! The larger objects are boxed: with every object inline the view was 3.4 KB, and moving it
//! through serde's visitors spent a quarter of the parse in memcpy (seen with `perf`).
//!
//! Signals OpenRTB 2.5 carried under `ext` (`regs.ext.gdpr`, `user.ext.consent`, …) are read into
//! the `*Ext` structs and moved to their 2.6 places by [`normalize`](super::normalize).

use serde::Deserialize;

use super::json::{view_object, Lenient};
use super::text::Str;

view_object! {
    /// The top-level bid request.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(bound(deserialize = "J: Deserialize<'de>"))]
    pub struct BidRequest<'a, J> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub imp: Option<Vec<Imp<'a, J>>>,
        #[serde(borrow)]
        pub site: Option<Box<Site<'a>>>,
        #[serde(borrow)]
        pub app: Option<Box<App<'a>>>,
        #[serde(borrow)]
        pub dooh: Option<Box<Dooh<'a>>>,
        #[serde(borrow)]
        pub device: Option<Box<Device<'a>>>,
        #[serde(borrow)]
        pub user: Option<Box<User<'a>>>,
        #[serde(borrow)]
        pub regs: Option<Box<Regs<'a>>>,
        #[serde(borrow)]
        pub source: Option<Box<Source<'a>>>,
        pub at: Option<i32>,
        pub tmax: Option<u32>,
        #[serde(borrow)]
        pub cur: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub wseat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub bseat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub bcat: Option<Vec<Str<'a>>>,
        pub cattax: Option<i32>,
        #[serde(borrow)]
        pub badv: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub bapp: Option<Vec<Str<'a>>>,
        pub allimps: Option<i32>,
        pub test: Option<i32>,
        pub ext: Option<J>,
    }
}

view_object! {
    /// One impression offered in the request.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(bound(deserialize = "J: Deserialize<'de>"))]
    pub struct Imp<'a, J> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub banner: Option<Box<Banner<'a>>>,
        #[serde(borrow)]
        pub video: Option<Box<Video<'a>>>,
        #[serde(borrow)]
        pub audio: Option<Box<Audio<'a>>>,
        #[serde(borrow)]
        pub native: Option<Box<Native<'a, J>>>,
        #[serde(borrow)]
        pub pmp: Option<Box<Pmp<'a>>>,
        pub bidfloor: Option<f64>,
        #[serde(borrow)]
        pub bidfloorcur: Option<Str<'a>>,
        #[serde(borrow)]
        pub tagid: Option<Str<'a>>,
        #[serde(borrow)]
        pub displaymanager: Option<Str<'a>>,
        pub secure: Option<i32>,
        pub instl: Option<i32>,
        pub rwdd: Option<i32>,
        pub clickbrowser: Option<i32>,
        pub exp: Option<u32>,
        pub ext: Option<J>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Banner<'a> {
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub format: Option<Vec<Format>>,
        pub pos: Option<i32>,
        pub btype: Option<Vec<i32>>,
        pub battr: Option<Vec<i32>>,
        pub api: Option<Vec<i32>>,
        #[serde(borrow)]
        pub mimes: Option<Vec<Str<'a>>>,
        pub topframe: Option<i32>,
        pub expdir: Option<Vec<i32>>,
        pub vcm: Option<i32>,
    }
}

view_object! {
    /// An allowed banner size (`banner.format[]`).
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Format {
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub wratio: Option<u32>,
        pub hratio: Option<u32>,
        pub wmin: Option<u32>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Video<'a> {
        #[serde(borrow)]
        pub mimes: Option<Vec<Str<'a>>>,
        pub minduration: Option<u32>,
        pub maxduration: Option<u32>,
        pub startdelay: Option<i32>,
        pub protocols: Option<Vec<i32>>,
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
        pub battr: Option<Vec<i32>>,
        pub maxextended: Option<i32>,
        pub minbitrate: Option<u32>,
        pub maxbitrate: Option<u32>,
        pub boxingallowed: Option<i32>,
        pub playbackmethod: Option<Vec<i32>>,
        pub playbackend: Option<i32>,
        pub delivery: Option<Vec<i32>>,
        pub pos: Option<i32>,
        pub api: Option<Vec<i32>>,
        // Pod bidding (2.6).
        pub maxseq: Option<u32>,
        pub poddur: Option<u32>,
        #[serde(borrow)]
        pub podid: Option<Str<'a>>,
        pub podseq: Option<i32>,
        pub rqddurs: Option<Vec<u32>>,
        pub slotinpod: Option<i32>,
        pub mincpmpersec: Option<f64>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Audio<'a> {
        #[serde(borrow)]
        pub mimes: Option<Vec<Str<'a>>>,
        pub minduration: Option<u32>,
        pub maxduration: Option<u32>,
        pub startdelay: Option<i32>,
        pub protocols: Option<Vec<i32>>,
        pub sequence: Option<u32>,
        pub battr: Option<Vec<i32>>,
        pub maxextended: Option<i32>,
        pub minbitrate: Option<u32>,
        pub maxbitrate: Option<u32>,
        pub delivery: Option<Vec<i32>>,
        pub api: Option<Vec<i32>>,
        pub feed: Option<i32>,
        pub stitched: Option<i32>,
        pub nvol: Option<i32>,
        // Pod bidding (2.6).
        pub maxseq: Option<u32>,
        pub poddur: Option<u32>,
        #[serde(borrow)]
        pub podid: Option<Str<'a>>,
        pub podseq: Option<i32>,
        pub rqddurs: Option<Vec<u32>>,
        pub slotinpod: Option<i32>,
        pub mincpmpersec: Option<f64>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(bound(deserialize = "J: Deserialize<'de>"))]
    pub struct Native<'a, J> {
        /// The Native Ads request: a JSON string holding the Native request document, as OpenRTB 2.x
        /// specifies, or that document as an object, as some exchanges send it (Google's OpenRTB
        /// library reads both). Kept raw: only a bidder with native campaigns pays to read it.
        pub request: Option<J>,
        #[serde(borrow)]
        pub ver: Option<Str<'a>>,
        pub api: Option<Vec<i32>>,
        pub battr: Option<Vec<i32>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Pmp<'a> {
        pub private_auction: Option<i32>,
        #[serde(borrow)]
        pub deals: Option<Vec<Deal<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Deal<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        pub bidfloor: Option<f64>,
        #[serde(borrow)]
        pub bidfloorcur: Option<Str<'a>>,
        pub at: Option<i32>,
        #[serde(borrow)]
        pub wseat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub wadomain: Option<Vec<Str<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Site<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub domain: Option<Str<'a>>,
        #[serde(borrow)]
        pub cat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub sectioncat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub pagecat: Option<Vec<Str<'a>>>,
        pub cattax: Option<i32>,
        #[serde(borrow)]
        pub page: Option<Str<'a>>,
        #[serde(borrow)]
        pub referrer as "ref": Option<Str<'a>>,
        #[serde(borrow)]
        pub search: Option<Str<'a>>,
        pub mobile: Option<i32>,
        #[serde(borrow)]
        pub keywords: Option<Str<'a>>,
        #[serde(borrow)]
        pub publisher: Option<Publisher<'a>>,
        #[serde(borrow)]
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct App<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub bundle: Option<Str<'a>>,
        #[serde(borrow)]
        pub domain: Option<Str<'a>>,
        #[serde(borrow)]
        pub storeurl: Option<Str<'a>>,
        #[serde(borrow)]
        pub cat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub sectioncat: Option<Vec<Str<'a>>>,
        #[serde(borrow)]
        pub pagecat: Option<Vec<Str<'a>>>,
        pub cattax: Option<i32>,
        #[serde(borrow)]
        pub ver: Option<Str<'a>>,
        pub paid: Option<i32>,
        #[serde(borrow)]
        pub keywords: Option<Str<'a>>,
        #[serde(borrow)]
        pub publisher: Option<Publisher<'a>>,
        #[serde(borrow)]
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    /// Digital out-of-home inventory (2.6).
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Dooh<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub venuetype: Option<Vec<Str<'a>>>,
        pub venuetypetax: Option<i32>,
        #[serde(borrow)]
        pub domain: Option<Str<'a>>,
        #[serde(borrow)]
        pub keywords: Option<Str<'a>>,
        #[serde(borrow)]
        pub publisher: Option<Publisher<'a>>,
        #[serde(borrow)]
        pub content: Option<Content<'a>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Publisher<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub domain: Option<Str<'a>>,
        #[serde(borrow)]
        pub cat: Option<Vec<Str<'a>>>,
        pub cattax: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Content<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub title: Option<Str<'a>>,
        #[serde(borrow)]
        pub series: Option<Str<'a>>,
        #[serde(borrow)]
        pub genre: Option<Str<'a>>,
        #[serde(borrow)]
        pub cat: Option<Vec<Str<'a>>>,
        pub cattax: Option<i32>,
        #[serde(borrow)]
        pub language: Option<Str<'a>>,
        #[serde(borrow)]
        pub langb: Option<Str<'a>>,
        #[serde(borrow)]
        pub keywords: Option<Str<'a>>,
        pub livestream: Option<i32>,
        pub len: Option<u32>,
        #[serde(borrow)]
        pub contentrating: Option<Str<'a>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Device<'a> {
        #[serde(borrow)]
        pub ua: Option<Str<'a>>,
        #[serde(borrow)]
        pub sua: Option<UserAgent<'a>>,
        #[serde(borrow)]
        pub ip: Option<Str<'a>>,
        #[serde(borrow)]
        pub ipv6: Option<Str<'a>>,
        #[serde(borrow)]
        pub geo: Option<Geo<'a>>,
        pub devicetype: Option<i32>,
        #[serde(borrow)]
        pub make: Option<Str<'a>>,
        #[serde(borrow)]
        pub model: Option<Str<'a>>,
        #[serde(borrow)]
        pub os: Option<Str<'a>>,
        #[serde(borrow)]
        pub osv: Option<Str<'a>>,
        #[serde(borrow)]
        pub hwv: Option<Str<'a>>,
        pub w: Option<u32>,
        pub h: Option<u32>,
        pub ppi: Option<u32>,
        pub pxratio: Option<f64>,
        #[serde(borrow)]
        pub language: Option<Str<'a>>,
        #[serde(borrow)]
        pub langb: Option<Str<'a>>,
        #[serde(borrow)]
        pub carrier: Option<Str<'a>>,
        #[serde(borrow)]
        pub mccmnc: Option<Str<'a>>,
        pub connectiontype: Option<i32>,
        #[serde(borrow)]
        pub ifa: Option<Str<'a>>,
        pub lmt: Option<i32>,
        pub dnt: Option<i32>,
        pub js: Option<i32>,
        pub geofetch: Option<i32>,
    }
}

view_object! {
    /// Structured user agent (`device.sua`, 2.6): the client-hints view of the browser.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct UserAgent<'a> {
        #[serde(borrow)]
        pub browsers: Option<Vec<BrandVersion<'a>>>,
        #[serde(borrow)]
        pub platform: Option<BrandVersion<'a>>,
        pub mobile: Option<i32>,
        #[serde(borrow)]
        pub architecture: Option<Str<'a>>,
        #[serde(borrow)]
        pub bitness: Option<Str<'a>>,
        #[serde(borrow)]
        pub model: Option<Str<'a>>,
        pub source: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct BrandVersion<'a> {
        #[serde(borrow)]
        pub brand: Option<Str<'a>>,
        #[serde(borrow)]
        pub version: Option<Vec<Str<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Geo<'a> {
        pub lat: Option<f64>,
        pub lon: Option<f64>,
        pub kind as "type": Option<i32>,
        pub accuracy: Option<u32>,
        pub lastfix: Option<u32>,
        pub ipservice: Option<i32>,
        #[serde(borrow)]
        pub country: Option<Str<'a>>,
        #[serde(borrow)]
        pub region: Option<Str<'a>>,
        #[serde(borrow)]
        pub metro: Option<Str<'a>>,
        #[serde(borrow)]
        pub city: Option<Str<'a>>,
        #[serde(borrow)]
        pub zip: Option<Str<'a>>,
        pub utcoffset: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct User<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub buyeruid: Option<Str<'a>>,
        pub yob: Option<i32>,
        #[serde(borrow)]
        pub gender: Option<Str<'a>>,
        #[serde(borrow)]
        pub keywords: Option<Str<'a>>,
        #[serde(borrow)]
        pub geo: Option<Geo<'a>>,
        #[serde(borrow)]
        pub data: Option<Vec<Data<'a>>>,
        #[serde(borrow)]
        pub eids: Option<Vec<Eid<'a>>>,
        #[serde(borrow)]
        pub consent: Option<Str<'a>>,
        #[serde(borrow, default)]
        pub ext: Lenient<UserExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 (and Prebid) put `consent` and `eids`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct UserExt<'a> {
        #[serde(borrow)]
        pub consent: Option<Str<'a>>,
        #[serde(borrow)]
        pub eids: Option<Vec<Eid<'a>>>,
    }
}

view_object! {
    /// A data provider's segments for the user (`user.data[]`).
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Data<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub segment: Option<Vec<Segment<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Segment<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub value: Option<Str<'a>>,
    }
}

view_object! {
    /// An extended identifier (`user.eids[]`): one identity provider's ids for the user.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Eid<'a> {
        #[serde(borrow)]
        pub source: Option<Str<'a>>,
        #[serde(borrow)]
        pub uids: Option<Vec<Uid<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Uid<'a> {
        #[serde(borrow)]
        pub id: Option<Str<'a>>,
        pub atype: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Regs<'a> {
        pub coppa: Option<i32>,
        pub gdpr: Option<i32>,
        #[serde(borrow)]
        pub us_privacy: Option<Str<'a>>,
        #[serde(borrow)]
        pub gpp: Option<Str<'a>>,
        pub gpp_sid: Option<Vec<i32>>,
        #[serde(borrow, default)]
        pub ext: Lenient<RegsExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 put `gdpr` and `us_privacy`.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct RegsExt<'a> {
        pub gdpr: Option<i32>,
        #[serde(borrow)]
        pub us_privacy: Option<Str<'a>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Source<'a> {
        pub fd: Option<i32>,
        #[serde(borrow)]
        pub tid: Option<Str<'a>>,
        #[serde(borrow)]
        pub pchain: Option<Str<'a>>,
        #[serde(borrow)]
        pub schain: Option<SupplyChain<'a>>,
        #[serde(borrow, default)]
        pub ext: Lenient<SourceExt<'a>>,
    }
}

view_object! {
    /// Where OpenRTB 2.5 put the supply chain.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct SourceExt<'a> {
        #[serde(borrow)]
        pub schain: Option<SupplyChain<'a>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct SupplyChain<'a> {
        pub complete: Option<i32>,
        #[serde(borrow)]
        pub ver: Option<Str<'a>>,
        #[serde(borrow)]
        pub nodes: Option<Vec<SupplyChainNode<'a>>>,
    }
}

view_object! {
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct SupplyChainNode<'a> {
        #[serde(borrow)]
        pub asi: Option<Str<'a>>,
        #[serde(borrow)]
        pub sid: Option<Str<'a>>,
        #[serde(borrow)]
        pub rid: Option<Str<'a>>,
        #[serde(borrow)]
        pub name: Option<Str<'a>>,
        #[serde(borrow)]
        pub domain: Option<Str<'a>>,
        pub hp: Option<i32>,
    }
}
