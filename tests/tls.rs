//! TLS (feature `tls`): every read and write method over an encrypted
//! link, in several encodings; who is refused (a plain client, a client
//! trusting another CA, a client without the certificate mutual TLS asks
//! for, or with one from another CA); a silent client does not hold up the
//! next handshake; reads and writes on two threads, close releasing them,
//! the monitor, try_ reads, reconnect and stats over TLS.
#![cfg(all(feature = "tls", not(target_vendor = "apple")))]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use std::io::ErrorKind;

use support::blocked::{self, In};
use support::pki::{
    assert_handshake_failed, assert_refused_by_mutual_tls, client_config, server_config, Ca,
    Identity,
};
use support::{watchdog, WAIT};
use ts_tcpip::prelude::*;
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::{binary_struct, Error};

binary_struct! {
    #[derive(Debug, Default, Clone, Copy, PartialEq)]
    #[byte_order(big)]
    struct Telemetry { flag: bool, counter: u32, position: [f64; 3] }
}

/// A CA, a server certificate for loopback, and a client certificate.
struct Pki {
    ca: Ca,
    server: Identity,
    client: Identity,
}

fn pki() -> Pki {
    let ca = Ca::new("ts-tcpip test CA");
    let server = ca.issue(&["localhost", "127.0.0.1"]);
    let client = ca.issue(&["controller"]);
    Pki { ca, server, client }
}

fn tls_server(pki: &Pki, mutual: bool) -> ServerBuilder {
    OneClientServer::builder().tls(server_config(&pki.server, mutual.then_some(&pki.ca)))
}

fn tls_client(pki: &Pki, port: u16, with_cert: bool) -> ClientBuilder {
    let id = with_cert.then_some(&pki.client);
    Client::builder()
        .port(port)
        .tls(client_config(&pki.ca, id))
        .tls_server_name("localhost")
}

/// A server and a client connected to it over TLS, the server's accept
/// done.
fn pair(pki: &Pki, server: ServerBuilder, mutual: bool) -> (OneClientServer, Client) {
    let server = server.start().expect("TLS server");
    let client = tls_client(pki, server.port(), mutual)
        .connect()
        .expect("TLS client");
    server.wait_connected(WAIT).expect("the server takes it");
    (server, client)
}

#[test]
fn lines_json_and_structs_cross_a_tls_link_in_several_encodings() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    for encoding in [Encoding::Utf8, Encoding::Utf16, Encoding::Latin1] {
        let (server, client) = pair(&pki, tls_server(&pki, false).encoding(encoding), false);
        client.set_encoding(encoding);
        server.set_read_timeout(Some(WAIT));
        client.set_read_timeout(Some(WAIT));
        client.write_str("café au lait").expect("write");
        assert_eq!(
            server.read_str().expect("read"),
            "café au lait",
            "{encoding}"
        );
        server
            .write_json(&serde_json::json!({"move": [1.5, 2.5]}))
            .expect("json");
        let value: serde_json::Value = client.read_json().expect("json back");
        assert_eq!(value["move"][1], 2.5);
        // A struct each way, two in one write from the server.
        let sent = Telemetry {
            flag: true,
            counter: 7,
            position: [1.5, -2.25, 1000.0],
        };
        client.write_from(&[&sent]).expect("struct");
        let mut got = Telemetry::default();
        server.read_into(&mut got).expect("struct arrives");
        assert_eq!(got, sent);
        let back = Telemetry { counter: 8, ..sent };
        server.write_from(&[&back, &sent]).expect("structs back");
        client.read_into(&mut got).expect("first back");
        assert_eq!(got, back);
        client.read_into(&mut got).expect("second back");
        assert_eq!(got, sent);
        // 64 KiB, more than one TLS record, in one write.
        let block = vec![0x5a; 64 * 1024];
        client.write(&block).expect("block");
        assert_eq!(server.read_exact(block.len()).expect("block back"), block);
        let stats = server.stats();
        assert_eq!((stats.frames_read, stats.frames_written), (3, 2));
        assert_eq!(
            stats.bytes_read as usize,
            client.stats().bytes_written as usize
        );
        assert_eq!(
            client.stats().bytes_read as usize,
            stats.bytes_written as usize
        );
    }
}

