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

/// The heartbeat monitor closes a client whose process is stopped, with
/// `HeartbeatMissed`, no sooner than the limit after the last heartbeat
/// the server handled and well before twice the limit.
#[test]
fn a_stopped_client_is_closed_by_the_heartbeat_monitor() {
    let _w = watchdog(Duration::from_secs(60));
    const MAX: Duration = Duration::from_millis(500);
    // Each heartbeat's arrival, taken before the monitor is told of it:
    // the monitor cannot have seen a later one.
    let (beat_tx, beats) = crossbeam_channel::unbounded::<Instant>();
    let server = OneClientReadLoopServer::builder()
        .heartbeat_monitor(Some(MAX))
        .start_fn(move |server| {
            if server.read_str()? == "heartbeat" {
                let at = Instant::now();
                server.handle_received_heartbeat()?;
                let _ = beat_tx.send(at);
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
    let first = beats
        .recv_timeout(support::WAIT)
        .expect("a first heartbeat");
    signal(&child.0, "-STOP");
    let stopped = Instant::now();
    let news = events.recv_timeout(support::WAIT).expect("a disconnect");
    let noticed = Instant::now();
    match news {
        ConnectionEvent::Disconnected { reason, .. } => {
            assert_eq!(reason, DisconnectReason::HeartbeatMissed)
        }
        other => panic!("{other}"),
    }
    let last = beats.try_iter().last().unwrap_or(first);
    let silence = noticed - last;
    println!(
        "frozen client closed {silence:?} after its last heartbeat, {:?} after the stop \
         (heartbeat limit {MAX:?})",
        noticed - stopped
    );
    // Not before the limit. After it, the monitor's wake-up and the
    // event's delivery, a few milliseconds, up to a few hundred on a
    // loaded machine: a second limit's worth is ample, and a monitor
    // that waits a multiple of the limit (or for the next check of some
    // longer period) fails.
    assert!(
        silence >= MAX && silence < 2 * MAX,
        "closed {silence:?} after the last heartbeat, for a limit of {MAX:?}"
    );
    assert!(!server.connected() && !server.should_be_connected());
    signal(&child.0, "-CONT");
}
