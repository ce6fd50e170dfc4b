//! Soak: 60 s of connect, exchange, drop and reconnect in a loop, in four
//! ways taken in turn (a crate client dropped; a crate client closed by the
//! server; a raw peer that resets; a raw peer that half-closes after half
//! a line). Ignored by default; run it with
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `TS_TCPIP_SOAK_SECS` changes the duration. It prints the counts every
//! 10 s and at the end, and fails on any error, leaked thread or
//! descriptor.

// The counts come from /proc: Linux only.
#![cfg(target_os = "linux")]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;
use support::proc::vm_rss_bytes;
use support::{raw_client, recv_line, send_line, watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect(dir).count()
}

#[derive(Default, Debug)]
struct Counts {
    cycles: u64,
    frames: u64,
    errors: u64,
    by_kind: [u64; 4],
}

/// Lines each way per cycle.
const LINES: usize = 8;

/// One cycle of kind `kind`; returns the frames exchanged (both ways).
fn cycle(server: &OneClientServer, kind: usize, n: u64) -> std::result::Result<u64, String> {
    fn e(what: &'static str) -> impl Fn(Error) -> String {
        move |err| format!("{what}: {err:?}")
    }
    match kind {
        // A crate client exchanges lines and JSON, then is dropped.
        0 | 1 => {
            let client = testing::connect_client(server, true).map_err(e("connect"))?;
            client.set_read_timeout(Some(WAIT));
            for i in 0..LINES {
                client
                    .write_str(&format!("c{n}.{i}"))
                    .map_err(e("client write"))?;
                let got = server.read_str().map_err(e("server read"))?;
                if got != format!("c{n}.{i}") {
                    return Err(format!("server read {got:?}"));
                }
                server
                    .write_json(&serde_json::json!({ "n": n, "i": i }))
                    .map_err(e("server write"))?;
                let v: serde_json::Value = client.read_json().map_err(e("client read"))?;
                if v["n"] != n || v["i"] != i {
                    return Err(format!("client read {v}"));
                }
            }
            if kind == 0 {
                drop(client);
                // The server notices (reading: end of file) before the next.
                match server.read_str() {
                    Err(err) if err.is_connection_error() => {}
                    other => return Err(format!("after the client dropped: {other:?}")),
                }
            } else {
                server.close_client();
                match client.read_str() {
                    Err(err) if err.is_connection_error() => {}
                    other => return Err(format!("after close_client: {other:?}")),
                }
            }
            Ok(2 * LINES as u64)
        }
        // A raw peer exchanges a line, sends half of one and resets.
        2 => {
            let mut peer = raw_client(server);
            server.wait_connected(WAIT).map_err(e("wait_connected"))?;
            send_line(&mut peer, &format!("raw {n}"));
            let got = server.read_str().map_err(e("server read"))?;
            server.write_str(&got).map_err(e("server write"))?;
            if recv_line(&mut peer) != format!("raw {n}") {
                return Err("raw echo".into());
            }
            peer.write_all(b"half a li")
                .map_err(|err| err.to_string())?;
            SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .map_err(|err| err.to_string())?;
            drop(peer);
            match server.read_str() {
                Err(err) if err.is_connection_error() => Ok(2),
                other => Err(format!("after a reset: {other:?}")),
            }
        }
        // A raw peer half-closes after half a line: IncompleteRead.
        _ => {
            let mut peer: TcpStream = raw_client(server);
            server.wait_connected(WAIT).map_err(e("wait_connected"))?;
            peer.write_all(b"half a line")
                .map_err(|err| err.to_string())?;
            peer.shutdown(Shutdown::Write)
                .map_err(|err| err.to_string())?;
            match server.read_str() {
                Err(Error::IncompleteRead(e1)) if e1.partial == b"half a line" => {}
                other => return Err(format!("after a half-close: {other:?}")),
            }
            let mut rest = Vec::new();
            match peer.read_to_end(&mut rest) {
                Ok(_) if rest.is_empty() => Ok(0),
                other => Err(format!("the peer expected end of file: {other:?} {rest:?}")),
            }
        }
    }
}

