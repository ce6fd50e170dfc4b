//! Capture and replay in `ts_tcpip::testing`: a recording proxy keeps both
//! directions with their times; a capture written to a file reads back the
//! same, and the Python snippet of its documentation reads it too; a peer
//! built from a capture replays one side, checks the other's bytes, and
//! keeps the captured pauses when asked to.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{raw_connect, watchdog, WAIT};
use ts_tcpip::prelude::*;
use ts_tcpip::testing::{Capture, Direction, Event, FaultProxy, Record, ScriptedPeer, Timing};

/// A request, a reply after `think`, and both sides closing, through a
/// recording proxy; returns what it captured.
fn captured_session(think: Duration) -> Capture {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = FaultProxy::builder(upstream.local_addr().unwrap())
        .record(true)
        .start()
        .unwrap();
    let mut program = raw_connect(proxy.addr());
    let (mut server, _) = upstream.accept().unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    program.write_all(b"ping\r\n").unwrap();
    let mut request = [0u8; 6];
    server.read_exact(&mut request).unwrap();
    std::thread::sleep(think);
    server.write_all(b"pong\r\n").unwrap();
    let mut reply = [0u8; 6];
    program.read_exact(&mut reply).unwrap();
    program.shutdown(Shutdown::Write).unwrap();
    // Once a side reads the other's close, the proxy has recorded it.
    assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
    server.shutdown(Shutdown::Write).unwrap();
    assert_eq!(program.read(&mut [0u8; 8]).unwrap(), 0);
    proxy.capture()
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let unique = format!("ts-tcpip-{}-{name}", std::process::id());
        TempFile(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_recording_proxy_captures_both_directions_with_their_times() {
    let _w = watchdog(Duration::from_secs(30));
    let think = Duration::from_millis(50);
    let capture = captured_session(think);
    let events: Vec<&Event> = capture.records().iter().map(|r| &r.event).collect();
    assert!(matches!(events[0], Event::Open { .. }), "{capture}");
    assert_eq!(
        &events[1..],
        [
            &Event::Data(Direction::ToServer, b"ping\r\n".to_vec()),
            &Event::Data(Direction::ToClient, b"pong\r\n".to_vec()),
            &Event::Eof(Direction::ToServer),
            &Event::Eof(Direction::ToClient),
        ],
        "{capture}"
    );
    assert!(capture.records().iter().all(|r| r.connection == 1));
    let times: Vec<Duration> = capture.records().iter().map(|r| r.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[2] - times[1] >= think, "the reply's pause: {times:?}");
    assert_eq!(capture.sent(Direction::ToServer), b"ping\r\n");
}

#[test]
fn a_proxy_that_does_not_record_captures_nothing() {
    let _w = watchdog(Duration::from_secs(30));
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = FaultProxy::start(upstream.local_addr().unwrap()).unwrap();
    let mut program = raw_connect(proxy.addr());
    let (mut server, _) = upstream.accept().unwrap();
    program.write_all(b"x").unwrap();
    server.read_exact(&mut [0u8; 1]).unwrap();
    assert!(proxy.capture().records().is_empty());
}

#[test]
fn a_capture_saved_to_a_file_loads_back_the_same() {
    let _w = watchdog(Duration::from_secs(30));
    let capture = captured_session(Duration::ZERO);
    let file = TempFile::new("saved.capture");
    capture.save(&file.0).unwrap();
    let text = std::fs::read_to_string(&file.0).unwrap();
    assert!(text.starts_with("# ts-tcpip capture 1\n"), "{text}");
    assert!(text.contains(" 1 > ping\\r\\n\n"), "{text}");
    assert_eq!(Capture::load(&file.0).unwrap(), capture);
}

/// The Python code block of a documentation text: the first one after
/// "```python", each line with `prefix` (a doc comment's `///`, or
/// nothing) and the one space after it taken off.
fn python_block(text: &str, prefix: &str) -> String {
    let start = text.find("```python").expect("a python block") + "```python".len();
    let rest = &text[start..];
    let body = &rest[..rest.find("```").expect("the block's end")];
    let lines: Vec<&str> = body
        .lines()
        .map(|line| match prefix {
            "" => line,
            prefix => {
                let line = line.trim_start();
                let line = line.strip_prefix(prefix).unwrap_or(line);
                line.strip_prefix(' ').unwrap_or(line)
            }
        })
        .collect();
    lines.join("\n").trim_matches('\n').to_owned() + "\n"
}

#[test]
fn the_documented_python_snippet_reads_a_capture() {
    let _w = watchdog(Duration::from_secs(60));
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: no python3 to run the documented snippet with");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("src/testing/capture.rs")).unwrap();
    let snippet = python_block(&doc, "///");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        python_block(&readme, ""),
        snippet,
        "the README shows the documented snippet"
    );
    let all_bytes: Vec<u8> = (0..=255).chain(*b"ends in a space ").collect();
    let capture = Capture::from_records(vec![
        Record::new(
            Duration::ZERO,
            1,
            Event::Open {
                client: "127.0.0.1:5".parse().unwrap(),
                server: "[::1]:6".parse().unwrap(),
            },
        ),
        Record::new(
            Duration::from_micros(412),
            1,
            Event::Data(Direction::ToServer, all_bytes.clone()),
        ),
        Record::new(
            Duration::from_millis(500),
            2,
            Event::Reset(Direction::ToClient),
        ),
        Record::new(
            Duration::from_millis(1250),
            1,
            Event::Eof(Direction::ToClient),
        ),
    ]);
    let file = TempFile::new("python.capture");
    capture.save(&file.0).unwrap();
    let program = format!(
        "{snippet}\nfor t, c, k, p in records({:?}):\n    print(t, c, k, p.hex() if isinstance(p, bytes) else p)\n",
        file.0.display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex: String = all_bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "0.0 1 open 127.0.0.1:5 [::1]:6\n0.000412 1 > {hex}\n0.5 2 <reset \n1.25 1 <eof \n"
        )
    );
}

