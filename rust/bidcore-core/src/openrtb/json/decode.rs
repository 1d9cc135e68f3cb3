//! How each kind of field of the view is read from JSON.
//!
//! Lists and nested objects are allocated in the parse's arena (`bumpalo`): a request view is a
//! handful of small objects and lists, and one heap allocation and free for each cost 11% of
//! the parse on the corpus (14% on median-sized requests), measured by swapping the allocator
//! for a bump one under callgrind. An arena also makes dropping a view free.

use bumpalo::collections::Vec as ArenaVec;

use super::error::Result;
use super::reader::Reader;
use crate::openrtb::Str;

/// A value of the view that can be read from a [`Reader`].
pub trait Decode<'a>: Sized {
    fn decode(reader: &mut Reader<'a>) -> Result<Self>;

    /// Reads one more element of an array into `items`. View objects override it to fill the
    /// new slot in place instead of building the element and moving it in.
    #[inline]
    fn decode_push(reader: &mut Reader<'a>, items: &mut ArenaVec<'a, Self>) -> Result<()> {
        items.push(Self::decode(reader)?);
        Ok(())
    }
}

/// A view object that can fill an existing (default) value, so a slot in the arena or in an
/// array can be filled where it is.
pub trait DecodeInPlace<'a> {
    fn decode_in_place(&mut self, reader: &mut Reader<'a>) -> Result<()>;
}

impl<'a> Decode<'a> for i32 {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        reader.i32()
    }
}

/// Sizes, durations, bitrates, counts: OpenRTB integers that cannot be negative. Capped at
/// `i32::MAX` like every OpenRTB integer, so the Python model's bounds are the same.
impl<'a> Decode<'a> for u32 {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        let value = reader.i32()?;
        u32::try_from(value).map_err(|_| negative(value))
    }
}

#[cold]
fn negative(value: i32) -> Box<super::DecodeError> {
    super::DecodeError::new(crate::openrtb::Rule::Type, format!("expected a non-negative integer, found {value}"))
}

impl<'a> Decode<'a> for f64 {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        reader.f64()
    }
}

impl<'a> Decode<'a> for Str<'a> {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        reader.string()
    }
}

/// `null` reads as absent, like a missing field.
impl<'a, T: Decode<'a>> Decode<'a> for Option<T> {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        if reader.null()? {
            return Ok(None);
        }
        T::decode(reader).map(Some)
    }
}

/// A JSON array, in the arena.
impl<'a, T: Decode<'a>> Decode<'a> for &'a mut [T] {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        let mut items = ArenaVec::new_in(reader.arena());
        reader.array(|reader| T::decode_push(reader, &mut items))?;
        Ok(items.into_bump_slice_mut())
    }
}

/// A nested object, decoded straight into its slot in the arena.
impl<'a, T: DecodeInPlace<'a> + Default> Decode<'a> for &'a mut T {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        let slot = reader.arena().alloc_with(T::default);
        slot.decode_in_place(reader)?;
        Ok(slot)
    }
}

/// A JSON value kept as the text it was written as, a slice of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Raw<'a>(pub &'a str);

impl<'a> Decode<'a> for Raw<'a> {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        reader.skip().map(Raw)
    }
}

/// An extension object the bidder only peeks into: read when it is an object, ignored (and
/// still checked to be JSON) when it is anything else. OpenRTB says `ext` is an object, but an
/// exchange that sends a string there has sent nothing the bidder knows, and the request stays
/// valid, as it does for Go bidders whose `ext` is a `json.RawMessage`.
#[derive(Debug, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<T> Lenient<T> {
    pub fn take(&mut self) -> Option<T> {
        self.0.take()
    }
}

impl<'a, T: Decode<'a>> Decode<'a> for Lenient<T> {
    #[inline]
    fn decode(reader: &mut Reader<'a>) -> Result<Self> {
        if reader.peek()? == b'{' {
            return T::decode(reader).map(|value| Lenient(Some(value)));
        }
        reader.skip()?;
        Ok(Lenient(None))
    }
}
