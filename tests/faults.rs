//! Fault injection.
//!
//! Peer faults: a reset mid-frame (either side), a half-close after a
//! partial frame (every read kind), a peer that sends and closes before it
//! is even taken, a peer that trickles one byte every 10 ms, 10 MiB with no
//! terminator, undecodable text, invalid JSON, invalid and half binary
//! structs, a peer that stops reading (back-pressure, write timeout), a
//! client that reconnects the moment the old one dropped (B4), a busy
//! server that turns a reconnecting client away.
//!
//! User faults: a callback that panics, a read-loop handler that panics,
//! `close()` from inside the callback, `close()` from eight threads at once
//! (also while the callback runs), `close()`/`close_client()` while threads
//! are blocked in a read and in a write on a full send buffer, dropping
//! without `close()`, `read_exact` of a huge count.
//!
//! Tests named `bug_*` show a bug in src/ and fail until it is fixed; each
//! says where and why.
//!
//! No sleep synchronises anything. The only sleeps are the trickling
//! peer's (its behaviour under test); `QUIET` and a few bounded windows
//! only assert that something does NOT happen (or count what happens in
//! them). Tests that measure the whole process (threads, descriptors,
//! resident memory) or load the CPU take [`exclusive`], the others
//! [`shared`], so no other test of this file runs beside them.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, RecvTimeoutError};
use socket2::SockRef;
use support::{
    all_threads, crate_threads, expect_eof, init_log, logged, open_fds, raw_client, recv_line,
    send_line, settles_to, thread_names, vm_rss_bytes, watchdog, WAIT,
};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// Window for asserting that nothing happens; never waited on as "enough".
const QUIET: Duration = Duration::from_millis(300);

const MIB: usize = 1 << 20;

// ------------------------------------------------------------ process figures

static PROCESS: RwLock<()> = RwLock::new(());

/// Held by tests that do not measure the process: they may run together.
fn shared() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by tests that measure threads, descriptors or memory: nothing else
/// of this file runs meanwhile.
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------ helpers

/// A server on 127.0.0.1:0 named `name`, with `calls` as its callback, a
/// raw peer it has taken, and a read timeout of [`WAIT`] so that a broken
/// read fails instead of hanging.
fn served(name: &str, calls: &CallbackRecorder) -> (OneClientServer, TcpStream) {
    let builder = OneClientServer::builder()
        .name(name)
        .connect_callback(calls.callback());
    let server = testing::start_server(builder).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("peer taken");
    calls.assert_next_connected(true, WAIT);
    server.set_read_timeout(Some(WAIT));
    (server, peer)
}

/// A new raw peer is taken and served both ways.
fn serves_next_peer(server: &OneClientServer, calls: &CallbackRecorder, tag: &str) {
    let mut next = raw_client(server);
    server.wait_connected(WAIT).expect("next peer taken");
    calls.assert_next_connected(true, WAIT);
    send_line(&mut next, &format!("to server {tag}"));
    assert_eq!(
        server.read_str().expect("server reads"),
        format!("to server {tag}")
    );
    server
        .write_str(&format!("to peer {tag}"))
        .expect("server writes");
    assert_eq!(recv_line(&mut next), format!("to peer {tag}"));
}

fn set_linger_zero(stream: &TcpStream) {
    SockRef::from(stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
}

/// A 22-byte packed record (u16, u32, u64, f64 little endian), written by
/// hand so this file does not depend on the `binary_struct!` macro.
#[derive(Debug, Default, PartialEq)]
struct Record22 {
    a: u16,
    b: u32,
    c: u64,
    d: f64,
}

impl BinaryStruct for Record22 {
    fn size(&self) -> usize {
        22
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.a.to_le_bytes());
        out.extend_from_slice(&self.b.to_le_bytes());
        out.extend_from_slice(&self.c.to_le_bytes());
        out.extend_from_slice(&self.d.to_le_bytes());
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<()> {
        assert_eq!(bytes.len(), 22, "decode is only called with a whole record");
        self.a = u16::from_le_bytes(bytes[0..2].try_into().unwrap());
        self.b = u32::from_le_bytes(bytes[2..6].try_into().unwrap());
        self.c = u64::from_le_bytes(bytes[6..14].try_into().unwrap());
        self.d = f64::from_le_bytes(bytes[14..22].try_into().unwrap());
        Ok(())
    }
}

// ------------------------------------------------------------ peer faults

#[test]
fn peer_reset_mid_frame_is_a_connection_error_and_the_next_client_is_served() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("reset-mid-frame", &calls);
    peer.write_all(b"partial li").expect("partial line");
    set_linger_zero(&peer);
    drop(peer); // RST, not FIN
    let err = server.read_str().expect_err("a reset is no line");
    assert!(err.is_connection_error(), "not a connection error: {err:?}");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert!(
        server.should_be_connected(),
        "the peer went away; we did not close"
    );
    serves_next_peer(&server, &calls, "after reset");
}

#[test]
fn client_sees_a_server_reset_mid_frame_as_a_connection_error() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let listener = TcpListener::bind((LOCALHOST_IPV4, 0)).expect("raw listener");
    let port = listener.local_addr().unwrap().port();
    let calls = CallbackRecorder::new();
    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(port)
        .connect_callback(calls.callback())
        .connect()
        .expect("client connects");
    calls.assert_next_connected(true, WAIT);
    client.set_read_timeout(Some(WAIT));
    let (mut raw, _) = listener.accept().expect("accept");
    raw.write_all(b"half a li").expect("partial line");
    set_linger_zero(&raw);
    drop(raw);
    let err = client.read_str().expect_err("a reset is no line");
    assert!(err.is_connection_error(), "not a connection error: {err:?}");
    calls.assert_next_connected(false, WAIT);
    assert!(!client.connected());
}

