//! Reads and writes against the state of the link and each other, SPEC
//! section 2: B8 (no peer: every call fails at once), B9 (a blocked read
//! or write is released by closing) and B10 (reads and writes on several
//! threads at once; one write call is never interleaved with another).

mod support;

use std::io::{BufReader, Read};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError};
use support::blocked::{self, In};
use support::{raw_client, serves_next_peer, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------- B8

/// Every read and write of `link` fails at once with a connection error.
#[track_caller]
fn assert_every_call_fails_at_once(link: &impl Link, what: &str) {
    let started = Instant::now();
    let mut results: Vec<(&str, Option<Error>)> = vec![
        ("read", link.read(10).err()),
        ("read_to_end", link.read_to_end().err()),
        ("read_exact", link.read_exact(10).err()),
        ("read_line", link.read_line().err()),
        ("read_until", link.read_until(b"x").err()),
        ("read_str", link.read_str().err()),
        ("read_json", link.read_json::<serde_json::Value>().err()),
        ("try_read_str", link.try_read_str().err()),
        (
            "try_read_json",
            link.try_read_json::<serde_json::Value>().err(),
        ),
        ("write", link.write(b"x").err()),
        ("write_lines", link.write_lines(["a", "b"]).err()),
        ("write_str", link.write_str("x").err()),
        ("write_json", link.write_json(&[1, 2]).err()),
    ];
    for (method, err) in results.drain(..) {
        match err {
            Some(e) => assert!(e.is_connection_error(), "{what}: {method} gave {e:?}"),
            None => panic!("{what}: {method} succeeded with no peer"),
        }
    }
    assert!(started.elapsed() < WAIT, "{what}: the calls blocked");
}

#[test]
fn b08_every_call_fails_at_once_without_client() {
    let _w = watchdog(Duration::from_secs(30));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    assert_every_call_fails_at_once(&server, "never connected");

    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    server.close_client();
    assert_every_call_fails_at_once(&server, "after close_client");
    drop(peer);

    server.close();
    assert_every_call_fails_at_once(&server, "after close");
}

#[test]
fn b08_every_call_fails_at_once_on_a_closed_client() {
    let _w = watchdog(Duration::from_secs(30));
    assert_every_call_fails_at_once(&Client::closed(), "Client::closed()");
}

// ---------------------------------------------------------------- B9

/// Starts a reader blocked in `read_str` and a writer that writes 1 MiB
/// blocks to a peer that never reads until one blocks on the full send
/// buffer, each seen blocked in its socket call (so that neither can pass
/// for released by having started after the close); then `close` must
/// release both with a connection error.
fn blocked_read_and_write_are_released<L: Link + Sync>(link: &L, close: impl FnOnce(&L)) {
    link.set_read_timeout(None);
    link.set_write_timeout(None);
    thread::scope(|s| {
        let reader = blocked::spawn(s, "read_str", In::Socket, || link.read_str());
        let writer = blocked::spawn(
            s,
            "1 MiB writes to a peer that never reads",
            In::Socket,
            || {
                let block = vec![b'w'; MIB];
                let mut blocks = 0usize;
                loop {
                    match link.write(&block) {
                        Ok(()) => blocks += 1,
                        Err(e) => return (blocks, e),
                    }
                }
            },
        );
        reader.assert_not_returned();
        close(link);
        let read = reader.join();
        assert!(
            read.as_ref().is_err_and(Error::is_connection_error),
            "blocked read released with {read:?}"
        );
        let (blocks, err) = writer.join();
        assert!(
            err.is_connection_error(),
            "blocked write released with {err:?} after {blocks} MiB"
        );
    });
    assert!(!link.connected());
}

#[test]
fn b09_server_close_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
    let _w = watchdog(Duration::from_secs(40));
    let calls = CallbackRecorder::new();
    let (server, peer) = support::served("blocked-io-close", &calls);
    blocked_read_and_write_are_released(&server, OneClientServer::close);
    assert!(server.is_closed());
    calls.assert_next_connected(false, WAIT);
    drop(peer);
}

#[test]
fn b09_server_close_client_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
    let _w = watchdog(Duration::from_secs(40));
    let calls = CallbackRecorder::new();
    let (server, peer) = support::served("blocked-io-close-client", &calls);
    blocked_read_and_write_are_released(&server, OneClientServer::close_client);
    calls.assert_next_connected(false, WAIT);
    assert!(!server.is_closed());
    drop(peer);
    serves_next_peer(&server, &calls, "after close_client");
}

