//! The Native Ads 1.2 request an imp carries in `native.request`, read to check it.
//!
//! OpenRTB puts the Native request in a JSON string (some exchanges send the object itself); it
//! is read here with the same reader and limits as the bid request, only for imps that have one.

use bumpalo::Bump;

use super::error::{RequestError, Rule};
use super::json::{view_object, Decode, DecodeError, Raw, Reader};
use super::limits::Limits;
use super::path::push_key;
use super::text::Str;

view_object! {
    /// A Native 1.2 request document. Native 1.0 and 1.1 wrapped it in `{"native": {...}}`;
    /// `native` holds that inner document when present.
    #[derive(Debug, PartialEq)]
    pub struct NativeRequest<'a> {
        pub native: Option<&'a mut NativeRequest<'a>>,
        pub ver: Option<Str<'a>>,
        pub context: Option<i32>,
        pub contextsubtype: Option<i32>,
        pub plcmttype: Option<i32>,
        pub plcmtcnt: Option<u32>,
        pub seq: Option<u32>,
        pub assets: Option<&'a mut [NativeAsset<'a>]>,
        pub aurlsupport: Option<i32>,
        pub durlsupport: Option<i32>,
        pub eventtrackers: Option<&'a mut [EventTracker<'a>]>,
        pub privacy: Option<i32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct NativeAsset<'a> {
        pub id: Option<i32>,
        pub required: Option<i32>,
        pub title: Option<NativeTitle>,
        pub img: Option<&'a mut NativeImage<'a>>,
        pub video: Option<&'a mut NativeVideo<'a>>,
        pub data: Option<NativeData>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct NativeTitle {
        pub len: Option<u32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct NativeImage<'a> {
        pub kind as "type": Option<i32>,
        pub w: Option<u32>,
        pub wmin: Option<u32>,
        pub h: Option<u32>,
        pub hmin: Option<u32>,
        pub mimes: Option<&'a mut [Str<'a>]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct NativeVideo<'a> {
        pub mimes: Option<&'a mut [Str<'a>]>,
        pub minduration: Option<u32>,
        pub maxduration: Option<u32>,
        pub protocols: Option<&'a mut [i32]>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct NativeData {
        pub kind as "type": Option<i32>,
        pub len: Option<u32>,
    }
}

view_object! {
    #[derive(Debug, PartialEq)]
    pub struct EventTracker<'a> {
        pub event: Option<i32>,
        pub methods: Option<&'a mut [i32]>,
    }
}

/// Reads and checks the Native request of `imp[i].native.request` (`raw` is its JSON: a string
/// holding the document, or the document itself). `path` names it in errors.
pub fn check_native_request<'a>(
    raw: &Raw<'a>,
    limits: &Limits,
    path: &str,
    arena: &'a Bump,
) -> Result<(), RequestError> {
    let text = raw.0.trim_start();
    // A string: read it as a JSON string first (unescaped into the arena), then read what it holds.
    let document: &'a str = if text.starts_with('"') {
        let mut reader = Reader::new(text, limits, arena);
        reader.string().map_err(|e| in_document(e, path))?.as_str()
    } else {
        text
    };
    let mut reader = Reader::new(document, limits, arena);
    let request = NativeRequest::decode(&mut reader)
        .and_then(|request| reader.finish().map(|()| request))
        .map_err(|e| in_document(e, path))?;
    match request.native.as_deref() {
        Some(inner) => validate(inner, &format!("{path}.native")),
        None => validate(&request, path),
    }
}

#[cold]
fn in_document(err: Box<DecodeError>, path: &str) -> RequestError {
    let mut inner = err.into_request_error();
    let mut full = path.to_owned();
    if !inner.path.is_empty() {
        if inner.path.starts_with('[') {
            full.push_str(&inner.path);
        } else {
            push_key(&mut full, &inner.path);
        }
    }
    inner.path = full;
    inner
}

