//! OpenRTB 2.5/2.6: the bid request read into a borrowed view, and the bid response written.

#[cfg(feature = "serde-backends")]
pub mod backend;
mod counters;
mod error;
pub mod json;
mod lenient;
mod limits;
pub mod native;
mod normalize;
mod parse;
mod path;
pub mod raw_json;
pub mod request;
pub mod response;
mod text;
mod validate;

#[cfg(feature = "serde-backends")]
pub use backend::parse_with;
pub use counters::ParseCounters;
pub use error::{RequestError, Rule};
pub use limits::{check_body, Limits};
pub use normalize::{DEFAULT_AUCTION_TYPE, DEFAULT_CURRENCY};
pub use parse::view_to_json;
pub use parse::{Request, RequestParser};
pub use path::display as display_path;
pub use text::Str;
