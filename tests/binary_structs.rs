//! B16 over a real connection: write_from / read_into produce and consume
//! exactly the bytes of tests/data/structs.json, both ways; B12 for structs.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{raw_client, watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

binary_struct! {
    #[derive(Debug, Default, PartialEq, Clone, Copy)]
    struct ShortStruct { ushort_0: u16, int64_0: i64, double_0: f64, float_0: f32 }

    #[derive(Debug, Default, PartialEq, Clone, Copy)]
    #[byte_order(big)]
    struct BigEndianShort { ushort_0: u16, int64_0: i64, double_0: f64, float_0: f32 }

    #[derive(Debug, Default, PartialEq, Clone, Copy)]
    struct Telemetry { flag: bool, counter: u32, position: [f64; 3], status: i8, code: u64 }
}

/// The first vector of each type: (type, wire bytes).
fn vectors() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/structs.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("JSON");
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    };
    doc["structs"]
        .as_array()
        .expect("structs")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().expect("type").to_owned(),
                hex(c["wire_hex"].as_str().expect("hex")),
            )
        })
        .collect()
}

/// A zeroed value of the named type.
fn blank(kind: &str) -> Box<dyn BinaryStruct> {
    match kind {
        "ShortStruct" => Box::new(ShortStruct::default()),
        "BigEndianShort" => Box::new(BigEndianShort::default()),
        _ => Box::new(Telemetry::default()),
    }
}

#[test]
fn b16_vectors_cross_the_wire_byte_for_byte_both_ways() {
    let _w = watchdog(Duration::from_secs(30));
    let server =
        testing::start_server(OneClientServer::builder().read_timeout(Some(WAIT))).expect("server");
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    for (kind, wire) in vectors() {
        // Peer -> read_into: decode the Python bytes...
        let mut value = blank(&kind);
        peer.write_all(&wire).expect("raw write");
        server.read_into(&mut *value).expect("read_into");
        // ...then write_from sends exactly those bytes back.
        server.write_from(&[&*value]).expect("write_from");
        let mut echoed = vec![0u8; wire.len()];
        peer.read_exact(&mut echoed).expect("raw read");
        assert_eq!(echoed, wire, "{kind}");
    }
}

#[test]
fn b16_write_from_mixes_types_in_one_write_and_try_read_into_waits_for_all() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let client = testing::connect_client(&server, true).expect("client");
    client.set_read_timeout(Some(WAIT));
    let a = ShortStruct {
        ushort_0: 1,
        int64_0: -2,
        double_0: 3.5,
        float_0: 4.25,
    };
    let b = Telemetry {
        flag: true,
        counter: 9,
        position: [1.0, 2.0, 3.0],
        status: -1,
        code: 7,
    };
    let mut got_b = Telemetry::default();
    assert!(!client.try_read_into(&mut got_b).expect("nothing yet"));
    server.write_from(&[&a, &b]).expect("write_from");
    let mut got_a = ShortStruct::default();
    client.read_into(&mut got_a).expect("first");
    client.read_into(&mut got_b).expect("second");
    assert_eq!((got_a, got_b), (a, b));
}

#[test]
fn b12_half_a_struct_then_eof_gives_the_partial_bytes_and_closes() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server =
        testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))
            .expect("server");
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    peer.write_all(&[1, 2, 3]).expect("raw write");
    drop(peer);
    let mut value = ShortStruct::default();
    match server.read_into(&mut value) {
        Err(Error::IncompleteRead { partial, expected }) => {
            assert_eq!(
                (partial, expected),
                (vec![1, 2, 3], Some(ShortStruct::SIZE))
            );
        }
        other => panic!("{other:?}"),
    }
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}

#[test]
fn an_invalid_bool_is_an_error_and_the_link_stays_open() {
    let _w = watchdog(Duration::from_secs(30));
    let server =
        testing::start_server(OneClientServer::builder().read_timeout(Some(WAIT))).expect("server");
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    let mut bad = vec![0u8; Telemetry::SIZE];
    bad[0] = 2;
    peer.write_all(&bad).expect("raw write");
    peer.write_all(b"next\r\n").expect("raw write");
    let mut value = Telemetry::default();
    assert!(matches!(
        server.read_into(&mut value),
        Err(Error::InvalidStruct { .. })
    ));
    assert_eq!(server.read_str().expect("the link goes on"), "next");
}

/// A hand-written struct whose decode reads from the link it came from:
/// possible only if no lock of the link is held while user code runs.
struct Chained {
    server: std::sync::Arc<OneClientServer>,
    first: u8,
    next_line: Option<String>,
}

impl BinaryStruct for Chained {
    fn size(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.first);
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<()> {
        self.first = bytes[0];
        self.next_line = self.server.read_str().ok();
        Ok(())
    }
}

#[test]
fn read_into_runs_a_hand_written_decode_with_no_lock_held() {
    let _w = watchdog(Duration::from_secs(30));
    let server = std::sync::Arc::new(
        testing::start_server(OneClientServer::builder().read_timeout(Some(WAIT))).expect("server"),
    );
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    peer.write_all(b"\x07line\r\n").expect("raw write");
    let mut value = Chained {
        server: server.clone(),
        first: 0,
        next_line: None,
    };
    server.read_into(&mut value).expect("read_into");
    assert_eq!((value.first, value.next_line.as_deref()), (7, Some("line")));
}
