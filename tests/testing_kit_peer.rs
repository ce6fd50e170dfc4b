//! The scripted peer of `ts_tcpip::testing`: a program that follows the
//! script passes; each way of straying from it (a wrong byte, a late or
//! missing reply, an extra line, a close) is a mismatch that says what was
//! expected, what arrived and where, and no step hangs; each action of the
//! peer (close, reset, a close mid-frame, a pause, silence, not reading) is
//! what the program sees; and a peer dropped before `finish()` says so.
//! (Threads and sockets left behind: testing_kit_leaks.rs.)

mod support;

use std::io::{ErrorKind, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{expect_reset, raw_connect, watchdog, QUIET, WAIT};
use ts_tcpip::prelude::*;
use ts_tcpip::testing::{ScriptFailure, ScriptedPeer};
use ts_tcpip::Error;

binary_struct! {
    #[derive(Debug, Default, Clone, Copy, PartialEq)]
    #[byte_order(big)]
    struct Telemetry { flag: bool, counter: u32, position: [f64; 2] }
}

const TELEMETRY: Telemetry = Telemetry {
    flag: true,
    counter: 7,
    position: [1.5, -2.25],
};

/// A crate client connected to `peer`, its reads bounded by [`WAIT`].
fn client_of(peer: &ScriptedPeer) -> Client {
    let client = Client::builder()
        .port(peer.port())
        .connect()
        .expect("the program connects");
    client.set_read_timeout(Some(WAIT));
    client
}

/// The verdict's failure; panics if the program passed.
#[track_caller]
fn failure(peer: ScriptedPeer) -> ScriptFailure {
    match peer.finish() {
        Ok(()) => panic!("the program passed, but should not have"),
        Err(failure) => failure,
    }
}

// ----------------------------------------------------------------- passing

#[test]
fn a_program_that_follows_the_script_passes() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .name("passes")
        .expect_line("hello")
        .send_line("hello back, café")
        .expect_json(&json!({"cmd": "move", "args": [1.5, 2.5]}))
        .send_json(&json!({"ok": true}))
        .expect_struct(&TELEMETRY)
        .send_struct(&TELEMETRY)
        .expect_bytes(b"\x00\x01raw")
        .send_bytes(b"raw\xff")
        .expect_nothing_more()
        .start()
        .expect("the script starts");
    let client = client_of(&peer);
    client.write_str("hello").unwrap();
    assert_eq!(client.read_str().unwrap(), "hello back, café");
    // Key order and spacing are not compared: the values are.
    client
        .write(b"{\"args\": [1.5, 2.5], \"cmd\": \"move\"}\r\n")
        .unwrap();
    assert_eq!(
        client.read_json::<serde_json::Value>().unwrap(),
        json!({"ok": true})
    );
    client.write_from(&[&TELEMETRY]).unwrap();
    let mut got = Telemetry::default();
    client.read_into(&mut got).unwrap();
    assert_eq!(got, TELEMETRY);
    client.write(b"\x00\x01raw").unwrap();
    assert_eq!(client.read_exact(4).unwrap(), b"raw\xff");
    peer.finish().expect("every step matched");
}

#[test]
fn a_scripted_client_drives_a_server_under_test() {
    let _w = watchdog(Duration::from_secs(30));
    let server = OneClientServer::builder().port(0).start().expect("server");
    let peer = ScriptedPeer::client(server.local_addrs()[0])
        .send_line("ping")
        .expect_line("pong")
        .close()
        .start()
        .expect("the script starts");
    server.wait_connected(WAIT).expect("the peer connects");
    server.set_read_timeout(Some(WAIT));
    assert_eq!(server.read_str().unwrap(), "ping");
    server.write_str("pong").unwrap();
    peer.finish().expect("every step matched");
}

#[test]
fn lines_and_json_use_the_scripts_terminator_and_encoding() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .encoding(Encoding::Latin1)
        .terminator(b"\n".to_vec())
        .expect_line("café")
        .send_line("thé")
        .send_json(&json!({"t": "é"}))
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.write_all(b"caf\xe9\n").unwrap();
    // Latin-1 JSON escapes what is not ASCII, as Python's json.dumps does.
    let expected = b"th\xe9\n{\"t\":\"\\u00e9\"}\n";
    let mut got = vec![0u8; expected.len()];
    program.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
    peer.finish().expect("every step matched");
}

