//! B14 and B15 over a real loopback connection: every case of
//! tests/data/encodings.json and tests/data/json.json, both directions (server to
//! client and client to server), byte for byte.

mod support;

use std::time::Duration;

use serde_json::Value;
use ts_tcpip::testing;
use ts_tcpip::*;

use support::{watchdog, WAIT};

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn field<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {case}"))
}

/// The first position a Python codec error message names ("in position 8"
/// or "in position 0-1").
fn python_position(message: &str) -> usize {
    let after = message.split("in position ").nth(1).expect("a position");
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("digits")
}

/// A server and a client connected to it, every read bounded by `WAIT`.
fn pair() -> (OneClientServer, Client) {
    let server =
        testing::start_server(OneClientServer::builder().read_timeout(Some(WAIT))).expect("server");
    let client = testing::client_for(&server)
        .read_timeout(Some(WAIT))
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("connected");
    (server, client)
}

fn set_codec(link: &impl Link, encoding: Encoding, terminator: &[u8]) {
    link.set_encoding(encoding);
    link.set_terminator(terminator).expect("terminator");
}

/// One encodings.json case from `tx` to `rx`.
fn check_encoding_case(tx: &impl Link, rx: &impl Link, case: &Value) {
    let encoding: Encoding = field(case, "encoding").parse().expect("known encoding");
    if let Some(wire) = case["wire_hex"].as_str().map(hex) {
        let text = field(case, "text");
        // Encoding: exactly the bytes Python writes.
        tx.write_str(text).expect("write_str");
        assert_eq!(rx.read_exact(wire.len()).expect("wire"), wire, "{case}");
        // Decoding: exactly the text Python wrote.
        tx.write(&wire).expect("write");
        assert_eq!(rx.read_str().expect("read_str"), text, "{case}");
    } else if let Some(message) = case["encode_error"].as_str() {
        match tx.write_str(field(case, "text")) {
            Err(Error::Encode(e1)) => {
                let got = e1.encoding;
                let position = e1.position;
                assert_eq!(got, encoding, "{case}");
                assert_eq!(position, python_position(message), "{case}");
            }
            other => panic!("{case}: expected Encode, got {other:?}"),
        }
        // Nothing was sent: the next line is the first to arrive.
        tx.write_str("marker").expect("write_str");
        assert_eq!(rx.read_str().expect("marker"), "marker", "{case}");
    } else {
        let bad = hex(field(case, "undecodable_hex"));
        let message = field(case, "decode_error");
        tx.write(&[&bad[..], &rx.terminator()].concat())
            .expect("write");
        match rx.read_str() {
            Err(Error::Decode(e2)) => {
                let bytes = e2.bytes;
                let got = e2.encoding;
                let position = e2.position;
                assert_eq!(bytes, bad, "{case}");
                assert_eq!(got, encoding, "{case}");
                assert_eq!(position, python_position(message), "{case}");
            }
            other => panic!("{case}: expected Decode, got {other:?}"),
        }
        // The frame was consumed and the link is still open.
        assert!(rx.connected(), "{case}");
        tx.write_str("next").expect("write_str");
        assert_eq!(rx.read_str().expect("next line"), "next", "{case}");
    }
}

#[test]
fn b14_every_encoding_case_holds_both_ways_over_the_wire() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let doc = vectors("encodings.json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() > 100, "only {} cases", cases.len());
    for case in cases {
        let encoding: Encoding = field(case, "encoding").parse().expect("known encoding");
        let terminator = case["terminator_hex"]
            .as_str()
            .map_or(DEFAULT_TERMINATOR.to_vec(), hex);
        set_codec(&server, encoding, &terminator);
        set_codec(&client, encoding, &terminator);
        check_encoding_case(&server, &client, case);
        check_encoding_case(&client, &server, case);
    }
    assert!(server.connected() && client.connected());
}

/// Undecodable frames beyond the vectors (valid text before the bad
/// bytes, big-endian UTF-32): the error holds the whole frame, the frame
/// is consumed and the next line reads.
#[test]
fn b14_undecodable_frames_beyond_the_vectors_are_errors_with_the_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let cases: [(Encoding, &[u8], usize); 5] = [
        (Encoding::Utf8, b"caf\xe9 \xff", 3),
        (Encoding::Utf8, b"ok\xff\xfe", 2),
        (Encoding::Ascii, b"plain \x80", 6),
        (Encoding::Utf16Le, b"a\x00\x00\xd8", 2),
        (Encoding::Utf32Be, b"\x00\x11\x00\x00", 0),
    ];
    for (encoding, bad, position) in cases {
        set_codec(&server, encoding, DEFAULT_TERMINATOR);
        set_codec(&client, encoding, DEFAULT_TERMINATOR);
        client
            .write(&[bad, DEFAULT_TERMINATOR].concat())
            .expect("write");
        client.write_str("clean").expect("write_str");
        match server.read_str() {
            Err(Error::Decode(e)) => {
                assert_eq!(e.bytes, bad, "{encoding}");
                assert_eq!(e.encoding, encoding);
                assert_eq!(e.position, position, "{encoding}");
            }
            other => panic!("{encoding}: expected Decode, got {other:?}"),
        }
        assert!(server.connected(), "{encoding}");
        assert_eq!(server.read_str().expect("next line"), "clean", "{encoding}");
    }
}

