//! JSON text to values and back, as the link's codec uses it: serde_json
//! for the common case, Python's extensions where serde_json has none
//! (reading `NaN`, `Infinity` and `-Infinity`; writing `json.dumps`' own
//! bytes). Pure code, tested on strings and byte vectors.
//!
//! Why not a kept crate: none reads Python's grammar into serde types and
//! writes `json.dumps`' layout. json5 and serde_json5 accept all of JSON5
//! (comments, single quotes, hex, trailing commas), which Python refuses;
//! serde_json_lenient has no `NaN`; json-forensics rewrites the tokens to
//! 0, losing the value; sonic-rs refuses non-finite floats; jiter's serde
//! reader needs a newer Rust than this crate's minimum and gives a
//! `Value` the string `"NaN"`. And serde_json's own `Serializer` turns a
//! non-finite float into `null` before any `Formatter` sees it.

mod key;
mod non_finite;
mod python;
mod reader;
mod repr;
#[cfg(test)]
mod tests;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::json_style::JsonStyle;

/// `text` as `T`. serde_json reads it; only if serde_json refuses it,
/// `non_finite` is set, and the text holds `NaN`, `Infinity` or
/// `-Infinity` outside a string, is it read again with those taken as
/// floats. So a line without them costs what serde_json costs.
#[inline]
pub(crate) fn parse<T: DeserializeOwned>(
    text: &str,
    non_finite: bool,
) -> std::result::Result<T, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(e) if non_finite => non_finite::from_str(text).unwrap_or(Err(e)),
        Err(e) => Err(e),
    }
}

/// Appends `value` in `style` to `out`. On an error `out` may hold part
/// of the text.
#[inline]
pub(crate) fn write<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    style: JsonStyle,
) -> std::result::Result<(), serde_json::Error> {
    match style {
        JsonStyle::Compact => serde_json::to_writer(out, value),
        JsonStyle::Python => python::to_writer(out, value),
    }
}

/// `value` as the JSON text `write_json` sends in `style`, without the
/// terminator (and before the link's encoding turns it into bytes).
///
/// ```
/// use ts_tcpip::{json, JsonStyle};
/// let telemetry = serde_json::json!({"temperature": 21.5, "ok": true});
/// assert_eq!(
///     json::to_string(&telemetry, JsonStyle::Python)?,
///     r#"{"ok": true, "temperature": 21.5}"#
/// );
/// assert_eq!(json::to_string(&[f64::NAN, 1e16], JsonStyle::Python)?, "[NaN, 1e+16]");
/// assert_eq!(json::to_string(&[f64::NAN, 1e16], JsonStyle::Compact)?, "[null,1e+16]");
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
///
/// A value JSON cannot hold (a map with a non-scalar key) is
/// [`Error::Serialize`].
pub fn to_string<T: Serialize + ?Sized>(value: &T, style: JsonStyle) -> Result<String> {
    let mut out = Vec::new();
    write(&mut out, value, style).map_err(Error::Serialize)?;
    // Both writers write UTF-8 (Python's, ASCII).
    String::from_utf8(out).map_err(|e| Error::Serialize(serde::ser::Error::custom(e)))
}

/// `text` read as `T` as `read_json` reads a line by default: JSON, plus
/// Python's `NaN`, `Infinity` and `-Infinity` as floats (into an `f64` or
/// an `f32` exactly; a `serde_json::Value` has no NaN and holds `null`
/// there).
///
/// ```
/// use ts_tcpip::json;
/// let values: Vec<f64> = json::from_str("[1.5, NaN, -Infinity]")?;
/// assert!(values[1].is_nan() && values[2] == f64::NEG_INFINITY);
/// let value: serde_json::Value = json::from_str(r#"{"t": NaN}"#)?;
/// assert!(value["t"].is_null());
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
///
/// Text that is not the JSON asked for is [`Error::Json`] with the text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T> {
    parse(text, true).map_err(|source| Error::json_read(text.to_owned(), source, true))
}
