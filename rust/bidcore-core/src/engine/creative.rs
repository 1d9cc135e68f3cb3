//! Creatives: whether one fits an imp and is allowed by the request, and the templates of its
//! markup and notice URLs.

use super::plan::CreativePlan;
use super::reason::Reason;
use crate::openrtb::request::Imp;
use crate::openrtb::response::json_string_body;
use crate::openrtb::{Request, Str};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Banner,
    Video,
    Audio,
    Native,
}

impl Media {
    /// How many media there are (arrays indexed by `media as usize`).
    pub const COUNT: usize = 4;

    pub fn parse(name: &str) -> Option<Media> {
        Some(match name {
            "banner" => Media::Banner,
            "video" => Media::Video,
            "audio" => Media::Audio,
            "native" => Media::Native,
            _ => return None,
        })
    }

    /// OpenRTB 2.6's `mtype`.
    pub fn mtype(self) -> i32 {
        self as i32 + 1
    }
}

/// bidcore's placeholders in templates; OpenRTB's `${...}` macros are left for the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Campaign,
    Creative,
    Imp,
    Request,
    Arm,
    PriceBucket,
    /// The bid's ledger token, which its notices bring back (`docs/budget.md`).
    Bid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text, escaped for a JSON string once, at load: templates are only ever written
    /// into the response's JSON.
    Json(String),
    Value(Placeholder),
}

impl Piece {
    fn text(text: &str) -> Piece {
        Piece::Json(json_string_body(text))
    }
}

/// A template cut at its placeholders once, at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            literal.push_str(before);
            if before.ends_with('$') {
                // An OpenRTB macro (`${AUCTION_PRICE}`): the exchange's, kept to its `}`.
                let end = after.find('}').map_or(after.len(), |e| e + 1);
                literal.push_str(&after[..end]);
                rest = &after[end..];
                continue;
            }
            let name_end = after.find('}');
            let placeholder = name_end.and_then(|end| {
                let name = &after[1..end];
                let found = match name {
                    "campaign" => Placeholder::Campaign,
                    "creative" => Placeholder::Creative,
                    "imp" => Placeholder::Imp,
                    "request" => Placeholder::Request,
                    "arm" => Placeholder::Arm,
                    "price_bucket" => Placeholder::PriceBucket,
                    "bid" => Placeholder::Bid,
                    _ if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
                        return Some(Err(format!("unknown placeholder {{{name}}} in template {text:?}")))
                    }
                    _ => return None,
                };
                Some(Ok((found, end)))
            });
            match placeholder {
                Some(Err(message)) => return Err(message),
                Some(Ok((found, end))) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::text(&std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Value(found));
                    rest = &after[end + 1..];
                }
                None => {
                    // A brace that is not a placeholder (markup, `${AUCTION_PRICE}`): text.
                    literal.push('{');
                    rest = &after[1..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::text(&literal));
        }
        Ok(Template(pieces))
    }

    pub fn has(&self, placeholder: Placeholder) -> bool {
        self.0.contains(&Piece::Value(placeholder))
    }

    /// Appends the template, each placeholder's value percent-encoded, as a JSON string
    /// literal, quotes included. The literal text was escaped at load, and a percent-encoded
    /// value is unreserved characters and `%` only, which JSON leaves as they are: the bytes
    /// are those of `write_json_string` on the filled text.
    pub fn fill_json<'v>(&self, values: &dyn Fn(Placeholder) -> &'v str, out: &mut String) {
        out.push('"');
        for piece in &self.0 {
            match piece {
                Piece::Json(json) => out.push_str(json),
                Piece::Value(p) => percent_encode(values(*p), out),
            }
        }
        out.push('"');
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Runs of unreserved characters are copied whole (ids usually are one run).
    let mut start = 0;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            continue;
        }
        if start < i {
            // A run of ASCII: both ends are on char boundaries (a multi-byte character's
            // bytes are all encoded, so a run never starts inside one).
            out.push_str(&value[start..i]);
        }
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