#[test]
fn a_plain_client_is_refused_and_the_server_keeps_serving() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let calls = CallbackRecorder::new();
    let server = tls_server(&pki, false)
        .connect_callback(calls.callback())
        .start()
        .expect("server");
    let mut plain = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    plain.write_all(b"hello\r\n").expect("plain text");
    // The server answers with at most an alert record, then closes.
    let reply = read_until_closed(&mut plain);
    assert!(
        reply.is_empty() || reply[0] == ALERT,
        "not a TLS alert: {reply:?}"
    );
    let deadline = Instant::now() + WAIT;
    while server.stats().connections_rejected == 0 {
        assert!(
            Instant::now() < deadline,
            "the failed handshake was not counted"
        );
        thread::sleep(Duration::from_millis(5));
    }
    calls.assert_no_more(Duration::ZERO);
    let client = tls_client(&pki, server.port(), false)
        .connect()
        .expect("a TLS client still gets in");
    calls.assert_next_connected(true, WAIT);
    client.write_str("after").expect("write");
    assert_eq!(server.read_str().expect("read"), "after");
}

#[test]
fn a_client_trusting_another_ca_fails_to_connect() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false).start().expect("server");
    let other = Ca::new("another CA");
    let err = Client::builder()
        .port(server.port())
        .tls(client_config(&other, None))
        .tls_server_name("localhost")
        .connect()
        .expect_err("the server's certificate is not trusted");
    assert_handshake_failed(&err, "UnknownIssuer");
    assert!(!server.connected());
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_or_with_one_from_another_ca() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, true).start().expect("server");
    let other = Ca::new("another CA");
    let stranger = other.issue(&["stranger"]);
    let attempts = [
        ("no certificate", client_config(&pki.ca, None)),
        ("another CA's", client_config(&pki.ca, Some(&stranger))),
    ];
    for (what, config) in attempts {
        let refused = Client::builder()
            .port(server.port())
            .tls(config)
            .tls_server_name("localhost")
            .read_timeout(Some(WAIT))
            .connect()
            .and_then(|client| client.read_str());
        match refused {
            Err(e) => assert_refused_by_mutual_tls(&e),
            Ok(line) => panic!("{what}: served, and read {line:?}"),
        }
    }
    assert!(!server.connected());
    let (_, client) = (
        (),
        tls_client(&pki, server.port(), true)
            .connect()
            .expect("the right certificate gets in"),
    );
    server.wait_connected(WAIT).expect("served");
    client.write_str("ok").expect("write");
    assert_eq!(server.read_str().expect("read"), "ok");
    assert!(server.stats().connections_rejected >= 2);
}

/// A failed handshake is logged at WARN with the peer's address and the
/// reason: a client speaking plain text, and one showing a certificate
/// from a CA the server does not trust (mutual TLS).
#[test]
fn a_failed_handshake_is_logged_with_the_peer_and_the_reason() {
    use ts_tcpip::tls::rustls;
    let _w = watchdog(Duration::from_secs(60));
    support::init_log();
    let pki = pki();
    let server = tls_server(&pki, true)
        .name("hs-logged")
        .start()
        .expect("server");
    let logged = |peer: std::net::SocketAddr, reason: &str| {
        let rejecting = format!("rejecting {peer}: TLS handshake failed");
        let record =
            support::wait_logged(&["hs-logged", &rejecting, reason], WAIT).unwrap_or_else(|| {
                panic!(
                    "no record of {peer}'s failed handshake with {reason:?}; the server's: {:?}",
                    support::logs_with(&["hs-logged"])
                )
            });
        assert!(record.starts_with("WARN "), "{record}");
    };

    let mut plain = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    plain.write_all(b"hello\r\n").expect("plain text");
    read_until_closed(&mut plain);
    logged(plain.local_addr().expect("addr"), "InvalidContentType");

    let stranger = Ca::new("another CA").issue(&["stranger"]);
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let name = "localhost".try_into().expect("name");
    let mut session = rustls::ClientConnection::new(client_config(&pki.ca, Some(&stranger)), name)
        .expect("session");
    // TLS 1.3: the client's side ends before the server's verdict.
    while session.is_handshaking() {
        session.complete_io(&mut tcp).expect("the client's side");
    }
    logged(tcp.local_addr().expect("addr"), "UnknownIssuer");
    assert_eq!(server.stats().connections_rejected, 2);
}

