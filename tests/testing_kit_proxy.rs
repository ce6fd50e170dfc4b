//! The fault-injecting proxy of `ts_tcpip::testing`: with no fault it
//! passes bytes and closes through unchanged; each fault does what it says,
//! measured where it can be (a delay at least the latency, the segments a
//! reader sees, exactly N bytes before a close or a reset, the reset seen
//! as "connection reset"); a change applies to an open connection; and
//! closing the proxy closes both legs. Timings are lower bounds only: a
//! loaded machine can only make things later. (Threads and sockets left
//! behind: testing_kit_leaks.rs.)

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{expect_reset, raw_connect, watchdog, QUIET, WAIT};
use ts_tcpip::testing::{Direction, FaultProxy};

/// Slack for a lower bound: the clocks of two threads read a little apart.
const SLACK: Duration = Duration::from_millis(5);

/// A program connected through a proxy to a server, both raw sockets with
/// reads bounded by [`WAIT`].
struct Rig {
    proxy: FaultProxy,
    program: TcpStream,
    server: TcpStream,
}

/// Starts a proxy to a fresh listener, lets `faults` set it up, then
/// connects the program and accepts the server's side.
fn rig(faults: impl FnOnce(&FaultProxy)) -> Rig {
    let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy = FaultProxy::builder(upstream.local_addr().unwrap())
        .name("rig")
        .start()
        .expect("the proxy starts");
    faults(&proxy);
    let program = raw_connect(proxy.addr());
    let (server, _) = upstream.accept().expect("the proxy connects upstream");
    for stream in [&program, &server] {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    Rig {
        proxy,
        program,
        server,
    }
}

/// Exactly `n` bytes from `stream`.
#[track_caller]
fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).expect("the bytes arrive");
    buf
}

/// True if nothing (neither bytes nor end of file) arrives within [`QUIET`].
fn quiet(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let got = stream.read(&mut [0u8; 64]);
    stream.set_read_timeout(Some(WAIT)).unwrap();
    matches!(got, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// Reads until end of file; panics on an error.
#[track_caller]
fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("a clean end of file");
    all
}

// ----------------------------------------------------------------- no fault

#[test]
fn with_no_fault_bytes_and_closes_pass_through_unchanged() {
    let _w = watchdog(Duration::from_secs(60));
    let Rig {
        proxy,
        mut program,
        mut server,
    } = rig(|_| {});
    let up: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let down: Vec<u8> = up.iter().rev().copied().collect();
    let mut program_writer = program.try_clone().unwrap();
    let sent_up = up.clone();
    let writer = std::thread::spawn(move || program_writer.write_all(&sent_up));
    server.write_all(&down).unwrap();
    assert_eq!(read_n(&mut server, up.len()), up);
    assert_eq!(read_n(&mut program, down.len()), down);
    writer.join().unwrap().unwrap();
    // A half-close goes through; the other way stays open.
    program.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut server), b"");
    server.write_all(b"after your close").unwrap();
    assert_eq!(read_n(&mut program, 16), b"after your close");
    drop(server);
    assert_eq!(read_to_eof(&mut program), b"");
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn closing_the_proxy_closes_both_legs() {
    let _w = watchdog(Duration::from_secs(30));
    let Rig {
        proxy,
        mut program,
        mut server,
    } = rig(|_| {});
    proxy.close();
    assert_eq!(read_to_eof(&mut program), b"");
    assert_eq!(read_to_eof(&mut server), b"");
    proxy.close();
}

#[test]
fn a_refused_upstream_closes_the_client() {
    let _w = watchdog(Duration::from_secs(30));
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = FaultProxy::start(addr).unwrap();
    let mut program = raw_connect(proxy.addr());
    assert_eq!(read_to_eof(&mut program), b"");
}

// ------------------------------------------------------------------- faults