#[derive(Debug, Clone)]
pub struct Creative {
    pub id: String,
    pub media: Media,
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub duration: Option<u32>,
    pub mime: Option<String>,
    pub adomain: Vec<String>,
    pub cat: Vec<String>,
    pub attr: Vec<i32>,
    pub bundle: Option<String>,
    pub markup: Option<Template>,
    pub nurl: Option<Template>,
    pub burl: Option<Template>,
    pub lurl: Option<Template>,
    /// Markup and notice URLs load nothing over plain http: allowed on `imp.secure = 1`.
    pub secure: bool,
}

fn template(text: &Option<String>) -> Result<Option<Template>, String> {
    text.as_deref().map(Template::parse).transpose()
}

impl Creative {
    /// `defaults`: the bidder's notice templates, used where the creative has none.
    /// Whether the markup or a notice URL has `{arm}`.
    pub fn uses_arm(&self) -> bool {
        [&self.markup, &self.nurl, &self.burl, &self.lurl].into_iter().flatten().any(|t| t.has(Placeholder::Arm))
    }

    pub fn build(plan: &CreativePlan, defaults: [&Option<String>; 3]) -> Result<Creative, String> {
        let media =
            Media::parse(&plan.media).ok_or_else(|| format!("creative {}: unknown media {:?}", plan.id, plan.media))?;
        if plan.adomain.is_empty() {
            return Err(format!("creative {}: adomain must not be empty", plan.id));
        }
        let pick = |own: &Option<String>, default: &Option<String>| own.clone().or_else(|| default.clone());
        let urls = [pick(&plan.nurl, defaults[0]), pick(&plan.burl, defaults[1]), pick(&plan.lurl, defaults[2])];
        let insecure = |t: &Option<String>| t.as_deref().is_some_and(|t| t.contains("http://"));
        let secure = !insecure(&plan.markup) && !urls.iter().any(insecure);
        let [nurl, burl, lurl] = urls;
        Ok(Creative {
            id: plan.id.clone(),
            media,
            w: plan.w,
            h: plan.h,
            duration: plan.duration,
            mime: plan.mime.clone(),
            adomain: plan.adomain.clone(),
            cat: plan.cat.clone(),
            attr: plan.attr.clone(),
            bundle: plan.bundle.clone(),
            markup: template(&plan.markup)?,
            nurl: template(&nurl)?,
            burl: template(&burl)?,
            lurl: template(&lurl)?,
            secure,
        })
    }

