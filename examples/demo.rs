//! A server and a client in one process exchange lines, JSON and a binary
//! struct, printing what goes each way.
//!
//! Run with `cargo run --example demo`.

use std::time::Duration;

use ts_tcpip::prelude::*;
use ts_tcpip::serde_json::{self, json};
use ts_tcpip::Result;

binary_struct! {
    /// A telemetry record, packed big-endian as the controller sends it.
    #[derive(Debug, Default, PartialEq)]
    #[byte_order(big)]
    struct Telemetry { flag: bool, counter: u32, position: [f64; 3] }
}

fn demo_struct(server: &OneClientServer, client: &Client) -> Result<()> {
    let sent = Telemetry {
        flag: true,
        counter: 7,
        position: [1.5, -2.25, 1e3],
    };
    server.write_from(&[&sent])?;
    let mut got = Telemetry::default();
    client.read_into(&mut got)?;
    println!("server -> client  struct ({} bytes): {got:?}", got.size());
    assert_eq!(got, sent);
    Ok(())
}

fn main() -> Result<()> {
    // The callback runs on a thread of its own; it says when it has, so
    // that what this prints comes in order.
    let (called, calls) = ts_tcpip::crossbeam_channel::unbounded();
    let server = OneClientServer::builder()
        .host(LOCALHOST_IPV4)
        .port(0)
        .name("demo")
        .connect_callback(move |s, connected| {
            println!("[callback] {} connected={connected}", s.name());
            let _ = called.send(connected);
        })
        .start()?;
    println!("server listening on {:?}", server.local_addrs());

    let client = Client::builder()
        .host(LOCALHOST_IPV4)
        .port(server.port())
        .connect()?;
    server.wait_connected(Duration::from_secs(5))?;
    let _ = calls.recv_timeout(Duration::from_secs(5));

    client.write_str("hello from the client")?;
    println!("client -> server  line: {:?}", server.read_str()?);
    server.write_str("hello back, café ✓")?;
    println!("server -> client  line: {:?}", client.read_str()?);

    client.write_json(&json!({"cmd": "move", "args": [1.5, 2.5e-8]}))?;
    let cmd: serde_json::Value = server.read_json()?;
    println!("client -> server  json: {cmd}");

    demo_struct(&server, &client)?;

    let events = server.events();
    client.close();
    let event = events
        .recv_timeout(Duration::from_secs(5))
        .expect("the server notices");
    let _ = calls.recv_timeout(Duration::from_secs(5));
    println!("server event: {event}");
    let stats = server.stats();
    println!(
        "server stats: {} frames read, {} written, {} bytes in, {} bytes out",
        stats.frames_read, stats.frames_written, stats.bytes_read, stats.bytes_written
    );
    server.close();
    Ok(())
}