#[test]
fn peer_half_close_after_a_partial_line_is_an_incomplete_read_with_the_bytes() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("half-close", &calls);
    peer.write_all(b"no terminator here").expect("partial line");
    peer.shutdown(Shutdown::Write).expect("half-close");
    match server.read_str() {
        Err(Error::IncompleteRead(e1)) => {
            let partial = e1.partial;
            let expected = e1.expected;
            assert_eq!(partial, b"no terminator here");
            assert_eq!(expected, None);
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    // The server closed its side in turn: the half-closed peer sees EOF.
    expect_eof(&mut peer);
    serves_next_peer(&server, &calls, "after half-close");
}

/// B12 for every read kind: end of file inside the frame hands back the
/// partial bytes and closes the client; `read_line` returns them instead.
#[test]
fn peer_half_close_mid_frame_for_every_read_kind() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let builder = OneClientServer::builder()
        .name("half-close-kinds")
        .connect_callback(calls.callback());
    let server = testing::start_server(builder).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    type Kind = (&'static str, fn(&OneClientServer) -> Result<Vec<u8>>);
    let kinds: [Kind; 5] = [
        ("read_str", |s| s.read_str().map(String::into_bytes)),
        ("read_json", |s| {
            s.read_json::<serde_json::Value>()
                .map(|v| v.to_string().into_bytes())
        }),
        ("read_until", |s| s.read_until(b"END")),
        ("read_exact", |s| s.read_exact(100)),
        ("read_into", |s| {
            s.read_into(&mut Record22::default()).map(|()| Vec::new())
        }),
    ];
    for (what, read) in kinds {
        let mut peer = raw_client(&server);
        server.wait_connected(WAIT).expect("taken");
        calls.assert_next_connected(true, WAIT);
        peer.write_all(b"{\"cut\": 1").expect("partial frame");
        peer.shutdown(Shutdown::Write).expect("half-close");
        match read(&server) {
            Err(Error::IncompleteRead(e2)) => {
                let partial = e2.partial;
                assert_eq!(partial, b"{\"cut\": 1", "{what}")
            }
            other => panic!("{what}: expected IncompleteRead, got {other:?}"),
        }
        calls.assert_next_connected(false, WAIT);
        expect_eof(&mut peer);
    }
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("taken");
    calls.assert_next_connected(true, WAIT);
    peer.write_all(b"whole\npartial")
        .expect("a line and a half");
    peer.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(server.read_line().expect("line"), b"whole\n");
    assert_eq!(server.read_line().expect("partial line at EOF"), b"partial");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}

/// B11: bytes sent by a peer that closed before the server even took it
/// are still read, and the disconnect comes once they are consumed.
#[test]
fn peer_that_sends_and_closes_at_once_is_still_read_in_full() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let builder = OneClientServer::builder()
        .name("send-and-go")
        .connect_callback(calls.callback());
    let server = testing::start_server(builder).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    for round in 0..20 {
        let mut peer = raw_client(&server);
        peer.write_all(format!("early {round}\r\nlate partial").as_bytes())
            .expect("send");
        drop(peer);
        server
            .wait_connected(WAIT)
            .expect("taken despite having gone");
        calls.assert_next_connected(true, WAIT);
        assert_eq!(
            server.read_str().expect("the whole line"),
            format!("early {round}")
        );
        match server.read_str() {
            Err(Error::IncompleteRead(e3)) => {
                let partial = e3.partial;
                assert_eq!(partial, b"late partial")
            }
            other => panic!("round {round}: expected IncompleteRead, got {other:?}"),
        }
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected());
    }
}

/// A write cut short by the write timeout after part of the frame went out
/// leaves the stream corrupt: the link ends (ConnectionLost). One that sent
/// nothing is a plain Timeout and the link stays.
#[test]
fn write_timeout_on_a_peer_that_stops_reading_is_lost_link_or_timeout() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, _peer) = served("write-timeout", &calls);
    server.set_write_timeout(Some(Duration::from_millis(50)));
    let block = vec![b'w'; MIB];
    let mut blocks = 0;
    let err = loop {
        match server.write(&block) {
            Ok(()) => blocks += 1,
            Err(e) => break e,
        }
        assert!(blocks < 256, "a peer that never reads took {blocks} MiB");
    };
    match err {
        Error::ConnectionLost(ref io) => {
            assert!(io.to_string().contains("write timed out"), "{io}");
            calls.assert_next_connected(false, WAIT);
            assert!(!server.connected());
            assert!(matches!(server.write(b"x"), Err(Error::NotConnected)));
        }
        Error::Timeout => {
            assert!(
                server.connected(),
                "a write that sent nothing leaves the link"
            );
            calls.assert_no_more(Duration::ZERO);
        }
        other => panic!("after {blocks} MiB: {other:?}"),
    }
}