    /// `Ok` when the creative fits `imp` and the request allows it, else the first rule it
    /// breaks (in `docs/engine.md`'s order).
    pub fn fit(&self, request: &Request<'_>, imp: &Imp<'_>) -> Result<(), Reason> {
        let battr = match self.media {
            Media::Banner => {
                let Some(banner) = imp.banner.as_deref() else { return Err(Reason::Media) };
                let (w, h) = (self.w, self.h);
                let direct = banner.w.is_some() && banner.w == w && banner.h == h;
                let formats = banner.format.as_deref().unwrap_or(&[]);
                if !direct && !formats.iter().any(|f| f.w.is_some() && f.w == w && f.h == h) {
                    return Err(Reason::Size);
                }
                banner.battr.as_deref()
            }
            Media::Video => {
                let Some(video) = imp.video.as_deref() else { return Err(Reason::Media) };
                self.timed(video.minduration, video.maxduration, video.mimes.as_deref())?;
                video.battr.as_deref()
            }
            Media::Audio => {
                let Some(audio) = imp.audio.as_deref() else { return Err(Reason::Media) };
                self.timed(audio.minduration, audio.maxduration, audio.mimes.as_deref())?;
                audio.battr.as_deref()
            }
            Media::Native => {
                let Some(native) = imp.native.as_deref() else { return Err(Reason::Media) };
                native.battr.as_deref()
            }
        };
        if imp.secure == Some(1) && !self.secure {
            return Err(Reason::Secure);
        }
        let listed = |list: Option<&[Str<'_>]>, value: &str| list.unwrap_or(&[]).iter().any(|s| s.as_str() == value);
        if self.cat.iter().any(|c| listed(request.bcat.as_deref(), c)) {
            return Err(Reason::BlockedCat);
        }
        if self.adomain.iter().any(|d| listed(request.badv.as_deref(), d)) {
            return Err(Reason::BlockedAdomain);
        }
        if self.bundle.as_deref().is_some_and(|b| listed(request.bapp.as_deref(), b)) {
            return Err(Reason::BlockedApp);
        }
        if self.attr.iter().any(|a| battr.unwrap_or(&[]).contains(a)) {
            return Err(Reason::BlockedAttr);
        }
        Ok(())
    }

    fn timed(&self, min: Option<u32>, max: Option<u32>, mimes: Option<&[Str<'_>]>) -> Result<(), Reason> {
        let duration = self.duration.unwrap_or(0);
        let min = min.unwrap_or(0);
        let max = max.filter(|&m| m > 0).unwrap_or(u32::MAX);
        if duration < min || duration > max {
            return Err(Reason::Duration);
        }
        let mime = self.mime.as_deref().unwrap_or("");
        if !mimes.unwrap_or(&[]).iter().any(|m| m.eq_ignore_ascii_case(mime)) {
            return Err(Reason::Mime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_with(template: &str, value: &str) -> Option<String> {
        let t = Template::parse(template).ok()?;
        let mut out = String::new();
        t.fill_json(
            &|p| match p {
                Placeholder::Campaign => value,
                Placeholder::PriceBucket => "1.20",
                _ => "x",
            },
            &mut out,
        );
        Some(out)
    }

    /// The filled text (the JSON literal decoded).
    fn fill(template: &str) -> String {
        let json = fill_with(template, "c 1/é").unwrap();
        serde_json::from_str(&json).expect("a JSON string literal")
    }

    proptest::proptest! {
        /// Runs copied whole or byte by byte, the same encoding.
        #[test]
        fn percent_encoding_is_byte_by_byte(value in "\\PC{0,16}") {
            let mut expected = String::new();
            for &b in value.as_bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    expected.push(char::from(b));
                } else {
                    expected.push_str(&format!("%{b:02X}"));
                }
            }
            let mut out = String::new();
            percent_encode(&value, &mut out);
            proptest::prop_assert_eq!(out, expected);
        }

        /// The literal is a JSON string escaped exactly as `write_json_string` escapes its
        /// text: the bytes the response writer wrote when it escaped each filled template whole.
        #[test]
        fn json_fill_is_the_writers_escaping(
            template in "[a-z{}$\"\\\\<>/\n\t\u{1}\u{7f}é😀 ]{0,40}",
            value in "\\PC{0,12}",
        ) {
            for text in [template.as_str(), "{campaign}", "a\"{campaign}\"\n"] {
                let Some(json) = fill_with(text, &value) else { continue };
                let Ok(decoded) = serde_json::from_str::<String>(&json) else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("not a JSON string literal: {json}")));
                };
                let mut escaped = Vec::new();
                crate::openrtb::response::write_json_string(&decoded, &mut escaped);
                proptest::prop_assert_eq!(json.as_bytes(), &escaped[..]);
            }
        }
    }

    #[test]
    fn templates_fill_placeholders_and_keep_macros() {
        assert_eq!(
            fill("https://n.example/w?p=${AUCTION_PRICE}&c={campaign}&b={price_bucket}"),
            "https://n.example/w?p=${AUCTION_PRICE}&c=c%201%2F%C3%A9&b=1.20"
        );
        assert_eq!(fill("<i style=\"a{b:1}\">{}{imp}</i>"), "<i style=\"a{b:1}\">{}x</i>");
        assert!(Template::parse("{nope}").is_err());
        assert_eq!(fill("${campaign}{campaign}"), "${campaign}c%201%2F%C3%A9");
    }
}
