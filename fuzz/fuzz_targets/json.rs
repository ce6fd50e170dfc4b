//! `ts_tcpip::json::from_str` (what `read_json` does with a line) on
//! arbitrary text: never panics, into a `Value` or typed targets; a
//! `Value` read is serde_json's reading of the text with each `NaN`,
//! `Infinity` and `-Infinity` outside a string as `null`; a value read
//! into Python's own shape is written back by `JsonStyle::Python` as text
//! that reads to the same value again.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ts_tcpip::json::{from_str, to_string, JsonStyle};

/// The model, written apart from the crate's reader: each token outside
/// a string replaced by `null`.
fn tokens_as_null(line: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(token) = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t))
            {
                out.push_str("null");
                rest = &rest[token.len()..];
                continue;
            }
        }
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = from_str::<Value>(text).ok();
    let want = serde_json::from_str::<Value>(&tokens_as_null(text)).ok();
    assert_eq!(got, want, "{text:?}");

    let _ = from_str::<Vec<f64>>(text);
    let _ = from_str::<(f32, Option<String>, i128)>(text);
    let _ = from_str::<BTreeMap<i32, Vec<Option<f64>>>>(text);

    // Floats kept: Python's own shape of a line of numbers.
    if let Ok(values) = from_str::<Vec<f64>>(text) {
        let written = to_string(&values, JsonStyle::Python).expect("floats write");
        let again: Vec<f64> = from_str(&written).expect("the Python style reads back");
        assert_eq!(values.len(), again.len());
        for (a, b) in values.iter().zip(&again) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{written}");
        }
    }
    if let Some(value) = got {
        let written = to_string(&value, JsonStyle::Python).expect("a Value writes");
        assert_eq!(from_str::<Value>(&written).ok(), Some(value), "{written}");
    }
});
