//! B11-B13 and bad input, over a real loopback connection: nothing received
//! is lost, end of file mid-frame hands back the partial bytes, a line over
//! the read limit consumes nothing, and no input makes the link panic.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

use support::{vm_rss_bytes, watchdog, WAIT};

/// A server with `builder`'s options and reads bounded by `WAIT`, its
/// callback calls recorded.
fn server(builder: ServerBuilder) -> (OneClientServer, CallbackRecorder) {
    let calls = CallbackRecorder::new();
    let builder = builder
        .read_timeout(Some(WAIT))
        .connect_callback(calls.callback());
    (testing::start_server(builder).expect("server"), calls)
}

/// A raw std::net peer, connected once the server's callback said so.
fn connect_peer(server: &OneClientServer, calls: &CallbackRecorder) -> TcpStream {
    let peer = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    peer.set_read_timeout(Some(WAIT)).expect("timeout");
    peer.set_write_timeout(Some(WAIT)).expect("timeout");
    calls.assert_next_connected(true, WAIT);
    peer
}

fn served(builder: ServerBuilder) -> (OneClientServer, TcpStream, CallbackRecorder) {
    let (server, calls) = server(builder);
    let peer = connect_peer(&server, &calls);
    (server, peer, calls)
}

#[track_caller]
fn assert_partial<T: std::fmt::Debug>(result: Result<T>, want: &[u8]) {
    match result {
        Err(Error::IncompleteRead(e1)) => {
            let partial = e1.partial;
            assert_eq!(partial, want)
        }
        other => panic!("expected IncompleteRead({want:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_overrun<T: std::fmt::Debug>(result: Result<T>, want_limit: usize) {
    match result {
        Err(Error::LimitOverrun(e2)) => {
            let limit = e2.limit;
            let buffered = e2.buffered;
            assert_eq!(limit, want_limit);
            assert!(buffered > limit, "{buffered} buffered");
        }
        other => panic!("expected LimitOverrun, got {other:?}"),
    }
}

#[test]
fn b11_bytes_stay_buffered_across_read_methods() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder());
    peer.write_all(b"a\r\nbcdef").unwrap();
    assert_eq!(server.read_str().unwrap(), "a");
    assert_eq!(server.read(2).unwrap(), b"bc");
    peer.write_all(b"\r\n").unwrap();
    assert_eq!(server.read_str().unwrap(), "def");

    peer.write_all(b"x;yz\n{\"k\": 1}\r\nw").unwrap();
    assert_eq!(server.read_until(b";").unwrap(), b"x;");
    assert_eq!(server.read_exact(1).unwrap(), b"y");
    assert_eq!(server.read_line().unwrap(), b"z\n");
    let json: Value = server.read_json().unwrap();
    assert_eq!(json, serde_json::json!({"k": 1}));
    assert_eq!(server.read(10).unwrap(), b"w");
}

/// Repeats `read` (which must time out) until the server has taken `n`
/// bytes from the socket, so the partial frame is surely in its buffer.
fn time_out_until_read<T: std::fmt::Debug>(
    server: &OneClientServer,
    n: u64,
    read: impl Fn() -> Result<T>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        match read() {
            Err(Error::Timeout) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        if server.stats().bytes_read >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the server never read {n} bytes");
    }
}

/// Writes `data` to `peer` on a thread of its own (a large write may wait
/// for the reader).
fn write_in_background(peer: &TcpStream, data: &[u8]) -> thread::JoinHandle<()> {
    let (mut peer, data) = (peer.try_clone().unwrap(), data.to_vec());
    thread::spawn(move || peer.write_all(&data).unwrap())
}