// ------------------------------------------------------------------- replay

#[test]
fn a_replayed_server_passes_a_client_that_sends_what_was_captured() {
    let _w = watchdog(Duration::from_secs(30));
    let capture = captured_session(Duration::ZERO);
    let peer = ScriptedPeer::replay_server(&capture, Timing::Compressed)
        .expect_nothing_more()
        .start()
        .unwrap();
    let client = Client::builder().port(peer.port()).connect().unwrap();
    client.set_read_timeout(Some(WAIT));
    client.write_str("ping").unwrap();
    assert_eq!(client.read_str().unwrap(), "pong");
    client.close();
    peer.finish().expect("the client did what the capture did");
}

#[test]
fn a_replay_checks_the_other_sides_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let capture = captured_session(Duration::ZERO);
    let peer = ScriptedPeer::replay_server(&capture, Timing::Compressed)
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.write_all(b"pinG\r\n").unwrap();
    drop(program);
    let failure = peer.finish().expect_err("a wrong byte");
    let mismatch = &failure.mismatches[0];
    assert_eq!(mismatch.action, "expect_bytes(\"ping\\r\\n\")");
    assert_eq!(
        mismatch.got,
        "\"pinG\\r\\n\" at offset 0 (first difference at offset 3)"
    );
}

#[test]
fn captured_chunks_are_expected_as_one_stream() {
    let _w = watchdog(Duration::from_secs(30));
    let capture: Capture = "0.1 1 > pi\n0.2 1 > ng\\r\\n\n0.3 1 < pong\\r\\n\n0.4 1 >eof\n"
        .parse()
        .unwrap();
    let peer = ScriptedPeer::replay_server(&capture, Timing::Compressed)
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.write_all(b"ping\r\n").unwrap();
    let mut reply = [0u8; 6];
    program.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"pong\r\n");
    drop(program);
    peer.finish().expect("one write for two captured chunks");
}

/// How long a replayed server, with `timing`, takes to answer a `ping`
/// captured `pause` before its `pong`.
fn reply_time(pause: Duration, timing: Timing) -> Duration {
    let capture: Capture = format!(
        "0.100000 1 > ping\\r\\n\n{:.6} 1 < pong\\r\\n\n",
        0.1 + pause.as_secs_f64()
    )
    .parse()
    .unwrap();
    let peer = ScriptedPeer::replay_server(&capture, timing)
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.set_read_timeout(Some(WAIT)).unwrap();
    let asked = Instant::now();
    program.write_all(b"ping\r\n").unwrap();
    let mut reply = [0u8; 6];
    program.read_exact(&mut reply).unwrap();
    let took = asked.elapsed();
    assert_eq!(&reply, b"pong\r\n");
    peer.finish().unwrap();
    took
}

#[test]
fn kept_timing_keeps_the_captured_pause_before_a_reply() {
    let _w = watchdog(Duration::from_secs(30));
    let took = reply_time(Duration::from_millis(200), Timing::Kept);
    assert!(took >= Duration::from_millis(200), "{took:?}");
}

/// Compressed timing drops the captured pauses: a reply captured 5 s
/// after its request comes at once (a generous bound, far below the
/// pause).
#[test]
fn compressed_timing_drops_the_captured_pause_before_a_reply() {
    let _w = watchdog(Duration::from_secs(30));
    let took = reply_time(Duration::from_secs(5), Timing::Compressed);
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn a_replayed_client_drives_a_server_under_test() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientServer::builder().port(0).start().unwrap();
    let capture: Capture = "0.1 1 > ping\\r\\n\n0.2 1 < pong\\r\\n\n0.3 1 >eof\n"
        .parse()
        .unwrap();
    let peer = ScriptedPeer::replay_client(server.local_addrs()[0], &capture, Timing::Compressed)
        .start()
        .unwrap();
    server.wait_connected(WAIT).unwrap();
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().unwrap(), "ping");
    server.write_str("pong").unwrap();
    peer.finish().expect("the server answered as captured");
}
