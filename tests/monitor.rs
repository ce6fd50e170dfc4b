//! The connection monitor waits for the peer's hang-up only:
//! messages do not wake it, and a close is noticed at once, on an idle
//! link and on a busy one, whatever `monitor_connection_interval` says.
//!
//! Each test names its server so that its monitor thread is told apart by
//! name (`tcpip-monitor X...`, cut to 15 bytes by Linux: the first letter
//! of the name is what differs).

mod support;

use std::io::Write;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{raw_client, watchdog, WAIT};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::*;

/// Far longer than any bound below: a monitor that looked once per
/// interval on a busy link (the earlier design) cannot pass by
/// luck.
const LONG_INTERVAL: Duration = Duration::from_secs(10);

/// How soon a close must be noticed here: generous for a loaded 2-core CI
/// machine, yet a tenth of `LONG_INTERVAL`. The bench (`benches/tick.rs`)
/// measures the real figure (about a millisecond).
const NOTICED_WITHIN: Duration = Duration::from_secs(1);

fn server_named(name: &str, calls: &CallbackRecorder, interval: Duration) -> Arc<OneClientServer> {
    Arc::new(
        testing::start_server(
            OneClientServer::builder()
                .name(name)
                .monitor_connection_interval(interval)
                .connect_callback(calls.callback()),
        )
        .expect("server starts"),
    )
}

/// Reads lines on `server` until "bye" (then stops reading) or an error.
fn reader_until_bye(server: &Arc<OneClientServer>) -> thread::JoinHandle<usize> {
    let server = server.clone();
    thread::spawn(move || {
        let mut lines = 0;
        while let Ok(line) = server.read_str() {
            if line == "bye" {
                break;
            }
            lines += 1;
        }
        lines
    })
}

/// 500 round trips, one every half millisecond, through an echo thread on
/// the server: its monitor must not wake for them. Formerly the
/// monitor sat in a blocking peek on the same socket as the reader, and
/// every message woke it (about one switch every other message, counted);
/// it now sleeps in `poll` for `POLLRDHUP`, which data does not trigger.
#[cfg(target_os = "linux")]
#[test]
fn the_monitor_does_not_wake_for_messages() {
    use std::io::{BufRead, BufReader};
    let _w = watchdog(Duration::from_secs(60));
    const MESSAGES: usize = 500;
    let calls = CallbackRecorder::new();
    let server = server_named("Quiet", &calls, DEFAULT_MONITOR_CONNECTION_INTERVAL);
    let mut peer = raw_client(&server);
    peer.set_nodelay(true).expect("nodelay");
    calls.assert_next_connected(true, WAIT);
    let echo = {
        let server = server.clone();
        thread::spawn(move || {
            while let Ok(line) = server.read_str() {
                if server.write_str(&line).is_err() {
                    break;
                }
            }
        })
    };
    let mut replies = BufReader::new(peer.try_clone().expect("clone"));
    let monitor = "tcpip-monitor Q"; // "tcpip-monitor Quiet", cut to 15 bytes
                                     // Let the monitor reach its wait (the connect wakes it once).
    thread::sleep(Duration::from_millis(50));
    let before = support::proc::context_switches_once_named(monitor, WAIT);
    let mut line = String::new();
    for i in 0..MESSAGES {
        peer.write_all(format!("tick {i}\r\n").as_bytes())
            .expect("send");
        line.clear();
        replies.read_line(&mut line).expect("echo");
        assert_eq!(line, format!("tick {i}\r\n"));
        thread::sleep(Duration::from_micros(500));
    }
    let woke = support::proc::context_switches(monitor).expect("the monitor thread") - before;
    eprintln!("monitor switches over {MESSAGES} messages: {woke}");
    assert!(
        woke <= 2,
        "the monitor woke {woke} times for {MESSAGES} messages"
    );
    // And it still notices the close at once.
    let closed = Instant::now();
    drop(peer);
    drop(replies);
    calls.assert_next_connected(false, NOTICED_WITHIN);
    eprintln!("close noticed after {:?}", closed.elapsed());
    echo.join().expect("echo thread");
}

/// A busy link: the peer streams lines that a reader thread takes as they
/// come, then sends "bye" and closes; the reader stops after "bye" and
/// never meets the end of file itself. Bytes may wait unread when the FIN
/// arrives. The drop must be reported soon after the last line is read,
/// not after `monitor_connection_interval` (10 s here).
#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "without POLLRDHUP the monitor looks once per interval on a busy link"
)]
fn a_close_on_a_busy_link_is_noticed_at_once() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let server = server_named("Busy", &calls, LONG_INTERVAL);
    for _ in 0..3 {
        let mut peer = raw_client(&server);
        peer.set_nodelay(true).expect("nodelay");
        calls.assert_next_connected(true, WAIT);
        let reader = reader_until_bye(&server);
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_millis(50) {
            peer.write_all(b"busy line\r\n").expect("send");
            sent += 1;
            thread::sleep(Duration::from_micros(500));
        }
        peer.write_all(b"bye\r\n").expect("send");
        let closed = Instant::now();
        drop(peer);
        calls.assert_next_connected(false, NOTICED_WITHIN);
        eprintln!("busy close noticed after {:?}", closed.elapsed());
        assert_eq!(reader.join().expect("reader"), sent);
        assert!(!server.connected());
    }
}

