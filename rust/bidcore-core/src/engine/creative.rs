//! Creatives: whether one fits an imp and is allowed by the request, and the templates of its
//! markup and notice URLs.

use super::plan::CreativePlan;
use super::reason::Reason;
use crate::openrtb::request::Imp;
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
    Text(String),
    Value(Placeholder),
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
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
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
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    pub fn has(&self, placeholder: Placeholder) -> bool {
        self.0.contains(&Piece::Value(placeholder))
    }

    /// Appends the template to `out` with each placeholder's value percent-encoded.
    pub fn fill<'v>(&self, values: &dyn Fn(Placeholder) -> &'v str, out: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(p) => percent_encode(values(*p), out),
            }
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
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

    fn fill(template: &str) -> String {
        let t = Template::parse(template).unwrap();
        let mut out = String::new();
        t.fill(
            &|p| match p {
                Placeholder::Campaign => "c 1/é",
                Placeholder::PriceBucket => "1.20",
                _ => "x",
            },
            &mut out,
        );
        out
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