// ---------------------------------------------------------------- mismatches

#[test]
fn a_wrong_byte_is_a_mismatch_with_what_was_expected_what_arrived_and_the_offset() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .name("controller")
        .expect_line("hello")
        .expect_line("ping")
        .send_line("ack")
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write_str("hello").unwrap();
    client.write_str("pimg").unwrap();
    // A wrong line is consumed and the script goes on.
    assert_eq!(client.read_str().unwrap(), "ack");
    let failure = failure(peer);
    assert_eq!(failure.mismatches.len(), 1, "{failure}");
    let mismatch = &failure.mismatches[0];
    assert_eq!(mismatch.step, 2);
    assert_eq!(mismatch.action, "expect_line(\"ping\")");
    assert_eq!(mismatch.expected, "\"ping\\r\\n\"");
    assert_eq!(
        mismatch.got,
        "\"pimg\\r\\n\" at offset 7 (first difference at offset 9)"
    );
    assert_eq!(mismatch.offset, Some(7));
    assert!(failure.not_run.is_empty());
    assert_eq!(
        failure.to_string(),
        "scripted peer `controller`: 1 mismatch\n  step 2, expect_line(\"ping\"): \
         expected \"ping\\r\\n\"; got \"pimg\\r\\n\" at offset 7 (first difference at offset 9)"
    );
}

#[test]
fn every_mismatch_is_listed_in_order() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("one")
        .expect_line("two")
        .expect_line("three")
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write_lines(["1\r\n", "two\r\n", "3\r\n"]).unwrap();
    let failure = failure(peer);
    let steps: Vec<usize> = failure.mismatches.iter().map(|m| m.step).collect();
    assert_eq!(steps, [1, 3], "{failure}");
}

#[test]
fn a_late_reply_is_a_mismatch_at_its_deadline() {
    let _w = watchdog(Duration::from_secs(30));
    let deadline = Duration::from_millis(50);
    let peer = ScriptedPeer::server()
        .send_line("ping")
        .expect_line("pong")
        .within(deadline)
        .send_line("next")
        .start()
        .unwrap();
    let client = client_of(&peer);
    assert_eq!(client.read_str().unwrap(), "ping");
    // The program takes six times the deadline to answer.
    std::thread::sleep(deadline * 6);
    let _ = client.write_str("pong");
    let failure = failure(peer);
    assert_eq!(failure.mismatches.len(), 1, "{failure}");
    let mismatch = &failure.mismatches[0];
    assert_eq!(mismatch.step, 2);
    assert_eq!(mismatch.action, "expect_line(\"pong\") within 50ms");
    assert_eq!(mismatch.expected, "\"pong\\r\\n\" within 50ms");
    assert_eq!(mismatch.got, "nothing (offset 0) by the deadline");
    // A missed deadline ends the script: the rest did not run.
    assert_eq!(failure.not_run, ["3 send_line(\"next\")"]);
}

/// An expectation given no deadline has the default, 5 s
/// (`testing::DEFAULT_DEADLINE`): it gives up then, and says so.
#[test]
fn an_expectation_without_a_deadline_gives_up_after_the_default() {
    let _w = watchdog(Duration::from_secs(30));
    assert_eq!(ts_tcpip::testing::DEFAULT_DEADLINE, Duration::from_secs(5));
    let peer = ScriptedPeer::server().expect_line("pong").start().unwrap();
    // Counted from before the connection, so from before the step began.
    let started = Instant::now();
    let _silent = client_of(&peer);
    let failure = failure(peer);
    let took = started.elapsed();
    assert_eq!(failure.mismatches[0].expected, "\"pong\\r\\n\" within 5s");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(5) + WAIT,
        "gave up after {took:?}"
    );
}

#[test]
fn a_missed_deadline_closes_the_connection_so_the_program_is_not_left_waiting() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("pong")
        .within(Duration::from_millis(50))
        .send_line("never sent")
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write(b"po").unwrap();
    // Half a line, then the program waits for an answer: it hears a close.
    assert!(matches!(client.read_str(), Err(e) if e.is_connection_error()));
    let failure = failure(peer);
    assert_eq!(
        failure.mismatches[0].got,
        "only \"po\" at offset 0 by the deadline"
    );
}