#[test]
#[ignore = "60 s soak: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_connect_exchange_drop_reconnect() {
    let secs: u64 = std::env::var("TS_TCPIP_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let _w = watchdog(Duration::from_secs(secs + 60));
    let (fds_before, threads_before, rss_before) = (
        count("/proc/self/fd"),
        count("/proc/self/task"),
        vm_rss_bytes() / 1024,
    );
    let calls = testing::CallbackRecorder::new();
    let server = testing::start_server(
        OneClientServer::builder()
            .name("soak")
            .connect_callback(calls.callback()),
    )
    .expect("server starts");
    server.set_read_timeout(Some(WAIT));
    let started = Instant::now();
    let mut report = started + Duration::from_secs(10);
    let mut counts = Counts::default();
    let mut first_errors = Vec::new();
    let (mut callbacks, mut callbacks_out_of_order) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(secs) {
        let kind = (counts.cycles % 4) as usize;
        match cycle(&server, kind, counts.cycles) {
            Ok(frames) => counts.frames += frames,
            Err(err) => {
                counts.errors += 1;
                if first_errors.len() < 10 {
                    first_errors.push(format!("cycle {} kind {kind}: {err}", counts.cycles));
                }
                // Start the next cycle from a clean slate.
                server.close_client();
            }
        }
        counts.by_kind[kind] += 1;
        counts.cycles += 1;
        // Callbacks are checked as they come (true, false, true, ...), so
        // that the recorder holds none and VmRSS shows the crate alone.
        for connected in calls.drain() {
            if connected != (callbacks % 2 == 0) {
                callbacks_out_of_order += 1;
            }
            callbacks += 1;
        }
        if Instant::now() >= report {
            report += Duration::from_secs(10);
            println!(
                "soak {:>3.0} s: cycles {} frames {} errors {} fds {} threads {} VmRSS {} KiB",
                started.elapsed().as_secs_f64(),
                counts.cycles,
                counts.frames,
                counts.errors,
                count("/proc/self/fd"),
                count("/proc/self/task"),
                vm_rss_bytes() / 1024
            );
        }
    }
    let elapsed = started.elapsed();
    let stats = server.stats();
    server.close();
    drop(server);
    for connected in calls.drain() {
        if connected != (callbacks % 2 == 0) {
            callbacks_out_of_order += 1;
        }
        callbacks += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while (count("/proc/self/fd"), count("/proc/self/task")) != (fds_before, threads_before)
        && Instant::now() < deadline
    {
        thread::yield_now();
    }
    let (fds_after, threads_after, rss_after) = (
        count("/proc/self/fd"),
        count("/proc/self/task"),
        vm_rss_bytes() / 1024,
    );
    println!("soak: {elapsed:.1?}: {counts:?}");
    println!(
        "soak: server stats: accepted {} rejected {} disconnects {} frames read {} written {}",
        stats.connections_accepted,
        stats.connections_rejected,
        stats.disconnects,
        stats.frames_read,
        stats.frames_written
    );
    println!(
        "soak: callbacks {callbacks} ({callbacks_out_of_order} out of order); fds {fds_before} -> {fds_after}, \
         threads {threads_before} -> {threads_after}, VmRSS {rss_before} -> {rss_after} KiB"
    );
    for err in &first_errors {
        println!("soak: error: {err}");
    }
    assert_eq!(counts.errors, 0, "errors: {first_errors:#?}");
    assert_eq!(stats.connections_accepted, counts.cycles);
    assert_eq!(stats.disconnects, counts.cycles);
    assert_eq!(stats.connections_rejected, 0);
    assert_eq!(
        callbacks,
        2 * counts.cycles,
        "one true and one false per cycle"
    );
    assert_eq!(callbacks_out_of_order, 0, "callbacks out of order");
    assert_eq!(fds_after, fds_before, "descriptors leaked");
    assert_eq!(threads_after, threads_before, "threads leaked");
}