#[test]
fn peer_trickling_one_byte_every_10_ms_still_gives_whole_frames() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("trickle", &calls);
    let line = "twenty bytes, slowly";
    let json = r#"{"slow":[1,2.5,"x"]}"#;
    let wire = format!("{line}\r\n{json}\r\n");
    let trickler = thread::spawn(move || {
        for byte in wire.as_bytes() {
            peer.write_all(&[*byte]).expect("one byte");
            peer.flush().expect("flush");
            // The peer's behaviour under test, not synchronisation.
            thread::sleep(Duration::from_millis(10));
        }
        peer
    });
    assert_eq!(server.read_str().expect("whole line"), line);
    let value: serde_json::Value = server.read_json().expect("whole JSON line");
    assert_eq!(value, serde_json::json!({"slow": [1, 2.5, "x"]}));
    let mut peer = trickler.join().expect("trickler");
    assert!(server.connected(), "a slow peer is not a dropped one");
    server.write_str("got it").expect("reply");
    assert_eq!(recv_line(&mut peer), "got it");
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn endless_line_of_10_mib_overruns_without_growing_memory_and_the_link_survives() {
    let _g = exclusive();
    let _w = watchdog(Duration::from_secs(60));
    const ENDLESS: usize = 10 * MIB;
    let calls = CallbackRecorder::new();
    let (server, peer) = served("endless-line", &calls);
    let rss_before = vm_rss_bytes();
    let writer = thread::spawn(move || {
        let mut peer = peer;
        // A small block sent over and over: the peer itself holds no 10 MiB.
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..ENDLESS / block.len() {
            peer.write_all(&block).expect("endless line");
        }
        peer.write_all(b"\r\nafter\r\n").expect("then two lines");
        assert_eq!(recv_line(&mut peer), "still here");
        // Handed back, not dropped: its end of file would race the check
        // that no callback came.
        peer
    });
    match server.read_str() {
        Err(Error::LimitOverrun(e4)) => {
            let limit = e4.limit;
            let buffered = e4.buffered;
            assert_eq!(limit, DEFAULT_READ_LIMIT);
            assert!(
                buffered >= limit,
                "gave up with only {buffered} bytes buffered"
            );
        }
        other => panic!("expected LimitOverrun, got {other:?}"),
    }
    assert!(server.connected(), "an overrun leaves the connection open");
    // Nothing consumed: the same read overruns again.
    assert!(matches!(server.read_str(), Err(Error::LimitOverrun(_))));
    let grown = vm_rss_bytes().saturating_sub(rss_before);
    println!(
        "endless line: VmRSS grew by {} KiB at the overrun",
        grown / 1024
    );
    assert!(
        grown < 8 * MIB,
        "VmRSS grew by {grown} bytes on an endless line"
    );
    // The bytes are all there, in order; draining them keeps memory flat.
    let mut left = ENDLESS;
    while left > 0 {
        let got = server.read(left.min(64 * 1024)).expect("drain");
        assert!(!got.is_empty(), "EOF with {left} bytes of the line unread");
        assert!(
            got.iter().all(|&b| b == b'x'),
            "foreign bytes in the endless line"
        );
        left -= got.len();
    }
    let grown = vm_rss_bytes().saturating_sub(rss_before);
    println!(
        "endless line: VmRSS grew by {} KiB after draining 10 MiB",
        grown / 1024
    );
    assert!(
        grown < 8 * MIB,
        "VmRSS grew by {grown} bytes draining the endless line"
    );
    assert_eq!(server.read_str().expect("the line's end"), "");
    assert_eq!(server.read_str().expect("the next line"), "after");
    server.write_str("still here").expect("reply");
    let peer = writer.join().expect("writer");
    calls.assert_no_more(Duration::ZERO);
    drop(peer);
}