#[test]
fn a_silent_client_does_not_hold_up_the_next_handshake() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false)
        .tls_handshake_timeout(Duration::from_secs(30))
        .start()
        .expect("server");
    // Opens TCP and says nothing: its handshake waits (30 s) on its own.
    let _silent = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    let started = Instant::now();
    let client = tls_client(&pki, server.port(), false)
        .connect()
        .expect("the next client gets in");
    server.wait_connected(WAIT).expect("served");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    client.write_str("not held up").expect("write");
    assert_eq!(server.read_str().expect("read"), "not held up");
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false)
        .tls_handshake_timeout(Duration::from_millis(200))
        .start()
        .expect("server");
    let mut silent = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    expect_closed(&mut silent);
    assert_eq!(server.stats().connections_rejected, 1);
}

/// B10 and B9 over TLS: a write blocked on a peer that does not read does
/// not stop a read on another thread, and close releases both. Each is
/// seen blocked in the socket first, so that neither can pass for
/// released by having started after the close.
#[test]
fn b10_a_blocked_tls_writer_does_not_stop_the_reader_and_b09_close_releases_both() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let (server, client) = pair(&pki, tls_server(&pki, false), false);
    server.set_read_timeout(Some(WAIT));
    thread::scope(|s| {
        // The client never reads: the server's writer fills the buffers.
        let writer = blocked::spawn(s, "writes to a peer that does not read", In::Socket, || {
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                if let Err(e) = server.write(&chunk) {
                    return e;
                }
            }
        });
        client.write_str("still heard").expect("client writes");
        assert_eq!(
            server.read_str().expect("read beside the writer"),
            "still heard"
        );
        writer.assert_not_returned();
        server.set_read_timeout(None);
        let reader = blocked::spawn(s, "read_str", In::Socket, || server.read_str());
        server.close();
        let write_err = writer.join();
        assert!(write_err.is_connection_error(), "{write_err:?}");
        let read = reader.join();
        assert!(
            read.as_ref().is_err_and(Error::is_connection_error),
            "{read:?}"
        );
    });
}

/// A write over TLS cut short by its deadline keeps the link: the frame
/// the socket had no room for is `WritePending`, its records wait in the
/// transport and go out first once the peer reads, and the peer finds
/// every frame whole and in order, the cut one included. Large frames are
/// cut while their plaintext is taken; small ones are taken whole and cut
/// while their records wait for the socket.
#[test]
fn a_tls_write_cut_short_by_its_deadline_is_finished_by_the_next_write() {
    let _w = watchdog(Duration::from_secs(60));
    for frame_len in [256 * 1024, 4 * 1024] {
        cut_tls_write(frame_len);
    }
}

fn cut_tls_write(frame_len: usize) {
    let pki = pki();
    let (server, client) = pair(&pki, tls_server(&pki, false), false);
    let frame = |i: usize| vec![b'a' + (i % 26) as u8; frame_len];
    // The client reads nothing: the server writes until a frame is cut.
    // A frame none of which went out (the buffers full to the byte when
    // it began) is `Timeout`: the client then takes one frame to make
    // room, and the same frame is tried again.
    let mut sent = 0;
    let mut early = Vec::new();
    let pending = loop {
        match server
            .within(Duration::from_millis(100))
            .write(&frame(sent))
        {
            Ok(()) => sent += 1,
            Err(Error::WritePending(_)) => break sent,
            Err(Error::Timeout) => {
                early.push(client.within(WAIT).read_exact(frame_len).expect("room"))
            }
            Err(e) => panic!("{frame_len}: frame {sent}: expected Ok or WritePending, got {e:?}"),
        }
        assert!(sent < 100_000, "the peer's buffers never filled");
    };
    assert!(server.connected(), "a cut write keeps the link");
    // While the peer reads nothing, a flush that never waits sends what
    // it can and times out: the link stays, the rest still kept.
    let flushed = server.within(Duration::ZERO).flush();
    assert!(
        matches!(flushed, Err(Error::Timeout)),
        "{frame_len}: {flushed:?}"
    );
    assert!(server.connected(), "a flush that timed out keeps the link");
    thread::scope(|s| {
        let reader = s.spawn(|| {
            (early.len()..=pending + 1)
                .map(|_| client.within(WAIT).read_exact(frame_len))
                .collect::<ts_tcpip::Result<Vec<_>>>()
        });
        // The next write sends the rest of the cut frame first.
        server
            .within(WAIT)
            .write(&frame(pending + 1))
            .expect("the next write");
        let rest = reader.join().expect("reader").expect("every frame");
        let frames: Vec<_> = early.iter().chain(&rest).collect();
        assert_eq!(frames.len(), pending + 2);
        for (i, got) in frames.into_iter().enumerate() {
            assert!(*got == frame(i), "{frame_len}: frame {i} arrived damaged");
        }
    });
    // Cut again, then the peer goes with bytes unread (a reset): the rest
    // can never go, and a flush says the connection is lost, not that
    // time ran out.
    let mut n = 0;
    while !matches!(
        server.within(Duration::from_millis(100)).write(&frame(n)),
        Err(Error::WritePending(_))
    ) {
        n += 1;
        assert!(n < 100_000, "the peer's buffers never filled");
    }
    client.close();
    let flushed = server.within(WAIT).flush();
    assert!(
        flushed.as_ref().is_err_and(Error::is_connection_error),
        "{frame_len}: {flushed:?}"
    );
}