/// The first asset (in document order) whose id an earlier asset already has, with the index of
/// that earlier asset. Real documents have a handful of assets, where comparing pairs is fastest;
/// nothing but the body size limits the count, so larger documents sort the ids instead of
/// letting the pairs grow quadratically.
fn first_duplicate_id(assets: &[NativeAsset<'_>]) -> Option<(usize, usize)> {
    const PAIRWISE_UP_TO: usize = 32;
    if assets.len() <= PAIRWISE_UP_TO {
        return assets.iter().enumerate().skip(1).find_map(|(k, asset)| {
            let id = asset.id?;
            assets[..k].iter().position(|other| other.id == Some(id)).map(|first| (k, first))
        });
    }
    let mut ids: Vec<(i32, usize)> = assets.iter().enumerate().filter_map(|(k, a)| a.id.map(|id| (id, k))).collect();
    ids.sort_unstable();
    // Within a run of equal ids the indices ascend: its first two are (earliest, first repeat).
    ids.windows(2)
        .enumerate()
        .filter(|&(i, pair)| pair[0].0 == pair[1].0 && (i == 0 || ids[i - 1].0 != pair[0].0))
        .map(|(_, pair)| (pair[1].1, pair[0].1))
        .min()
}

/// Native 1.2's requirements: assets present, each with a unique id and exactly one of title,
/// img, video, data, and the fields each of those requires.
fn validate(request: &NativeRequest<'_>, path: &str) -> Result<(), RequestError> {
    let assets = match request.assets.as_deref() {
        Some(assets) if !assets.is_empty() => assets,
        _ => return Err(fail(Rule::Required, format!("{path}.assets"), "a native request needs assets")),
    };
    let duplicate = first_duplicate_id(assets);
    for (k, asset) in assets.iter().enumerate() {
        let at = || format!("{path}.assets[{k}]");
        let Some(id) = asset.id else {
            return Err(fail(Rule::Required, format!("{}.id", at()), "every asset needs an id"));
        };
        if let Some((_, first)) = duplicate.filter(|&(repeat, _)| repeat == k) {
            return Err(fail(
                Rule::DuplicateAsset,
                format!("{}.id", at()),
                &format!("asset id {id} is already used by assets[{first}]"),
            ));
        }
        let kinds = usize::from(asset.title.is_some())
            + usize::from(asset.img.is_some())
            + usize::from(asset.video.is_some())
            + usize::from(asset.data.is_some());
        if kinds != 1 {
            return Err(fail(Rule::NativeAsset, at(), "an asset carries exactly one of title, img, video, data"));
        }
        if let Some(title) = &asset.title {
            if title.len.is_none() {
                return Err(fail(Rule::Required, format!("{}.title.len", at()), "a title asset needs len"));
            }
        }
        if let Some(video) = &asset.video {
            if video.mimes.as_ref().is_none_or(|list| list.is_empty()) {
                return Err(fail(Rule::Required, format!("{}.video.mimes", at()), "a video asset needs mimes"));
            }
            if video.minduration.is_none() {
                return Err(fail(
                    Rule::Required,
                    format!("{}.video.minduration", at()),
                    "a video asset needs minduration",
                ));
            }
            if video.maxduration.is_none() {
                return Err(fail(
                    Rule::Required,
                    format!("{}.video.maxduration", at()),
                    "a video asset needs maxduration",
                ));
            }
            if video.protocols.as_ref().is_none_or(|list| list.is_empty()) {
                return Err(fail(Rule::Required, format!("{}.video.protocols", at()), "a video asset needs protocols"));
            }
        }
        if let Some(data) = &asset.data {
            if data.kind.is_none() {
                return Err(fail(Rule::Required, format!("{}.data.type", at()), "a data asset needs a type"));
            }
        }
    }
    for (k, tracker) in request.eventtrackers.iter().flat_map(|trackers| trackers.iter()).enumerate() {
        if tracker.event.is_none() {
            return Err(fail(
                Rule::Required,
                format!("{path}.eventtrackers[{k}].event"),
                "an event tracker needs event",
            ));
        }
        if tracker.methods.as_ref().is_none_or(|list| list.is_empty()) {
            return Err(fail(
                Rule::Required,
                format!("{path}.eventtrackers[{k}].methods"),
                "an event tracker needs methods",
            ));
        }
    }
    Ok(())
}

#[cold]
fn fail(rule: Rule, path: String, detail: &str) -> RequestError {
    RequestError::new(rule, path, detail.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(document: &str) -> Result<(), (Rule, String)> {
        let arena = Bump::new();
        check_native_request(&Raw(document), &Limits::default(), "n", &arena).map_err(|e| (e.rule, e.path))
    }

    fn assets(ids: &[i32]) -> String {
        let assets: Vec<String> = ids.iter().map(|id| format!(r#"{{"id":{id},"title":{{"len":25}}}}"#)).collect();
        format!(r#"{{"assets":[{}]}}"#, assets.join(","))
    }

    #[test]
    fn reads_a_document_held_in_a_string_or_given_as_an_object() {
        let document = assets(&[1, 2]);
        assert_eq!(check(&document), Ok(()));
        let as_string = serde_json::to_string(&document).unwrap();
        assert_eq!(check(&as_string), Ok(()));
        assert_eq!(check(&format!(r#"{{"native":{document}}}"#)), Ok(()));
    }

    #[test]
    fn finds_the_first_repeated_asset_id_in_small_and_large_documents() {
        assert_eq!(check(&assets(&[1, 2, 1])), Err((Rule::DuplicateAsset, "n.assets[2].id".into())));
        let mut many: Vec<i32> = (0..5000).collect();
        many.push(4321);
        many.push(7);
        assert_eq!(check(&assets(&many)), Err((Rule::DuplicateAsset, "n.assets[5000].id".into())));
        let unique: Vec<i32> = (0..5000).rev().collect();
        assert_eq!(check(&assets(&unique)), Ok(()));
    }

    #[test]
    fn names_each_missing_requirement() {
        assert_eq!(check("{}"), Err((Rule::Required, "n.assets".into())));
        assert_eq!(check(r#"{"assets":[{"title":{"len":1}}]}"#), Err((Rule::Required, "n.assets[0].id".into())));
        assert_eq!(check(r#"{"assets":[{"id":1}]}"#), Err((Rule::NativeAsset, "n.assets[0]".into())));
        assert_eq!(
            check(r#"{"assets":[{"id":1,"video":{"mimes":["video/mp4"],"minduration":1,"maxduration":30}}]}"#),
            Err((Rule::Required, "n.assets[0].video.protocols".into()))
        );
        assert_eq!(check(r#"{"assets":[{"id":1,"img":{"h":-1}}]}"#), Err((Rule::Type, "n.assets[0].img.h".into())));
    }
}
