//! The JSON codec on strings: Python's `NaN` and `Infinity` read as serde
//! reads everything else, and `json.dumps`' own bytes written, against the
//! vectors Python made (tests/data/python_json.json).

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;

#[path = "../../../tests/support/py_value.rs"]
mod py_value;
use py_value::{float_from_hex, Py};

/// Read as `read_json` reads by default.
fn read<T: DeserializeOwned>(text: &str) -> std::result::Result<T, serde_json::Error> {
    parse(text, true)
}

fn python<T: Serialize + ?Sized>(value: &T) -> String {
    to_string(value, JsonStyle::Python).expect("writes")
}

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/python_json.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("JSON")
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Telemetry {
    sensor: String,
    values: Vec<f64>,
    limit: Option<f64>,
    single: f32,
    inner: Inner,
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct Inner {
    x: f64,
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
enum Shape {
    Unit,
    New(f64),
    Tup(f64, f64),
    Rec { x: f64 },
}

fn same_float(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

// ------------------------------------------------------------- reading

#[test]
fn nan_and_infinity_read_into_f64_and_f32_exactly() {
    assert!(read::<f64>("NaN").expect("NaN").is_nan());
    assert_eq!(read::<f64>("Infinity").expect("inf"), f64::INFINITY);
    assert_eq!(read::<f64>(" -Infinity ").expect("-inf"), f64::NEG_INFINITY);
    assert!(read::<f32>("NaN").expect("NaN").is_nan());
    assert_eq!(read::<f32>("-Infinity").expect("-inf"), f32::NEG_INFINITY);
    let values: Vec<f64> = read("[1.5, NaN, Infinity, -Infinity]").expect("list");
    assert_eq!(values[0], 1.5);
    assert!(values[1].is_nan());
    assert_eq!(values[2..], [f64::INFINITY, f64::NEG_INFINITY]);
}

#[test]
fn nan_and_infinity_read_inside_structs_options_maps_and_tuples() {
    let t: Telemetry = read(
        r#"{"sensor": "M1", "values": [NaN, 2.0], "limit": Infinity,
            "single": -Infinity, "inner": {"x": NaN}}"#,
    )
    .expect("struct");
    assert!(t.values[0].is_nan() && t.values[1] == 2.0);
    assert_eq!(t.limit, Some(f64::INFINITY));
    assert_eq!(t.single, f32::NEG_INFINITY);
    assert!(t.inner.x.is_nan());
    let none: Option<f64> = read("null").expect("null");
    assert_eq!(none, None);
    let some: Option<f64> = read("NaN").expect("NaN");
    assert!(some.expect("Some").is_nan());
    let map: HashMap<String, f64> = read(r#"{"NaN": NaN, "a": -Infinity}"#).expect("map");
    assert!(map["NaN"].is_nan() && map["a"] == f64::NEG_INFINITY);
    let (f, text, g): (f64, String, f32) = read(r#"[NaN, "NaN", Infinity]"#).expect("tuple");
    assert!(f.is_nan() && text == "NaN" && g == f32::INFINITY);
}

#[test]
fn nan_and_infinity_read_inside_every_form_of_enum() {
    let shapes: Vec<Shape> =
        read(r#"["Unit", {"New": NaN}, {"Tup": [Infinity, 1]}, {"Rec": {"x": -Infinity}}]"#)
            .expect("enums");
    assert_eq!(shapes[0], Shape::Unit);
    assert!(matches!(shapes[1], Shape::New(f) if f.is_nan()));
    assert_eq!(shapes[2], Shape::Tup(f64::INFINITY, 1.0));
    assert_eq!(
        shapes[3],
        Shape::Rec {
            x: f64::NEG_INFINITY
        }
    );
}

/// serde_json's `Value` visitor has no NaN: it makes a non-finite float
/// `null`. Checked on the visitor itself, then through the reader.
#[test]
fn a_serde_json_value_holds_null_where_the_line_has_nan_or_infinity() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let de: serde::de::value::F64Deserializer<serde_json::Error> = f.into_deserializer();
        assert_eq!(Value::deserialize(de).expect("a value"), Value::Null);
    }
    let value: Value =
        read(r#"{"t": NaN, "l": [Infinity, -Infinity, 1.5], "s": "NaN"}"#).expect("value");
    assert_eq!(
        value,
        json!({"t": null, "l": [null, null, 1.5], "s": "NaN"})
    );
}

#[test]
fn lines_python_refuses_are_errors() {
    // Each refused by Python's json.loads too.
    for line in [
        "-NaN",
        "NaNa",
        "nan",
        "inf",
        "+Infinity",
        "[NaN,]",
        "[NaN 1]",
        "{NaN: 1}",
        "[1NaN]",
        "[NaN",
        "NaN NaN",
        "Infinityx",
        "-Infinityx",
        r#"["a"NaN]"#,
        r#"{"a" NaN}"#,
        "- Infinity",
        "--Infinity",
        "[NaN]]",
        "{\"a\": NaN,}",
    ] {
        // Not JSON, so not "valid JSON of the wrong shape".
        let e = read::<Value>(line).expect_err(line);
        assert_ne!(
            e.classify(),
            serde_json::error::Category::Data,
            "{line}: {e}"
        );
        assert!(read::<Vec<f64>>(line).is_err(), "{line} was accepted");
    }
}

#[test]
fn a_syntax_error_beside_nan_names_its_place_in_the_line() {
    // "NaN" and "0.0" have the same length: the same place.
    for (line, same_place) in [
        ("[NaN, 1,]", "[0.0, 1,]"),
        ("{\"a\": NaN\n, \"b\" 2}", "{\"a\": 0.0\n, \"b\" 2}"),
        ("[NaN, \"\\x\"]", "[0.0, \"\\x\"]"),
    ] {
        let got = read::<Value>(line).expect_err(line);
        let want = serde_json::from_str::<Value>(same_place).expect_err(same_place);
        assert_eq!(
            got.classify(),
            serde_json::error::Category::Syntax,
            "{line}"
        );
        assert_eq!(
            (got.line(), got.column()),
            (want.line(), want.column()),
            "{line}"
        );
        assert_eq!(got.to_string(), want.to_string(), "{line}");
    }
}

#[test]
fn a_line_of_the_wrong_shape_beside_nan_is_a_data_error() {
    let wrong = [
        read::<Inner>(r#"{"y": NaN}"#).map(drop),
        read::<Vec<String>>("[NaN]").map(drop),
        read::<u8>("NaN").map(drop),
        read::<(f64, f64)>("[NaN, 1, 2]").map(drop),
        read::<Shape>(r#"{"New": NaN, "Unit": null}"#).map(drop),
        read::<BTreeMap<u32, f64>>(r#"{"x": NaN}"#).map(drop),
    ];
    for result in wrong {
        let e = result.expect_err("wrong shape");
        assert_eq!(e.classify(), serde_json::error::Category::Data, "{e}");
    }
}

#[test]
fn numbers_beside_nan_read_as_serde_json_reads_them() {
    let texts = [
        "0",
        "-0",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "1e23",
        "2.5e-8",
        "5e-324",
        "1e-400",
        "1e400",
        "-1E+2",
        "0.30000000000000004",
        "123456789012345678901234567890",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
    ];
    for text in texts {
        let line = format!("[NaN, {text}]");
        let got = read::<(f64, Value)>(&line).map(|(_, v)| v).ok();
        let want = serde_json::from_str::<Value>(text).ok();
        assert_eq!(got, want, "{text} as a Value");
        assert_eq!(
            read::<(f64, f32)>(&line).map(|(_, v)| v.to_bits()).ok(),
            serde_json::from_str::<f32>(text).map(f32::to_bits).ok(),
            "{text} as an f32"
        );
        assert_eq!(
            read::<(f64, u64)>(&line).map(|(_, v)| v).ok(),
            serde_json::from_str::<u64>(text).ok(),
            "{text} as a u64"
        );
        assert_eq!(
            read::<(f64, i128)>(&line).map(|(_, v)| v).ok(),
            serde_json::from_str::<i128>(text).ok(),
            "{text} as an i128"
        );
        assert_eq!(
            read::<(f64, u128)>(&line).map(|(_, v)| v).ok(),
            serde_json::from_str::<u128>(text).ok(),
            "{text} as a u128"
        );
    }
}

/// serde_json reads an `f32` from the decimal text, rounding once; so does
/// the reader. The decimals are just above the midpoint between two f32s,
/// where rounding to f64 first lands on the midpoint and then rounds to
/// even: two roundings would differ.
#[test]
fn an_f32_beside_nan_is_rounded_once_as_serde_json_rounds_it() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut twice_differs = 0;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bits = 0x3f00_0000 + (state >> 40) as u32 % 0x0180_0000;
        let midpoint =
            (f64::from(f32::from_bits(bits)) + f64::from(f32::from_bits(bits + 1))) / 2.0;
        let exact = format!("{midpoint:.40e}");
        let (mantissa, exponent) = exact.split_once('e').expect("e");
        let text = format!("{mantissa}1e{exponent}");
        let got = read::<(f64, f32)>(&format!("[NaN, {text}]")).map(|(_, v)| v.to_bits());
        let want = serde_json::from_str::<f32>(&text).map(f32::to_bits).ok();
        assert_eq!(got.ok(), want, "{text}");
        let via_f64 = text.parse::<f64>().expect("float") as f32;
        twice_differs += usize::from(Some(via_f64.to_bits()) != want);
    }
    assert!(
        twice_differs > 100,
        "only {twice_differs} cases tell one rounding from two"
    );
}

#[test]
fn keys_beside_nan_read_as_serde_json_reads_them() {
    for key in [
        "1", "-2", "0", "01", " 1", "1 ", "+1", "1.5", "1e2", "x", "true", "\\u0031",
    ] {
        let got = read::<BTreeMap<i32, f64>>(&format!(r#"{{"{key}": NaN}}"#))
            .map(|m| m.keys().copied().collect::<Vec<_>>());
        let want = serde_json::from_str::<BTreeMap<i32, f64>>(&format!(r#"{{"{key}": 0}}"#))
            .map(|m| m.keys().copied().collect::<Vec<_>>());
        assert_eq!(got.ok(), want.ok(), "key {key:?} of an i32 map");
        let got = read::<BTreeMap<bool, f64>>(&format!(r#"{{"{key}": NaN}}"#)).map(|m| m.len());
        let want = serde_json::from_str::<BTreeMap<bool, f64>>(&format!(r#"{{"{key}": 0}}"#))
            .map(|m| m.len());
        assert_eq!(got.ok(), want.ok(), "key {key:?} of a bool map");
    }
}

#[test]
fn strings_beside_nan_read_as_serde_json_reads_them() {
    for text in [
        r#""plain""#,
        r#""caf\u00e9 \ud834\udd1e \n \" \\ \/ \b\f\r\t""#,
        "\"café 😀\"",
        r#""\ud800""#,
        r#""\udc00x""#,
        r#""\ud834\u0041""#,
        "\"tab\t\"",
        r#""\x""#,
        r#""\u12""#,
    ] {
        let got = read::<(f64, String)>(&format!("[NaN, {text}]")).map(|(_, s)| s);
        assert_eq!(
            got.ok(),
            serde_json::from_str::<String>(text).ok(),
            "{text}"
        );
    }
}

#[test]
fn nesting_beside_nan_is_bounded_as_serde_json_bounds_it() {
    let nested =
        |depth: usize, leaf: &str| format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth));
    for depth in [1, 100, 127, 128, 129, 100_000] {
        let got = read::<Value>(&nested(depth, "NaN")).is_ok();
        let want = serde_json::from_str::<Value>(&nested(depth, "0")).is_ok();
        assert_eq!(got, want, "depth {depth}");
    }
}

#[test]
fn without_nan_the_answer_is_serde_json_s_own() {
    for line in ["[1,]", "{\"a\" 1}", "\"NaN", "[\"NaN\", 1,]"] {
        let got = read::<Value>(line).expect_err(line);
        let want = serde_json::from_str::<Value>(line).expect_err(line);
        assert_eq!(got.to_string(), want.to_string(), "{line}");
    }
    assert!(
        parse::<Value>("[NaN]", false).is_err(),
        "refused when told to"
    );
}

// ------------------------------------------------------------- writing

#[test]
fn python_style_is_json_dumps_on_every_vector() {
    let doc = vectors();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for case in cases {
        let value = Py::from_description(&case["value"]);
        assert_eq!(
            python(&value),
            case["dumps"].as_str().expect("dumps"),
            "{}",
            case["about"]
        );
    }
}

#[test]
fn every_vector_reads_back_to_what_json_loads_gives() {
    for case in vectors()["cases"].as_array().expect("cases") {
        let dumps = case["dumps"].as_str().expect("dumps");
        let want = Py::from_description(case.get("loads").unwrap_or(&case["value"]));
        if want.has_wide_int() {
            // Beyond 64 bits only a typed read is exact, as with serde_json.
            let Py::Int(digits) = &want else {
                panic!("{want:?}")
            };
            let got = read::<i128>(dumps)
                .map(|n| n.to_string())
                .or_else(|_| read::<u128>(dumps).map(|n| n.to_string()));
            assert_eq!(got.expect(dumps), *digits);
            continue;
        }
        assert_eq!(read::<Py>(dumps).expect(dumps), want, "{}", case["about"]);
    }
}

#[test]
fn floats_are_written_as_python_s_repr_for_thousands_of_doubles() {
    let doc = vectors();
    let floats = doc["floats"].as_array().expect("floats");
    assert!(floats.len() > 3000);
    for pair in floats {
        let (bits, repr) = pair.as_str().and_then(|p| p.split_once(' ')).expect("pair");
        let value = float_from_hex(bits);
        assert_eq!(python(&value), repr, "{bits}");
        assert!(same_float(read::<f64>(repr).expect(repr), value), "{repr}");
    }
}

#[test]
fn a_struct_is_written_in_field_order_as_the_dict_python_would_write() {
    #[derive(Serialize)]
    struct Command {
        id: u32,
        cmd: &'static str,
        args: [f64; 3],
    }
    let doc = vectors();
    let case = doc["cases"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["about"] == "a command as a struct would write it")
        })
        .expect("the case");
    let command = Command {
        id: 1,
        cmd: "move",
        args: [1.5, 2.5e-8, -3.0],
    };
    assert_eq!(python(&command), case["dumps"]);
}

#[test]
fn python_style_uses_serde_json_s_data_model_for_what_python_lacks() {
    struct Bytes;
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(&[1, 255])
        }
    }
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Wrapper(f32);
    assert_eq!(python(&Shape::Unit), r#""Unit""#);
    assert_eq!(python(&Shape::New(1.5)), r#"{"New": 1.5}"#);
    assert_eq!(python(&Shape::Tup(1.0, f64::NAN)), r#"{"Tup": [1.0, NaN]}"#);
    assert_eq!(python(&Shape::Rec { x: 1e16 }), r#"{"Rec": {"x": 1e+16}}"#);
    assert_eq!(python(&(None::<u8>, (), Unit)), "[null, null, null]");
    assert_eq!(python(&Bytes), "[1, 255]");
    assert_eq!(python(&('é', "é")), r#"["\u00e9", "\u00e9"]"#);
    // An f32 is the double it equals, as a Python float would be.
    assert_eq!(python(&Wrapper(0.1)), "0.10000000149011612");
    assert_eq!(
        python(&(i128::MIN, u128::MAX)),
        format!("[{}, {}]", i128::MIN, u128::MAX)
    );
    let keys: BTreeMap<Shape, u8> = [(Shape::Unit, 1)].into_iter().collect();
    assert_eq!(python(&keys), r#"{"Unit": 1}"#);
}

#[test]
fn keys_json_cannot_hold_are_refused_as_python_refuses_them() {
    let key_list: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
    assert!(matches!(
        to_string(&key_list, JsonStyle::Python),
        Err(Error::Serialize(_))
    ));
    let variant: BTreeMap<Shape, u8> = [(Shape::New(1.0), 1)].into_iter().collect();
    assert!(to_string(&variant, JsonStyle::Python).is_err());
}

impl Eq for Shape {}
impl PartialOrd for Shape {
    fn partial_cmp(&self, other: &Shape) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Shape {
    fn cmp(&self, other: &Shape) -> std::cmp::Ordering {
        format!("{self:?}").cmp(&format!("{other:?}"))
    }
}

#[test]
fn compact_style_is_serde_json_s_compact_text() {
    let value = json!({"b": [1.5, "é"], "a": null});
    assert_eq!(
        to_string(&value, JsonStyle::Compact).expect("compact"),
        serde_json::to_string(&value).expect("serde_json")
    );
    assert_eq!(
        to_string(&[f64::NAN], JsonStyle::Compact).expect("compact"),
        "[null]"
    );
}

#[test]
fn from_str_reads_nan_and_hands_back_the_line_in_its_error() {
    let values: Vec<f64> = from_str("[NaN, 1]").expect("read");
    assert!(values[0].is_nan());
    match from_str::<Vec<f64>>("[NaN, oops]") {
        Err(e @ Error::Json(_)) => {
            assert!(e.to_string().contains("[NaN, oops]"), "{e}");
            assert!(!e.to_string().contains("not a JSON number"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------- properties

/// A JSON value as Python holds it, with every float (NaN too).
fn py_value() -> impl Strategy<Value = Py> {
    let leaf = prop_oneof![
        Just(Py::Null),
        any::<bool>().prop_map(Py::Bool),
        any::<i64>().prop_map(|n| Py::Int(n.to_string())),
        any::<u64>().prop_map(|n| Py::Int(n.to_string())),
        any::<u64>().prop_map(|bits| Py::Float(f64::from_bits(bits))),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            any::<f64>()
        ]
        .prop_map(Py::Float),
        any::<String>().prop_map(Py::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Py::List),
            prop::collection::vec((any::<String>().prop_map(Py::Str), inner), 0..6)
                .prop_map(Py::Dict),
        ]
    })
}

/// Text shaped like JSON: lines the Python style wrote (NaN included),
/// the same with a piece cut out or put in, and pieces strung together:
/// the three tokens, their near misses and the bytes that change how a
/// line is read.
fn jsonish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("NaN"),
        Just("Infinity"),
        Just("-Infinity"),
        Just("-"),
        Just("Na"),
        Just("Inf"),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(","),
        Just(":"),
        Just("\""),
        Just("\\"),
        Just("\\u00e9"),
        Just("\\ud800"),
        Just("1"),
        Just("0"),
        Just("."),
        Just("e"),
        Just("E+"),
        Just("null"),
        Just("true"),
        Just(" "),
        Just("\n"),
        Just("\"a\""),
        Just("\"NaN\""),
        Just("é"),
        Just("\t"),
    ];
    let written = || py_value().prop_map(|v| python(&v));
    prop_oneof![
        written(),
        (
            written(),
            any::<prop::sample::Index>(),
            0..3usize,
            piece.clone()
        )
            .prop_map(|(text, at, cut, put)| {
                let chars: Vec<char> = text.chars().collect();
                let at = at.index(chars.len() + 1);
                let end = (at + cut).min(chars.len());
                let mut out: String = chars[..at].iter().collect();
                out.push_str(put);
                out.extend(&chars[end..]);
                out
            }),
        prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
    ]
}

/// The oracle: each token outside a string replaced by `null` and read by
/// serde_json is what a `Value` must hold (NaN is `null` there).
fn tokens_as_null(text: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_text_makes_the_reader_panic(text in prop_oneof![jsonish(), any::<String>()]) {
        let _ = read::<Value>(&text);
        let _ = read::<Py>(&text);
        let _ = read::<Vec<f64>>(&text);
        let _ = read::<BTreeMap<i32, (f64, Option<String>)>>(&text);
        let _ = read::<Vec<Shape>>(&text);
        let _ = read::<Telemetry>(&text);
    }

    #[test]
    fn a_value_read_is_serde_json_s_reading_with_null_for_each_token(text in jsonish()) {
        let got = read::<Value>(&text).ok();
        let want = serde_json::from_str::<Value>(&tokens_as_null(&text)).ok();
        prop_assert_eq!(got, want, "{:?}", text);
    }

    #[test]
    fn python_style_round_trips_every_value(value in py_value()) {
        let text = python(&value);
        prop_assert!(text.is_ascii());
        prop_assert_eq!(read::<Py>(&text).expect("reads back"), value);
    }

    #[test]
    fn python_style_without_non_finite_floats_is_json_of_the_same_value(value in py_value()) {
        prop_assume!(!value.has_non_finite());
        let python = serde_json::from_str::<Value>(&python(&value)).expect("JSON");
        let compact = serde_json::from_str::<Value>(&to_string(&value, JsonStyle::Compact).expect("compact"));
        prop_assert_eq!(python, compact.expect("JSON"));
    }
}
