//! The JSON Python writes: `NaN`, `Infinity` and `-Infinity` where a value
//! goes, which `json.loads` reads as floats and serde_json refuses.
//!
//! The slow path of `read_json`, taken only for a line serde_json refused
//! that holds one of them outside a string. Everything else is serde_json's
//! grammar, checked by serde_json itself; a serde `Deserializer` then
//! reads the line, handing each token to the visitor as the float it names
//! (`visit_f64`), so it reaches an `f64` or `f32` exactly and becomes
//! `null` in a `serde_json::Value`, whose visitor has no other place for
//! it. Numbers, strings and the shapes of values are read as serde_json
//! reads them.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::reader::{Error, Reader};

/// `text` read as `T`, with Python's three tokens taken as floats; `None`
/// if it holds none of them outside a string (nothing to add to
/// serde_json's answer).
#[cold]
#[inline(never)]
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Option<Result<T, Error>> {
    let masked = mask(text)?;
    // Each token replaced by `""` and spaces is a value wherever the token
    // is one, and no value where it is none (after a digit or a sign,
    // inside a word; where a key goes it is left as it is), with every
    // other byte in its place: serde_json finds the same syntax errors at
    // the line's own line and column. (`""`, unlike `[]`, nests no deeper
    // than the token, and unlike `0`, joins no number.)
    if let Err(e) = serde_json::from_str::<Check>(&masked) {
        return Some(Err(e));
    }
    let mut reader = Reader::new(text);
    Some(T::deserialize(&mut reader).and_then(|value| reader.end().map(|()| value)))
}

/// The token starting `rest`, if any: its length.
fn token_len(rest: &[u8]) -> Option<usize> {
    [&b"NaN"[..], b"Infinity", b"-Infinity"]
        .into_iter()
        .find(|token| rest.starts_with(token))
        .map(<[u8]>::len)
}

/// `text` with every token outside a string replaced by `""` and spaces;
/// `None` if there is none. A token where a key goes is left for serde_json
/// to refuse there.
fn mask(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    // The open brackets, and the last byte outside strings and spaces.
    let mut open: Vec<u8> = Vec::new();
    let mut last = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let key_goes_here =
            last == Some(b'{') || (last == Some(b',') && open.last() == Some(&b'{'));
        match (b, token_len(&bytes[i..])) {
            (_, Some(len)) if !key_goes_here => {
                let out = masked.get_or_insert_with(|| bytes.to_vec());
                for (j, slot) in out[i..i + len].iter_mut().enumerate() {
                    *slot = if j < 2 { b'"' } else { b' ' };
                }
                i += len;
                last = Some(b'"');
                continue;
            }
            (b'"', _) => in_string = true,
            (b'{' | b'[', _) => open.push(b),
            (b'}' | b']', _) => {
                open.pop();
            }
            _ => {}
        }
        if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            last = Some(b);
        }
        i += 1;
    }
    // ASCII replaced by ASCII: still UTF-8.
    masked.and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Any JSON value, read through serde_json's `deserialize_any` so that its
/// strings and numbers are checked in full (unlike `IgnoredAny`), and kept
/// nowhere.
struct Check;

impl<'de> de::Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Check, D::Error> {
        d.deserialize_any(Check)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = Check;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_unit<E>(self) -> std::result::Result<Check, E> {
        Ok(Check)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Check, A::Error> {
        while seq.next_element::<Check>()?.is_some() {}
        Ok(Check)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Check, A::Error> {
        while map.next_entry::<Check, Check>()?.is_some() {}
        Ok(Check)
    }
}
