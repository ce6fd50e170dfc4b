//! Shared helpers for the integration tests: a watchdog that turns a hang
//! into a failure, generous bounds, a log capture, and a raw `std::net`
//! peer for the crate's server. The /proc probes of the process are in
//! [`proc`] (Linux only), for the binaries that measure the process.
#![allow(dead_code)]

pub mod blocked;
pub mod checks;
pub mod frames;
pub mod netns;
#[cfg(all(feature = "tls", not(target_vendor = "apple")))]
pub mod pki;
#[cfg(target_os = "linux")]
pub mod proc;
pub mod reference;

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use ts_tcpip::testing::{self, CallbackRecorder};
use ts_tcpip::{Client, Link, OneClientServer};

/// A generous bound for things that must happen (a connect, a line, an
/// EOF). Never a measure of speed: only "it did not hang".
pub const WAIT: Duration = Duration::from_secs(10);

/// Kills the test process if dropped too late: see [`watchdog`].
#[must_use = "the watchdog is disarmed when this guard is dropped"]
pub struct Watchdog {
    disarm: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a watchdog for the calling test: unless the returned guard is
/// dropped within `limit`, it prints which test hung and exits the process
/// with status 101, so a hang fails CI instead of blocking it.
///
/// Bind it first (`let _w = watchdog(..);`) so it is dropped last, after
/// the servers and clients whose closing could hang.
pub fn watchdog(limit: Duration) -> Watchdog {
    let test = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let (disarm, armed) = crossbeam_channel::bounded::<()>(1);
    let thread = thread::Builder::new()
        .name(format!("watchdog {test}"))
        .spawn(move || {
            // Dropping the sender disconnects the channel: the test ended.
            if let Err(RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                eprintln!("\nwatchdog: test `{test}` still running after {limit:?}: aborting the test process");
                std::process::exit(101);
            }
        })
        .expect("spawn the watchdog thread");
    Watchdog {
        disarm: Some(disarm),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Installs a logger (once per test process) that keeps every record's
/// text for [`logged`] and echoes it to stderr when `TS_TCPIP_TEST_LOG` is
/// set. No extra dependency: `log` is one of the crate's.
pub fn init_log() {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// True if a record logged since [`init_log`] contains every one of
/// `needles` (records of every test in the process are kept: put a unique
/// name, such as the server's, among the needles).
pub fn logged(needles: &[&str]) -> bool {
    !logs_with(needles).is_empty()
}

/// Every record logged since [`init_log`] that contains all of `needles`,
/// as `"LEVEL target: message"`.
pub fn logs_with(needles: &[&str]) -> Vec<String> {
    records()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| needles.iter().all(|n| r.contains(n)))
        .cloned()
        .collect()
}

/// Waits up to `timeout` for a record that contains every one of
/// `needles` (the logger says when one comes) and returns it.
pub fn wait_logged(needles: &[&str], timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut records = records().lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(r) = records
            .iter()
            .find(|r| needles.iter().all(|n| r.contains(n)))
        {
            return Some(r.clone());
        }
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        records = LOGGED
            .wait_timeout(records, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Told of every new record.
static LOGGED: Condvar = Condvar::new();

fn records() -> &'static Mutex<Vec<String>> {
    static RECORDS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    RECORDS.get_or_init(Mutex::default)
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        if std::env::var_os("TS_TCPIP_TEST_LOG").is_some() {
            eprintln!("{line}");
        }
        records()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
        LOGGED.notify_all();
    }

    fn flush(&self) {}
}

/// The address a client should dial to reach `server`: its first listening
/// address, with an unspecified IP (any_host) replaced by loopback.
pub fn dial_addr(server: &OneClientServer) -> SocketAddr {
    loopback(server.local_addrs()[0])
}

/// `addr` with an unspecified IP replaced by the loopback of its family.
pub fn loopback(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip: IpAddr = match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        addr.set_ip(ip);
    }
    addr
}

/// A raw `std::net` peer connected to `server` (its first local address),
/// with read and write timeouts of [`WAIT`] so that no read hangs.
pub fn raw_client(server: &OneClientServer) -> TcpStream {
    raw_connect(dial_addr(server))
}

/// A raw `std::net` peer connected to `addr`, timeouts [`WAIT`].
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set_read_timeout");
    stream
        .set_write_timeout(Some(WAIT))
        .expect("set_write_timeout");
    stream
}

/// Panics unless the next read on `stream` finds the connection closed
/// within [`WAIT`]: end of file, as the spec wants (a reset is accepted as
/// closed too, with a note). Takes the stream by value or by `&mut`.
#[track_caller]
pub fn expect_eof(mut stream: impl BorrowMut<TcpStream>) {
    let stream = stream.borrow_mut();
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set_read_timeout");
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "expected end of file, got {n} bytes: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) =>
        {
            eprintln!("note: connection reset instead of a clean end of file: {e}");
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no end of file within {WAIT:?}")
        }
        Err(e) => panic!("expected end of file, got {e}"),
    }
}