#[test]
fn an_extra_line_after_expect_nothing_more_is_a_mismatch() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("a")
        .send_line("done")
        .expect_nothing_more()
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write_str("a").unwrap();
    assert_eq!(client.read_str().unwrap(), "done");
    client.write_str("b").unwrap();
    // An extra byte ends the script at once: the program hears the close.
    assert!(matches!(client.read_str(), Err(e) if e.is_connection_error()));
    let failure = failure(peer);
    assert_eq!(failure.mismatches.len(), 1, "{failure}");
    assert_eq!(failure.mismatches[0].step, 3);
    assert_eq!(failure.mismatches[0].expected, "nothing more");
    assert_eq!(failure.mismatches[0].got, "\"b\\r\\n\" at offset 3");
}

#[test]
fn bytes_sent_with_the_last_expected_line_count_as_more() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("a")
        .expect_nothing_more()
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write(b"a\r\nextra").unwrap();
    let failure = failure(peer);
    assert_eq!(failure.mismatches[0].got, "\"extra\" at offset 3");
}

#[test]
fn without_expect_nothing_more_bytes_after_the_script_are_not_judged() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server().expect_line("a").start().unwrap();
    let client = client_of(&peer);
    client.write_str("a").unwrap();
    client.write_str("b").unwrap();
    peer.finish().expect("extra bytes are not judged");
}

#[test]
fn a_close_before_the_expected_line_is_a_mismatch_with_the_partial_bytes() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("pong")
        .send_line("never sent")
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.write_all(b"pa").unwrap();
    drop(program);
    let failure = failure(peer);
    assert_eq!(
        failure.mismatches[0].got,
        "only \"pa\" at offset 0, then the program closed the connection"
    );
    assert_eq!(failure.not_run, ["2 send_line(\"never sent\")"]);
}

#[test]
fn a_json_mismatch_shows_the_value_and_the_line() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_json(&json!({"id": 1}))
        .expect_json(&json!({"id": 2}))
        .start()
        .unwrap();
    let client = client_of(&peer);
    client.write_json(&json!({"id": 3})).unwrap();
    client.write_str("{not json").unwrap();
    let failure = failure(peer);
    assert_eq!(failure.mismatches.len(), 2, "{failure}");
    assert_eq!(failure.mismatches[0].expected, "JSON {\"id\":1}");
    assert_eq!(
        failure.mismatches[0].got,
        "{\"id\":3} (\"{\\\"id\\\":3}\\r\\n\" at offset 0)"
    );
    let not_json = &failure.mismatches[1].got;
    assert!(
        not_json.starts_with("\"{not json\\r\\n\" at offset 10, which is not it:"),
        "{not_json}"
    );
}

#[test]
fn a_struct_mismatch_shows_the_bytes_and_the_first_difference() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_struct(&TELEMETRY)
        .start()
        .unwrap();
    let client = client_of(&peer);
    let other = Telemetry {
        counter: 8,
        ..TELEMETRY
    };
    client.write_from(&[&other]).unwrap();
    let failure = failure(peer);
    let mismatch = &failure.mismatches[0];
    assert_eq!(mismatch.action, "expect_struct(21 bytes)");
    // The counter's last byte, big-endian: byte 4.
    assert!(
        mismatch.got.starts_with("\"\\x01\\x00\\x00\\x00\\x08")
            && mismatch
                .got
                .ends_with("at offset 0 (first difference at offset 4)"),
        "{}",
        mismatch.got
    );
}

#[test]
fn expect_nothing_for_fails_on_a_byte_in_its_window_and_passes_on_silence() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_nothing_for(QUIET)
        .send_line("your turn")
        .expect_nothing_for(Duration::from_secs(60))
        .start()
        .unwrap();
    let client = client_of(&peer);
    assert_eq!(client.read_str().unwrap(), "your turn");
    client.write_str("too eager").unwrap();
    let failure = failure(peer);
    assert_eq!(failure.mismatches.len(), 1, "{failure}");
    assert_eq!(failure.mismatches[0].step, 3);
    assert_eq!(failure.mismatches[0].expected, "nothing for 60s");
    assert_eq!(failure.mismatches[0].got, "\"too eager\\r\\n\" at offset 0");
}

