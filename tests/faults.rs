//! What a peer can do to a link, beyond what the behaviour files cover:
//! reset the connection mid-frame (either end), stop reading (a write
//! timeout; back-pressure), send one byte at a time, send an endless line.
//! Half-closes and closes mid-frame are B11/B12 (data.rs); undecodable
//! text, invalid JSON and invalid structs are B14-B16 (vectors.rs,
//! binary_structs.rs); the memory an endless line costs is measured in
//! process.rs.
//!
//! No sleep synchronises anything. The only sleeps are the trickling
//! peer's (its behaviour under test).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use support::{recv_line, reset, served, serves_next_peer, watchdog, WAIT};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

const MIB: usize = 1 << 20;

// ------------------------------------------------------------ resets

#[test]
fn peer_reset_mid_frame_is_a_connection_error_and_the_next_client_is_served() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("reset-mid-frame", &calls);
    peer.write_all(b"partial li").expect("partial line");
    reset(peer); // RST, not FIN
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
    reset(raw);
    let err = client.read_str().expect_err("a reset is no line");
    assert!(err.is_connection_error(), "not a connection error: {err:?}");
    calls.assert_next_connected(false, WAIT);
    assert!(!client.connected());
}

// ------------------------------------------------------------ a peer that stops reading

/// A write cut short by the write timeout after part of its frame went
/// out keeps the rest and the link: `WritePending`, not a lost link. When
/// the peer reads again, the next write sends the rest first, so the peer
/// gets every frame whole and in order. One that sent nothing is a plain
/// `Timeout`.
#[test]
fn a_write_timeout_keeps_the_link_and_the_rest_of_the_frame_goes_first() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("write-timeout", &calls);
    server.set_write_timeout(Some(Duration::from_millis(50)));
    let mut blocks = 0u8;
    let mut accepted = 0usize;
    let cut = loop {
        // Each block's bytes say which block they belong to.
        let block = vec![b'a' + blocks % 26; MIB];
        match server.write(&block) {
            Ok(()) => {}
            Err(Error::WritePending(e)) => {
                assert_eq!(e.len, MIB);
                break true;
            }
            Err(Error::Timeout) => break false,
            Err(e) => panic!("after {blocks} MiB: {e:?}"),
        }
        accepted += MIB;
        blocks += 1;
        assert!(blocks < 255, "a peer that never reads took {blocks} MiB");
    };
    if cut {
        accepted += MIB;
        blocks += 1;
    }
    assert!(server.connected(), "a deadline does not end the link");
    calls.assert_no_more(Duration::ZERO);

    let reader = thread::spawn(move || {
        let mut got = vec![0u8; accepted + 5];
        peer.read_exact(&mut got).expect("every byte");
        (got, peer)
    });
    server.set_write_timeout(None);
    server.write(b"last\n").expect("the rest, then this");
    let (got, _peer) = reader.join().expect("reader");
    for (i, block) in got[..accepted].chunks(MIB).enumerate() {
        let want = b'a' + (i as u8) % 26;
        assert!(block.iter().all(|&b| b == want), "block {i} is not whole");
    }
    assert_eq!(&got[accepted..], b"last\n");
    assert_eq!(usize::from(blocks), accepted / MIB);
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn peer_trickling_one_byte_every_10_ms_still_gives_whole_frames() {
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

/// A write that cannot go out because the peer's window is full must not
/// be taken for a closed peer: the writer stays blocked (no error) until
/// the peer reads, and nothing is lost.
#[test]
fn slow_reader_peer_backpressure_loses_nothing() {
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

// ------------------------------------------------------------ an endless line

#[test]
fn endless_line_of_10_mib_overruns_after_pulling_little_and_the_link_survives() {
    let _w = watchdog(Duration::from_secs(60));
    const ENDLESS: usize = 10 * MIB;
    let calls = CallbackRecorder::new();
    let (server, peer) = served("endless-line", &calls);
    let writer = thread::spawn(move || {
        let mut peer = peer;
        // A small block sent over and over: the peer itself holds no 10 MiB.
        let block = vec![b'x'; 64 * 1024];
        for _ in 0..ENDLESS / block.len() {
            peer.write_all(&block).expect("endless line");
        }
        peer.write_all(b"\r\nafter\r\n").expect("then two lines");
        assert_eq!(recv_line(&mut peer), "still here");
        // Kept open until the end: its close would be a callback.
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
    // The search gives up near the limit: it does not pull the 10 MiB in.
    let pulled = server.stats().bytes_read;
    assert!(
        pulled < MIB as u64,
        "pulled {pulled} bytes to find no terminator"
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
    assert_eq!(server.read_str().expect("the line's end"), "");
    assert_eq!(server.read_str().expect("the next line"), "after");
    server.write_str("still here").expect("reply");
    let _peer = writer.join().expect("writer");
    calls.assert_no_more(Duration::ZERO);
}
