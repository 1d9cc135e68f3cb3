//! OpenRTB 2.5/2.6: the bid request read into a borrowed view, and the bid response written.

mod counters;
mod error;
pub mod json;
mod limits;
pub mod native;
mod normalize;
mod parse;
mod path;
pub mod request;
pub mod response;
mod text;
mod validate;

pub use counters::ParseCounters;
pub use error::{RequestError, Rule};
pub use limits::Limits;
pub use normalize::{DEFAULT_AUCTION_TYPE, DEFAULT_CURRENCY};
pub use parse::view_to_json;
pub use parse::{Request, RequestParser};
pub use path::display as display_path;
pub use text::Str;