#[test]
fn expect_close_passes_when_the_program_closes_and_fails_when_it_stays() {
    let _w = watchdog(Duration::from_secs(30));
    let closes = ScriptedPeer::server().expect_close().start().unwrap();
    drop(raw_connect(closes.addr()));
    closes.finish().expect("the program closed");

    let stays = ScriptedPeer::server()
        .expect_close()
        .within(Duration::from_millis(50))
        .start()
        .unwrap();
    let _program = raw_connect(stays.addr());
    let failure = failure(stays);
    assert_eq!(
        failure.mismatches[0].expected,
        "the program to close within 50ms"
    );
}

#[test]
fn no_connection_within_the_deadline_is_a_mismatch_of_step_zero() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .default_deadline(Duration::from_millis(50))
        .send_line("hello")
        .start()
        .unwrap();
    let failure = failure(peer);
    let mismatch = &failure.mismatches[0];
    assert_eq!(mismatch.step, 0);
    assert!(mismatch.expected.ends_with("within 50ms"), "{mismatch}");
    assert_eq!(mismatch.got, "none");
    assert_eq!(failure.not_run, ["1 send_line(\"hello\")"]);
}

#[test]
fn a_client_peer_reports_a_refused_connection() {
    let _w = watchdog(Duration::from_secs(30));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let failure = failure(ScriptedPeer::client(addr).send_line("x").start().unwrap());
    assert_eq!(failure.mismatches[0].step, 0);
    assert!(failure.mismatches[0]
        .expected
        .starts_with("to connect to 127.0.0.1:"));
}

// ------------------------------------------------------ what the program sees

#[test]
fn close_is_end_of_file_for_the_program() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .send_line("bye")
        .close()
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    let mut got = Vec::new();
    program.read_to_end(&mut got).expect("a clean end of file");
    assert_eq!(got, b"bye\r\n");
    peer.finish().unwrap();
}

#[test]
fn reset_is_connection_reset_for_the_program() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .expect_line("go")
        .reset()
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    program.write_all(b"go\r\n").unwrap();
    expect_reset(&mut program);
    peer.finish().unwrap();
}

#[test]
fn close_mid_frame_leaves_the_program_a_partial_frame() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .close_mid_frame(b"{\"id\": 1, ")
        .start()
        .unwrap();
    let client = client_of(&peer);
    match client.read_json::<serde_json::Value>() {
        Err(Error::IncompleteRead(e)) => assert_eq!(e.partial, b"{\"id\": 1, "),
        other => panic!("expected an incomplete read, got {other:?}"),
    }
    peer.finish().unwrap();
}

#[test]
fn a_pause_delays_the_next_send_by_at_least_the_pause() {
    let _w = watchdog(Duration::from_secs(30));
    let pause = Duration::from_millis(150);
    let peer = ScriptedPeer::server()
        .send_line("first")
        .pause(pause)
        .send_line("second")
        .start()
        .unwrap();
    let client = client_of(&peer);
    assert_eq!(client.read_str().unwrap(), "first");
    let first = Instant::now();
    assert_eq!(client.read_str().unwrap(), "second");
    assert!(
        first.elapsed() >= pause - Duration::from_millis(5),
        "{:?}",
        first.elapsed()
    );
    peer.finish().unwrap();
}

#[test]
fn go_silent_keeps_the_connection_open_and_says_nothing() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .send_line("last words")
        .go_silent()
        .start()
        .unwrap();
    let client = client_of(&peer);
    assert_eq!(client.read_str().unwrap(), "last words");
    assert!(matches!(
        client.within(QUIET).read_str(),
        Err(Error::Timeout)
    ));
    assert!(client.connected(), "silent, not closed");
    peer.finish().unwrap();
}

#[test]
fn stop_reading_makes_the_programs_writes_block() {
    let _w = watchdog(Duration::from_secs(60));
    let peer = ScriptedPeer::server().stop_reading().start().unwrap();
    let mut program = raw_connect(peer.addr());
    program
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let block = vec![0u8; 64 * 1024];
    let mut written = 0usize;
    let blocked = loop {
        match program.write(&block) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true
            }
            Err(e) => panic!("write failed after {written} bytes: {e}"),
        }
        // Far more than any socket buffer: the writes must block first.
        if written > 1 << 30 {
            break false;
        }
    };
    assert!(blocked, "1 GiB went into a peer that does not read");
    drop(program);
    peer.finish().unwrap();
}