#[test]
fn undecodable_text_is_a_decode_error_with_the_bytes_and_the_link_survives() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("bad-text", &calls);
    let cases: [(Encoding, &[u8]); 5] = [
        (Encoding::Utf8, b"caf\xe9 \xff"),
        (Encoding::Utf8, b"\xed\xa0\x80 surrogate"),
        (Encoding::Ascii, b"plain \x80"),
        (Encoding::Utf16Le, b"a\x00\x00\xd8"),
        (Encoding::Utf32Be, b"\x00\x11\x00\x00"),
    ];
    for (encoding, bad) in cases {
        server.set_encoding(encoding);
        let mut wire = bad.to_vec();
        wire.extend_from_slice(b"\r\n");
        Encoding::encode_into(encoding, "clean", &mut wire).expect("encodes");
        wire.extend_from_slice(b"\r\n");
        peer.write_all(&wire).expect("send");
        match server.read_str() {
            Err(Error::Decode(e6)) => {
                let bytes = e6.bytes;
                let e = e6.encoding;
                assert_eq!(bytes, bad, "{encoding}");
                assert_eq!(e, encoding);
            }
            other => panic!("{encoding}: expected Decode, got {other:?}"),
        }
        assert!(
            server.connected(),
            "{encoding}: a decode error leaves the link open"
        );
        assert_eq!(
            server.read_str().expect("the next line"),
            "clean",
            "{encoding}"
        );
    }
    server.set_encoding(Encoding::Utf8);
    server.write_str("ok").expect("reply");
    assert_eq!(recv_line(&mut peer), "ok");
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn invalid_json_is_a_json_error_with_the_line_and_the_link_survives() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("bad-json", &calls);
    for bad in [
        r#"{"a": 1,}"#,
        "NaN",
        "[1, 2",
        r#"{"k": "v" "w"}"#,
        "",
        r#""tab	\ud800""#,
    ] {
        send_line(&mut peer, bad);
        send_line(&mut peer, r#"{"ok":true}"#);
        match server.read_json::<serde_json::Value>() {
            Err(err @ Error::Json(_)) => {
                let Error::Json(e8) = &err else {
                    unreachable!()
                };
                let line = &e8.line;
                assert_eq!(line, bad);
                assert!(
                    err.to_string().contains(bad),
                    "message {err} lacks the line {bad:?}"
                );
                assert!(!err.is_connection_error());
            }
            other => panic!("{bad:?}: expected Json error, got {other:?}"),
        }
        let ok: serde_json::Value = server.read_json().expect("the next line parses");
        assert_eq!(ok, serde_json::json!({"ok": true}));
    }
    assert!(server.connected());
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn half_a_struct_then_close_is_an_incomplete_read_with_the_partial_bytes() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("half-struct", &calls);
    let sent = Record22 {
        a: 0x0102,
        b: 0x0304_0506,
        c: 7,
        d: -1.5,
    };
    // A whole record first: the framing of read_into works.
    let mut wire = Vec::new();
    sent.encode(&mut wire);
    peer.write_all(&wire).expect("whole record");
    let mut got = Record22::default();
    server.read_into(&mut got).expect("whole record");
    assert_eq!(got, sent);
    // Then half of one, and the peer closes.
    peer.write_all(&wire[..11]).expect("half a record");
    drop(peer);
    match server.read_into(&mut got) {
        Err(Error::IncompleteRead(e9)) => {
            let partial = e9.partial;
            let expected = e9.expected;
            assert_eq!(partial, &wire[..11]);
            assert_eq!(expected, Some(22));
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    calls.assert_next_connected(false, WAIT);
    // The same with read_exact.
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("taken");
    calls.assert_next_connected(true, WAIT);
    peer.write_all(&wire[..11]).expect("half a record");
    drop(peer);
    match server.read_exact(22) {
        Err(Error::IncompleteRead(e10)) => {
            let partial = e10.partial;
            let expected = e10.expected;
            assert_eq!(partial, &wire[..11]);
            assert_eq!(expected, Some(22));
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}

ts_tcpip::binary_struct! {
    /// The same 22 bytes as [`Record22`], declared with the crate's macro.
    #[derive(Debug, Default, PartialEq)]
    #[byte_order(little)]
    struct Macro22 { a: u16, b: u32, c: u64, d: f64 }

    /// A record whose bytes can be invalid: a bool byte other than 0 or 1.
    #[derive(Debug, Default, PartialEq)]
    #[byte_order(big)]
    struct Flagged { flag: bool, count: u32 }
}

#[test]
fn half_a_macro_struct_then_close_is_an_incomplete_read_with_the_partial_bytes() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("half-macro-struct", &calls);
    assert_eq!(Macro22::SIZE, 22);
    let sent = Macro22 {
        a: 1,
        b: 2,
        c: 3,
        d: 4.5,
    };
    let mut wire = Vec::new();
    sent.encode(&mut wire);
    let mut hand = Vec::new();
    Record22 {
        a: 1,
        b: 2,
        c: 3,
        d: 4.5,
    }
    .encode(&mut hand);
    assert_eq!(wire, hand, "the macro packs like ctypes with _pack_ = 1");
    wire.extend_from_slice(&hand[..21]);
    peer.write_all(&wire)
        .expect("one record and 21 bytes of the next");
    drop(peer);
    let mut got = Macro22::default();
    server.read_into(&mut got).expect("whole record");
    assert_eq!(got, sent);
    match server.read_into(&mut got) {
        Err(Error::IncompleteRead(e11)) => {
            let partial = e11.partial;
            let expected = e11.expected;
            assert_eq!(partial, &hand[..21]);
            assert_eq!(expected, Some(22));
        }
        other => panic!("expected IncompleteRead, got {other:?}"),
    }
    assert_eq!(got, sent, "a failed read leaves the struct as it was");
    calls.assert_next_connected(false, WAIT);
}

#[test]
fn invalid_struct_bytes_are_an_error_with_the_bytes_and_the_link_survives() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("invalid-struct", &calls);
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

// ------------------------------------------------------------ user faults

#[test]
fn panicking_callback_is_contained_and_the_next_change_still_gets_its_call() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let (tx, calls) = unbounded();
    let builder = OneClientServer::builder()
        .name("cb-panics")
        .connect_callback(move |_, connected| {
            tx.send(connected).expect("recorder");
            panic!("deliberate panic in the connect callback (connected={connected})");
        });
    let server = testing::start_server(builder).expect("server starts");
    server.set_read_timeout(Some(WAIT));
    let next = || calls.recv_timeout(WAIT).expect("a callback call");
    for round in 0..3 {
        let client = testing::connect_client(&server, true).expect("client");
        assert!(next(), "round {round}: true");
        client.set_read_timeout(Some(WAIT));
        client.write_str("ping").expect("write");
        assert_eq!(server.read_str().expect("read"), "ping");
        server.write_str("pong").expect("write");
        assert_eq!(client.read_str().expect("read"), "pong");
        drop(client);
        assert!(!next(), "round {round}: false");
    }
    server.close();
    assert!(
        calls.try_recv().is_err(),
        "no call after close: the last was false"
    );
    assert!(
        logged(&["cb-panics", "panicked"]),
        "the panic was not logged"
    );
}

#[test]
fn close_from_inside_the_callback_does_not_deadlock() {
    let _g = exclusive();
    let _w = watchdog(Duration::from_secs(30));
    let base = crate_threads();
    {
        let calls = CallbackRecorder::new();
        let mut record = calls.callback();
        let builder = OneClientServer::builder()
            .name("cb-closes")
            .connect_callback(move |server: &OneClientServer, connected| {
                record(server, connected);
                if connected {
                    server.close();
                    assert!(server.is_closed());
                }
            });
        let server = testing::start_server(builder).expect("server starts");
        let addr = server.local_addrs()[0];
        let mut peer = raw_client(&server);
        calls.assert_next_connected(true, WAIT);
        // `false` is delivered after the `true` call, and so after the
        // close() inside it returned.
        calls.assert_next_connected(false, WAIT);
        assert!(server.is_closed());
        assert!(!server.connected());
        expect_eof(&mut peer);
        let rebound = TcpListener::bind(addr);
        assert!(
            rebound.is_ok(),
            "port still taken after close() in the callback: {rebound:?}"
        );
        drop(rebound);
        assert!(matches!(server.read_str(), Err(Error::NotConnected)));
        drop(server); // joins the callback thread
        calls.assert_no_more(Duration::ZERO);
    }
    {
        // The client's callback closes its client.
        let server = testing::start_server(OneClientServer::builder().name("cb-closes-srv"))
            .expect("server");
        let calls = CallbackRecorder::new();
        let mut record = calls.callback();
        let client = testing::client_for(&server)
            .name("cb-closes-client")
            .heartbeat(Some(Duration::from_millis(5)))
            .connect_callback(move |client: &Client, connected| {
                record(client, connected);
                if connected {
                    client.close();
                }
            })
            .connect()
            .expect("client connects");
        calls.assert_next_connected(true, WAIT);
        calls.assert_next_connected(false, WAIT);
        assert!(client.is_closed());
        assert!(!client.should_be_connected());
        assert!(matches!(client.write_str("x"), Err(Error::NotConnected)));
        drop(client);
        drop(server);
    }
    assert_eq!(
        settles_to(base, crate_threads),
        base,
        "crate threads left: {:?}",
        thread_names()
    );
}

#[test]
fn close_from_eight_threads_at_once_closes_once_and_releases_everyone() {
    let _g = exclusive();
    let _w = watchdog(Duration::from_secs(30));
    let (threads_before, fds_before) = (crate_threads(), open_fds());
    {
        let calls = CallbackRecorder::new();
        let builder = OneClientServer::builder()
            .name("close-x8")
            .connect_callback(calls.callback());
        let server = testing::start_server(builder).expect("server starts");
        let addr = server.local_addrs()[0];
        let client = testing::connect_client(&server, true).expect("client");
        calls.assert_next_connected(true, WAIT);
        let events = server.events();
        let barrier = Barrier::new(9);
        thread::scope(|s| {
            let reader = s.spawn(|| {
                barrier.wait();
                server.read_str()
            });
            let closers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        server.close();
                        assert!(server.is_closed());
                        assert!(!server.connected());
                    })
                })
                .collect();
            for closer in closers {
                closer.join().expect("close() did not panic");
            }
            let read = reader.join().expect("reader did not panic");
            assert!(
                read.as_ref().is_err_and(Error::is_connection_error),
                "blocked read: {read:?}"
            );
        });
        // Exactly one disconnect, one `false`.
        assert!(matches!(
            events.recv_timeout(WAIT),
            Ok(ConnectionEvent::Disconnected { .. })
        ));
        assert!(events.try_recv().is_err(), "more than one event");
        assert_eq!(calls.drain(), [false]);
        assert_eq!(server.stats().disconnects, 1);
        assert!(client.read_str().is_err(), "the client sees the close");
        let refused = TcpStream::connect_timeout(&addr, WAIT);
        assert!(refused.is_err(), "the listener still takes connections");
        assert!(matches!(
            server.wait_connected(WAIT),
            Err(Error::NotConnected)
        ));
    }
    assert_eq!(
        settles_to(threads_before, crate_threads),
        threads_before,
        "{:?}",
        thread_names()
    );
    assert_eq!(
        settles_to(fds_before, open_fds),
        fds_before,
        "descriptors leaked"
    );
}

