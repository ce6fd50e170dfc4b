//! Every encoding against the Python reference's vectors and its edge
//! cases: byte order marks, surrogates, truncation, names.

use super::*;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/encodings.json");
    let text = std::fs::read_to_string(path).expect("tests/data/encodings.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn cases() -> Vec<Value> {
    vectors()["cases"].as_array().expect("cases").clone()
}

fn enc(case: &Value) -> Encoding {
    case["encoding"]
        .as_str()
        .expect("name")
        .parse()
        .expect("known")
}

#[test]
fn every_accepted_name_parses_to_its_codec() {
    for (canonical, names) in vectors()["accepted_names"].as_object().expect("map") {
        let expected: Encoding = canonical.parse().expect("canonical");
        assert_eq!(expected.name(), canonical.as_str());
        for name in names.as_array().expect("list") {
            let name = name.as_str().expect("str");
            assert_eq!(name.parse::<Encoding>().expect(name), expected, "{name}");
        }
    }
    for name in [
        " utf-8",
        "utf--8",
        "UTF_16-LE",
        "ANSI_X3.4-1968",
        "Latin 1",
        "iso8859.1",
    ] {
        assert!(name.parse::<Encoding>().is_ok(), "{name}");
    }
    for bad in ["", "utf-7", "utf.8", "latin-2", "ebcdic"] {
        assert!(
            matches!(bad.parse::<Encoding>(), Err(Error::InvalidArgument(_))),
            "{bad}"
        );
    }
}

#[test]
fn b14_vectors_encode_byte_for_byte() {
    for case in cases().iter().filter(|c| c.get("wire_hex").is_some()) {
        let text = case["text"].as_str().expect("text");
        let mut wire = Vec::new();
        enc(case).encode_into(text, &mut wire).expect("encodes");
        wire.extend(hex(case["terminator_hex"].as_str().expect("term")));
        assert_eq!(
            wire,
            hex(case["wire_hex"].as_str().expect("wire")),
            "{case}"
        );
    }
}

#[test]
fn b14_vectors_decode_text_exactly() {
    for case in cases().iter().filter(|c| c.get("wire_hex").is_some()) {
        let wire = hex(case["wire_hex"].as_str().expect("wire"));
        let term = hex(case["terminator_hex"].as_str().expect("term"));
        let body = &wire[..wire.len() - term.len()];
        assert_eq!(
            enc(case).decode(body).expect("decodes"),
            case["text"],
            "{case}"
        );
    }
}

#[test]
fn b14_unencodable_text_is_an_error_naming_the_character() {
    for case in cases().iter().filter(|c| c.get("encode_error").is_some()) {
        let mut out = b"kept".to_vec();
        let err = enc(case)
            .encode_into(case["text"].as_str().expect("text"), &mut out)
            .expect_err("must not encode");
        assert!(matches!(err, Error::Encode(_)), "{err}");
        assert_eq!(out, b"kept", "nothing appended on error");
        let python = case["encode_error"].as_str().expect("msg");
        let Error::Encode(e) = err else {
            unreachable!()
        };
        let position = e.position;
        assert!(python.contains(&format!("position {position}")), "{python}");
    }
}

#[test]
fn b14_undecodable_bytes_are_an_error_with_the_bytes() {
    for case in cases()
        .iter()
        .filter(|c| c.get("undecodable_hex").is_some())
    {
        let bytes = hex(case["undecodable_hex"].as_str().expect("hex"));
        match enc(case).decode(&bytes) {
            Err(Error::Decode(e)) => assert_eq!(e.bytes, bytes),
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn bom_encodings_read_either_mark_and_default_to_native() {
    assert_eq!(Encoding::Utf16.decode(b"\xfe\xff\0h").expect("BE"), "h");
    assert_eq!(
        Encoding::Utf32.decode(b"\0\0\xfe\xff\0\0\0h").expect("BE"),
        "h"
    );
    assert_eq!(
        Encoding::Utf16.decode(b"h\0").expect("no BOM, LE host"),
        "h"
    );
}

#[test]
fn truncated_and_surrogate_input_is_rejected_with_positions() {
    let check = |e: Encoding, b: &[u8], pos: usize| match e.decode(b) {
        Err(Error::Decode(d)) => assert_eq!(d.position, pos, "{e} {b:?}"),
        other => panic!("{e} {b:?}: {other:?}"),
    };
    check(Encoding::Utf16Le, b"a\0b", 2);
    check(Encoding::Utf16Le, b"a\0\x00\xdc", 2);
    check(Encoding::Utf16Le, b"\x00\xd8a\0", 0);
    check(Encoding::Utf32Le, b"a\0\0\0\0\xd8\0\0", 4);
    check(Encoding::Utf32Be, b"\0\0\0a\0\0", 4);
    check(Encoding::Utf16, b"\xff\xfea", 2);
}

#[test]
fn round_trip_every_encoding_on_representable_text() {
    for e in Encoding::ALL {
        let text = match e {
            Encoding::Ascii => "plain\ttext",
            Encoding::Latin1 => "café µ",
            _ => "café → 😀 Ω",
        };
        let mut out = Vec::new();
        e.encode_into(text, &mut out).expect("encodes");
        assert_eq!(e.decode(&out).expect("decodes"), text, "{e}");
        assert_eq!(e.to_string().parse::<Encoding>().expect("name"), e);
    }
}

/// A UTF-32 unit that is no code point is told apart from a surrogate,
/// each with Python's reason.
#[test]
fn utf32_tells_a_surrogate_from_a_code_point_out_of_range() {
    for (code, reason) in [
        (0xD800u32, "code point in surrogate code point range"),
        (0x11_0000, "code point not in range(0x110000)"),
    ] {
        let err = Encoding::Utf32Le.decode(&code.to_le_bytes()).unwrap_err();
        assert!(err.to_string().contains(reason), "{code:#x}: {err}");
    }
}
