//! The test kit leaves nothing behind: after a scripted peer's verdict or
//! drop, and after a proxy's connections end or the proxy is dropped, the
//! process has the threads and descriptors it had before. The checks count
//! the whole process (/proc/self/task, /proc/self/fd), so they run in a
//! binary of their own (`harness = false` in Cargo.toml), one after
//! another. Linux only.
//!
//! `cargo test --test testing_kit_leaks [FILTER]` runs them.

mod support;

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    let checks = linux::CHECKS;
    #[cfg(not(target_os = "linux"))]
    let checks: &[(&str, fn())] = &[];
    support::checks::run(checks)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;

    use crate::support::proc::{all_threads, open_fds, settles_to, thread_names};
    use crate::support::{raw_connect, watchdog, WAIT};
    use ts_tcpip::testing::{FaultProxy, ScriptedPeer};

    pub const CHECKS: &[(&str, fn())] = &[
        (
            "a_finished_peer_leaves_no_thread_and_no_socket",
            a_finished_peer_leaves_no_thread_and_no_socket,
        ),
        (
            "a_dropped_peer_leaves_no_thread_and_no_socket",
            a_dropped_peer_leaves_no_thread_and_no_socket,
        ),
        (
            "a_dropped_proxy_with_open_connections_leaves_no_thread_and_no_socket",
            a_dropped_proxy_with_open_connections_leaves_no_thread_and_no_socket,
        ),
        (
            "a_connection_that_ends_takes_its_threads_and_sockets_with_it",
            a_connection_that_ends_takes_its_threads_and_sockets_with_it,
        ),
        ("the_kits_threads_are_named", the_kits_threads_are_named),
    ];

    /// Threads and descriptors now.
    fn counts() -> (usize, usize) {
        (all_threads(), open_fds())
    }

    #[track_caller]
    fn assert_back_to(before: (usize, usize)) {
        let threads = settles_to(before.0, all_threads);
        assert_eq!(threads, before.0, "threads left: {:?}", thread_names());
        assert_eq!(settles_to(before.1, open_fds), before.1, "descriptors left");
    }

    fn a_finished_peer_leaves_no_thread_and_no_socket() {
        let _w = watchdog(Duration::from_secs(30));
        let before = counts();
        for script in [
            ScriptedPeer::server().expect_line("a").send_line("b"),
            ScriptedPeer::server().expect_line("a").reset(),
            ScriptedPeer::server()
                .expect_line("a")
                .close()
                .expect_close(),
            ScriptedPeer::server()
                .expect_line("a")
                .expect_nothing_more(),
        ] {
            let peer = script.start().expect("the script starts");
            let mut program = raw_connect(peer.addr());
            program.write_all(b"a\r\n").unwrap();
            let _ = program.read(&mut [0u8; 16]);
            drop(program);
            let _ = peer.finish();
        }
        // A failed verdict too: the deadline missed.
        let peer = ScriptedPeer::server()
            .expect_line("never")
            .within(Duration::from_millis(20))
            .start()
            .unwrap();
        let program = raw_connect(peer.addr());
        assert!(peer.finish().is_err());
        drop(program);
        assert_back_to(before);
    }

    fn a_dropped_peer_leaves_no_thread_and_no_socket() {
        let _w = watchdog(Duration::from_secs(30));
        let before = counts();
        // Dropped mid-step (a panic, caught), before any connection, and
        // with its script done.
        let peer = ScriptedPeer::server().expect_line("a").start().unwrap();
        let program = raw_connect(peer.addr());
        assert!(catch_unwind(AssertUnwindSafe(|| drop(peer))).is_err());
        drop(program);
        let peer = ScriptedPeer::server().start().unwrap();
        assert!(catch_unwind(AssertUnwindSafe(|| drop(peer))).is_err());
        let peer = ScriptedPeer::server()
            .send_line("hi")
            .go_silent()
            .start()
            .unwrap();
        let mut program = raw_connect(peer.addr());
        program.read_exact(&mut [0u8; 4]).unwrap();
        drop(peer);
        drop(program);
        assert_back_to(before);
    }

    fn a_dropped_proxy_with_open_connections_leaves_no_thread_and_no_socket() {
        let _w = watchdog(Duration::from_secs(30));
        let before = counts();
        {
            let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
            let proxy = FaultProxy::builder(upstream.local_addr().unwrap())
                .record(true)
                .start()
                .unwrap();
            proxy.to_client().hold();
            proxy.to_server().latency(Duration::from_secs(3600));
            let mut legs = Vec::new();
            for _ in 0..3 {
                let mut program = raw_connect(proxy.addr());
                let (mut server, _) = upstream.accept().unwrap();
                program.write_all(b"delayed for an hour").unwrap();
                server.write_all(b"held").unwrap();
                legs.push((program, server));
            }
            drop(proxy);
            for (mut program, mut server) in legs {
                // Both legs were closed by the proxy.
                program.set_read_timeout(Some(WAIT)).unwrap();
                server.set_read_timeout(Some(WAIT)).unwrap();
                assert_eq!(program.read(&mut [0u8; 8]).unwrap(), 0);
                assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
            }
        }
        assert_back_to(before);
    }

    fn a_connection_that_ends_takes_its_threads_and_sockets_with_it() {
        let _w = watchdog(Duration::from_secs(30));
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = FaultProxy::start(upstream.local_addr().unwrap()).unwrap();
        let idle = counts();
        // Both sides close: the connection's four threads end.
        let program = raw_connect(proxy.addr());
        let (server, _) = upstream.accept().unwrap();
        drop(program);
        drop(server);
        assert_back_to(idle);
        // A reset ends it too.
        proxy.to_client().reset_after(1);
        let mut program = raw_connect(proxy.addr());
        let (mut server, _) = upstream.accept().unwrap();
        server.write_all(b"xy").unwrap();
        program.set_read_timeout(Some(WAIT)).unwrap();
        let _ = program.read(&mut [0u8; 1]);
        assert!(program.read(&mut [0u8; 1]).is_err(), "reset");
        drop(program);
        drop(server);
        assert_back_to(idle);
    }

    fn the_kits_threads_are_named() {
        let _w = watchdog(Duration::from_secs(30));
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = ScriptedPeer::server()
            .name("ctl")
            .go_silent()
            .start()
            .unwrap();
        let proxy = FaultProxy::builder(upstream.local_addr().unwrap())
            .name("net")
            .start()
            .unwrap();
        let _program = raw_connect(proxy.addr());
        let _server = upstream.accept().unwrap();
        // /proc shows the first 15 bytes of a name.
        let wanted = [
            "tcpip-peer ctl",
            "tcpip-proxy net",
            "tcpip-proxy-in",
            "tcpip-proxy-out",
        ];
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let names = thread_names();
            let missing: Vec<&&str> = wanted
                .iter()
                .filter(|w| !names.iter().any(|n| n.starts_with(**w)))
                .collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{missing:?} not in {names:?}"
            );
            std::thread::yield_now();
        }
        let _program2 = raw_connect(peer.addr());
        peer.finish().unwrap();
    }
}