/// Calls `close` from eight threads at once (a barrier) while the connect
/// callback is busy, and panics if any of them returns before the
/// callback has finished: B7 and 1b say close() joins every background
/// thread, waiting for a running callback, and a close() that returns
/// while the callback still runs breaks that for its caller.
fn concurrent_closes_wait_for_the_callback(
    close: impl Fn() + Sync,
    release: crossbeam_channel::Sender<()>,
    finished: &AtomicBool,
) {
    let (returned_tx, returned) = unbounded();
    let barrier = Barrier::new(8);
    thread::scope(|s| {
        for i in 0..8 {
            let (close, barrier, returned_tx) = (&close, &barrier, returned_tx.clone());
            s.spawn(move || {
                barrier.wait();
                close();
                let _ = returned_tx.send((i, finished.load(Ordering::SeqCst)));
            });
        }
        // While the callback runs no close() may return; the window only
        // has to be long enough to see one return early, which a broken
        // close() does at once.
        let early: Vec<usize> = match returned.recv_timeout(QUIET) {
            Ok((i, _)) => std::iter::once(i)
                .chain(returned.try_iter().map(|(i, _)| i))
                .collect(),
            Err(_) => Vec::new(),
        };
        drop(release);
        assert!(
            early.is_empty(),
            "at least {} of 8 concurrent close() calls (threads {early:?}) returned while the connect \
             callback was still running: only the close() that took the thread handles joins them",
            early.len()
        );
    });
    let late: Vec<(usize, bool)> = returned.try_iter().collect();
    assert!(
        late.iter().all(|&(_, done)| done),
        "returned before the callback ended: {late:?}"
    );
}

/// A connect callback that reports it started, then stays busy until
/// released (or, at worst, for [`WAIT`]).
type BusyCallback = (
    crossbeam_channel::Receiver<()>,
    crossbeam_channel::Sender<()>,
    Arc<AtomicBool>,
);

fn busy_callback() -> (BusyCallback, impl Fn(bool) + Send + 'static) {
    let (entered_tx, entered) = bounded(1);
    let (release_tx, release) = bounded::<()>(0);
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let callback = move |connected: bool| {
        if connected {
            let _ = entered_tx.send(());
            let _ = release.recv_timeout(WAIT);
            done.store(true, Ordering::SeqCst);
        }
    };
    ((entered, release_tx, finished), callback)
}

/// B7, 1b: every one of eight concurrent `close()` calls returns only
/// once the running callback has ended. Regression test: this was a bug,
/// `Endpoint::join_threads` handed every thread handle to the first caller
/// and the seven others returned at once (fixed in 3a774f1).
#[test]
fn b7_concurrent_server_closes_all_wait_for_the_running_callback() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let ((entered, release, finished), callback) = busy_callback();
    let builder = OneClientServer::builder()
        .name("close-waits-cb")
        .connect_callback(move |_, connected| callback(connected));
    let server = testing::start_server(builder).expect("server starts");
    let _peer = raw_client(&server);
    entered.recv_timeout(WAIT).expect("the callback is running");
    concurrent_closes_wait_for_the_callback(|| server.close(), release, &finished);
}

/// 1b: "Client::close() joins its threads and waits for a running
/// callback, as the server's close() does", from eight threads at once.
/// Regression test for the same bug as the server's (fixed in 3a774f1).
#[test]
fn b7_concurrent_client_closes_all_wait_for_the_running_callback() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder().name("close-waits-cb-srv"))
        .expect("server");
    let ((entered, release, finished), callback) = busy_callback();
    let client = testing::client_for(&server)
        .name("close-waits-cb-client")
        .connect_callback(move |_, connected| callback(connected))
        .connect()
        .expect("client connects");
    entered.recv_timeout(WAIT).expect("the callback is running");
    concurrent_closes_wait_for_the_callback(|| client.close(), release, &finished);
}