#[test]
fn b09_client_close_releases_a_blocked_reader_and_a_writer_on_a_full_send_buffer() {
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

// ---------------------------------------------------------------- B10

/// While a thread is blocked reading on `side`, this thread writes on it.
fn write_while_reading<L: Link + Send + Sync + 'static>(side: Arc<L>, other: &impl Link) {
    let (tx, rx) = bounded(1);
    let reader = {
        let side = side.clone();
        thread::spawn(move || tx.send(side.read_str()).unwrap())
    };
    assert!(matches!(
        rx.recv_timeout(QUIET),
        Err(RecvTimeoutError::Timeout)
    ));
    side.write_str("written while a read waits")
        .expect("write during a read");
    assert_eq!(
        other.read_str().expect("other side reads"),
        "written while a read waits"
    );
    other.write_str("now the read").expect("other side writes");
    let got = rx.recv_timeout(WAIT).expect("the read completes");
    assert_eq!(got.expect("read_str"), "now the read");
    reader.join().unwrap();
}

#[test]
fn b10_write_proceeds_while_a_read_is_blocked() {
    let _w = watchdog(Duration::from_secs(30));
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let client = Arc::new(testing::connect_client(&server, true).expect("client"));
    server.set_read_timeout(Some(WAIT));
    client.set_read_timeout(Some(WAIT));
    write_while_reading(server.clone(), &*client);
    write_while_reading(client, &*server);
}

fn line_of(writer: usize, index: usize) -> String {
    // 198 bytes of text + "\r\n": each writer's own fill byte shows any mix.
    let head = format!("w{writer}-{index:04}-");
    let fill = char::from(b'a' + writer as u8)
        .to_string()
        .repeat(198 - head.len());
    head + &fill
}

#[test]
fn b10_concurrent_write_str_never_interleaves() {
    let _w = watchdog(Duration::from_secs(30));
    const WRITERS: usize = 4;
    const LINES: usize = 1000;
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (server, start) = (server.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..LINES {
                    server.write_str(&line_of(w, i)).expect("write_str");
                }
            })
        })
        .collect();
    // Read at the same time, so no writer waits on a full buffer for long.
    let mut reader = BufReader::new(peer);
    let mut next = [0usize; WRITERS];
    for _ in 0..WRITERS * LINES {
        let line = support::recv_buffered_line(&mut reader);
        let w = line[1..line.find('-').expect("a writer tag")]
            .parse::<usize>()
            .expect("writer");
        assert_eq!(line, line_of(w, next[w]), "mangled or out of order");
        next[w] += 1;
    }
    assert_eq!(next, [LINES; WRITERS]);
    for writer in writers {
        writer.join().unwrap();
    }
}

#[test]
fn b10_large_concurrent_writes_never_interleave() {
    let _w = watchdog(Duration::from_secs(30));
    const WRITERS: usize = 4;
    const WRITES: usize = 16;
    const SIZE: usize = 256 * 1024; // far above one send() on loopback
    let server =
        Arc::new(testing::start_server(OneClientServer::builder()).expect("server starts"));
    let mut peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let server = server.clone();
            thread::spawn(move || {
                let block = vec![b'A' + w as u8; SIZE];
                for _ in 0..WRITES {
                    server.write(&block).expect("write");
                }
            })
        })
        .collect();
    let mut received = vec![0u8; WRITERS * WRITES * SIZE];
    peer.read_exact(&mut received).expect("every byte arrives");
    for writer in writers {
        writer.join().unwrap();
    }
    // Every run of one byte is a whole number of blocks.
    let mut totals = [0usize; WRITERS];
    for run in received.chunk_by(|a, b| a == b) {
        assert_eq!(
            run.len() % SIZE,
            0,
            "a write of {SIZE} bytes was split by another ({})",
            run.len()
        );
        totals[usize::from(run[0] - b'A')] += run.len();
    }
    assert_eq!(totals, [WRITES * SIZE; WRITERS]);
}

/// Concurrent writes never interleave, whatever the method: ten threads
/// write 256 KiB frames at once, two through each of `write`,
/// `write_str`, `write_lines`, `write_json` and `write_from`, and a raw
/// peer finds every frame whole.
#[test]
fn b10_concurrent_writes_of_every_method_never_interleave() {
    let _w = watchdog(Duration::from_secs(60));
    let server = testing::start_server(OneClientServer::builder()).expect("server starts");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("served");
    let mut reader = BufReader::new(peer);
    support::frames::concurrent_writes_arrive_whole(&server, &mut reader, 10, 3);
}