/// Concurrent writes over TLS never interleave: ten threads write 256 KiB
/// frames at once, two through each write method, and a peer speaking
/// rustls directly finds every frame whole.
#[test]
fn concurrent_writes_over_tls_never_interleave() {
    use ts_tcpip::tls::rustls;
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false).start().expect("server");
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let name = "localhost".try_into().expect("name");
    let mut session =
        rustls::ClientConnection::new(client_config(&pki.ca, None), name).expect("session");
    while session.is_handshaking() {
        session.complete_io(&mut tcp).expect("handshake");
    }
    server.wait_connected(WAIT).expect("served");
    let mut reader = std::io::BufReader::new(rustls::StreamOwned::new(session, tcp));
    support::frames::concurrent_writes_arrive_whole(&server, &mut reader, 10, 3);
}

#[test]
fn the_monitor_notices_a_tls_peer_that_closes() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let calls = CallbackRecorder::new();
    let (server, client) = pair(
        &pki,
        tls_server(&pki, false).connect_callback(calls.callback()),
        false,
    );
    calls.assert_next_connected(true, WAIT);
    client.close();
    calls.assert_next_connected(false, WAIT);
    assert!(!server.connected());
}

#[test]
fn try_reads_over_tls_return_whole_lines_only() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let (server, client) = pair(&pki, tls_server(&pki, false), false);
    assert_eq!(server.try_read_str().expect("nothing yet"), None);
    client.write(b"par").expect("half a line");
    // None each time, until the server has surely taken the three bytes.
    let deadline = Instant::now() + WAIT;
    while server.stats().bytes_read < 3 {
        assert_eq!(server.try_read_str().expect("still half"), None);
        assert!(Instant::now() < deadline, "the bytes never arrived");
        thread::yield_now();
    }
    assert_eq!(server.try_read_str().expect("still half"), None);
    client.write(b"tial\r\n").expect("the rest");
    let deadline = Instant::now() + WAIT;
    let line = loop {
        if let Some(line) = server.try_read_str().expect("try") {
            break line;
        }
        assert!(Instant::now() < deadline, "the line never came whole");
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(line, "partial");
}

#[test]
fn a_tls_client_reconnects_after_the_server_restarts() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false).start().expect("server");
    let port = server.port();
    let client = tls_client(&pki, port, false)
        .reconnect(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .connect()
        .expect("client");
    let events = client.events();
    server.wait_connected(WAIT).expect("served");
    drop(server);
    assert!(!events.recv_timeout(WAIT).expect("down").is_connected());
    let server = tls_server(&pki, false).port(port).start().expect("again");
    assert!(events.recv_timeout(WAIT).expect("up").is_connected());
    server.wait_connected(WAIT).expect("served again");
    client.write_str("back").expect("write");
    assert_eq!(server.read_str().expect("read"), "back");
}

/// How many threads run a handshake for the server named `name`.
#[cfg(target_os = "linux")]
fn handshake_threads(name: &str) -> usize {
    let comm: String = format!("tcpip-tls {name}").chars().take(15).collect();
    support::proc::thread_names()
        .iter()
        .filter(|n| **n == comm)
        .count()
}

/// Waits until `n` handshakes of the server named `name` are under way.
#[cfg(target_os = "linux")]
fn wait_handshakes(name: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    while handshake_threads(name) < n {
        assert!(Instant::now() < deadline, "{n} handshakes never started");
        thread::sleep(Duration::from_millis(1));
    }
}

