//! A 100 Hz control loop that never blocks on its link: each tick it sends
//! a command, polls replies with `try_read_json`, and reacts to connection
//! events in a `select!`. Halfway through, the controller (a server in this
//! process) is stopped and restarted on the same port; the auto-reconnecting
//! client finds it again while the loop keeps its rate.
//!
//! Run with `cargo run --example control_loop`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ts_tcpip::crossbeam_channel::{select, tick};
use ts_tcpip::prelude::*;
use ts_tcpip::Result;

#[derive(Serialize, Deserialize, Debug)]
struct Command {
    seq: u64,
    demand: f64,
}

#[derive(Serialize, Deserialize, Debug)]
struct Reply {
    seq: u64,
    position: f64,
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
    let (mut seq, mut sent, mut replies, mut skipped) = (0u64, 0u64, 0u64, 0u64);

    while started.elapsed() < Duration::from_secs(3) {
        select! {
            recv(events) -> event => println!("{:>6.3} s  event: {}", started.elapsed().as_secs_f64(), event.expect("client alive")),
            recv(ticks) -> _ => {
                seq += 1;
                match client.write_json(&Command { seq, demand: seq as f64 }) {
                    Ok(()) => sent += 1,
                    Err(e) if e.is_connection_error() => skipped += 1,
                    Err(e) => return Err(e),
                }
                while let Ok(Some(reply)) = client.try_read_json::<Reply>() {
                    replies += 1;
                    if reply.seq % 50 == 0 {
                        println!("{:>6.3} s  reply {reply:?}", started.elapsed().as_secs_f64());
                    }
                }
            }
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
        "ticks: {seq}, commands sent: {sent}, replies: {replies}, skipped while down: {skipped}"
    );
    Ok(())
}
