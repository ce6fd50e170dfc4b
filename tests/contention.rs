//! Every call keeps its bound whatever other threads do on the same link
//! (B21): a `try_` call never waits, `within()` and the link's timeouts
//! bound the whole call, lock included, and `close()` releases everyone.
//! Each test runs with every CPU kept busy by spinning threads, so the
//! callers are preempted as on a loaded machine.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{served, watchdog, WAIT};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

/// How long past its deadline a call may return on a loaded machine: a
/// generous bound on what must not hang, far below the waits the calls
/// used to be stuck in (another thread's whole call).
const SLACK: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_millis(100);

/// Keeps every CPU busy until dropped.
struct BusyCpus {
    stop: Arc<AtomicBool>,
    spinners: Vec<thread::JoinHandle<()>>,
}

fn busy_cpus() -> BusyCpus {
    let stop = Arc::new(AtomicBool::new(false));
    let n = thread::available_parallelism().map_or(2, |n| n.get());
    let spinners = (0..n)
        .map(|i| {
            let stop = stop.clone();
            thread::Builder::new()
                .name(format!("busy {i}"))
                .spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
                .expect("spinner")
        })
        .collect();
    BusyCpus { stop, spinners }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for spinner in self.spinners.drain(..) {
            let _ = spinner.join();
        }
    }
}

/// Runs `call` and returns its result with how long it took.
fn timed<T>(call: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = call();
    (out, started.elapsed())
}

/// A reader blocked in `read_str` in the middle of a frame: it has taken
/// the frame's first bytes (so it holds the read half) and waits for the
/// rest, which `finish` sends. Returns the reader's thread.
fn blocked_reader(
    server: &Arc<OneClientServer>,
    peer: &mut TcpStream,
) -> thread::JoinHandle<Result<String>> {
    let before = server.stats().bytes_read;
    peer.write_all(b"par").expect("part of a line");
    let reader = {
        let server = server.clone();
        thread::spawn(move || {
            server.set_read_timeout(None);
            server.read_str()
        })
    };
    // The three bytes reached the buffer through the reader's call, which
    // cannot return before the line is whole.
    let deadline = Instant::now() + WAIT;
    while server.stats().bytes_read < before + 3 {
        assert!(Instant::now() < deadline, "the reader took nothing");
        thread::yield_now();
    }
    assert!(!reader.is_finished());
    reader
}

#[test]
fn try_reads_return_at_once_while_another_thread_is_blocked_in_a_read() {
    let _w = watchdog(Duration::from_secs(60));
    let _busy = busy_cpus();
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("try-beside-read", &calls);
    let server = Arc::new(server);
    let reader = blocked_reader(&server, &mut peer);

    let (line, took) = timed(|| server.try_read_str());
    assert!(matches!(line, Ok(None)), "{line:?}");
    assert!(took < SLACK, "try_read_str took {took:?}");
    let (value, took) = timed(|| server.try_read_json::<serde_json::Value>());
    assert!(matches!(value, Ok(None)), "{value:?}");
    assert!(took < SLACK, "try_read_json took {took:?}");
    binary_struct! {
        #[derive(Default)]
        struct Four { n: u32 }
    }
    let mut record = Four::default();
    let (got, took) = timed(|| server.try_read_into(&mut record));
    assert!(matches!(got, Ok(false)), "{got:?}");
    assert!(took < SLACK, "try_read_into took {took:?}");

    // The blocked reader gets its line whole: nothing was taken from it.
    peer.write_all(b"tial\r\n").expect("the rest");
    assert_eq!(reader.join().expect("reader").expect("line"), "partial");
    calls.assert_no_more(Duration::ZERO);
}