/// B9 for a handshake: `close` ends a handshake under way (a client that
/// opened TCP and says nothing) instead of waiting for its timeout.
/// Linux only: the handshake threads are counted in /proc.
#[cfg(target_os = "linux")]
#[test]
fn b09_close_ends_a_handshake_under_way() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false)
        .name("hsclose")
        .tls_handshake_timeout(Duration::from_secs(120))
        .start()
        .expect("server");
    let mut silent = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    wait_handshakes("hsclose", 1);
    let started = Instant::now();
    server.close();
    // A generous bound on what must not wait for the 120 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(handshake_threads("hsclose"), 0);
    expect_closed(&mut silent);
}

/// The first byte of a TLS alert record.
const ALERT: u8 = 21;

/// Reads `stream` until the server closes it: what came before, at most
/// a few bytes (an alert). A timeout, or an error other than a reset, fails.
#[track_caller]
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() <= 64, "more than an alert: {got:?}");
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("not closed within {WAIT:?}, after {got:?}")
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return got
            }
            Err(e) => panic!("expected the server to close it, got {e} ({:?})", e.kind()),
        }
    }
}

/// The server closed `stream` without a word: end of file or a reset, not
/// a timeout, not data.
#[track_caller]
fn expect_closed(stream: &mut TcpStream) {
    let got = read_until_closed(stream);
    assert!(got.is_empty(), "expected nothing before the close: {got:?}");
}

/// Silent connections cannot pile up handshake threads, nor keep a real
/// client out: with `MAX_TLS_HANDSHAKES` under way, a newcomer's handshake
/// ends the oldest silent one (closed, counted as rejected) and runs.
#[cfg(target_os = "linux")]
#[test]
fn a_full_handshake_queue_ends_the_oldest_silent_one_for_a_newcomer() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false)
        .name("hscap")
        .tls_handshake_timeout(Duration::from_secs(120))
        .start()
        .expect("server");
    let mut silent: Vec<TcpStream> = Vec::new();
    for n in 1..=ts_tcpip::MAX_TLS_HANDSHAKES {
        silent.push(TcpStream::connect(("127.0.0.1", server.port())).expect("tcp"));
        // One at a time, so that the first is the oldest.
        wait_handshakes("hscap", n);
    }
    let client = tls_client(&pki, server.port(), false)
        .connect()
        .expect("a client gets in");
    server.wait_connected(WAIT).expect("served");
    client.write_str("in").expect("write");
    assert_eq!(server.read_str().expect("read"), "in");
    expect_closed(&mut silent[0]);
    assert_eq!(server.stats().connections_rejected, 1);
    // The evicted handshake's thread and the newcomer's end; the others
    // are still under way.
    let deadline = Instant::now() + WAIT;
    while handshake_threads("hscap") > ts_tcpip::MAX_TLS_HANDSHAKES - 1 {
        assert!(Instant::now() < deadline, "the handshakes did not end");
        thread::sleep(Duration::from_millis(1));
    }
    silent[1]
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let waiting = silent[1].read(&mut [0u8; 1]).expect_err("no answer yet");
    assert_eq!(waiting.kind(), std::io::ErrorKind::WouldBlock);
}

