//! The test kit used as its users would: a small instrument driver built
//! on `ts_tcpip::Client` is the program under test. It runs against a
//! scripted controller, through a proxy that slices and delays, against a
//! replay of a captured session, and all three in one test. README.md
//! ("Testing a program that uses the link") shows these tests.

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use support::watchdog;
use ts_tcpip::prelude::*;
use ts_tcpip::testing::{FaultProxy, ScriptedPeer, Timing};

// --------------------------------------------------- the program under test

/// A mount's driver: each command is a JSON line, answered by one.
struct Mount {
    link: Client,
}

#[derive(Serialize)]
struct Move {
    cmd: &'static str,
    az: f64,
}

#[derive(Deserialize)]
struct Reply {
    ok: bool,
    az: f64,
}

/// How long the driver waits for a reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl Mount {
    fn connect(addr: std::net::SocketAddr) -> ts_tcpip::Result<Mount> {
        let link = Client::builder().port(addr.port()).connect()?;
        Ok(Mount { link })
    }

    /// Moves to `az` and returns where the mount says it is.
    fn move_to(&self, az: f64) -> ts_tcpip::Result<f64> {
        self.link.write_json(&Move { cmd: "move", az })?;
        let reply: Reply = self.link.within(REPLY_TIMEOUT).read_json()?;
        match reply.ok {
            true => Ok(reply.az),
            false => Err(ts_tcpip::Error::invalid_argument("the mount refused")),
        }
    }
}

// ------------------------------------------------------------------- tests

