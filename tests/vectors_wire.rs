//! B14 and B15 over a real connection: every case of
//! vectors/encodings.json and vectors/json.json, both directions, byte for
//! byte.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use support::{raw_client, watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

fn vectors(name: &str) -> Value {
    let path = format!("{}/../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vectors")).expect("JSON")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A server with a raw std::net peer, reads bounded by `WAIT`.
fn pair() -> (OneClientServer, TcpStream) {
    let server =
        testing::start_server(OneClientServer::builder().read_timeout(Some(WAIT))).expect("server");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    (server, peer)
}

fn read_n(peer: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    peer.read_exact(&mut buf).expect("raw read");
    buf
}

#[test]
fn b14_every_encoding_case_holds_both_ways_over_the_wire() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = pair();
    let doc = vectors("encodings.json");
    for case in doc["cases"].as_array().expect("cases") {
        let encoding: Encoding = case["encoding"]
            .as_str()
            .expect("name")
            .parse()
            .expect("known");
        server.set_encoding(encoding);
        let text = case["text"].as_str();
        if let Some(wire) = case["wire_hex"].as_str().map(hex) {
            server
                .set_terminator(hex(case["terminator_hex"].as_str().expect("term")))
                .expect("terminator");
            let text = text.expect("text");
            server.write_str(text).expect("write_str");
            assert_eq!(read_n(&mut peer, wire.len()), wire, "write_str {case}");
            peer.write_all(&wire).expect("raw write");
            assert_eq!(
                server.read_str().expect("read_str"),
                text,
                "read_str {case}"
            );
        } else if case.get("encode_error").is_some() {
            server.set_terminator(&b"\n"[..]).expect("terminator");
            let err = server
                .write_str(text.expect("text"))
                .expect_err("unencodable");
            assert!(matches!(err, Error::Encode { .. }), "{case}: {err}");
            // Nothing was sent: the next bytes on the wire are a marker.
            server.write(b"marker").expect("write");
            assert_eq!(read_n(&mut peer, 6), b"marker", "{case}");
        } else {
            server.set_terminator(&b"\n"[..]).expect("terminator");
            let bad = hex(case["undecodable_hex"].as_str().expect("hex"));
            peer.write_all(&[&bad[..], b"\n"].concat())
                .expect("raw write");
            match server.read_str() {
                Err(Error::Decode { bytes, .. }) => assert_eq!(bytes, bad, "{case}"),
                other => panic!("{case}: {other:?}"),
            }
            assert!(server.connected(), "a decode error leaves the link open");
        }
    }
}

#[test]
fn b15_every_json_case_decodes_and_every_invalid_line_is_named() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = pair();
    let doc = vectors("json.json");
    for case in doc["cases"].as_array().expect("cases") {
        peer.write_all(&hex(case["wire_hex"].as_str().expect("hex")))
            .expect("raw write");
        let value: Value = server.read_json().expect("valid JSON");
        assert_eq!(value, case["value"], "{case}");
        // And back: the peer reads our compact form + terminator.
        server.write_json(&value).expect("write_json");
        let line = serde_json::to_string(&value).expect("compact") + "\r\n";
        assert_eq!(read_n(&mut peer, line.len()), line.as_bytes());
    }
    for line in doc["invalid"].as_array().expect("invalid") {
        let line = line.as_str().expect("line");
        peer.write_all(format!("{line}\r\n").as_bytes())
            .expect("raw write");
        match server.read_json::<Value>() {
            Err(err @ Error::Json { .. }) => assert!(err.to_string().contains(line), "{err}"),
            other => panic!("{line}: {other:?}"),
        }
        assert!(server.connected());
    }
    let nonfinite = hex(doc["python_nonfinite"]["wire_hex"].as_str().expect("hex"));
    peer.write_all(&nonfinite).expect("raw write");
    assert!(
        matches!(server.read_json::<Value>(), Err(Error::Json { .. })),
        "NaN is refused"
    );
}

#[test]
fn b15_floats_decode_exactly_as_written() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = pair();
    peer.write_all(b"[2.5e-08, 0.1, 1e300, -0.0, 5e-324]\r\n")
        .expect("raw write");
    let got: Vec<f64> = server.read_json().expect("floats");
    let want = [2.5e-08, 0.1, 1e300, -0.0, 5e-324];
    assert_eq!(
        got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        want.map(f64::to_bits)
    );
}