#[test]
fn b11_timeout_mid_frame_leaves_bytes_buffered() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    server.set_read_timeout(Some(Duration::from_millis(50)));

    peer.write_all(b"par").unwrap();
    time_out_until_read(&server, 3, || server.read_str());
    assert!(server.connected() && server.should_be_connected());
    peer.write_all(b"tial\r\n").unwrap();
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().unwrap(), "partial");

    server.set_read_timeout(Some(Duration::from_millis(50)));
    peer.write_all(b"123").unwrap();
    time_out_until_read(&server, 12, || server.read_exact(6));
    peer.write_all(b"456").unwrap();
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_exact(6).unwrap(), b"123456");

    // A large block (read past the buffer) cut in two by a timeout.
    server.set_read_timeout(Some(Duration::from_millis(50)));
    let block: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let (first, second) = block.split_at(40_000);
    let writer = write_in_background(&peer, first);
    time_out_until_read(&server, 15 + 40_000, || server.read_exact(block.len()));
    writer.join().unwrap();
    let writer = write_in_background(&peer, second);
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_exact(block.len()).unwrap(), block);
    writer.join().unwrap();
    assert!(server.connected());
    assert!(calls.drain().is_empty(), "no callback on a timeout");
}

#[test]
fn b11_limit_overrun_leaves_bytes_buffered() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, _calls) = served(OneClientServer::builder().read_limit(16));
    let line = b"0123456789abcdefghij"; // 20 bytes, no terminator
    peer.write_all(line).unwrap();
    assert_overrun(server.read_str(), 16);
    assert_overrun(server.read_json::<Value>(), 16);
    assert_overrun(server.read_until(b"j"), 16);
    assert_overrun(server.read_line(), 16);
    assert_eq!(server.read_exact(line.len()).unwrap(), line);
}

#[test]
fn b11_bytes_sent_before_the_peer_closed_are_read_then_the_close_is_reported() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    for line in ["one\r\n", "two\r\n", "three\r\n"] {
        peer.write_all(line.as_bytes()).unwrap();
    }
    drop(peer);
    assert_eq!(server.read_str().unwrap(), "one");
    assert_eq!(server.read_str().unwrap(), "two");
    // The peer is gone, but a line is still unread: no disconnect yet,
    // however often the monitor looks (default interval, 100 ms).
    calls.assert_no_more(Duration::from_millis(300));
    assert!(server.connected());
    assert_eq!(server.read_str().unwrap(), "three");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert!(matches!(server.read_str(), Err(Error::NotConnected)));
    calls.assert_no_more(Duration::from_millis(100));
}

#[test]
fn b12_eof_inside_a_frame_gives_the_partial_bytes_and_closes_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    type ReadFn = fn(&OneClientServer) -> Result<()>;
    let cases: [(&str, &[u8], ReadFn); 5] = [
        ("read_exact", b"abc", |s| s.read_exact(5).map(drop)),
        ("read_until", b"abc", |s| s.read_until(b";").map(drop)),
        ("read_str", b"abc\r", |s| s.read_str().map(drop)),
        ("read_json", b"{\"a\":", |s| {
            s.read_json::<Value>().map(drop)
        }),
        ("read_exact of a large block", &[7; 30_000], |s| {
            s.read_exact(100_000).map(drop)
        }),
    ];
    // One server, a new peer per case (B19 too).
    let (server, calls) = server(OneClientServer::builder());
    for (name, sent, read) in cases {
        let mut peer = connect_peer(&server, &calls);
        peer.write_all(sent).unwrap();
        drop(peer);
        let result = read(&server);
        assert!(
            result.as_ref().is_err_and(Error::is_connection_error),
            "{name}"
        );
        assert_partial(result, sent);
        assert!(!server.connected(), "{name}");
        // The peer went away: not a close on purpose.
        assert!(server.should_be_connected(), "{name}");
        calls.assert_next_connected(false, WAIT);
        assert!(matches!(server.read_str(), Err(Error::NotConnected)));
    }
}

#[test]
fn b12_read_line_returns_the_partial_line_at_eof_then_the_link_is_closed() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());
    peer.write_all(b"ab\nxy").unwrap();
    drop(peer);
    assert_eq!(server.read_line().unwrap(), b"ab\n");
    assert_eq!(server.read_line().unwrap(), b"xy");
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
    assert!(server.read_line().is_err_and(|e| e.is_connection_error()));
}

