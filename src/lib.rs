//! A blocking TCP/IP link to exactly one peer: the std-thread counterpart
//! of Python's `lsst.ts.tcpip`.
//!
//! A [`OneClientServer`] serves one client and turns others away; a
//! [`Client`] connects to a server. Both read and write bytes, lines, text
//! in nine encodings, JSON and packed binary structs through the [`Link`]
//! trait, notice a dropped peer, and report every change of connection
//! state to a callback and to [`Link::events`]. The same bytes on the wire
//! as the Python package (for JSON with [`JsonStyle::Python`]; the default,
//! [`JsonStyle::Compact`], is serde_json's compact text, which Python reads
//! to the same value), so either end can be replaced. No async runtime.
//!
//! `use ts_tcpip::prelude::*` brings the types, the [`Link`] trait and the
//! common constants into scope (not [`Error`] and [`Result`], which would shadow
//! your own; name them as `ts_tcpip::Error`).
//!
//! ```
//! use ts_tcpip::prelude::*;
//! let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
//! let client = Client::builder().host(LOCALHOST_IPV4).port(server.port()).connect()?;
//! // Reads on a side with no peer fail at once: wait for the accept.
//! server.wait_connected(std::time::Duration::from_secs(5))?;
//! client.write_str("hello")?;
//! assert_eq!(server.read_str()?, "hello");
//! # Ok::<(), ts_tcpip::Error>(())
//! ```
//!
//! The layers, from the bottom: `wire` (pure code: frames, encodings,
//! JSON, binary structs), `link` (socket, transport, halves, slot,
//! monitor, events: one side of a connection), `ends` (server, client,
//! read loop, reconnect, the builder). ARCHITECTURE.md, shipped with the
//! sources, says more.
// No unsafe code, with one exception: on Windows, the `setsockopt` that
// sets SO_EXCLUSIVEADDRUSE on listening sockets (src/link/socket/windows.rs,
// `exclusive_address_use`, its one `#[allow(unsafe_code)]`), since neither
// std, socket2 nor rustix has a safe setter for that option. (A Windows
// unit test reads the option back the same way.)
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod config;
mod deadline;
mod encoding;
mod ends;
mod error;
mod json_style;
mod link;
mod sync;
pub mod testing;
mod wire;

/// The channel crate [`Link::events`] hands out receivers of, at the
/// version this crate uses, for `select!` and the like.
pub use crossbeam_channel;

pub use config::{
    DEFAULT_BACKLOG, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEAD_PEER_TIMEOUT, DEFAULT_ENCODING,
    DEFAULT_JSON_NON_FINITE, DEFAULT_JSON_STYLE, DEFAULT_LOCALHOST, DEFAULT_MAX_HEARTBEAT_INTERVAL,
    DEFAULT_MONITOR_CONNECTION_INTERVAL, DEFAULT_READ_LIMIT, DEFAULT_RECONNECT_INITIAL,
    DEFAULT_RECONNECT_MAX, DEFAULT_SPIN, DEFAULT_TERMINATOR, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    HEARTBEAT, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, KEEPALIVE_TIME, LOCALHOST_IPV4,
    LOCALHOST_IPV6, MAX_TLS_HANDSHAKES,
};
#[allow(deprecated)]
pub use config::{LOCAL_HOST, TERMINATOR};
pub use encoding::Encoding;
pub use ends::admission::SlotPolicy;
pub use ends::builder::{ClientBuilder, ReadLoopServerBuilder, ServerBuilder};
pub use ends::client::Client;
pub use ends::read_loop::{OneClientReadLoopServer, ReadLoopHandler};
pub use ends::reconnect::Backoff;
pub use ends::server::OneClientServer;
pub use error::{Error, Result};
pub use json_style::JsonStyle;
pub use link::{ConnectionEvent, DisconnectReason, Link, Stats, Within};
#[doc(hidden)]
pub use wire::binary::__private;
pub use wire::BinaryStruct;

/// The builder every end shares, and the parts its three forms are made
/// of.
pub mod builder {
    pub use crate::ends::builder::{Builder, ClientSide, Monitored, ReadLoopSide, ServerSide};
    pub use crate::ends::server_options::ServesOne;
}

/// TLS (feature `tls`): configurations from PEM files, and the rustls
/// crate at the version this crate uses, for configurations of your own.
#[cfg(feature = "tls")]
pub mod tls {
    pub use crate::ends::tls::{client_config_from_pem, server_config_from_pem};
    pub use rustls;
}

/// The link's JSON without a link: the text `write_json` sends in each
/// [`JsonStyle`], and the reading `read_json` does (JSON plus Python's
/// `NaN`, `Infinity` and `-Infinity`), for logs, files and tests.
pub mod json {
    pub use crate::json_style::JsonStyle;
    pub use crate::wire::json::{from_str, to_string};
}

/// The details each kind of [`Error`] carries.
pub mod error_details {
    pub use crate::error::{
        DecodeError, EncodeError, IncompleteRead, JsonError, LimitOverrun, StructError,
        WritePending,
    };
}

/// Everything a program using the crate names, without [`Error`] and
/// [`Result`] (they would shadow the program's own).
///
/// ```
/// use ts_tcpip::prelude::*;
/// fn ping(link: &impl Link) -> ts_tcpip::Result<String> {
///     link.write_str("ping")?;
///     link.read_str()
/// }
/// ```
pub mod prelude {
    pub use crate::binary_struct;
    pub use crate::config::{
        DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_MONITOR_CONNECTION_INTERVAL,
        DEFAULT_READ_LIMIT, DEFAULT_TERMINATOR, HEARTBEAT, LOCALHOST_IPV4, LOCALHOST_IPV6,
    };
    pub use crate::{
        Backoff, BinaryStruct, Client, ClientBuilder, ConnectionEvent, DisconnectReason, Encoding,
        JsonStyle, Link, OneClientReadLoopServer, OneClientServer, ReadLoopHandler,
        ReadLoopServerBuilder, ServerBuilder, SlotPolicy, Stats,
    };
}