#[test]
fn b14_utf16_and_utf32_read_either_byte_order_mark() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let little = cfg!(target_endian = "little");
    // (encoding, bytes, whether to try them): no mark is native order.
    let cases: [(Encoding, &[u8], bool); 6] = [
        (Encoding::Utf16, b"\xff\xfeh\0i\0", true),
        (Encoding::Utf16, b"\xfe\xff\0h\0i", true),
        (Encoding::Utf16, b"h\0i\0", little),
        (Encoding::Utf32, b"\xff\xfe\0\0h\0\0\0i\0\0\0", true),
        (Encoding::Utf32, b"\0\0\xfe\xff\0\0\0h\0\0\0i", true),
        (Encoding::Utf32, b"h\0\0\0i\0\0\0", little),
    ];
    for (encoding, wire, _) in cases.into_iter().filter(|c| c.2) {
        server.set_encoding(encoding);
        client
            .write(&[wire, DEFAULT_TERMINATOR].concat())
            .expect("write");
        assert_eq!(
            server.read_str().expect("read_str"),
            "hi",
            "{encoding} {wire:?}"
        );
    }
}

#[test]
fn b14_every_accepted_encoding_name_parses_to_its_codec() {
    let _w = watchdog(Duration::from_secs(30));
    let doc = vectors("encodings.json");
    let names = doc["accepted_names"].as_object().expect("accepted_names");
    for (canonical, spellings) in names {
        for spelling in spellings.as_array().expect("names") {
            let spelling = spelling.as_str().expect("name");
            let encoding: Encoding = spelling
                .parse()
                .unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(encoding.to_string(), *canonical, "{spelling}");
        }
    }
}

#[test]
fn b15_every_valid_json_case_decodes_to_its_value() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let doc = vectors("json.json");
    for case in doc["cases"].as_array().expect("cases") {
        client.write(&hex(field(case, "wire_hex"))).expect("write");
        let got: Value = server.read_json().expect("read_json");
        assert_eq!(got, case["value"], "{case}");
    }
}

#[test]
fn b15_floats_and_integers_decode_exactly() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let doc = vectors("json.json");
    let wire = hex(field(&doc["cases"][1], "wire_hex"));
    client.write(&wire).expect("write");
    let got: Value = server.read_json().expect("read_json");
    let float = got["args"][1].as_f64().expect("2.5e-08");
    assert_eq!(float.to_bits(), 2.5e-8_f64.to_bits());

    for text in [
        "2.5e-08",
        "0.1",
        "0.30000000000000004",
        "1e23",
        "5e-324",
        "2.2250738585072011e-308",
        "1.7976931348623157e308",
        "-0.0",
    ] {
        client.write_str(text).expect("write_str");
        let got: f64 = server.read_json().expect("read_json");
        let want: f64 = text.parse().expect("float");
        assert_eq!(got.to_bits(), want.to_bits(), "{text}");
    }
    client.write_str("18446744073709551615").expect("write_str");
    assert_eq!(server.read_json::<u64>().expect("u64"), u64::MAX);
    client.write_str("-9223372036854775808").expect("write_str");
    assert_eq!(server.read_json::<i64>().expect("i64"), i64::MIN);
}

#[track_caller]
fn assert_json_error(result: Result<Value>, line: &str) {
    match result {
        Err(e @ Error::Json(_)) => {
            assert!(e.to_string().contains(line), "{e:?} lacks {line:?}");
            let Error::Json(e4) = e else { unreachable!() };
            let got = e4.line;
            assert_eq!(got, line);
        }
        other => panic!("{line:?}: expected Json, got {other:?}"),
    }
}

#[test]
fn b15_invalid_json_is_an_error_holding_the_line_and_the_link_stays_open() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let doc = vectors("json.json");
    for line in doc["invalid"].as_array().expect("invalid") {
        let line = line.as_str().expect("line");
        client.write_str(line).expect("write_str");
        assert_json_error(server.read_json(), line);
        assert!(server.connected(), "{line}");
        client.write_str("[1]").expect("write_str");
        assert_eq!(
            server.read_json::<Value>().expect("next"),
            serde_json::json!([1])
        );
    }

    // Beyond the vectors: an empty line, a lone surrogate escape, a raw
    // tab in a string, a trailing comma, two strings without a comma, and
    // lines with Python's NaN that Python refuses too.
    for line in [
        "",
        r#""tab	\ud800""#,
        r#"{"a": 1,}"#,
        "-NaN",
        "[NaN,]",
        "[1, 2",
        r#"{"k": "v" "w"}"#,
    ] {
        client.write_str(line).expect("write_str");
        client.write_str("[2]").expect("write_str");
        assert_json_error(server.read_json(), line);
        assert_eq!(
            server.read_json::<Value>().expect("the next line"),
            serde_json::json!([2]),
            "{line:?}"
        );
    }

    // A line that is not text in the encoding is a decode error, not a
    // JSON error; it is consumed too.
    client.write(b"\"caf\xe9\"\r\n").expect("write");
    match server.read_json::<Value>() {
        Err(Error::Decode(e)) => assert_eq!(e.bytes, b"\"caf\xe9\""),
        other => panic!("expected Decode, got {other:?}"),
    }
    client.write_str("[3]").expect("write_str");
    assert_eq!(
        server.read_json::<Value>().expect("next"),
        serde_json::json!([3])
    );

    // NaN and Infinity, which Python's json.dumps writes, are read as
    // Python reads them: a serde_json::Value has no NaN and holds null
    // (tests/python_json.rs reads them into floats).
    let wire = hex(field(&doc["python_nonfinite"], "wire_hex"));
    client.write(&wire).expect("write");
    assert_eq!(
        server
            .read_json::<Value>()
            .expect("Python's non-finite floats"),
        serde_json::json!({"t": null, "hi": null, "lo": null})
    );
    assert!(server.connected());
}

