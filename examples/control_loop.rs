//! A 100 Hz control loop that never blocks on its link: each tick it sends
//! a command without waiting (`within(Duration::ZERO)`), polls replies
//! with `try_read_json`, and reacts to connection events in a `select!`.
//! Halfway through, the controller (a server in this process) is stopped
//! and restarted on the same port; the auto-reconnecting client finds it
//! again while the loop keeps its rate. A controller that stops reading
//! does not stall it either: the commands it cannot take are skipped.
//!
//! Run with `cargo run --example control_loop`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ts_tcpip::crossbeam_channel::{select, tick};
use ts_tcpip::prelude::*;
use ts_tcpip::{Error, Result};

#[derive(Serialize, Deserialize, Debug)]
pub struct Command {
    pub seq: u64,
    pub demand: f64,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Reply {
    pub seq: u64,
    pub position: f64,
}

/// What the loop did, tick by tick.
#[derive(Debug, Default)]
pub struct Tally {
    pub ticks: u64,
    /// Commands on their way (all of each, or the rest to follow).
    pub sent: u64,
    /// Commands dropped because the controller was not taking data.
    pub stalled: u64,
    /// Commands dropped because the link was down.
    pub skipped: u64,
    pub replies: u64,
}

/// One tick's traffic: a command out, without waiting for anything, and
/// every reply that has arrived whole.
pub fn tick_once(
    client: &Client,
    tally: &mut Tally,
    mut on_reply: impl FnMut(Reply),
) -> Result<()> {
    tally.ticks += 1;
    let seq = tally.ticks;
    let command = Command {
        seq,
        demand: seq as f64,
    };
    match client.within(Duration::ZERO).write_json(&command) {
        // The rest of a command cut short goes out first on the next write.
        Ok(()) | Err(Error::WritePending(_)) => tally.sent += 1,
        Err(Error::Timeout) => tally.stalled += 1,
        Err(e) if e.is_connection_error() => tally.skipped += 1,
        Err(e) => return Err(e),
    }
    while let Ok(Some(reply)) = client.try_read_json::<Reply>() {
        tally.replies += 1;
        on_reply(reply);
    }
    Ok(())
}

/// The "controller": answers every command with a position.
fn start_controller(port: u16) -> Result<OneClientReadLoopServer> {
    OneClientReadLoopServer::builder()
        .port(port)
        .name("controller")
        .start_fn(|server| {
            let cmd: Command = server.read_json()?;
            server.write_json(&Reply {
                seq: cmd.seq,
                position: cmd.demand * 0.5,
            })
        })
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let mut controller = Some(start_controller(0)?);
    let port = controller.as_ref().map_or(0, |c| c.port());
    let client = Client::builder()
        .port(port)
        .name("loop")
        .reconnect(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .connect()?;
    let events = client.events();
    let ticks = tick(Duration::from_millis(10));
    let started = Instant::now();
    let mut tally = Tally::default();

    while started.elapsed() < Duration::from_secs(3) {
        select! {
            recv(events) -> event => println!("{:>6.3} s  event: {}", started.elapsed().as_secs_f64(), event.expect("client alive")),
            recv(ticks) -> _ => tick_once(&client, &mut tally, |reply| {
                if reply.seq % 50 == 0 {
                    println!("{:>6.3} s  reply {reply:?}", started.elapsed().as_secs_f64());
                }
            })?,
        }
        let t = started.elapsed();
        if t > Duration::from_secs(1) && t < Duration::from_millis(1500) && controller.is_some() {
            println!("{:>6.3} s  stopping the controller", t.as_secs_f64());
            controller = None;
        } else if t >= Duration::from_millis(1500) && controller.is_none() {
            println!(
                "{:>6.3} s  restarting the controller on port {port}",
                t.as_secs_f64()
            );
            controller = Some(start_controller(port)?);
        }
    }
    println!(
        "ticks: {}, commands sent: {}, replies: {}, skipped while down: {}, not taken: {}",
        tally.ticks, tally.sent, tally.replies, tally.skipped, tally.stalled
    );
    Ok(())
}
