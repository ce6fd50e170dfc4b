//! `spin(Duration)`: a read that finds nothing spins before it sleeps,
//! but only while a reply is due; deadlines, `try_` reads, `close()` and
//! the monitor behave as without it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{raw_client, watchdog, WAIT};
use ts_tcpip::testing::CallbackRecorder;
use ts_tcpip::*;

/// A server spinning `spin`, its raw peer taken.
fn spinning(
    name: &str,
    spin: Duration,
    calls: &CallbackRecorder,
) -> (Arc<OneClientServer>, std::net::TcpStream) {
    let server = testing::start_server(
        OneClientServer::builder()
            .name(name)
            .spin(spin)
            .connect_callback(calls.callback()),
    )
    .expect("server");
    let peer = raw_client(&server);
    server.wait_connected(WAIT).expect("taken");
    calls.assert_next_connected(true, WAIT);
    (Arc::new(server), peer)
}

/// This thread's voluntary context switches and the time it has been
/// runnable (on a CPU, or waiting in a run queue for one) so far (Linux).
/// A thread that spins, yielding between tries, is runnable the whole
/// spin however busy the machine; a thread asleep in a read is not.
#[cfg(target_os = "linux")]
fn this_thread() -> (u64, Duration) {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
    let switches = status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("voluntary_ctxt_switches");
    // On a CPU and waiting for one, in ns: the first two fields.
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let runnable: u64 = schedstat
        .split_whitespace()
        .take(2)
        .map(|f| f.parse::<u64>().expect("ns"))
        .sum();
    (switches, Duration::from_nanos(runnable))
}

/// A peer that echoes every line after `delay` (a device that takes
/// that long to answer).
#[cfg(target_os = "linux")]
fn echoing(peer: std::net::TcpStream, delay: Duration) -> thread::JoinHandle<()> {
    peer.set_nodelay(true).expect("nodelay");
    thread::spawn(move || {
        let mut writer = peer.try_clone().expect("clone");
        for line in BufReader::new(peer).lines() {
            let Ok(line) = line else { return };
            thread::sleep(delay);
            if writer.write_all(format!("{line}\r\n").as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// With a spin longer than the peer takes to answer (1 ms here), a read
/// after a write gets its reply without the thread ever sleeping; without
/// one it sleeps for nearly every reply. (With a peer that answers at
/// once, a loaded machine can make the reader late enough to find most
/// replies there already: the peer's delay keeps the comparison.)
#[cfg(target_os = "linux")]
#[test]
fn a_read_after_a_write_spins_for_its_reply_instead_of_sleeping() {
    let _w = watchdog(Duration::from_secs(60));
    const ROUND_TRIPS: u64 = 500;
    let switches = |spin: Duration| {
        let calls = CallbackRecorder::new();
        let (server, peer) = spinning("spin-reply", spin, &calls);
        let echo = echoing(peer, Duration::from_millis(1));
        let (before, _) = this_thread();
        for i in 0..ROUND_TRIPS {
            server.write_str(&format!("ping {i}")).expect("write");
            assert_eq!(server.read_str().expect("reply"), format!("ping {i}"));
        }
        let (after, _) = this_thread();
        server.close();
        echo.join().expect("echo");
        after - before
    };
    let spinning = switches(Duration::from_millis(50));
    let sleeping = switches(Duration::ZERO);
    eprintln!("sleeps per {ROUND_TRIPS} round trips: spin {spinning}, no spin {sleeping}");
    assert!(
        spinning < ROUND_TRIPS / 20,
        "{spinning} sleeps with the spin"
    );
    // A reply that came before the read asks needs no sleep either (a
    // reader preempted for the peer's whole delay), so not every round
    // trip need sleep without the spin.
    assert!(
        sleeping >= ROUND_TRIPS / 2 && sleeping > 4 * spinning,
        "{sleeping} sleeps without it: the test shows nothing"
    );
}

/// A reader on a link that only receives (nothing written, no frame under
/// way) never spins: blocked in a read for a while, its thread is asleep.
/// After a write whose reply does not come, it spins once, for the spin
/// (runnable all along), then sleeps.
#[cfg(target_os = "linux")]
#[test]
fn a_read_spins_only_while_a_reply_is_due() {
    let _w = watchdog(Duration::from_secs(60));
    const SPIN: Duration = Duration::from_millis(200);
    let calls = CallbackRecorder::new();
    let (server, peer) = spinning("spin-idle", SPIN, &calls);
    let measure = |write_first: bool| {
        let server = server.clone();
        thread::spawn(move || {
            if write_first {
                server.write_str("a question").expect("write");
            }
            let (_, before) = this_thread();
            let read = server.within(Duration::from_secs(1)).read_str();
            assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
            let (_, after) = this_thread();
            after - before
        })
        .join()
        .expect("reader")
    };
    let idle = measure(false);
    let due = measure(true);
    eprintln!("runnable during a 1 s read: idle {idle:?}, reply due {due:?}");
    // A blocked read is runnable only to go to sleep and wake up.
    assert!(
        idle <= Duration::from_millis(20),
        "an idle read was runnable {idle:?}"
    );
    assert!(due >= SPIN / 2, "a read with a reply due spun only {due:?}");
    assert!(
        due < Duration::from_millis(600),
        "it spun past the spin: {due:?}"
    );
    drop(peer);
}

/// A read's deadline bounds its spin; a `try_` read never spins; `close()`
/// releases a spinning reader at once.
#[test]
fn a_spin_keeps_deadlines_try_reads_and_close() {
    let _w = watchdog(Duration::from_secs(60));
    let long = Duration::from_secs(30);
    let calls = CallbackRecorder::new();
    let (server, _peer) = spinning("spin-bounds", long, &calls);
    server.write_str("a question").expect("write");
    let started = Instant::now();
    let read = server.within(Duration::from_millis(50)).read_str();
    assert!(matches!(read, Err(Error::Timeout)), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(matches!(server.try_read_str(), Ok(None)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A reader spinning for its reply, released by close().
    server.write_str("another").expect("write");
    let reader = {
        let server = server.clone();
        thread::spawn(move || server.read_str())
    };
    // The reader spins (it holds the read half): a try_ read is refused.
    let deadline = Instant::now() + WAIT;
    while !matches!(server.try_read_str(), Ok(None)) || reader.is_finished() {
        assert!(Instant::now() < deadline, "the reader never started");
    }
    let started = Instant::now();
    server.close();
    let read = reader.join().expect("reader");
    assert!(read.is_err_and(|e| e.is_connection_error()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A spinning end's monitor still hears a peer's close at once, and the
/// lines that came before it are all read.
#[test]
fn a_spinning_link_notices_a_close_and_loses_nothing() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let (server, mut peer) = spinning("spin-close", Duration::from_millis(10), &calls);
    let mut questions = BufReader::new(peer.try_clone().expect("clone"));
    for i in 0..100 {
        server.write_str(&format!("q {i}")).expect("write");
        let mut question = String::new();
        questions.read_line(&mut question).expect("question");
        assert_eq!(question, format!("q {i}\r\n"));
        peer.write_all(format!("a {i}\r\n").as_bytes())
            .expect("answer");
        assert_eq!(server.read_str().expect("answer"), format!("a {i}"));
    }
    drop(questions);
    peer.write_all(b"last\r\n").expect("send");
    drop(peer);
    assert_eq!(server.read_str().expect("the last line"), "last");
    calls.assert_next_connected(false, WAIT);
}
