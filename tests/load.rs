//! Load: while one client exchanges request/response pairs with the
//! server (which echoes on a thread of its own: 10,000 pairs, and more
//! until the last extra is done), 1,000 other connection attempts hit the
//! server from 4 threads, each begun and ended during the exchange. Every
//! extra must see end of file, the served client every reply, and the
//! process must end with as many descriptors and threads as it started
//! with (counted on Linux; the only test of this binary, so the counts are
//! its own).
//!
//! Run with `cargo test --test load -- --nocapture` to see the figures.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
#[cfg(target_os = "linux")]
use support::proc::{all_threads, open_fds, settles_to};
use support::{dial_addr, expect_eof, raw_connect, watchdog, WAIT};
use ts_tcpip::testing;
use ts_tcpip::*;

const PAIRS: usize = 10_000;
const EXTRA_THREADS: usize = 4;
const EXTRAS_PER_THREAD: usize = 250;

/// Takes a ticket at a time from `tickets` and makes one connection to
/// `addr` per ticket, which must be turned away with end of file, counting
/// each in `done`. Returns how many it made, how many of them began and
/// ended while `busy` was set, and the slowest connect-to-EOF time.
fn turned_away(
    addr: SocketAddr,
    tickets: &Receiver<usize>,
    busy: &AtomicBool,
    done: &AtomicUsize,
) -> (usize, usize, Duration) {
    let (mut made, mut while_busy, mut slowest) = (0, 0, Duration::ZERO);
    for _ticket in tickets {
        let began_busy = busy.load(Ordering::SeqCst);
        let started = Instant::now();
        expect_eof(raw_connect(addr));
        slowest = slowest.max(started.elapsed());
        if began_busy && busy.load(Ordering::SeqCst) {
            while_busy += 1;
        }
        made += 1;
        done.fetch_add(1, Ordering::SeqCst);
    }
    (made, while_busy, slowest)
}

#[test]
fn served_client_is_untouched_while_1000_extra_connections_are_turned_away() {
    let _w = watchdog(Duration::from_secs(90));
    // The only test of this binary: the process's counts are its own.
    #[cfg(target_os = "linux")]
    let (fds_before, threads_before) = (open_fds(), all_threads());
    let server =
        testing::start_server(OneClientServer::builder().name("load")).expect("server starts");
    let client = testing::connect_client(&server, true).expect("client connects");
    server.set_read_timeout(Some(WAIT));
    client.set_read_timeout(Some(WAIT));
    let addr = dial_addr(&server);
    // The exchange hands out one ticket per attempt as it goes, so the
    // attempts are spread over the whole exchange rather than bunched at
    // its start; nothing waits on them.
    let (ticket, tickets) = crossbeam_channel::unbounded();
    let exchanging = AtomicBool::new(true);
    let done = AtomicUsize::new(0);
    let attempts = EXTRA_THREADS * EXTRAS_PER_THREAD;
    let (pairs, exchange_time, overlapped, slowest_eof) = thread::scope(|s| {
        let echo = s.spawn(|| {
            let mut echoed = 0usize;
            loop {
                match server.read_str() {
                    Ok(line) => {
                        server.write_str(&format!("echo {line}")).expect("echo");
                        echoed += 1;
                    }
                    Err(end) => return (echoed, end),
                }
            }
        });
        let extras: Vec<_> = (0..EXTRA_THREADS)
            .map(|_| {
                let (tickets, exchanging, done) = (tickets.clone(), &exchanging, &done);
                s.spawn(move || turned_away(addr, &tickets, exchanging, done))
            })
            .collect();
        let started = Instant::now();
        // On past PAIRS until the last extra is done, however far the
        // extras' threads lag on a loaded machine: each attempt must fall
        // within the exchange for the test to show anything.
        let mut pairs = 0;
        while pairs < PAIRS || done.load(Ordering::SeqCst) < attempts {
            let i = pairs;
            if i < PAIRS && i % (PAIRS / attempts) == 0 {
                ticket.send(i).expect("tickets");
            }
            let request = format!("request {i} {}", "x".repeat(i % 40));
            client.write_str(&request).expect("client writes");
            let reply = client.read_str().expect("client reads");
            assert_eq!(reply, format!("echo {request}"), "pair {i}");
            pairs += 1;
        }
        let exchange_time = started.elapsed();
        exchanging.store(false, Ordering::SeqCst);
        drop(ticket);
        let (mut made, mut overlapped, mut slowest_eof) = (0, 0, Duration::ZERO);
        for extra in extras {
            let (n, while_exchanging, slowest) = extra.join().expect("extra connections");
            made += n;
            overlapped += while_exchanging;
            slowest_eof = slowest_eof.max(slowest);
        }
        assert_eq!(made, attempts);
        assert_eq!(
            overlapped, attempts,
            "every extra connection began and was turned away during the exchange"
        );
        // The client goes: the echo loop ends with a connection error.
        client.close();
        let (echoed, end) = echo.join().expect("echo thread");
        assert_eq!(echoed, pairs);
        assert!(end.is_connection_error(), "echo loop ended with {end:?}");
        (pairs, exchange_time, overlapped, slowest_eof)
    });
    let server_stats = server.stats();
    let client_stats = client.stats();
    server.close();
    drop(server);
    drop(client);

    println!("load: {pairs} request/response pairs in {exchange_time:?}");
    println!(
        "load: {attempts} extra connection attempts from {EXTRA_THREADS} threads, \
         {overlapped} of them during the exchange; slowest connect-to-EOF {slowest_eof:?}"
    );
    println!(
        "load: attempts rejected (connections_rejected) = {}, accepted = {}",
        server_stats.connections_rejected, server_stats.connections_accepted
    );
    println!(
        "load: frames exchanged: server read {} wrote {}, client read {} wrote {}",
        server_stats.frames_read,
        server_stats.frames_written,
        client_stats.frames_read,
        client_stats.frames_written
    );

    assert_eq!(server_stats.connections_rejected, attempts as u64);
    assert_eq!(server_stats.connections_accepted, 1);
    assert_eq!(server_stats.frames_read, pairs as u64);
    assert_eq!(server_stats.frames_written, pairs as u64);
    assert_eq!(client_stats.frames_read, pairs as u64);
    assert_eq!(client_stats.frames_written, pairs as u64);
    #[cfg(target_os = "linux")]
    {
        let fds_after = settles_to(fds_before, open_fds);
        let threads_after = settles_to(threads_before, all_threads);
        println!("load: open fds {fds_before} before, {fds_after} after");
        println!("load: threads {threads_before} before, {threads_after} after");
        assert_eq!(fds_after, fds_before, "descriptors leaked");
        assert_eq!(threads_after, threads_before, "threads left running");
    }
}