/// Starts a reader blocked in `read_str` and a writer that writes 1 MiB
/// blocks to a peer that never reads until one blocks on the full send
/// buffer; then `close` must release both with a connection error.
fn blocked_read_and_write_are_released<L: Link + Sync>(link: &L, close: impl FnOnce(&L)) {
    link.set_read_timeout(None);
    link.set_write_timeout(None);
    let (progress_tx, progress) = unbounded();
    thread::scope(|s| {
        let reader = s.spawn(|| link.read_str());
        let writer = s.spawn(move || {
            let block = vec![b'w'; MIB];
            let mut blocks = 0usize;
            loop {
                match link.write(&block) {
                    Ok(()) => {
                        blocks += 1;
                        let _ = progress_tx.send(blocks);
                    }
                    Err(e) => return (blocks, e),
                }
            }
        });
        // The writer is blocked once its progress stops; the send buffers
        // of a loopback pair hold a few MiB at most.
        let deadline = Instant::now() + WAIT;
        let mut sent = 0;
        loop {
            match progress.recv_timeout(QUIET) {
                Ok(n) => sent = n,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the writer stopped after {sent} MiB")
                }
            }
            assert!(
                Instant::now() < deadline,
                "the writer never blocked: a peer that never reads took {sent} MiB"
            );
        }
        close(link);
        let read = reader.join().expect("reader did not panic");
        assert!(
            read.as_ref().is_err_and(Error::is_connection_error),
            "blocked read released with {read:?}"
        );
        let (blocks, err) = writer.join().expect("writer did not panic");
        assert!(
            err.is_connection_error(),
            "blocked write released with {err:?} after {blocks} MiB"
        );
    });
    assert!(!link.connected());
}

#[test]
fn server_close_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(40));
    let calls = CallbackRecorder::new();
    let (server, peer) = served("blocked-io-close", &calls);
    blocked_read_and_write_are_released(&server, OneClientServer::close);
    assert!(server.is_closed());
    calls.assert_next_connected(false, WAIT);
    drop(peer);
}

#[test]
fn server_close_client_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(40));
    let calls = CallbackRecorder::new();
    let (server, peer) = served("blocked-io-close-client", &calls);
    blocked_read_and_write_are_released(&server, OneClientServer::close_client);
    calls.assert_next_connected(false, WAIT);
    assert!(!server.is_closed());
    drop(peer);
    serves_next_peer(&server, &calls, "after close_client");
}

#[test]
fn client_close_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(40));
    // The server takes the client and never reads from it; the client's
    // heartbeat thread ends up blocked behind the writer too.
    let server = testing::start_server(OneClientServer::builder().name("blocked-io-client"))
        .expect("server");
    let client = testing::client_for(&server)
        .name("blocked-io-client")
        .heartbeat(Some(Duration::from_millis(1)))
        .connect()
        .expect("client");
    server.wait_connected(WAIT).expect("taken");
    blocked_read_and_write_are_released(&client, Client::close);
    assert!(client.is_closed());
    drop(server);
}

/// A connection that ended is closed once the drop is noticed, though
/// this side never reads or writes again: the read and write halves, which
/// stay bound to the connection they served last, let go of it.
#[test]
fn a_dropped_connection_is_closed_without_another_call() {
    let _g = exclusive();
    let _w = watchdog(Duration::from_secs(20));
    init_log();
    let server =
        testing::start_server(OneClientServer::builder().name("let-go")).expect("server starts");
    let events = server.events();
    let listening = open_fds();
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("taken");
    // Bind both halves to the connection.
    server.write_str("hello").expect("server writes");
    assert_eq!(server.try_read_str().expect("nothing to read"), None);
    drop(peer);
    loop {
        match events.recv_timeout(WAIT).expect("the drop is noticed") {
            ConnectionEvent::Disconnected { .. } => break,
            _ => continue,
        }
    }
    assert_eq!(
        settles_to(listening, open_fds),
        listening,
        "both ends of the dropped connection are closed"
    );
}

#[test]
fn drop_without_close_joins_every_thread_and_frees_every_descriptor() {
    let _g = exclusive();
    let _w = watchdog(Duration::from_secs(40));
    init_log();
    let (threads_before, all_before, fds_before) = (crate_threads(), all_threads(), open_fds());
    // The server skips the client's heartbeat lines.
    let exchange = |server: &OneClientServer, client: &Client| {
        server.set_read_timeout(Some(WAIT));
        client.set_read_timeout(Some(WAIT));
        client.write_str("ping").expect("client writes");
        let line = loop {
            match server.read_str().expect("server reads") {
                beat if beat.as_bytes() == HEARTBEAT => continue,
                line => break line,
            }
        };
        assert_eq!(line, "ping");
        server.write_str("pong").expect("server writes");
        assert_eq!(client.read_str().expect("client reads"), "pong");
    };
    let everything = |name: &str| {
        let server = testing::start_server(
            OneClientServer::builder()
                .name(name)
                .connect_callback(|_: &OneClientServer, _| {}),
        )
        .expect("server starts");
        let client = testing::client_for(&server)
            .name(name)
            .heartbeat(Some(Duration::from_millis(2)))
            .reconnect(Backoff {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            })
            .connect_callback(|_: &Client, _| {})
            .connect()
            .expect("client connects");
        server.wait_connected(WAIT).expect("taken");
        (server, client)
    };
    // Client dropped first, then the server.
    {
        let (server, client) = everything("drop-client-first");
        exchange(&server, &client);
        drop(client);
        drop(server);
    }
    // Server dropped first: the client is left to reconnect, in vain,
    // until it is dropped too.
    {
        let (server, client) = everything("drop-server-first");
        exchange(&server, &client);
        let events = client.events();
        drop(server);
        let lost = events.recv_timeout(WAIT).expect("the client notices");
        assert!(!lost.is_connected(), "{lost:?}");
        drop(client);
    }
    // The client closes while the server is reading on another thread.
    {
        let (server, client) = everything("drop-mid-read");
        thread::scope(|s| {
            let reading = s.spawn(|| loop {
                if let Err(e) = server.read_str() {
                    return e;
                }
            });
            client.close();
            let err = reading.join().expect("reader");
            assert!(err.is_connection_error(), "{err:?}");
        });
        drop(server);
        drop(client);
    }
    let threads_after = settles_to(threads_before, crate_threads);
    let fds_after = settles_to(fds_before, open_fds);
    let all_after = settles_to(all_before, all_threads);
    println!(
        "drop without close: crate threads {threads_before} -> {threads_after}, \
         all threads {all_before} -> {all_after}, fds {fds_before} -> {fds_after}"
    );
    assert_eq!(
        threads_after,
        threads_before,
        "crate threads left running: {:?}",
        thread_names()
    );
    assert_eq!(fds_after, fds_before, "descriptors leaked");
    assert!(
        !logged(&["drop-", "background thread panicked"]),
        "a background thread panicked"
    );
}

