//! How `write_json` lays out its text: a small value type the settings
//! name. Writing it is the wire's work (`wire/json/`).

/// The text `write_json` puts on the wire for a value.
///
/// Both styles are JSON that a Python peer's `read_json` (`json.loads`)
/// reads to the same value, with one exception: `Compact` writes a NaN or
/// an infinite float as `null`, as serde_json does, where `Python` writes
/// `NaN`, `Infinity` and `-Infinity`, as `json.dumps` does. Choose
/// `Python` when a Python peer must get such floats back, or when the
/// bytes themselves must be the Python package's (a peer or a test that
/// compares lines).
///
/// ```
/// use ts_tcpip::{json, JsonStyle};
/// let value = serde_json::json!({"pos": [1.0, 2.5e-8], "name": "café"});
/// assert_eq!(
///     json::to_string(&value, JsonStyle::Compact)?,
///     r#"{"name":"café","pos":[1.0,2.5e-8]}"#
/// );
/// assert_eq!(
///     json::to_string(&value, JsonStyle::Python)?,
///     r#"{"name": "caf\u00e9", "pos": [1.0, 2.5e-08]}"#
/// );
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum JsonStyle {
    /// serde_json's compact text: no spaces, UTF-8 text as it is (escaped
    /// as `\u00e9` with the ascii and latin-1 encodings), shortest float
    /// digits (`2.5e-8`), non-finite floats as `null`. The default.
    #[default]
    Compact,
    /// Exactly what Python's `json.dumps(value)` writes with its default
    /// arguments: `", "` and `": "` between items, every character outside
    /// printable ASCII escaped (`\u00e9`, a surrogate pair beyond the
    /// BMP, `\n` and the other short escapes), floats as Python's `repr`
    /// (`1.0`, `2.5e-08`, `1e+16`, `-0.0`), and `NaN`, `Infinity`,
    /// `-Infinity`. An `f32` is written as the double it equals (a Python
    /// float is a double). Keys and items in the order the value gives
    /// them (a struct's field order, a map's iteration order).
    Python,
}
