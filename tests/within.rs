//! `Link::within(timeout)`: a deadline for the calls made through it
//! (Python's `asyncio.wait_for` around one call), for reads and for
//! writes. A read that runs out of time leaves what came buffered; the
//! link's own timeouts are unchanged afterwards, and a shorter one still
//! applies inside a longer deadline.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError};
use support::{raw_client, served, watchdog, QUIET, WAIT};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

const MIB: usize = 1 << 20;

/// A deadline far shorter than [`QUIET`], so a window of QUIET shows it
/// is not applied to a later call.
const SHORT: Duration = Duration::from_millis(20);

#[test]
fn within_bounds_one_read_and_keeps_the_partial_frame_and_the_links_timeout() {
    let _w = watchdog(Duration::from_secs(30));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("within-read", &calls);
    server.set_read_timeout(None);

    // Nothing at all: a timeout.
    let nothing = server.within(SHORT).read_str();
    assert!(matches!(nothing, Err(Error::Timeout)), "{nothing:?}");

    // Part of a line: each bounded read times out, until the server has
    // surely taken the three bytes into its buffer.
    peer.write_all(b"par").expect("part of a line");
    let deadline = Instant::now() + WAIT;
    loop {
        let read = server.within(SHORT).read_str();
        assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
        if server.stats().bytes_read >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the bytes never arrived");
    }
    assert!(server.connected() && server.should_be_connected());
    calls.assert_no_more(Duration::ZERO);

    // The link's own read timeout (none) is unchanged: a plain read waits
    // past the deadline given before, and gets the whole line.
    let (tx, rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| tx.send(server.read_str()).expect("report"));
        assert!(
            matches!(rx.recv_timeout(QUIET), Err(RecvTimeoutError::Timeout)),
            "the plain read returned before the line was whole"
        );
        peer.write_all(b"tial\r\n").expect("the rest");
        let read = rx.recv_timeout(WAIT).expect("the plain read returns");
        assert_eq!(read.expect("read_str"), "partial");
    });

    // Every kind of read: the bytes of a cut frame stay for the next one.
    peer.write_all(b"12").expect("half of four bytes");
    let read = server.within(SHORT).read_exact(4);
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    peer.write_all(b"34{\"a\":")
        .expect("the rest, half a JSON line");
    assert_eq!(server.within(WAIT).read_exact(4).expect("four"), b"1234");
    let read = server.within(SHORT).read_json::<serde_json::Value>();
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    peer.write_all(b"1}\r\n").expect("the JSON line's end");
    let value: serde_json::Value = server.within(WAIT).read_json().expect("JSON");
    assert_eq!(value, serde_json::json!({"a": 1}));

    // The call's deadline takes the place of the link's own timeout: a
    // read with a longer deadline waits past the link's short timeout,
    // which still bounds every other read.
    server.set_read_timeout(Some(SHORT));
    let (tx, rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| tx.send(server.within(WAIT).read_str()).expect("report"));
        assert!(
            matches!(rx.recv_timeout(QUIET), Err(RecvTimeoutError::Timeout)),
            "the link's short timeout cut the deadline's read short"
        );
        peer.write_all(b"late\r\n").expect("a line");
        let read = rx.recv_timeout(WAIT).expect("the read returns");
        assert_eq!(read.expect("read_str"), "late");
    });
    let started = Instant::now();
    let read = server.read_str();
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    assert!(started.elapsed() < WAIT, "waited {:?}", started.elapsed());
    assert!(server.connected());
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn within_bounds_one_write_and_leaves_the_links_write_timeout() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let (server, peer) = served("within-write", &calls);
    // The peer never reads: bounded writes fail once the buffers are full.
    let block = vec![b'w'; MIB];
    let mut blocks = 0;
    let err = loop {
        match server.within(SHORT).write(&block) {
            Ok(()) => blocks += 1,
            Err(e) => break e,
        }
        assert!(blocks < 256, "a peer that never reads took {blocks} MiB");
    };
    match err {
        // Part of the block went out (the rest waits for the next write),
        // or nothing: the link stays either way.
        Error::WritePending(_) | Error::Timeout => {
            assert!(server.connected());
            server.close_client();
            calls.assert_next_connected(false, WAIT);
        }
        other => panic!("after {blocks} MiB: {other:?}"),
    }
    drop(peer);

    // The link's own write timeout (none) is unchanged: on the next
    // client, a plain write to a peer that does not read yet waits past
    // the deadline given before, then completes.
    let mut next = raw_client(&server);
    server.wait_connected(WAIT).expect("the next peer");
    calls.assert_next_connected(true, WAIT);
    const TOTAL: usize = 16 * MIB; // more than the socket buffers hold
    let (tx, rx) = bounded(1);
    thread::scope(|s| {
        s.spawn(|| {
            let wrote = (0..TOTAL / MIB).try_for_each(|_| server.write(&block));
            tx.send(wrote).expect("report");
        });
        assert!(
            matches!(rx.recv_timeout(QUIET), Err(RecvTimeoutError::Timeout)),
            "the plain write returned, with nobody reading 16 MiB"
        );
        let mut got = vec![0u8; TOTAL];
        next.read_exact(&mut got).expect("every byte");
        assert!(got.iter().all(|&b| b == b'w'));
        rx.recv_timeout(WAIT)
            .expect("the plain write returns")
            .expect("the plain write succeeds");
    });
    assert!(server.connected());
    calls.assert_no_more(Duration::ZERO);
}
