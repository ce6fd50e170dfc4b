//! The ends: what a program holds. A server that serves one client, a
//! client (with heartbeats and reconnection), and a server whose client is
//! served by a read loop. Each end is a file with a folder of its own:
//! `server.rs` is the end, `server/builder.rs` its settings and its start,
//! and so on; `builder.rs` here is the one builder they share, with the
//! link's settings. Imports point from an end's builder to the end, from
//! the read loop to the server, and from everything here to `tls.rs` and
//! below, never back.

pub(crate) mod builder;
pub(crate) mod client;
pub(crate) mod read_loop;
pub(crate) mod server;
#[cfg(feature = "tls")]
pub(crate) mod tls;
