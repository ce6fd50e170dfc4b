//! examples/control_loop.rs keeps its period when the controller stops
//! reading: its tick (the example's own `tick_once`) never waits on the
//! link, so a command the peer cannot take is dropped, not waited for
//! until the dead-peer bound.

#[allow(dead_code)]
#[path = "../examples/control_loop.rs"]
mod control_loop;
mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use control_loop::{tick_once, Tally};
use support::{watchdog, WAIT};
use ts_tcpip::crossbeam_channel::tick;
use ts_tcpip::prelude::*;

const PERIOD: Duration = Duration::from_millis(10);

#[test]
fn the_control_loop_keeps_its_period_when_the_controller_stops_reading() {
    let _w = watchdog(Duration::from_secs(60));
    // A controller that takes the connection and never reads from it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let client = Client::builder().port(port).connect().expect("client");
    let (_controller, _) = listener.accept().expect("accept");

    // Fill what the sockets hold, so every command from here on finds the
    // link full.
    let block = vec![b'x'; 1 << 20];
    let filling = Instant::now();
    loop {
        match client.within(Duration::ZERO).write(&block) {
            Ok(()) | Err(ts_tcpip::Error::WritePending(_)) => {}
            Err(ts_tcpip::Error::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(filling.elapsed() < WAIT, "the sockets never filled");
    }

    let ticks = tick(PERIOD);
    let mut tally = Tally::default();
    let mut work = Vec::new();
    let started = Instant::now();
    while tally.ticks < 100 {
        ticks.recv_timeout(WAIT).expect("a tick");
        let t0 = Instant::now();
        tick_once(&client, &mut tally, |_| {}).expect("tick");
        work.push(t0.elapsed());
    }
    let elapsed = started.elapsed();
    work.sort();
    let (median, longest) = (work[work.len() / 2], work[work.len() - 1]);
    // Without a deadline a write would block here until the dead-peer
    // bound (10 s): the bounds are generous, the difference is not.
    assert!(median < PERIOD, "median tick {median:?}");
    assert!(longest < Duration::from_secs(1), "longest tick {longest:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "100 ticks took {elapsed:?}"
    );
    // Each command is on its way or dropped; the full sockets dropped some
    // (as they drain into the peer's growing buffers, some get through).
    assert_eq!(tally.sent + tally.stalled, 100, "{tally:?}");
    assert!(tally.stalled > 0 && tally.skipped == 0, "{tally:?}");
    assert!(client.connected(), "a peer that does not read is not gone");
}
