//! tmp
#![forbid(unsafe_code)]
mod encoding;
mod frame;
mod error;
pub use encoding::Encoding;
pub use error::{Error, Result};