#[test]
fn a_deadline_bounds_a_read_waiting_behind_another_threads_read() {
    let _w = watchdog(Duration::from_secs(60));
    let _busy = busy_cpus();
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("within-beside-read", &calls);
    let server = Arc::new(server);
    let reader = blocked_reader(&server, &mut peer);

    for (what, read) in [
        (
            "within(..).read_str",
            Box::new(|| server.within(DEADLINE).read_str().map(|_| ()))
                as Box<dyn Fn() -> Result<()>>,
        ),
        (
            "within(..).read_exact(4)",
            Box::new(|| server.within(DEADLINE).read_exact(4).map(|_| ())),
        ),
        (
            "within(..).read(4)",
            Box::new(|| server.within(DEADLINE).read(4).map(|_| ())),
        ),
        (
            "within(..).read_line",
            Box::new(|| server.within(DEADLINE).read_line().map(|_| ())),
        ),
        (
            "within(..).read_until",
            Box::new(|| server.within(DEADLINE).read_until(b";").map(|_| ())),
        ),
        (
            "within(..).read_json",
            Box::new(|| {
                server
                    .within(DEADLINE)
                    .read_json::<serde_json::Value>()
                    .map(|_| ())
            }),
        ),
        (
            "within(..).read_into",
            Box::new(|| {
                binary_struct! {
                    #[derive(Default)]
                    struct Four { n: u32 }
                }
                server.within(DEADLINE).read_into(&mut Four::default())
            }),
        ),
        (
            "within(..).read_to_end",
            Box::new(|| server.within(DEADLINE).read_to_end().map(|_| ())),
        ),
    ] {
        let (result, took) = timed(read);
        assert!(matches!(result, Err(Error::Timeout)), "{what}: {result:?}");
        assert!(
            took >= DEADLINE && took < DEADLINE + SLACK,
            "{what} took {took:?}"
        );
    }
    // With the link's own read timeout, from another thread.
    server.set_read_timeout(Some(DEADLINE));
    let (result, took) = timed(|| server.read_str());
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took < DEADLINE + SLACK, "read_str took {took:?}");

    peer.write_all(b"tial\r\n").expect("the rest");
    assert_eq!(reader.join().expect("reader").expect("line"), "partial");
    assert!(server.connected());
    calls.assert_no_more(Duration::ZERO);
}

/// A writer stuck in the middle of a frame the peer does not take: it has
/// sent the frame's first byte (the peer read it) and cannot finish.
fn stuck_writer(
    server: &Arc<OneClientServer>,
    peer: &mut TcpStream,
) -> thread::JoinHandle<Result<()>> {
    let writer = {
        let server = server.clone();
        thread::spawn(move || server.write(&vec![b'w'; 64 << 20]))
    };
    let mut first = [0u8; 1];
    peer.read_exact(&mut first).expect("the frame began");
    assert_eq!(&first, b"w");
    // More than the sockets hold is left: the write cannot end until the
    // peer reads again.
    assert!(!writer.is_finished());
    writer
}

#[test]
fn a_deadline_bounds_a_write_waiting_behind_a_stuck_writer() {
    let _w = watchdog(Duration::from_secs(60));
    let _busy = busy_cpus();
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("within-beside-write", &calls);
    let server = Arc::new(server);
    let writer = stuck_writer(&server, &mut peer);

    let (result, took) = timed(|| server.within(DEADLINE).write_str("hi"));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= DEADLINE && took < DEADLINE + SLACK, "{took:?}");
    let (result, took) = timed(|| server.within(Duration::ZERO).write_json(&1));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took < SLACK, "a write that never waits took {took:?}");
    binary_struct! {
        #[derive(Default)]
        struct Four { n: u32 }
    }
    for (what, write) in [
        (
            "within(..).write",
            Box::new(|| server.within(DEADLINE).write(b"hi")) as Box<dyn Fn() -> Result<()>>,
        ),
        (
            "within(..).write_lines",
            Box::new(|| server.within(DEADLINE).write_lines(["a\n", "b\n"])),
        ),
        (
            "within(..).write_from",
            Box::new(|| server.within(DEADLINE).write_from(&[&Four::default()])),
        ),
        (
            "within(..).flush",
            Box::new(|| server.within(DEADLINE).flush()),
        ),
    ] {
        let (result, took) = timed(write);
        assert!(matches!(result, Err(Error::Timeout)), "{what}: {result:?}");
        assert!(
            took >= DEADLINE && took < DEADLINE + SLACK,
            "{what} took {took:?}"
        );
    }
    server.set_write_timeout(Some(DEADLINE));
    let (result, took) = timed(|| server.write_str("hi"));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took < DEADLINE + SLACK, "{took:?}");
    // A read is not held up by the stuck writer.
    peer.write_all(b"line\r\n").expect("a line");
    let (line, took) = timed(|| server.within(WAIT).read_str());
    assert_eq!(line.expect("line"), "line");
    assert!(took < SLACK, "{took:?}");

    // close() releases the stuck writer with a connection error.
    let (_, took) = timed(|| server.close());
    assert!(took < SLACK, "close took {took:?}");
    let err = writer.join().expect("writer").expect_err("released");
    assert!(err.is_connection_error(), "{err:?}");
}