#[test]
fn latency_delays_each_direction_by_at_least_the_latency() {
    let _w = watchdog(Duration::from_secs(30));
    let (to_server, to_client) = (Duration::from_millis(120), Duration::from_millis(60));
    let mut rig = rig(|p| {
        p.to_server().latency(to_server);
        p.to_client().latency(to_client);
    });
    let sent = Instant::now();
    rig.program.write_all(b"request").unwrap();
    assert_eq!(read_n(&mut rig.server, 7), b"request");
    assert!(sent.elapsed() >= to_server - SLACK, "{:?}", sent.elapsed());
    let sent = Instant::now();
    rig.server.write_all(b"reply").unwrap();
    assert_eq!(read_n(&mut rig.program, 5), b"reply");
    assert!(sent.elapsed() >= to_client - SLACK, "{:?}", sent.elapsed());
}

#[test]
fn jitter_varies_the_delay_around_the_latency_and_keeps_the_order() {
    let _w = watchdog(Duration::from_secs(30));
    let (latency, jitter) = (Duration::from_millis(60), Duration::from_millis(40));
    let mut rig = rig(|p| {
        p.to_client().latency(latency).jitter(jitter);
    });
    // Separate chunks, each with its own share of jitter, 2 ms apart; the
    // reader takes each byte as it comes and notes when.
    const CHUNKS: u8 = 20;
    let reader = {
        let mut program = rig.program.try_clone().unwrap();
        std::thread::spawn(move || {
            (0..CHUNKS)
                .map(|_| (read_n(&mut program, 1)[0], Instant::now()))
                .collect::<Vec<_>>()
        })
    };
    let mut sent = Vec::new();
    for i in 0..CHUNKS {
        sent.push(Instant::now());
        rig.server.write_all(&[i]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let arrived = reader.join().unwrap();
    let bytes: Vec<u8> = arrived.iter().map(|(b, _)| *b).collect();
    assert_eq!(
        bytes,
        (0..CHUNKS).collect::<Vec<_>>(),
        "bytes never overtake"
    );
    let delays: Vec<Duration> = arrived
        .iter()
        .zip(&sent)
        .map(|((_, at), sent)| at.duration_since(*sent))
        .collect();
    let (least, most) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    // Each at least the latency less the jitter; spread by the jitter (a
    // later chunk may wait for an earlier, slower one, never overtake it).
    assert!(*least >= latency - jitter - SLACK, "{delays:?}");
    assert!(
        *most - *least >= jitter / 4,
        "every chunk delayed alike: {delays:?}"
    );
}

#[test]
fn a_bandwidth_limit_paces_the_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let rate = 200_000;
    let mut rig = rig(|p| {
        p.to_server().bandwidth(rate);
    });
    let block = vec![7u8; 100_000];
    let sent = Instant::now();
    rig.program.write_all(&block).unwrap();
    assert_eq!(read_n(&mut rig.server, block.len()), block);
    // Half a second at the rate, less the first piece, which goes at once.
    let least = Duration::from_millis(500 - 10);
    assert!(sent.elapsed() >= least - SLACK, "{:?}", sent.elapsed());
}

#[test]
fn slicing_gives_a_reader_segments_of_n_bytes_with_the_pause_between() {
    let _w = watchdog(Duration::from_secs(30));
    let (size, pause) = (5, Duration::from_millis(60));
    let mut rig = rig(|p| {
        p.to_client().slice(size, pause);
    });
    let frame = b"0123456789abcdefghijklmnopqrst";
    let written = Instant::now();
    rig.server.write_all(frame).unwrap();
    let mut got = Vec::new();
    let mut reads = Vec::new();
    while got.len() < frame.len() {
        let mut buf = [0u8; 1024];
        let n = rig.program.read(&mut buf).expect("a segment");
        assert!(n > 0, "end of file after {got:?}");
        let at = written.elapsed();
        got.extend_from_slice(&buf[..n]);
        reads.push((n, at));
    }
    assert_eq!(got, frame);
    let mut total = 0;
    for &(n, at) in &reads {
        // Whole segments only, never more than the pauses let out by then.
        assert_eq!(n % size, 0, "a read of {n} bytes: {reads:?}");
        total += n;
        let segments_by_then = 1 + (at.as_micros() / pause.as_micros()) as usize;
        assert!(
            total <= size * segments_by_then,
            "{total} bytes by {at:?}: {reads:?}"
        );
    }
    let last = reads.last().unwrap().1;
    assert!(last >= pause * 5 - SLACK, "six segments in {last:?}");
}

#[test]
fn hold_forwards_nothing_until_release_then_everything_in_order() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|p| {
        p.to_client().hold();
    });
    rig.server.write_all(b"one ").unwrap();
    rig.server.write_all(b"two").unwrap();
    rig.server.shutdown(Shutdown::Write).unwrap();
    assert!(quiet(&mut rig.program), "a held peer seems frozen");
    // The other way is not held.
    rig.program.write_all(b"still up").unwrap();
    assert_eq!(read_n(&mut rig.server, 8), b"still up");
    rig.proxy.to_client().release();
    assert_eq!(read_to_eof(&mut rig.program), b"one two");
}