/// A write that cannot go out because the peer's window is full must not
/// be taken for a closed peer: the writer stays blocked (no error) until
/// the peer reads, and nothing is lost.
#[test]
fn slow_reader_peer_backpressure_loses_nothing() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("backpressure", &calls);
    const TOTAL: usize = 8 * MIB;
    thread::scope(|s| {
        let writer = s.spawn(|| {
            let block: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
            for _ in 0..TOTAL / block.len() {
                server.write(&block).expect("write under back-pressure");
            }
        });
        let mut got = vec![0u8; TOTAL];
        peer.read_exact(&mut got).expect("every byte");
        assert!(got
            .chunks(64 * 1024)
            .all(|c| c.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8)));
        writer.join().expect("writer");
    });
    assert!(server.connected());
    calls.assert_no_more(Duration::ZERO);
    match peer
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map(|()| peer.read(&mut [0u8; 1]))
    {
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("nothing more should arrive: {other:?}"),
    }
}

/// The scheduling state of one of this process's threads ('S': asleep,
/// as in a blocking `recv`; 'R': running).
#[cfg(target_os = "linux")]
fn task_state(tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// B4: a client that connects right after the old one dropped is
/// accepted even while a thread is still blocked in a read on the old
/// connection. Regression test: this was a bug, `Connection::is_dead`
/// (src/connection.rs then; `Endpoint::is_dead` now) answered "not dead"
/// whenever it could not take the reader lock, so `Endpoint::attach` turned the new client away before
/// the reader had run to see the end of file (fixed in ccef6e6).
///
/// To make the window reliable, the server's reader is put at SCHED_IDLE
/// and two threads spin while the old client drops and the new one
/// connects (for at most 20 ms, then the reader is let go), so the reader
/// wakes late; nothing sleeps. The old peer left nothing
/// unread, so this is B4's case: "connects after the old one dropped but
/// before the monitor noticed: accepted".
#[cfg(target_os = "linux")]
#[test]
fn b4_new_client_accepted_while_a_reader_wakes_on_the_dropped_one() {
    let _g = exclusive(); // the spinners would slow other tests down
    let _w = watchdog(Duration::from_secs(60));
    const ROUNDS: usize = 20;
    /// How long the reader is held back: far longer than a server takes
    /// to turn a client away, far shorter than any bound it may wait.
    const HOLD: Duration = Duration::from_millis(20);
    let server = testing::start_server(OneClientServer::builder().name("b4-blocked-reader"))
        .expect("server");
    let events = server.events();
    let spinning = AtomicBool::new(false);
    let (tid_tx, tid_rx) = bounded(1);
    let (spin_tx, spin_rx) = unbounded::<()>();
    let mut turned_away = 0;
    thread::scope(|s| {
        for _ in 0..2 {
            let (spin_rx, spinning) = (spin_rx.clone(), &spinning);
            s.spawn(move || {
                for () in spin_rx {
                    while spinning.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        s.spawn(|| {
            // SAFETY: a plain system call.
            tid_tx.send(unsafe { libc::gettid() }).expect("tid");
            // An echo loop, as a server's read loop would be.
            while !server.is_closed() {
                if server.wait_connected(Duration::from_millis(50)).is_ok() {
                    if let Ok(line) = server.read_str() {
                        let _ = server.write_str(&line);
                    }
                }
            }
        });
        let reader = tid_rx.recv_timeout(WAIT).expect("reader tid");
        // The reader at SCHED_IDLE while the spinners run wakes late.
        let hold_back = |on: bool| {
            let param = libc::sched_param { sched_priority: 0 };
            let policy = if on {
                libc::SCHED_IDLE
            } else {
                libc::SCHED_OTHER
            };
            // SAFETY: a plain system call about a thread of this process.
            let rc = unsafe { libc::sched_setscheduler(reader, policy, &param) };
            assert_eq!(rc, 0, "sched_setscheduler");
            spinning.store(on, Ordering::SeqCst);
            if on {
                spin_tx
                    .send(())
                    .and_then(|()| spin_tx.send(()))
                    .expect("spinners");
            }
        };
        for round in 0..ROUNDS {
            let mut old = raw_client(&server);
            send_line(&mut old, "old");
            assert_eq!(recv_line(&mut old), "old", "round {round}");
            // The reader is back in read_str, asleep in recv.
            let deadline = Instant::now() + WAIT;
            while task_state(reader) != 'S' {
                assert!(
                    Instant::now() < deadline,
                    "the reader never went back to its read"
                );
                thread::yield_now();
            }
            let rejected_before = server.stats().connections_rejected;
            while events.try_recv().is_ok() {}
            hold_back(true);
            let held = Instant::now();
            drop(old); // FIN: nothing left unread
            let mut new = raw_client(&server);
            let new_addr = new.local_addr().expect("addr");
            // Until the server has decided on the new client; the reader
            // is let go after HOLD, so a server that waits for it decides.
            let deadline = Instant::now() + WAIT;
            let mut holding = true;
            loop {
                if server.stats().connections_rejected > rejected_before {
                    break;
                }
                if events
                    .try_iter()
                    .any(|e| e == ConnectionEvent::Connected { peer: new_addr })
                {
                    break;
                }
                if holding && held.elapsed() >= HOLD {
                    hold_back(false);
                    holding = false;
                }
                assert!(Instant::now() < deadline, "no decision on the new client");
                thread::yield_now();
            }
            if holding {
                hold_back(false);
            }
            send_line(&mut new, "new");
            let mut echo = [0u8; 5];
            match new.read(&mut echo) {
                Ok(0) => turned_away += 1,
                Ok(_) => assert_eq!(&echo[..3], b"new"),
                Err(e) => panic!("round {round}: {e}"),
            }
            drop(new);
            let deadline = Instant::now() + WAIT;
            while server.connected() {
                assert!(Instant::now() < deadline, "the server never freed up");
                thread::yield_now();
            }
        }
        drop(spin_tx);
        server.close();
    });
    assert_eq!(
        turned_away, 0,
        "{turned_away} of {ROUNDS} clients that connected after the old one dropped (nothing \
         unread) were turned away because a reader was still blocked on the old connection"
    );
}

/// Regression (section 4, `ClientBuilder::reconnect`): a reconnecting client that
/// a busy `OneClientServer` turns away (the TCP connect succeeds, then end
/// of file at once) reconnects in a tight loop, thousands of times a
/// second, with no backoff: `reconnect::run` (src/reconnect.rs) restarts
/// the wait at `initial` and tries "at once" after every drop, and a
/// connect that succeeds counts as success even when the link is gone
/// the next moment. Each round is a callback pair, two events and a
/// warning in the server's log.
///
/// With `initial` 50 ms and `max` 400 ms, 500 ms allow about eight
/// attempts even with the jitter halving every wait; the bound is 20.
#[test]
fn reconnecting_client_turned_away_by_a_busy_server_backs_off() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    const WINDOW: Duration = Duration::from_millis(500);
    let server =
        testing::start_server(OneClientServer::builder().name("busy-server")).expect("server");
    let _served = testing::connect_client(&server, true).expect("the served client");
    let turned_away = testing::client_for(&server)
        .name("turned-away")
        .reconnect(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
        })
        .connect()
        .expect("the TCP connect itself succeeds");
    let events = turned_away.events();
    // An observation window, not synchronisation: count what happens in it.
    let started = Instant::now();
    let mut connects = 0;
    while let Some(left) = WINDOW.checked_sub(started.elapsed()) {
        match events.recv_timeout(left) {
            Ok(event) if event.is_connected() => connects += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let rejected = server.stats().connections_rejected;
    drop(turned_away);
    assert!(
        rejected <= 20,
        "a client turned away by a busy server reconnected {rejected} times in {WINDOW:?} \
         ({connects} connect events): no backoff between connects that end at once"
    );
}

/// Regression (user fault): a panic in a read-loop handler kills the read-loop
/// thread (`OneClientReadLoopServer::read_loop`, src/read_loop.rs, calls
/// `handler.read_and_dispatch` without `catch_unwind`). The client that
/// triggered it is never closed, and as a read-loop server has no monitor
/// the slot stays taken: every later client is turned away, while the
/// server still listens and looks healthy. A panic should be handled as
/// a handler error is (logged, client closed, next client served), as a
/// callback's panic is, and as Python's read_loop treats any exception.
#[test]
fn read_loop_handler_panic_closes_the_client_and_the_next_is_served() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    init_log();
    let server = OneClientReadLoopServer::builder()
        .name("rl-panics")
        .host(LOCALHOST_IPV4)
        .port(0)
        .start(|s: &OneClientReadLoopServer| -> Result<()> {
            let line = s.read_str()?;
            if line == "boom" {
                panic!("deliberate panic in read_and_dispatch");
            }
            s.write_str(&line)
        })
        .expect("read-loop server starts");
    let events = server.events();
    let mut first = raw_client(&server);
    send_line(&mut first, "ping");
    assert_eq!(recv_line(&mut first), "ping");
    assert!(matches!(
        events.recv_timeout(WAIT),
        Ok(ConnectionEvent::Connected { .. })
    ));
    send_line(&mut first, "boom");
    // A bound for something that takes microseconds when it happens.
    let closed = events.recv_timeout(Duration::from_secs(3));
    assert!(
        matches!(closed, Ok(ConnectionEvent::Disconnected { .. })),
        "the client whose message made the handler panic was never closed ({closed:?}); \
         the read loop is dead"
    );
    expect_eof(&mut first);
    let mut second = raw_client(&server);
    send_line(&mut second, "ping 2");
    assert_eq!(
        recv_line(&mut second),
        "ping 2",
        "the next client is served"
    );
}

/// Regression (robustness): `read_exact(n)` allocates `n` bytes up front
/// (`Vec::with_capacity(n)` in `FrameReader::read_exact`, src/frame.rs),
/// so a huge count, such as a corrupt 64-bit length prefix from the peer,
/// panics ("capacity overflow", for n > isize::MAX) or aborts the whole
/// process (allocation failure: `read_exact(1 << 44)` dies with SIGABRT),
/// where Python's `readexactly` just waits and ends in
/// `IncompleteReadError`. Expected: the bytes that came, at end of file.
#[test]
fn read_exact_of_a_huge_count_is_an_incomplete_read_not_a_panic() {
    let _g = shared();
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("huge-read-exact", &calls);
    peer.write_all(b"0123456789").expect("ten bytes");
    drop(peer);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.read_exact(usize::MAX)
    }));
    match read {
        Ok(Err(Error::IncompleteRead(e13))) => {
            let partial = e13.partial;
            let expected = e13.expected;
            assert_eq!(partial, b"0123456789");
            assert_eq!(expected, Some(usize::MAX));
        }
        Ok(other) => panic!("expected IncompleteRead, got {other:?}"),
        Err(_) => panic!(
            "read_exact(usize::MAX) panicked inside the crate instead of reading to end of file"
        ),
    }
}
