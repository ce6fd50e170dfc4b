//! Python's JSON over a real loopback link: `JsonStyle::Python` puts
//! exactly `json.dumps(value)` on the wire for every case of
//! tests/data/python_json.json (made by the real `json.dumps`), from a
//! server and from a client, read by a raw `std::net` peer; what a Python
//! peer writes, `NaN` and `Infinity` included, reads back to the value
//! (NaN as NaN) into dynamic values and typed fields alike.

#[path = "support/py_value.rs"]
mod py_value;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use ts_tcpip::testing;
use ts_tcpip::*;

use py_value::Py;
use support::{raw_client, watchdog, WAIT};

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/python_json.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let cases = doc["cases"].as_array().expect("cases").clone();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    cases
}

fn dumps(case: &Value) -> &str {
    case["dumps"].as_str().expect("dumps")
}

/// The next line from a raw peer, terminator included, byte for byte.
fn raw_line(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).expect("raw read");
    line
}

/// A server built by `builder` and a raw peer connected to it.
fn server_and_raw_peer(builder: ServerBuilder) -> (OneClientServer, TcpStream) {
    let server = testing::start_server(builder.read_timeout(Some(WAIT))).expect("server");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    (server, peer)
}

/// A client built by `builder`, connected to a raw `std::net` listener.
fn client_and_raw_peer(builder: ClientBuilder) -> (Client, TcpStream) {
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let client = builder
        .host(LOCALHOST_IPV4)
        .port(port)
        .read_timeout(Some(WAIT))
        .connect()
        .expect("client");
    let (peer, _) = listener.accept().expect("accept");
    peer.set_read_timeout(Some(WAIT)).expect("timeout");
    (client, peer)
}

/// `link.write_json` of each case's value must be `json.dumps` + `\r\n`.
fn check_every_case_is_written_as_json_dumps(link: &impl Link, peer: TcpStream) {
    let mut reader = BufReader::new(peer);
    for case in cases() {
        link.write_json(&Py::from_description(&case["value"]))
            .expect("write_json");
        let want = format!("{}\r\n", dumps(&case));
        let got = raw_line(&mut reader);
        assert_eq!(String::from_utf8_lossy(&got), want, "{}", case["about"]);
    }
}

#[test]
fn a_python_style_server_writes_exactly_json_dumps_for_every_vector() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, peer) =
        server_and_raw_peer(OneClientServer::builder().json_style(JsonStyle::Python));
    check_every_case_is_written_as_json_dumps(&server, peer);
}

#[test]
fn a_python_style_client_writes_exactly_json_dumps_for_every_vector() {
    let _w = watchdog(Duration::from_secs(30));
    let (client, peer) = client_and_raw_peer(Client::builder().json_style(JsonStyle::Python));
    check_every_case_is_written_as_json_dumps(&client, peer);
}

#[test]
fn every_line_json_dumps_wrote_reads_back_to_its_value() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = server_and_raw_peer(OneClientServer::builder());
    for case in cases() {
        let want = Py::from_description(case.get("loads").unwrap_or(&case["value"]));
        peer.write_all(format!("{}\r\n", dumps(&case)).as_bytes())
            .expect("raw write");
        if want.has_wide_int() {
            // Beyond 64 bits only a typed read is exact, as with serde_json.
            let Py::Int(digits) = &want else {
                panic!("{want:?}")
            };
            let got = if digits.starts_with('-') {
                server.read_json::<i128>().map(|n| n.to_string())
            } else {
                server.read_json::<u128>().map(|n| n.to_string())
            };
            assert_eq!(&got.expect("read_json"), digits, "{}", case["about"]);
            continue;
        }
        let got: Py = server.read_json().expect("read_json");
        assert_eq!(got, want, "{}", case["about"]);
    }
}

#[derive(Deserialize, Debug)]
struct Telemetry {
    sensor: String,
    values: Vec<f64>,
    ok: bool,
    note: Option<String>,
}

