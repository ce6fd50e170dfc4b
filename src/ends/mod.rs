//! The ends: what a program holds. A server that serves one client, a
//! client (with heartbeats and reconnection), and a server whose client is
//! served by a read loop; the one builder they share.

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod builder;
pub(crate) mod client;
pub(crate) mod client_options;
pub(crate) mod read_loop;
pub(crate) mod reconnect;
pub(crate) mod server;
pub(crate) mod server_options;
#[cfg(feature = "tls")]
pub(crate) mod tls;