/// Two to eight threads on one link, each doing something else: blocking,
/// `try_` and `within()` reads, writes of every kind, timeouts changed
/// underneath them. Every line the peer sends reaches exactly one reader,
/// in the order sent; every line written reaches the peer whole; every
/// call with a deadline returns within it.
#[test]
fn many_callers_on_one_link_lose_nothing_and_keep_their_bounds() {
    let _w = watchdog(Duration::from_secs(120));
    let _busy = busy_cpus();
    const LINES: u64 = 400;
    const WRITES: u32 = 50;
    let calls = CallbackRecorder::new();
    let (server, peer) = served("many-callers", &calls);
    let server = Arc::new(server);
    server.set_read_timeout(None);
    let done = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicU64::new(0));
    let got: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();

    // The peer sends numbered lines and collects what the writers send.
    let sender = {
        let mut peer = peer.try_clone().expect("clone");
        thread::spawn(move || {
            for i in 0..LINES {
                peer.write_all(format!("{i}\r\n").as_bytes()).expect("send");
                if i % 50 == 0 {
                    thread::yield_now();
                }
            }
        })
    };
    let collector = {
        let peer = peer.try_clone().expect("clone");
        thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(peer).lines() {
                match line {
                    Ok(line) if line == "stop" => break,
                    Ok(line) => lines.push(line),
                    Err(e) => panic!("peer read: {e}"),
                }
            }
            lines
        })
    };

    // Readers of three kinds; each ends at a connection error (the blocking
    // one is released by close_client) or when told to.
    let reader = |id: usize, kind: u8| {
        let (server, done, late, got) = (server.clone(), done.clone(), late.clone(), got.clone());
        thread::Builder::new()
            .name(format!("reader {id}"))
            .spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let line = match kind {
                        0 => server.read_str().map(Some),
                        1 => server.try_read_str(),
                        _ => match server.within(DEADLINE).read_str() {
                            Err(Error::Timeout) => Ok(None),
                            other => other.map(Some),
                        },
                    };
                    if kind > 0 && started.elapsed() > DEADLINE + SLACK {
                        late.fetch_add(1, Ordering::Relaxed);
                    }
                    match line {
                        Ok(Some(line)) => got
                            .lock()
                            .expect("got")
                            .push((id, line.parse().expect("a number"))),
                        Ok(None) => thread::yield_now(),
                        Err(e) if e.is_connection_error() => return,
                        Err(e) => panic!("reader {id}: {e:?}"),
                    }
                }
            })
            .expect("reader")
    };
    let readers = vec![reader(0, 0), reader(1, 1), reader(2, 1), reader(3, 2)];

    let writer = |id: u32| {
        let server = server.clone();
        thread::spawn(move || {
            for n in 0..WRITES {
                let written = match (id + n) % 3 {
                    0 => server.write_json(&serde_json::json!({ "w": id, "n": n })),
                    1 => server.write_lines([format!("w{id} "), format!("n{n} lines\r\n")]),
                    _ => server.write(format!("w{id} n{n} bytes\r\n").as_bytes()),
                };
                written.expect("write");
            }
        })
    };
    let writers = vec![writer(1), writer(2)];
    let twiddler = {
        let (server, done) = (server.clone(), done.clone());
        thread::spawn(move || {
            let mut i = 0u32;
            while !done.load(Ordering::Acquire) {
                // Changed under the callers: a write's bound, or none.
                server.set_write_timeout(if i % 2 == 0 { Some(WAIT) } else { None });
                i += 1;
                thread::yield_now();
            }
        })
    };

    for w in writers {
        w.join().expect("writer");
    }
    sender.join().expect("sender");
    let deadline = Instant::now() + WAIT;
    while (got.lock().expect("got").len() as u64) < LINES {
        assert!(Instant::now() < deadline, "lines lost");
        thread::sleep(Duration::from_millis(1));
    }
    done.store(true, Ordering::Release);
    twiddler.join().expect("twiddler");
    server.set_write_timeout(None);
    server.write_str("stop").expect("stop");
    let written = collector.join().expect("collector");
    server.close_client();
    for r in readers {
        r.join().expect("reader");
    }

    // Each line to exactly one reader, each reader's in the order sent.
    let got = got.lock().expect("got");
    let mut all: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..LINES).collect::<Vec<_>>(),
        "lost or duplicated lines"
    );
    for id in 0..4 {
        let mine: Vec<u64> = got
            .iter()
            .filter(|(r, _)| *r == id)
            .map(|(_, n)| *n)
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "reader {id} out of order"
        );
    }
    assert_eq!(late.load(Ordering::Relaxed), 0, "calls past their bound");
    // Every write whole, none interleaved with another.
    assert_eq!(written.len(), 2 * WRITES as usize, "{written:?}");
    for line in &written {
        let whole = (line.starts_with("{\"") && line.ends_with('}'))
            || (line.starts_with('w') && (line.ends_with(" lines") || line.ends_with(" bytes")));
        assert!(whole, "an interleaved frame: {line:?}");
    }
    calls.assert_next_connected(false, WAIT);
}