#[derive(Deserialize, Debug)]
struct Narrow {
    values: Vec<f32>,
    first: Option<f64>,
}

#[test]
fn nan_and_infinity_from_a_python_peer_arrive_exactly_in_float_fields() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = server_and_raw_peer(OneClientServer::builder());
    let line = r#"{"sensor": "M1 temp", "values": [21.5, NaN, Infinity, -Infinity], "ok": false, "note": null}"#;
    for _ in 0..2 {
        peer.write_all(format!("{line}\r\n").as_bytes())
            .expect("raw write");
    }
    let t: Telemetry = server.read_json().expect("read_json");
    assert_eq!((t.sensor.as_str(), t.ok, t.note), ("M1 temp", false, None));
    assert_eq!(t.values[0], 21.5);
    assert!(t.values[1].is_nan());
    assert_eq!(t.values[2..], [f64::INFINITY, f64::NEG_INFINITY]);
    // try_read_json reads the same way.
    let t: Telemetry = server
        .try_read_json()
        .expect("try_read_json")
        .expect("the line had arrived");
    assert!(t.values[1].is_nan());

    peer.write_all(b"{\"values\": [NaN, -Infinity], \"first\": Infinity}\r\n")
        .expect("raw write");
    let n: Narrow = server.read_json().expect("read_json");
    assert!(n.values[0].is_nan() && n.values[1] == f32::NEG_INFINITY);
    assert_eq!(n.first, Some(f64::INFINITY));
}

#[test]
fn a_bad_line_with_nan_is_a_json_error_holding_the_line_and_the_next_line_reads() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer) = server_and_raw_peer(OneClientServer::builder());
    for line in ["[NaN, 1,]", "{\"a\": NaN} trailing", "-NaN"] {
        peer.write_all(format!("{line}\r\n[7]\r\n").as_bytes())
            .expect("raw write");
        match server.read_json::<Value>() {
            Err(e @ Error::Json(_)) => {
                assert!(e.to_string().contains(line), "{e} lacks {line:?}");
                let Error::Json(details) = e else {
                    unreachable!()
                };
                assert_eq!(details.line, line);
            }
            other => panic!("{line:?}: expected Json, got {other:?}"),
        }
        assert!(server.connected());
        assert_eq!(
            server.read_json::<Value>().expect("the next line"),
            serde_json::json!([7])
        );
    }
}

/// Between two ends of the crate in the Python style, NaN and the
/// infinities go both ways, in any encoding.
#[test]
fn python_style_ends_exchange_nan_and_infinity_both_ways_in_any_encoding() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(
        OneClientServer::builder()
            .json_style(JsonStyle::Python)
            .read_timeout(Some(WAIT)),
    )
    .expect("server");
    let client = testing::client_for(&server)
        .json_style(JsonStyle::Python)
        .read_timeout(Some(WAIT))
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("connected");
    let sent = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 2.5e-8];
    for encoding in Encoding::ALL {
        server.set_encoding(encoding);
        client.set_encoding(encoding);
        client.write_json(&sent).expect("write_json");
        let got: Vec<f64> = server.read_json().expect("read_json");
        server.write_json(&got).expect("write_json");
        let back: Vec<f64> = client.read_json().expect("read_json");
        for (a, b) in sent.iter().zip(&back) {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{encoding}: {sent:?} came back as {back:?}"
            );
        }
    }
}

#[test]
fn the_compact_style_writes_nan_as_null_and_stays_the_default() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, peer) = server_and_raw_peer(OneClientServer::builder());
    let mut reader = BufReader::new(peer);
    server
        .write_json(&serde_json::json!({"a": [1.0, 2.5e-8], "é": true}))
        .expect("write_json");
    assert_eq!(
        raw_line(&mut reader),
        b"{\"a\":[1.0,2.5e-8],\"\xc3\xa9\":true}\r\n"
    );
    server.write_json(&[f64::NAN]).expect("write_json");
    assert_eq!(raw_line(&mut reader), b"[null]\r\n");
}