/// An idle link, the same: noticed at once whatever the interval.
#[test]
fn a_close_on_an_idle_link_is_noticed_at_once() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let server = server_named("Idle", &calls, LONG_INTERVAL);
    for _ in 0..3 {
        let peer = raw_client(&server);
        calls.assert_next_connected(true, WAIT);
        thread::sleep(Duration::from_millis(20));
        let closed = Instant::now();
        drop(peer);
        calls.assert_next_connected(false, NOTICED_WITHIN);
        eprintln!("idle close noticed after {:?}", closed.elapsed());
    }
}

/// Closed with bytes unread: the link stays up (no callback) until they
/// are read, then the drop is reported soon after, though the interval is
/// 10 s; the monitor's looks meanwhile are few (paced, doubling).
#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "without POLLRDHUP bytes wake the monitor too, and it looks once per interval while they wait unread"
)]
fn a_hang_up_with_bytes_unread_is_reported_once_they_are_read() {
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let server = server_named("Unread", &calls, LONG_INTERVAL);
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    peer.write_all(b"last words\r\n").expect("send");
    drop(peer);
    calls.assert_no_more(Duration::from_millis(300));
    assert!(server.connected(), "a line is unread: still connected");
    #[cfg(target_os = "linux")]
    let before = support::proc::context_switches_once_named("tcpip-monitor U", WAIT);
    thread::sleep(Duration::from_millis(300));
    #[cfg(target_os = "linux")]
    {
        // Pauses of 1, 2, 4 ... ms, doubling up to the interval: by now
        // each is 256 ms or more. A monitor spinning on the hang-up (poll
        // returns at once once the peer closed) would show thousands.
        let woke = support::proc::context_switches("tcpip-monitor U").expect("the monitor thread")
            - before;
        assert!(woke <= 10, "the monitor woke {woke} times in 300 ms");
    }
    assert_eq!(server.read_str().expect("the unread line"), "last words");
    calls.assert_next_connected(false, NOTICED_WITHIN);
}

/// The monitor's wait on the socket, `ppoll` on x86_64 Linux; away from
/// the socket it waits on a condition variable (`futex`).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const PPOLL: i64 = 271;

/// Waits until the thread named `name` is in system call `want`.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn until_in(name: &str, want: i64, what: &str) {
    let deadline = Instant::now() + WAIT;
    while support::proc::syscall_of(name) != Some(want) {
        assert!(Instant::now() < deadline, "the monitor never {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A link read at a high rate (here tens of thousands of lines a second)
/// has no monitor waiting on its socket, whose wait entry the kernel would
/// call for every packet: the reads took it off. Once the reads stop it
/// waits on the socket again, and hears a close at once.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn a_link_read_at_a_high_rate_keeps_the_monitor_off_its_packets() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _w = watchdog(Duration::from_secs(60));
    let calls = CallbackRecorder::new();
    let server = server_named("Rate", &calls, DEFAULT_MONITOR_CONNECTION_INTERVAL);
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    let monitor = "tcpip-monitor R"; // "tcpip-monitor Rate", cut to 15 bytes
    until_in(monitor, PPOLL, "waited on the socket");
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let (mut peer, stop) = (peer.try_clone().expect("clone"), stop.clone());
        thread::spawn(move || {
            let lines = "fast line\r\n".repeat(100);
            while !stop.load(Ordering::Relaxed) {
                peer.write_all(lines.as_bytes()).expect("send");
            }
            // The last line: the reader reads everything up to it.
            peer.write_all(b"stop\r\n").expect("send");
        })
    };
    let reader = {
        let server = server.clone();
        thread::spawn(move || {
            let mut read = 0u64;
            while server.read_str().expect("line") != "stop" {
                read += 1;
            }
            read
        })
    };
    // While the reads go on, the monitor leaves the socket.
    let deadline = Instant::now() + WAIT;
    while support::proc::syscall_of(monitor) == Some(PPOLL) {
        assert!(
            Instant::now() < deadline,
            "the monitor stayed on the socket"
        );
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    streamer.join().expect("streamer");
    let read = reader.join().expect("reader");
    assert!(read >= 1_000, "{read} lines read");
    // The reads stopped: back on the socket, where a close is heard at once.
    until_in(monitor, PPOLL, "went back to the socket");
    let closed = Instant::now();
    peer.flush().expect("flush");
    drop(peer);
    calls.assert_next_connected(false, NOTICED_WITHIN);
    eprintln!("close noticed after {:?}", closed.elapsed());
}

/// The peer of a link read at a high rate closes, and the reader stops
/// reading before it meets the end of file: the monitor, looking once per
/// interval while the reads went on, reports the drop within the interval.
#[test]
fn a_hang_up_after_reads_at_a_high_rate_is_noticed_within_the_interval() {
    let _w = watchdog(Duration::from_secs(60));
    const LINES: usize = 20_000;
    let calls = CallbackRecorder::new();
    let server = server_named("Hangup", &calls, DEFAULT_MONITOR_CONNECTION_INTERVAL);
    let mut peer = raw_client(&server);
    calls.assert_next_connected(true, WAIT);
    let reader = {
        let server = server.clone();
        thread::spawn(move || (0..LINES).try_for_each(|_| server.read_str().map(drop)))
    };
    for _ in 0..LINES / 100 {
        peer.write_all("fast line\r\n".repeat(100).as_bytes())
            .expect("send");
    }
    reader.join().expect("reader").expect("every line");
    let closed = Instant::now();
    drop(peer);
    calls.assert_next_connected(false, WAIT);
    let took = closed.elapsed();
    // The interval, with room for a loaded machine.
    assert!(took < Duration::from_secs(2), "noticed after {took:?}");
    eprintln!("close noticed after {took:?}");
}