/// Writes `line` plus `\r\n` (the default terminator) on a raw peer.
pub fn send_line(stream: &mut TcpStream, line: &str) {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("raw write");
}

/// Reads one `\r\n`-terminated line from a raw peer (within [`WAIT`]) and
/// returns it without the terminator. Reads byte by byte so nothing past
/// the line is taken from the socket; use a `BufReader` for bulk.
#[track_caller]
pub fn recv_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => panic!("end of file after {:?}", String::from_utf8_lossy(&line)),
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!("raw read after {:?}: {e}", String::from_utf8_lossy(&line)),
        }
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).expect("utf-8 line")
}

/// Reads `\r\n`-terminated lines from a buffered raw peer.
#[track_caller]
pub fn recv_buffered_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("raw read_line");
    assert!(n > 0, "end of file");
    assert!(
        line.ends_with("\r\n"),
        "partial line at end of file: {line:?}"
    );
    line.truncate(line.len() - 2);
    line
}

/// Window for asserting that something does NOT happen (no callback, a
/// read still blocked). Never waited on as "enough" for anything.
pub const QUIET: Duration = Duration::from_millis(200);

/// A line each way between `server` and a connected crate `client`.
#[track_caller]
pub fn exchange(server: &OneClientServer, client: &Client, tag: &str) {
    client.set_read_timeout(Some(WAIT));
    server.set_read_timeout(Some(WAIT));
    client
        .write_str(&format!("to server {tag}"))
        .expect("client write");
    assert_eq!(
        server.read_str().expect("server read"),
        format!("to server {tag}")
    );
    server
        .write_str(&format!("to client {tag}"))
        .expect("server write");
    assert_eq!(
        client.read_str().expect("client read"),
        format!("to client {tag}")
    );
}

/// A line each way between `server` and a raw peer.
#[track_caller]
pub fn exchange_raw(server: &OneClientServer, peer: &mut TcpStream, tag: &str) {
    server.set_read_timeout(Some(WAIT));
    send_line(peer, &format!("to server {tag}"));
    assert_eq!(
        server.read_str().expect("server read"),
        format!("to server {tag}")
    );
    server
        .write_str(&format!("to client {tag}"))
        .expect("server write");
    assert_eq!(recv_line(peer), format!("to client {tag}"));
}

/// A server on 127.0.0.1:0 named `name`, with `calls` as its callback, a
/// raw peer it has taken, and a read timeout of [`WAIT`] so that a broken
/// read fails instead of hanging.
pub fn served(name: &str, calls: &CallbackRecorder) -> (OneClientServer, TcpStream) {
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
#[track_caller]
pub fn serves_next_peer(server: &OneClientServer, calls: &CallbackRecorder, tag: &str) {
    let mut next = raw_client(server);
    server.wait_connected(WAIT).expect("next peer taken");
    calls.assert_next_connected(true, WAIT);
    exchange_raw(server, &mut next, tag);
}

/// Panics unless `stream`'s next read (within [`WAIT`]) finds the
/// connection reset. Under Wine a reset that arrived before the read is
/// read as end of file (a read already blocked gets the reset, as on
/// Windows and Linux); there a write must then report the reset.
#[track_caller]
pub fn expect_reset(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set_read_timeout");
    match stream.read(&mut [0u8; 64]) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(0) if cfg!(windows) => {
            let err = stream.write(b"?").expect_err("a write after a reset fails");
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        }
        Ok(n) => panic!("expected a reset, got {n} bytes (0: end of file)"),
    }
}

/// Closes `stream` with a reset (RST) instead of a clean end of file.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}
