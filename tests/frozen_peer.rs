//! A frozen peer: its process stopped (SIGSTOP), its kernel still
//! acknowledging. TCP sees a healthy connection, so neither keepalive nor
//! the dead-peer bound can tell; what notices is the application's own
//! liveness check: here a read-loop server's heartbeat monitor, against a
//! client in a child process that is stopped for real.
#![cfg(unix)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::watchdog;
use ts_tcpip::prelude::*;

/// Set in the child: the port of the server to send heartbeats to.
const CHILD_PORT: &str = "TS_TCPIP_FROZEN_PEER_PORT";

/// The child's part: a client sending a heartbeat every 50 ms until it is
/// killed (or, if the parent is gone, for 30 s).
#[test]
#[ignore = "run by a_stopped_client_is_closed_by_the_heartbeat_monitor, in a child process"]
fn child_sends_heartbeats() {
    let Ok(port) = std::env::var(CHILD_PORT) else {
        return;
    };
    let client = Client::builder()
        .port(port.parse().expect("port"))
        .heartbeat(Some(Duration::from_millis(50)))
        .connect()
        .expect("the child connects");
    // Stopped and killed by the parent long before this ends.
    let _ = client.within(Duration::from_secs(30)).read_to_end();
}

/// Kills the child on the way out, stopped or not.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill(1)");
    assert!(status.success(), "kill {sig}");
}

#[test]
fn a_stopped_client_is_closed_by_the_heartbeat_monitor() {
    let _w = watchdog(Duration::from_secs(60));
    const MAX: Duration = Duration::from_millis(500);
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(MAX))
        .start_fn(|server| {
            if server.read_str()? == "heartbeat" {
                server.handle_received_heartbeat()?;
            }
            Ok(())
        })
        .expect("server");
    let events = server.events();
    let child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "child_sends_heartbeats", "--ignored"])
        .env(CHILD_PORT, server.port().to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("the child starts");
    let child = Reaper(child);
    let connected = events
        .recv_timeout(support::WAIT)
        .expect("the child connects");
    assert!(connected.is_connected(), "{connected}");
    signal(&child.0, "-STOP");
    let stopped = Instant::now();
    let news = events.recv_timeout(support::WAIT).expect("a disconnect");
    let noticed = stopped.elapsed();
    match news {
        ConnectionEvent::Disconnected { reason, .. } => {
            assert_eq!(reason, DisconnectReason::HeartbeatMissed)
        }
        other => panic!("{other}"),
    }
    // Within the heartbeat limit, give or take the last heartbeat's age
    // and the scheduler.
    assert!(noticed <= MAX + support::WAIT / 2, "{noticed:?}");
    println!("frozen client noticed after {noticed:?} (heartbeat limit {MAX:?})");
    assert!(!server.connected() && !server.should_be_connected());
    signal(&child.0, "-CONT");
}
