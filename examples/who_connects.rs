//! Who may connect: a server that serves only 127.0.0.1 (an allowlist)
//! and lets a controller that rebooted take the slot back from its own
//! half-open connection (the replace policy).
//!
//! Run with `cargo run --example who_connects`. The peer from 127.0.0.2
//! needs a system that routes all of 127/8 to loopback (Linux does).

use std::net::SocketAddr;
use std::time::Duration;

use ts_tcpip::prelude::*;
use ts_tcpip::Result;

const WAIT: Duration = Duration::from_secs(5);

fn main() -> Result<()> {
    let server = OneClientServer::builder()
        .name("mount")
        .host(LOCALHOST_IPV4)
        .allow("127.0.0.1/32") // repeatable; allow_peer(|addr| ..) for a predicate
        .slot_policy(SlotPolicy::ReplaceOld)
        .start()?;
    let events = server.events();
    println!("server listening on {:?}", server.local_addrs());

    // A peer from an address not allowed: accepted by TCP, closed at once.
    let stranger: SocketAddr = "127.0.0.2:0".parse().expect("an address");
    let (told, heard) = ts_tcpip::crossbeam_channel::unbounded();
    match Client::builder()
        .port(server.port())
        .local_addr(stranger)
        .connect_callback(move |_, connected| {
            let _ = told.send(connected);
        })
        .connect()
    {
        Ok(_client) => {
            let calls: Vec<bool> = (0..2)
                .filter_map(|_| heard.recv_timeout(WAIT).ok())
                .collect();
            println!("from 127.0.0.2: connected, then closed by the server: callback {calls:?}");
        }
        Err(e) => println!("from 127.0.0.2: cannot try here ({e})"),
    }

    // The controller connects, then "reboots": its new connection takes the
    // slot, and the old one is closed with a reason of its own.
    let before = Client::builder().port(server.port()).connect()?;
    let old_events = before.events();
    println!("server event: {}", next(&events)?);
    let after = Client::builder().port(server.port()).connect()?;
    println!("server event: {}", next(&events)?);
    println!("server event: {}", next(&events)?);
    println!("old client event: {}", next(&old_events)?);
    server.set_read_timeout(Some(WAIT));
    after.write_str("hello after the reboot")?;
    println!("server read: {:?}", server.read_str()?);

    let stats = server.stats();
    println!(
        "server stats: {} accepted, {} refused (allowlist), {} rejected (slot taken), {} disconnects",
        stats.connections_accepted,
        stats.connections_refused,
        stats.connections_rejected,
        stats.disconnects
    );
    Ok(())
}

fn next(
    events: &ts_tcpip::crossbeam_channel::Receiver<ConnectionEvent>,
) -> Result<ConnectionEvent> {
    events
        .recv_timeout(WAIT)
        .map_err(|_| ts_tcpip::Error::Timeout)
}
