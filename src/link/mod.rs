//! The link: one side of a connection to one peer. The socket layer and
//! the transport seam at the bottom; the connection, the two halves that
//! read and write it, the slot that holds it, the monitor that watches it,
//! the events and counters that report on it; the endpoint that ties them
//! together, and the public [`Link`] API over it.

pub(crate) mod api;
pub(crate) mod connection;
pub(crate) mod ending;
pub(crate) mod endpoint;
pub(crate) mod events;
pub(crate) mod half;
#[cfg(all(test, shuttle))]
mod model;
pub(crate) mod monitor;
pub(crate) mod shared_codec;
pub(crate) mod slot;
pub(crate) mod socket;
pub(crate) mod stats;
#[cfg(test)]
pub(crate) mod test_util;
pub(crate) mod threads;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod transport;

pub use api::{Link, Within};
pub use events::{ConnectionEvent, DisconnectReason};
pub use stats::Stats;