#[test]
fn b13_a_line_over_the_limit_is_an_overrun_and_the_connection_stays_open() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder().read_limit(16));
    let long = b"0123456789abcdefXYZ\r\n"; // terminator at offset 19 > 16
    peer.write_all(long).unwrap();
    assert_overrun(server.read_str(), 16);
    assert!(server.connected() && server.should_be_connected());
    assert_eq!(server.read(long.len()).unwrap(), long);

    // Still open both ways.
    peer.write_all(b"short\r\n").unwrap();
    assert_eq!(server.read_str().unwrap(), "short");
    server.write_str("back").unwrap();
    let mut got = [0; 6];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"back\r\n");
    assert!(calls.drain().is_empty(), "no callback on an overrun");
}

#[test]
fn b13_ten_mib_without_a_terminator_does_not_grow_memory() {
    let _w = watchdog(Duration::from_secs(30));
    const ENDLESS: usize = 10 << 20;
    let (server, peer, _calls) = served(OneClientServer::builder());
    let mut writer = peer.try_clone().unwrap();
    let rss_before = vm_rss_bytes();
    let sender = thread::spawn(move || {
        let block = [b'x'; 64 * 1024];
        for _ in 0..ENDLESS / block.len() {
            writer.write_all(&block).unwrap();
        }
        writer.write_all(b"end\r\n").unwrap();
    });

    assert_overrun(server.read_str(), DEFAULT_READ_LIMIT);
    let grown = vm_rss_bytes().saturating_sub(rss_before);
    assert!(grown < 8 << 20, "memory grew by {grown} bytes");
    let pulled = server.stats().bytes_read;
    assert!(
        pulled < 1 << 20,
        "pulled {pulled} bytes to find no terminator"
    );

    // Open, and nothing lost: the 10 MiB, then the line after them.
    assert!(server.connected());
    server.write_str("still here").unwrap();
    let mut got = [0; 12];
    (&peer).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here\r\n");
    let mut drained = 0;
    while drained < ENDLESS {
        let chunk = server.read((ENDLESS - drained).min(64 * 1024)).unwrap();
        assert!(!chunk.is_empty() && chunk.iter().all(|&b| b == b'x'));
        drained += chunk.len();
    }
    assert_eq!(server.read_str().unwrap(), "end");
    sender.join().unwrap();
}

#[test]
fn bad_input_never_panics_each_gives_its_documented_error() {
    let _w = watchdog(Duration::from_secs(30));
    let (server, mut peer, calls) = served(OneClientServer::builder());

    peer.write_all(b"ok\xff\xfe\r\n").unwrap();
    match server.read_str() {
        Err(Error::Decode(e3)) if e3.encoding == Encoding::Utf8 && e3.position == 2 => {
            let bytes = e3.bytes;
            assert_eq!(bytes, b"ok\xff\xfe")
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    peer.write_all(b"{not json\r\n").unwrap();
    match server.read_json::<Value>() {
        Err(e @ Error::Json(_)) => assert!(e.to_string().contains("{not json"), "{e}"),
        other => panic!("expected Json, got {other:?}"),
    }
    peer.write_all(b"\"caf\xe9\"\r\n").unwrap();
    match server.read_json::<Value>() {
        Err(Error::Decode(e5)) => {
            let bytes = e5.bytes;
            assert_eq!(bytes, b"\"caf\xe9\"")
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert!(server.connected() && calls.drain().is_empty());

    // An endless line, then the peer vanishes.
    const ENDLESS: usize = 200_000;
    let sender = thread::spawn(move || {
        peer.write_all(&[b'x'; ENDLESS]).unwrap();
    });
    assert_overrun(server.read_str(), DEFAULT_READ_LIMIT);
    assert_overrun(server.read_json::<Value>(), DEFAULT_READ_LIMIT);
    assert!(server.connected());
    let rest = server.read_to_end().unwrap();
    assert_eq!(rest.len(), ENDLESS);
    assert!(rest.iter().all(|&b| b == b'x'));
    sender.join().unwrap();
    calls.assert_next_connected(false, WAIT);
    assert!(matches!(server.read_str(), Err(Error::NotConnected)));

    // A peer that resets the connection mid-line.
    let peer = connect_peer(&server, &calls);
    (&peer).write_all(b"half a li").unwrap();
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let result = server.read_str();
    assert!(
        result.as_ref().is_err_and(Error::is_connection_error),
        "{result:?}"
    );
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}