/// With `json_non_finite(false)`, a line with NaN or Infinity is refused
/// as JSON alone would be: a JSON error holding the line, which says
/// which token JSON lacks; the link stays open.
#[test]
fn b15_a_strict_link_refuses_nan_and_infinity_with_the_line() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(
        OneClientServer::builder()
            .read_timeout(Some(WAIT))
            .json_non_finite(false),
    )
    .expect("server");
    let client = testing::client_for(&server).connect().expect("client");
    server.wait_connected(WAIT).expect("connected");
    let doc = vectors("json.json");
    let wire = hex(field(&doc["python_nonfinite"], "wire_hex"));
    client.write(&wire).expect("write");
    let line = std::str::from_utf8(&wire[..wire.len() - 2]).expect("text");
    let err = server.read_json::<Value>().expect_err("refused");
    assert!(
        err.to_string().contains("NaN is not a JSON number"),
        "{err}"
    );
    assert_json_error(Err(err), line);
    assert!(server.connected());
    client.write_str("[1]").expect("write_str");
    assert_eq!(
        server.read_json::<Value>().expect("next"),
        serde_json::json!([1])
    );
}

/// `tx.write_json` puts serde_json's compact text plus the terminator on
/// the wire, and `rx.read_json` reads the value back.
fn check_write_json(tx: &impl Link, rx: &impl Link, value: &Value) {
    let mut want = serde_json::to_vec(value).expect("compact");
    want.extend_from_slice(&tx.terminator());
    tx.write_json(value).expect("write_json");
    assert_eq!(rx.read_until(&tx.terminator()).expect("line"), want);
    tx.write_json(value).expect("write_json");
    assert_eq!(&rx.read_json::<Value>().expect("read_json"), value);
}

#[test]
fn b15_write_json_writes_compact_json_that_reads_back_both_ways() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    let doc = vectors("json.json");
    for case in doc["cases"].as_array().expect("cases") {
        check_write_json(&server, &client, &case["value"]);
        check_write_json(&client, &server, &case["value"]);
    }
    let float = serde_json::json!({"f": 2.5e-8, "tiny": 5e-324});
    check_write_json(&server, &client, &float);
    check_write_json(&client, &server, &float);
}

#[test]
fn write_json_escapes_non_ascii_for_ascii_and_latin1_as_python_does() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, client) = pair();
    for encoding in [Encoding::Ascii, Encoding::Latin1] {
        server.set_encoding(encoding);
        client.set_encoding(encoding);
        let value = serde_json::json!({"text": "café → 😀"});
        server.write_json(&value).expect("escaped, so it fits");
        assert_eq!(
            client.read_str().expect("line"),
            r#"{"text":"caf\u00e9 \u2192 \ud83d\ude00"}"#
        );
        server.write_json(&value).expect("again");
        assert_eq!(client.read_json::<Value>().expect("reads back"), value);
    }
}

/// The vectors live in the crate (tests/data/) so that a clone with nothing
/// beside it tests itself. Where the project's shared vectors sit beside
/// the clone (../shared/vectors), each of them must have a byte-identical
/// copy here, so the copies cannot drift from the source.
#[test]
fn tests_data_equals_the_shared_vectors_when_they_are_beside_the_clone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/vectors");
    if !shared.is_dir() {
        println!(
            "skipped: {} is not there (a clone on its own); tests/data/ is used as it is",
            shared.display()
        );
        return;
    }
    let mut names: Vec<_> = std::fs::read_dir(&shared)
        .expect("read ../shared/vectors")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no *.json in {}", shared.display());
    for name in &names {
        let source = std::fs::read(shared.join(name)).expect("shared vector");
        let copy = root.join("tests/data").join(name);
        let copy = std::fs::read(&copy)
            .unwrap_or_else(|e| panic!("{}: {e} (copy it from ../shared/vectors)", copy.display()));
        assert!(
            copy == source,
            "tests/data/{} differs from ../shared/vectors/{0}: copy it again",
            name.to_string_lossy()
        );
    }
}