// --------------------------------------------------------------- the verdict

#[test]
fn dropping_an_unfinished_peer_panics_with_its_verdict() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server()
        .name("forgotten")
        // Far longer than the test may take: the drop must not wait it out.
        .default_deadline(Duration::from_secs(600))
        .send_line("hello")
        .expect_line("a")
        .send_line("b")
        .start()
        .unwrap();
    let mut program = raw_connect(peer.addr());
    // Once the greeting is here, the peer is on to waiting for "a".
    program.read_exact(&mut [0u8; 7]).unwrap();
    let started = Instant::now();
    let panic = catch_unwind(AssertUnwindSafe(|| drop(peer))).expect_err("the drop panics");
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("scripted peer `forgotten`: 1 mismatch"),
        "{message}"
    );
    // Step 2 was under way, or about to start: either way it did not end.
    assert!(message.contains("step 2, expect_line(\"a\")"), "{message}");
    assert!(message.contains("dropped"), "{message}");
    assert!(message.contains("not run: 3 send_line(\"b\")"), "{message}");
}

#[test]
fn dropping_a_peer_while_panicking_does_not_panic_again() {
    let _w = watchdog(Duration::from_secs(30));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _peer = ScriptedPeer::server().expect_line("never").start().unwrap();
        panic!("the test's own failure");
    }));
    // A second panic would have aborted the whole test process.
    let panic = outcome.expect_err("the test's panic");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the test's own failure")
    );
}

#[test]
fn dropping_a_peer_whose_script_is_done_is_quiet() {
    let _w = watchdog(Duration::from_secs(30));
    let peer = ScriptedPeer::server().send_line("hi").start().unwrap();
    let client = client_of(&peer);
    assert_eq!(client.read_str().unwrap(), "hi");
    drop(peer);
}

#[test]
fn a_dropped_peer_judges_expect_nothing_more_on_what_arrived() {
    let _w = watchdog(Duration::from_secs(30));
    let script = || {
        ScriptedPeer::server()
            .expect_line("a")
            .send_line("ok")
            .expect_nothing_more()
            .start()
            .unwrap()
    };
    let quiet = script();
    let client = client_of(&quiet);
    client.write_str("a").unwrap();
    assert_eq!(client.read_str().unwrap(), "ok");
    drop(quiet);

    let chatty = script();
    let client = client_of(&chatty);
    client.write_str("a").unwrap();
    assert_eq!(client.read_str().unwrap(), "ok");
    client.write_str("extra").unwrap();
    // The peer closes as soon as an extra byte comes.
    assert!(matches!(client.read_str(), Err(e) if e.is_connection_error()));
    let panic = catch_unwind(AssertUnwindSafe(|| drop(chatty))).expect_err("a mismatch");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message
            .contains("step 3, expect_nothing_more(): expected nothing more; got \"extra\\r\\n\""),
        "{message}"
    );
}

#[test]
fn a_script_that_cannot_run_is_an_invalid_argument_naming_the_step() {
    let cases = [
        (
            ScriptedPeer::server().reset().send_line("x"),
            "step 2, send_line(\"x\"): nothing may follow reset()",
        ),
        (
            ScriptedPeer::server().stop_reading().expect_line("x"),
            "an expectation after stop_reading()",
        ),
        (
            ScriptedPeer::server().close().send_line("x"),
            "the peer has closed its side",
        ),
        (
            ScriptedPeer::server().go_silent().pause(QUIET),
            "nothing may follow go_silent()",
        ),
        (
            ScriptedPeer::server().send_line("x").within(QUIET),
            "follows send_line(\"x\"), not an expectation",
        ),
        (
            ScriptedPeer::server().terminator(Vec::new()),
            "terminator must not be empty",
        ),
        (
            ScriptedPeer::server()
                .encoding(Encoding::Ascii)
                .expect_line("café"),
            "step 1",
        ),
    ];
    for (script, why) in cases {
        match script.start() {
            Err(Error::InvalidArgument(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("expected InvalidArgument ({why}), got {other:?}"),
        }
    }
}
