//! B16 over a real connection: write_from / read_into produce and consume
//! exactly the bytes of tests/data/structs.json, both ways; B12 for structs;
//! invalid struct bytes; a hand-written `BinaryStruct`.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

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

    /// A record whose bytes can be invalid: a bool byte other than 0 or 1.
    #[derive(Debug, Default, PartialEq)]
    #[byte_order(big)]
    struct Flagged { flag: bool, count: u32 }
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
fn b16_write_from_mixes_types_in_one_write() {
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
    server.write_from(&[&a, &b]).expect("write_from");
    assert_eq!(server.stats().frames_written, 1, "one write for both");
    assert_eq!(
        server.stats().bytes_written as usize,
        ShortStruct::SIZE + Telemetry::SIZE
    );
    let mut got_a = ShortStruct::default();
    client.read_into(&mut got_a).expect("first");
    let mut got_b = Telemetry::default();
    client.read_into(&mut got_b).expect("second");
    assert_eq!((got_a, got_b), (a, b));
}

/// `try_read_into` returns false while only part of a struct has arrived,
/// keeping those bytes, and true with the whole value once the rest is in.
#[test]
fn b16_try_read_into_waits_for_all_of_the_struct_and_keeps_a_partial_one() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server");
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("connected");
    let sent = Telemetry {
        flag: true,
        counter: 9,
        position: [1.0, 2.0, 3.0],
        status: -1,
        code: 7,
    };
    let mut wire = Vec::new();
    sent.encode(&mut wire);
    let mut got = Telemetry::default();
    assert!(!server.try_read_into(&mut got).expect("nothing yet"));

    // The first part: false each time, until the link has surely taken
    // every byte of it from the socket (counted as read, not as a frame).
    let (head, tail) = wire.split_at(Telemetry::SIZE - 5);
    peer.write_all(head).expect("part of a struct");
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            !server.try_read_into(&mut got).expect("try_read_into"),
            "true with {} of {} bytes",
            server.stats().bytes_read,
            Telemetry::SIZE
        );
        if server.stats().bytes_read == head.len() as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "the bytes never arrived");
        thread::yield_now();
    }
    assert_eq!(got, Telemetry::default(), "a partial struct was decoded");
    assert_eq!(server.stats().frames_read, 0);

    // The rest: true once it is in, with the value the bytes of both
    // parts make.
    peer.write_all(tail).expect("the rest");
    let deadline = Instant::now() + WAIT;
    while !server.try_read_into(&mut got).expect("try_read_into") {
        assert!(Instant::now() < deadline, "the struct never came whole");
        thread::yield_now();
    }
    assert_eq!(got, sent);
    let stats = server.stats();
    assert_eq!(
        (stats.frames_read, stats.bytes_read),
        (1, Telemetry::SIZE as u64)
    );
    assert!(!server.try_read_into(&mut got).expect("nothing more"));
}

/// End of file inside a struct (B12; the error's details for every read
/// kind are in data.rs): the struct read before is whole, the one cut
/// short is left as it was.
#[test]
fn b12_half_a_struct_at_eof_leaves_the_struct_as_it_was() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let server =
        testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))
            .expect("server");
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    let sent = ShortStruct {
        ushort_0: 1,
        int64_0: -2,
        double_0: 3.5,
        float_0: 4.25,
    };
    let mut wire = Vec::new();
    sent.encode(&mut wire);
    wire.extend_from_slice(&wire.clone()[..ShortStruct::SIZE - 1]);
    peer.write_all(&wire)
        .expect("one struct and all but a byte of the next");
    drop(peer);
    let mut value = ShortStruct::default();
    server.read_into(&mut value).expect("the whole struct");
    assert_eq!(value, sent);
    match server.read_into(&mut value) {
        Err(Error::IncompleteRead(e)) => {
            assert_eq!(e.partial, &wire[ShortStruct::SIZE..]);
            assert_eq!(e.expected, Some(ShortStruct::SIZE));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(value, sent, "a failed read leaves the struct as it was");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}

#[test]
fn invalid_struct_bytes_are_an_error_with_the_bytes_and_the_link_survives() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = support::served("invalid-struct", &calls);
    let bad = [2u8, 0, 0, 0, 9];
    let good = [1u8, 0, 0, 1, 0];
    peer.write_all(&[&bad[..], &good[..]].concat())
        .expect("send");
    let mut got = Flagged::default();
    match server.read_into(&mut got) {
        Err(Error::InvalidStruct(e12)) => {
            let bytes = e12.bytes;
            assert_eq!(bytes, bad)
        }
        other => panic!("expected InvalidStruct, got {other:?}"),
    }
    assert_eq!(got, Flagged::default(), "an invalid record changes nothing");
    assert!(server.connected(), "an invalid record leaves the link open");
    server.read_into(&mut got).expect("the next record");
    assert_eq!(
        got,
        Flagged {
            flag: true,
            count: 256
        }
    );
    server.write_from(&[&got, &got]).expect("write two records");
    let mut echo = [0u8; 10];
    peer.read_exact(&mut echo).expect("two records");
    assert_eq!(echo, [good, good].concat()[..]);
    calls.assert_no_more(Duration::ZERO);
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