#[test]
fn reset_after_n_bytes_is_connection_reset_after_exactly_those_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|p| {
        p.to_client().reset_after(5);
    });
    rig.server.write_all(b"0123456789").unwrap();
    assert_eq!(read_n(&mut rig.program, 5), b"01234");
    expect_reset(&mut rig.program);
    // Both legs are reset. (Not written to first: the write would
    // report the reset and the read then see end of file.)
    expect_reset(&mut rig.server);
}

#[test]
fn reset_after_zero_resets_before_the_next_byte() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|_| {});
    rig.proxy.to_server().reset_after(0);
    rig.program.write_all(b"x").unwrap();
    expect_reset(&mut rig.server);
    expect_reset(&mut rig.program);
}

#[test]
fn close_after_n_bytes_delivers_exactly_n_then_end_of_file() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|p| {
        p.to_client().close_after(7);
    });
    rig.server
        .write_all(b"{\"id\": 1, \"pos\": 2.5}\r\n")
        .unwrap();
    assert_eq!(read_to_eof(&mut rig.program), b"{\"id\": ");
    assert_eq!(read_to_eof(&mut rig.server), b"", "both legs close");
}

#[test]
fn close_after_counts_from_when_it_is_set() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|_| {});
    rig.program.write_all(b"first ").unwrap();
    assert_eq!(read_n(&mut rig.server, 6), b"first ");
    rig.proxy.to_server().close_after(3);
    rig.program.write_all(b"second").unwrap();
    assert_eq!(read_to_eof(&mut rig.server), b"sec");
}

#[test]
fn a_slow_close_passes_the_close_on_at_least_the_delay_later() {
    let _w = watchdog(Duration::from_secs(30));
    let delay = Duration::from_millis(150);
    let mut rig = rig(|p| {
        p.to_client().slow_close(delay);
    });
    rig.server.write_all(b"bye").unwrap();
    let closed = Instant::now();
    rig.server.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_n(&mut rig.program, 3), b"bye");
    assert_eq!(read_to_eof(&mut rig.program), b"");
    assert!(closed.elapsed() >= delay - SLACK, "{:?}", closed.elapsed());
}

#[test]
fn a_byte_limit_forwards_n_bytes_then_swallows_the_rest_and_stays_open() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|p| {
        p.to_server().limit(4);
    });
    rig.program.write_all(b"abcdefgh").unwrap();
    assert_eq!(read_n(&mut rig.server, 4), b"abcd");
    rig.program.write_all(b"more").unwrap();
    assert!(quiet(&mut rig.server), "nothing past the limit, no close");
    rig.server.write_all(b"the other way works").unwrap();
    assert_eq!(read_n(&mut rig.program, 19), b"the other way works");
}

#[test]
fn a_change_applies_to_an_open_connection_and_clear_ends_it() {
    let _w = watchdog(Duration::from_secs(30));
    let mut rig = rig(|_| {});
    let latency = Duration::from_millis(100);
    let faults = rig.proxy.faults(Direction::ToClient);
    assert_eq!(faults.direction(), Direction::ToClient);
    faults.latency(latency);
    let sent = Instant::now();
    rig.server.write_all(b"late").unwrap();
    assert_eq!(read_n(&mut rig.program, 4), b"late");
    assert!(sent.elapsed() >= latency - SLACK, "{:?}", sent.elapsed());
    // Held bytes go as soon as the faults are cleared.
    faults.hold();
    rig.server.write_all(b"held").unwrap();
    assert!(quiet(&mut rig.program));
    faults.clear();
    assert_eq!(read_n(&mut rig.program, 4), b"held");
}