#[test]
fn the_driver_against_a_scripted_controller() {
    let _w = watchdog(Duration::from_secs(30));
    let controller = ScriptedPeer::server()
        .name("mount")
        .expect_json(&serde_json::json!({"cmd": "move", "az": 10.5}))
        .send_line(r#"{"ok": true, "az": 10.5}"#)
        .expect_nothing_more()
        .start()
        .unwrap();

    let mount = Mount::connect(controller.addr()).unwrap();
    assert_eq!(mount.move_to(10.5).unwrap(), 10.5);

    controller.finish().unwrap();
}

#[test]
fn the_driver_through_a_proxy_that_slices_and_delays() {
    let _w = watchdog(Duration::from_secs(30));
    let controller = ScriptedPeer::server()
        .expect_json(&serde_json::json!({"cmd": "move", "az": 1.0}))
        .send_line(r#"{"ok": true, "az": 1.0}"#)
        .expect_json(&serde_json::json!({"cmd": "move", "az": 2.0}))
        .send_line(r#"{"ok": true, "az": 2.0}"#)
        .start()
        .unwrap();
    let proxy = FaultProxy::start(controller.addr()).unwrap();
    // Replies arrive 4 bytes at a time, 2 ms apart, 20 ms late; commands
    // 10 ms late, give or take 5.
    proxy
        .to_client()
        .slice(4, Duration::from_millis(2))
        .latency(Duration::from_millis(20));
    proxy
        .to_server()
        .latency(Duration::from_millis(10))
        .jitter(Duration::from_millis(5));

    let mount = Mount::connect(proxy.addr()).unwrap();
    assert_eq!(mount.move_to(1.0).unwrap(), 1.0);
    assert_eq!(mount.move_to(2.0).unwrap(), 2.0);

    controller.finish().unwrap();
}

#[test]
fn the_driver_reports_a_reset_in_the_middle_of_a_reply() {
    let _w = watchdog(Duration::from_secs(30));
    let controller = ScriptedPeer::server()
        .expect_json(&serde_json::json!({"cmd": "move", "az": 1.0}))
        .send_line(r#"{"ok": true, "az": 1.0}"#)
        .start()
        .unwrap();
    let proxy = FaultProxy::start(controller.addr()).unwrap();
    proxy.to_client().reset_after(8);

    let mount = Mount::connect(proxy.addr()).unwrap();
    let err = mount.move_to(1.0).expect_err("half a reply, then a reset");
    assert!(err.is_connection_error(), "{err:?}");

    controller.finish().unwrap();
}

#[test]
fn the_driver_against_a_replay_of_a_captured_session() {
    let _w = watchdog(Duration::from_secs(30));
    // Capture: the driver and a controller, through a recording proxy.
    let controller = ScriptedPeer::server()
        .expect_json(&serde_json::json!({"cmd": "move", "az": 3.0}))
        .pause(Duration::from_millis(30))
        .send_line(r#"{"ok": true, "az": 2.999}"#)
        .start()
        .unwrap();
    let recorder = FaultProxy::builder(controller.addr())
        .record(true)
        .start()
        .unwrap();
    let mount = Mount::connect(recorder.addr()).unwrap();
    assert_eq!(mount.move_to(3.0).unwrap(), 2.999);
    drop(mount);
    controller.finish().unwrap();
    let capture = recorder.capture();

    // Replay: the controller's side, with its 30 ms pause; the driver's
    // bytes are checked against the capture.
    let replay = ScriptedPeer::replay_server(&capture, Timing::Kept)
        .start()
        .unwrap();
    let mount = Mount::connect(replay.addr()).unwrap();
    assert_eq!(mount.move_to(3.0).unwrap(), 2.999);
    drop(mount);
    replay.finish().unwrap();
}

/// All three pieces in one driver test: a scripted controller, seen
/// through a recording proxy that slices and delays its replies; then the
/// captured session replayed against the driver, which must send the same
/// bytes again.
#[test]
fn the_driver_passes_a_scripted_controller_through_a_faulty_network_and_its_replay() {
    let _w = watchdog(Duration::from_secs(30));
    let controller = ScriptedPeer::server()
        .name("mount")
        .expect_json(&serde_json::json!({"cmd": "move", "az": 45.0}))
        .send_line(r#"{"ok": true, "az": 45.0}"#)
        .expect_json(&serde_json::json!({"cmd": "move", "az": 90.0}))
        .send_line(r#"{"ok": true, "az": 89.99}"#)
        .expect_close()
        .start()
        .unwrap();
    let proxy = FaultProxy::builder(controller.addr())
        .name("net")
        .record(true)
        .start()
        .unwrap();
    proxy
        .to_client()
        .slice(5, Duration::from_millis(1))
        .latency(Duration::from_millis(15));

    let mount = Mount::connect(proxy.addr()).unwrap();
    assert_eq!(mount.move_to(45.0).unwrap(), 45.0);
    assert_eq!(mount.move_to(90.0).unwrap(), 89.99);
    drop(mount);
    controller.finish().unwrap();

    let capture = proxy.capture();
    let replay = ScriptedPeer::replay_server(&capture, Timing::Compressed)
        .name("mount replay")
        .start()
        .unwrap();
    let mount = Mount::connect(replay.addr()).unwrap();
    assert_eq!(mount.move_to(45.0).unwrap(), 45.0);
    assert_eq!(mount.move_to(90.0).unwrap(), 89.99);
    drop(mount);
    replay.finish().unwrap();
}

/// What a test sees when the driver is wrong: here it sends the azimuth
/// as a string. The verdict names the step, the value it expected and the
/// line that came.
#[test]
fn a_driver_that_sends_the_wrong_value_fails_with_what_it_sent() {
    let _w = watchdog(Duration::from_secs(30));
    let controller = ScriptedPeer::server()
        .name("mount")
        .expect_json(&serde_json::json!({"cmd": "move", "az": 10.5}))
        .send_line(r#"{"ok": true, "az": 10.5}"#)
        .start()
        .unwrap();
    let link = Client::builder().port(controller.port()).connect().unwrap();
    link.write_str(r#"{"cmd": "move", "az": "10.5"}"#).unwrap();
    let failure = controller.finish().expect_err("a wrong value");
    assert_eq!(
        failure.to_string(),
        r#"scripted peer `mount`: 1 mismatch
  step 1, expect_json({"az":10.5,"cmd":"move"}): expected JSON {"az":10.5,"cmd":"move"}; got {"az":"10.5","cmd":"move"} ("{\"cmd\": \"move\", \"az\": \"10.5\"}\r\n" at offset 0)"#
    );
}
