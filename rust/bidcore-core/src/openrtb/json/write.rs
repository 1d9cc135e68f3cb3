//! The view written back as JSON: what `inspect_request` shows and the differential tests
//! compare. Absent fields are left out; kept `ext` values are written exactly as they arrived.

use crate::openrtb::response::write_json_string;
use crate::openrtb::Str;

use super::decode::{Lenient, Raw};

/// A value of the view that can write itself as JSON.
pub trait ViewJson {
    fn write_json(&self, out: &mut Vec<u8>);

    /// Whether the field is left out of its object.
    fn is_absent(&self) -> bool {
        false
    }
}

impl ViewJson for i32 {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

impl ViewJson for u32 {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

/// Shortest text that reads back as the same `f64` (the parser never lets a non-finite one in).
impl ViewJson for f64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(ryu::Buffer::new().format_finite(*self).as_bytes());
    }
}

impl ViewJson for Str<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_string(self, out);
    }
}

impl<T: ViewJson> ViewJson for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

impl<T: ViewJson> ViewJson for &mut [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: ViewJson> ViewJson for &mut T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

/// Kept `ext` values and native requests: their text, verbatim.
impl ViewJson for Raw<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

/// The 2.5 `ext` twins are read and moved to 2.6 fields by normalization, never shown.
impl<T> ViewJson for Lenient<T> {
    fn write_json(&self, _out: &mut Vec<u8>) {}

    fn is_absent(&self) -> bool {
        true
    }
}

/// Writes an object's members in order, skipping absent ones.
pub struct MemberWriter<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> MemberWriter<'o> {
    pub fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        MemberWriter { out, empty: true }
    }

    pub fn member(&mut self, key: &str, value: &impl ViewJson) {
        if value.is_absent() {
            return;
        }
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_json_string(key, self.out);
        self.out.push(b':');
        value.write_json(self.out);
    }

    pub fn close(self) {
        self.out.push(b'}');
    }
}