/// A flood of connections that never speak (200) or speak garbage (100)
/// does not keep a real TLS client out: it gets its echo within a second,
/// the server's threads stay bounded, and once the flood goes the next
/// client is served too.
#[cfg(target_os = "linux")]
#[test]
fn a_tls_client_gets_its_echo_within_a_second_during_a_flood() {
    let _w = watchdog(Duration::from_secs(120));
    let pki = pki();
    let server = Arc::new(
        tls_server(&pki, false)
            .name("flood")
            .tls_handshake_timeout(Duration::from_secs(120))
            .start()
            .expect("server"),
    );
    let echo = {
        let server = server.clone();
        thread::spawn(move || {
            while server.wait_connected(WAIT).is_ok() {
                match server.read_str() {
                    Ok(line) => server.write_str(&line).expect("echo"),
                    Err(e) if e.is_connection_error() && !server.is_closed() => {}
                    Err(_) => return,
                }
            }
        })
    };
    let mut flood: Vec<TcpStream> = Vec::new();
    let mut most = 0;
    for i in 0..300 {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
        if i >= 200 {
            stream
                .write_all(b"GET / HTTP/1.0\r\nnot a TLS hello at all\r\n\r\n")
                .expect("garbage");
        }
        flood.push(stream);
        most = most.max(handshake_threads("flood"));
    }
    // Every flood connection accepted: all but the last handshakes under
    // way ended (made room for, or refused for garbage).
    let deadline = Instant::now() + WAIT;
    while server.stats().connections_rejected < 300 - ts_tcpip::MAX_TLS_HANDSHAKES as u64 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        most = most.max(handshake_threads("flood"));
        thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let client = tls_client(&pki, server.port(), false)
        .connect()
        .expect("a client gets in");
    client.write_str("through the flood").expect("write");
    assert_eq!(client.read_str().expect("echo"), "through the flood");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "the echo took {took:?}");
    // Bounded by the cap, not by the flood: a handshake stays listed
    // until its thread's work is done, and a newcomer's thread starts once
    // the one ended for it has finished (a finished thread leaves the
    // system's thread list a moment later: hence the slack).
    assert!(
        most <= ts_tcpip::MAX_TLS_HANDSHAKES + 2,
        "{most} handshake threads during the flood"
    );
    // The flood goes; the next client is served too.
    drop(client);
    drop(flood);
    let next = tls_client(&pki, server.port(), false)
        .connect()
        .expect("the next client");
    next.write_str("after").expect("write");
    assert_eq!(next.read_str().expect("echo"), "after");
    drop(next);
    server.close();
    echo.join().expect("echo thread");
}

/// B11 over TLS: a record that arrives cut across two socket reads,
/// followed at once by more records, is all delivered, whatever rustls's
/// own buffers hold at a time: a block larger than one record (so it
/// ends in a short one), then many lines, all sent before the server
/// reads any.
#[test]
fn b11_a_block_and_the_lines_after_it_all_arrive_over_tls() {
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let (server, client) = pair(&pki, tls_server(&pki, false), false);
    for size in [20_000, 16_384 + 1, 40_000, 16_384 * 2 + 100, 100_000] {
        let block: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        client.write(&block).expect("block");
        for i in 0..400 {
            client
                .write_str(&format!("line {i} {}", "x".repeat(i % 300)))
                .expect("line");
        }
        assert_eq!(server.read_exact(size).expect("block arrives"), block);
        for i in 0..400 {
            assert_eq!(
                server.read_str().expect("line arrives"),
                format!("line {i} {}", "x".repeat(i % 300))
            );
        }
    }
}

/// A deadline holds over TLS against a peer that sends a record a few
/// bytes at a time: `within` times out while the record is still coming,
/// and the line is read whole once the rest arrives.
#[test]
fn a_deadline_holds_against_a_record_that_trickles_in() {
    use ts_tcpip::tls::rustls;
    let _w = watchdog(Duration::from_secs(60));
    let pki = pki();
    let server = tls_server(&pki, false).start().expect("server");
    let mut tcp = TcpStream::connect(("127.0.0.1", server.port())).expect("tcp");
    tcp.set_nodelay(true).expect("nodelay");
    let name = "localhost".try_into().expect("name");
    let mut session =
        rustls::ClientConnection::new(client_config(&pki.ca, None), name).expect("session");
    while session.is_handshaking() {
        session.complete_io(&mut tcp).expect("handshake");
    }
    server.wait_connected(WAIT).expect("served");
    session
        .writer()
        .write_all(b"slow line\r\n")
        .expect("plaintext");
    let mut record = Vec::new();
    while session.wants_write() {
        session.write_tls(&mut record).expect("record");
    }
    // Half the record, a byte every 100 ms, against a 100 ms deadline:
    // the call must end while the bytes still trickle in, not once they
    // stop.
    let half = record.len() / 2;
    let feeder = {
        let mut tcp = tcp.try_clone().expect("clone");
        let bytes = record[..half].to_vec();
        thread::spawn(move || {
            for b in bytes {
                tcp.write_all(&[b]).expect("a byte");
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let read = server.within(Duration::from_millis(100)).read_str();
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    assert!(
        !feeder.is_finished(),
        "the call outlived its deadline until the peer stopped sending"
    );
    feeder.join().expect("feeder");
    tcp.write_all(&record[half..]).expect("the rest");
    assert_eq!(server.read_str().expect("the whole line"), "slow line");
}
