//! A blocking TCP/IP link to exactly one peer: the std-thread counterpart
//! of Python's `lsst.ts.tcpip`.
//!
//! A [`OneClientServer`] serves one client and turns others away; a
//! [`Client`] connects to a server. Both read and write bytes, lines, text
//! in nine encodings, JSON and packed binary structs through the [`Link`]
//! trait, notice a dropped peer, and report every change of connection
//! state to a callback and to [`Link::events`]. Same bytes on the wire as
//! the Python package, so either end can be replaced. No async runtime.
//!
//! ```
//! use ts_tcpip::*;
//! let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
//! let client = Client::builder().host(LOCALHOST_IPV4).port(server.port()).connect()?;
//! // Reads on a side with no peer fail at once: wait for the accept.
//! server.wait_connected(std::time::Duration::from_secs(5))?;
//! client.write_str("hello")?;
//! assert_eq!(server.read_str()?, "hello");
//! # Ok::<(), ts_tcpip::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod binary;
mod client;
mod codec;
mod config;
mod connection;
mod encoding;
mod endpoint;
mod error;
mod events;
mod frame;
mod half;
mod link;
mod monitor;
mod net;
mod read_loop;
mod reconnect;
mod separator;
mod server;
mod stats;
pub mod testing;

#[doc(hidden)]
pub use binary::__private;
pub use binary::BinaryStruct;
pub use client::{Client, ClientBuilder};
pub use config::{
    DEFAULT_BACKLOG, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENCODING, DEFAULT_LOCALHOST,
    DEFAULT_MAX_HEARTBEAT_INTERVAL, DEFAULT_MONITOR_CONNECTION_INTERVAL, DEFAULT_READ_LIMIT,
    DEFAULT_TERMINATOR, HEARTBEAT, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, KEEPALIVE_TIME,
    LOCALHOST_IPV4, LOCALHOST_IPV6,
};
pub use encoding::Encoding;
pub use error::{Error, Result};
pub use events::{ConnectionEvent, DisconnectReason};
pub use link::Link;
pub use read_loop::{OneClientReadLoopServer, ReadLoopHandler, ReadLoopServerBuilder};
pub use reconnect::Backoff;
pub use server::{OneClientServer, ServerBuilder};
pub use stats::Stats;