/// Blocked readers, a stuck writer and `try_` and `within()` callers on
/// every side of a `close_client()`, a `close()` and a peer that vanishes
/// (resets): each is released with a connection error or its own
/// timeout, within its bound, and the link's state is the end's.
#[test]
fn close_client_close_and_a_vanishing_peer_release_every_caller() {
    let _w = watchdog(Duration::from_secs(120));
    let _busy = busy_cpus();
    for ending in ["close_client", "close", "peer reset"] {
        let calls = CallbackRecorder::new();
        let (server, mut peer) = served(&format!("release-{ending}"), &calls);
        let server = Arc::new(server);
        let reader = blocked_reader(&server, &mut peer);
        let writer = stuck_writer(&server, &mut peer);
        let others: Vec<_> = (0..4)
            .map(|i| {
                let server = server.clone();
                thread::spawn(move || {
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_millis(300) {
                        let (result, took) = timed(|| match i % 2 {
                            0 => server.try_read_str().map(|_| ()),
                            _ => server.within(DEADLINE).read_str().map(|_| ()),
                        });
                        assert!(took < DEADLINE + SLACK, "took {took:?}");
                        match result {
                            Ok(()) | Err(Error::Timeout) => {}
                            Err(e) if e.is_connection_error() => return,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        match ending {
            "close_client" => server.close_client(),
            "close" => server.close(),
            _ => support::reset(peer),
        }
        for (who, released) in [
            ("reader", reader.join().expect("reader").map(|_| ())),
            ("writer", writer.join().expect("writer")),
        ] {
            let err = released.expect_err(who);
            assert!(err.is_connection_error(), "{ending}: {who}: {err:?}");
        }
        assert!(
            started.elapsed() < SLACK,
            "{ending}: {:?}",
            started.elapsed()
        );
        for other in others {
            other.join().expect("caller");
        }
        calls.assert_next_connected(false, WAIT);
        assert!(!server.connected());
    }
}

/// A timeout set while another thread's call with a deadline runs is the
/// one that stays: the call never touches the link's timeouts (no call
/// narrows a shared socket timeout and puts back what it found).
#[test]
fn a_timeout_set_during_a_deadline_call_is_the_one_that_stays() {
    let _w = watchdog(Duration::from_secs(60));
    let _busy = busy_cpus();
    let calls = CallbackRecorder::new();
    let (server, mut peer) = served("timeout-during-deadline", &calls);
    let server = Arc::new(server);
    server.set_read_timeout(None);
    let reader = blocked_reader(&server, &mut peer);
    // The blocked reader has no deadline; another call with one runs
    // while the link's timeout is changed underneath it.
    let bounded = {
        let server = server.clone();
        thread::spawn(move || server.within(Duration::from_millis(300)).read_str())
    };
    server.set_read_timeout(Some(DEADLINE));
    assert!(matches!(
        bounded.join().expect("bounded"),
        Err(Error::Timeout)
    ));
    // The timeout set stays: a plain read is bounded by it.
    let (result, took) = timed(|| server.try_read_str());
    assert!(matches!(result, Ok(None)), "{result:?}");
    assert!(took < SLACK);
    peer.write_all(b"tial\r\n").expect("the rest");
    assert_eq!(reader.join().expect("reader").expect("line"), "partial");
    let (result, took) = timed(|| server.read_str());
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(
        took < DEADLINE + SLACK,
        "the timeout set did not stay: {took:?}"
    );
    calls.assert_no_more(Duration::ZERO);
}
