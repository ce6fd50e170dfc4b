//! Tests that measure the whole process: its threads, its open
//! descriptors, its resident memory. They run in a binary of their own
//! (`harness = false` in Cargo.toml), one after another on a thread each,
//! so no other test opens a socket or starts a thread beside a count.
//! Linux only: the figures come from /proc.
//!
//! `cargo test --test process [FILTER]` runs them (`-- --list` lists
//! them); a failure prints the panic and the run ends with status 101.

mod support;

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    let checks = linux::CHECKS;
    #[cfg(not(target_os = "linux"))]
    let checks: &[(&str, fn())] = &[];
    run(checks)
}

/// Runs every check whose name contains one of the arguments that are not
/// options (all of them when there are none), each on a thread named after
/// it, and reports as libtest does.
fn run(checks: &[(&str, fn())]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&(&str, fn())> = checks
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    // None of these is ignored: `--list --ignored` lists none.
    if args.iter().any(|a| a == "--list") {
        let ignored = args.iter().any(|a| a == "--ignored");
        for (name, _) in chosen.iter().filter(|_| !ignored) {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--ignored") {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed\n");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, check) in &chosen {
        let outcome = std::thread::Builder::new()
            .name((*name).to_owned())
            .spawn(*check)
            .expect("spawn a check's thread")
            .join();
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    let passed = chosen.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures: {failed:?}");
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed\n",
            failed.len()
        );
        ExitCode::from(101)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Write;
    use std::sync::Barrier;
    use std::thread;
    use std::time::Duration;

    use crate::support::blocked::{self, In};
    use crate::support::proc::{
        all_threads, crate_threads, open_fds, settles_to, thread_names, vm_rss_bytes,
    };
    use crate::support::{init_log, logged, raw_client, recv_line, served, watchdog, WAIT};
    use ts_tcpip::testing::{self, CallbackRecorder};
    use ts_tcpip::*;

    const MIB: usize = 1 << 20;

    pub const CHECKS: &[(&str, fn())] = &[
        (
            "close_inside_the_callback_leaves_no_crate_thread",
            close_inside_the_callback_leaves_no_crate_thread,
        ),
        (
            "close_from_eight_threads_leaves_no_thread_or_descriptor",
            close_from_eight_threads_leaves_no_thread_or_descriptor,
        ),
        (
            "a_dropped_connection_is_closed_without_another_call",
            a_dropped_connection_is_closed_without_another_call,
        ),
        (
            "drop_without_close_joins_every_thread_and_frees_every_descriptor",
            drop_without_close_joins_every_thread_and_frees_every_descriptor,
        ),
        (
            "an_endless_line_does_not_grow_memory",
            an_endless_line_does_not_grow_memory,
        ),
    ];

    /// `close()` inside the connect callback, of a server and of a client
    /// (whose heartbeat thread runs too): once the owner drops it, no
    /// thread of the crate is left. (The behaviour: user_faults.rs.)
    fn close_inside_the_callback_leaves_no_crate_thread() {
        let _w = watchdog(Duration::from_secs(30));
        let base = crate_threads();
        {
            let calls = CallbackRecorder::new();
            let mut record = calls.callback();
            let builder = OneClientServer::builder()
                .name("cb-closes")
                .connect_callback(move |server: &OneClientServer, connected| {
                    record(server, connected);
                    if connected {
                        server.close();
                    }
                });
            let server = testing::start_server(builder).expect("server starts");
            let _peer = raw_client(&server);
            calls.assert_next_connected(true, WAIT);
            calls.assert_next_connected(false, WAIT);
            drop(server); // joins the callback thread
        }
        {
            let server = testing::start_server(OneClientServer::builder().name("cb-closes-srv"))
                .expect("server");
            let calls = CallbackRecorder::new();
            let mut record = calls.callback();
            let client = testing::client_for(&server)
                .name("cb-closes-client")
                .heartbeat(Some(Duration::from_millis(5)))
                .connect_callback(move |client: &Client, connected| {
                    record(client, connected);
                    if connected {
                        client.close();
                    }
                })
                .connect()
                .expect("client connects");
            calls.assert_next_connected(true, WAIT);
            calls.assert_next_connected(false, WAIT);
            drop(client);
            drop(server);
        }
        assert_eq!(
            settles_to(base, crate_threads),
            base,
            "crate threads left: {:?}",
            thread_names()
        );
    }

    /// `close()` from eight threads at once while a read is blocked (seen
    /// blocked in the socket before the closers start): no thread or
    /// descriptor is left. (The behaviour: user_faults.rs.)
    fn close_from_eight_threads_leaves_no_thread_or_descriptor() {
        let _w = watchdog(Duration::from_secs(30));
        let (threads_before, fds_before) = (crate_threads(), open_fds());
        {
            let server = testing::start_server(OneClientServer::builder().name("close-x8"))
                .expect("server starts");
            let client = testing::connect_client(&server, true).expect("client");
            let barrier = Barrier::new(8);
            thread::scope(|s| {
                let reader = blocked::spawn(s, "read_str", In::Socket, || server.read_str());
                for _ in 0..8 {
                    s.spawn(|| {
                        barrier.wait();
                        server.close();
                    });
                }
                let read = reader.join();
                assert!(
                    read.as_ref().is_err_and(Error::is_connection_error),
                    "blocked read: {read:?}"
                );
            });
            assert!(server.is_closed());
            drop(client);
        }
        assert_eq!(
            settles_to(threads_before, crate_threads),
            threads_before,
            "{:?}",
            thread_names()
        );
        assert_eq!(
            settles_to(fds_before, open_fds),
            fds_before,
            "descriptors leaked"
        );
    }

    /// A connection that ended is closed once the drop is noticed, though
    /// this side never reads or writes again: the read and write halves, which
    /// stay bound to the connection they served last, let go of it.
    fn a_dropped_connection_is_closed_without_another_call() {
        let _w = watchdog(Duration::from_secs(20));
        init_log();
        let server = testing::start_server(OneClientServer::builder().name("let-go"))
            .expect("server starts");
        let events = server.events();
        let listening = open_fds();
        let peer = raw_client(&server);
        server.wait_connected(WAIT).expect("taken");
        // Bind both halves to the connection.
        server.write_str("hello").expect("server writes");
        assert_eq!(server.try_read_str().expect("nothing to read"), None);
        drop(peer);
        loop {
            match events.recv_timeout(WAIT).expect("the drop is noticed") {
                ConnectionEvent::Disconnected { .. } => break,
                _ => continue,
            }
        }
        assert_eq!(
            settles_to(listening, open_fds),
            listening,
            "both ends of the dropped connection are closed"
        );
    }

    fn drop_without_close_joins_every_thread_and_frees_every_descriptor() {
        let _w = watchdog(Duration::from_secs(40));
        init_log();
        let (threads_before, all_before, fds_before) = (crate_threads(), all_threads(), open_fds());
        // The server skips the client's heartbeat lines.
        let exchange = |server: &OneClientServer, client: &Client| {
            server.set_read_timeout(Some(WAIT));
            client.set_read_timeout(Some(WAIT));
            client.write_str("ping").expect("client writes");
            let line = loop {
                match server.read_str().expect("server reads") {
                    beat if beat.as_bytes() == HEARTBEAT => continue,
                    line => break line,
                }
            };
            assert_eq!(line, "ping");
            server.write_str("pong").expect("server writes");
            assert_eq!(client.read_str().expect("client reads"), "pong");
        };
        let everything = |name: &str| {
            let server = testing::start_server(
                OneClientServer::builder()
                    .name(name)
                    .connect_callback(|_: &OneClientServer, _| {}),
            )
            .expect("server starts");
            let client = testing::client_for(&server)
                .name(name)
                .heartbeat(Some(Duration::from_millis(2)))
                .reconnect(Backoff {
                    initial: Duration::from_millis(1),
                    max: Duration::from_millis(5),
                })
                .connect_callback(|_: &Client, _| {})
                .connect()
                .expect("client connects");
            server.wait_connected(WAIT).expect("taken");
            (server, client)
        };
        // Client dropped first, then the server.
        {
            let (server, client) = everything("drop-client-first");
            exchange(&server, &client);
            drop(client);
            drop(server);
        }
        // Server dropped first: the client is left to reconnect, in vain,
        // until it is dropped too.
        {
            let (server, client) = everything("drop-server-first");
            exchange(&server, &client);
            let events = client.events();
            drop(server);
            let lost = events.recv_timeout(WAIT).expect("the client notices");
            assert!(!lost.is_connected(), "{lost:?}");
            drop(client);
        }
        // The client closes while the server is reading on another thread.
        {
            let (server, client) = everything("drop-mid-read");
            thread::scope(|s| {
                let reading = s.spawn(|| loop {
                    if let Err(e) = server.read_str() {
                        return e;
                    }
                });
                client.close();
                let err = reading.join().expect("reader");
                assert!(err.is_connection_error(), "{err:?}");
            });
            drop(server);
            drop(client);
        }
        let threads_after = settles_to(threads_before, crate_threads);
        let fds_after = settles_to(fds_before, open_fds);
        let all_after = settles_to(all_before, all_threads);
        println!(
            "drop without close: crate threads {threads_before} -> {threads_after}, \
             all threads {all_before} -> {all_after}, fds {fds_before} -> {fds_after}"
        );
        assert_eq!(
            threads_after,
            threads_before,
            "crate threads left running: {:?}",
            thread_names()
        );
        assert_eq!(fds_after, fds_before, "descriptors leaked");
        assert!(
            !logged(&["drop-", "background thread panicked"]),
            "a background thread panicked"
        );
    }

    /// 10 MiB without a terminator: the overrun, and draining the line,
    /// leave the resident memory near where it was (the read limit bounds
    /// the receive buffer). The behaviour itself: faults.rs.
    fn an_endless_line_does_not_grow_memory() {
        let _w = watchdog(Duration::from_secs(60));
        const ENDLESS: usize = 10 * MIB;
        let calls = CallbackRecorder::new();
        let (server, peer) = served("endless-line", &calls);
        let rss_before = vm_rss_bytes();
        let writer = thread::spawn(move || {
            let mut peer = peer;
            // A small block sent over and over: the peer holds no 10 MiB.
            let block = vec![b'x'; 64 * 1024];
            for _ in 0..ENDLESS / block.len() {
                peer.write_all(&block).expect("endless line");
            }
            peer.write_all(b"\r\nafter\r\n").expect("then a line");
            assert_eq!(recv_line(&mut peer), "still here");
        });
        assert!(matches!(server.read_str(), Err(Error::LimitOverrun(_))));
        let grown = vm_rss_bytes().saturating_sub(rss_before);
        println!(
            "endless line: VmRSS grew by {} KiB at the overrun",
            grown / 1024
        );
        assert!(
            grown < 8 * MIB,
            "VmRSS grew by {grown} bytes on an endless line"
        );
        let mut left = ENDLESS;
        while left > 0 {
            left -= server.read(left.min(64 * 1024)).expect("drain").len();
        }
        let grown = vm_rss_bytes().saturating_sub(rss_before);
        println!(
            "endless line: VmRSS grew by {} KiB after draining 10 MiB",
            grown / 1024
        );
        assert!(
            grown < 8 * MIB,
            "VmRSS grew by {grown} bytes draining the endless line"
        );
        assert_eq!(server.read_str().expect("the line's end"), "");
        assert_eq!(server.read_str().expect("the next line"), "after");
        server.write_str("still here").expect("reply");
        writer.join().expect("writer");
    }
}
