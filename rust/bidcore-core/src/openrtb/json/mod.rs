//! bidcore's own JSON reading and writing for the request view.
//!
//! [`view_object!`] declares a view struct once and derives from that one field list: the struct
//! itself, its decoder (a `match` on keys, unknown ones skipped, duplicates refused) and its JSON
//! writer, so the three can never disagree about which fields exist.

mod decode;
mod error;
mod reader;
mod write;

pub use decode::{Decode, DecodeInPlace, Lenient, Raw};
pub use error::{DecodeError, Result};
pub use reader::{Reader, DEPTH_CAP};
pub use write::{MemberWriter, ViewJson};

/// Declares a view object. Field syntax: `pub name: Type,` or `pub name as "json key": Type,`;
/// every field type is an `Option<_>` or a [`Lenient<_>`] (absent by default). Structs that hold
/// strings, lists or nested objects take the lifetime of the body and the arena.
macro_rules! view_object {
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };

    (@decode $out:ident, $reader:ident; $( $field:ident $(as $key:literal)? ),*) => {{
        // One bit per field, numbered by this enum, records which keys the object has used:
        // a key given twice is refused even when its first value was `null`.
        #[allow(non_camel_case_types, dead_code)]
        enum Bit { $( $field ),* }
        const _: () = assert!([$( Bit::$field ),*].len() <= 64, "a view object has at most 64 fields");
        let out = $out;
        let mut seen = 0u64;
        $reader.object(|reader, key| {
            match key {
                $( view_object!(@key $field $($key)?) => {
                    let bit = 1u64 << (Bit::$field as u32);
                    if seen & bit != 0 {
                        return Err(reader.duplicate());
                    }
                    seen |= bit;
                    out.$field = $crate::openrtb::json::Decode::decode(reader)?;
                } )*
                _ => {
                    reader.skip()?;
                }
            }
            Ok(())
        })
    }};

    (@write $self:ident, $out:ident; $( $field:ident $(as $key:literal)? ),*) => {{
        let mut writer = $crate::openrtb::json::MemberWriter::open($out);
        $( writer.member(view_object!(@key $field $($key)?), &$self.$field); )*
        writer.close();
    }};

    // A struct borrowing from the body and the arena.
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> {
            $( $(#[$fmeta:meta])* pub $field:ident $(as $key:literal)? : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name<$lt> {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl<$lt> Default for $name<$lt> {
            fn default() -> Self {
                Self { $( $field: Default::default(), )* }
            }
        }

        impl<$lt> $crate::openrtb::json::DecodeInPlace<$lt> for $name<$lt> {
            fn decode_in_place(&mut self, reader: &mut $crate::openrtb::json::Reader<$lt>) -> $crate::openrtb::json::Result<()> {
                view_object!(@decode self, reader; $( $field $(as $key)? ),*)
            }
        }

        impl<$lt> $crate::openrtb::json::Decode<$lt> for $name<$lt> {
            fn decode(reader: &mut $crate::openrtb::json::Reader<$lt>) -> $crate::openrtb::json::Result<Self> {
                let mut out = Self::default();
                $crate::openrtb::json::DecodeInPlace::decode_in_place(&mut out, reader)?;
                Ok(out)
            }

            fn decode_push(reader: &mut $crate::openrtb::json::Reader<$lt>, items: &mut bumpalo::collections::Vec<$lt, Self>) -> $crate::openrtb::json::Result<()> {
                items.push(Self::default());
                match items.last_mut() {
                    Some(last) => $crate::openrtb::json::DecodeInPlace::decode_in_place(last, reader),
                    None => Ok(()),
                }
            }
        }

        impl<$lt> $crate::openrtb::json::ViewJson for $name<$lt> {
            fn write_json(&self, out: &mut Vec<u8>) {
                view_object!(@write self, out; $( $field $(as $key)? ),*)
            }
        }
    };

    // A struct of numbers only.
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident $(as $key:literal)? : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl<'a> $crate::openrtb::json::DecodeInPlace<'a> for $name {
            fn decode_in_place(&mut self, reader: &mut $crate::openrtb::json::Reader<'a>) -> $crate::openrtb::json::Result<()> {
                view_object!(@decode self, reader; $( $field $(as $key)? ),*)
            }
        }

        impl<'a> $crate::openrtb::json::Decode<'a> for $name {
            fn decode(reader: &mut $crate::openrtb::json::Reader<'a>) -> $crate::openrtb::json::Result<Self> {
                let mut out = Self::default();
                $crate::openrtb::json::DecodeInPlace::decode_in_place(&mut out, reader)?;
                Ok(out)
            }

            fn decode_push(reader: &mut $crate::openrtb::json::Reader<'a>, items: &mut bumpalo::collections::Vec<'a, Self>) -> $crate::openrtb::json::Result<()> {
                items.push(Self::default());
                match items.last_mut() {
                    Some(last) => $crate::openrtb::json::DecodeInPlace::decode_in_place(last, reader),
                    None => Ok(()),
                }
            }
        }

        impl $crate::openrtb::json::ViewJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) {
                view_object!(@write self, out; $( $field $(as $key)? ),*)
            }
        }
    };
}

pub(crate) use view_object;
