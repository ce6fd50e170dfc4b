//! Constants and defaults, in one place. Every builder setter's doc names
//! the constant it defaults to.

use std::time::Duration;

use crate::{Encoding, Error, Result};

/// Encoding of `read_str`/`write_str`/JSON unless set: UTF-8.
pub const DEFAULT_ENCODING: Encoding = Encoding::Utf8;
/// Terminator of `read_str`/`write_str`/JSON unless set: `b"\r\n"`.
pub const DEFAULT_TERMINATOR: &[u8] = b"\r\n";
/// How often a busy link is checked for a dropped peer: 100 ms. An idle
/// link notices at once (see [`crate::ServerBuilder::monitor_connection_interval`]).
pub const DEFAULT_MONITOR_CONNECTION_INTERVAL: Duration = Duration::from_millis(100);
/// Most bytes a separator may be preceded by: 64 KiB (asyncio's limit).
pub const DEFAULT_READ_LIMIT: usize = 65_536;
/// The line a heartbeat sends (followed by the terminator).
pub const HEARTBEAT: &[u8] = b"heartbeat";
/// The IPv4 loopback address.
pub const LOCALHOST_IPV4: &str = "127.0.0.1";
/// The IPv6 loopback address.
pub const LOCALHOST_IPV6: &str = "::1";
/// The loopback address used unless told otherwise: IPv4.
pub const DEFAULT_LOCALHOST: &str = LOCALHOST_IPV4;
/// Idle time before TCP keepalive probes start: 60 s.
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// Unanswered keepalive probes before the connection is dropped: 4.
pub const KEEPALIVE_PROBES: u32 = 4;
/// Time between keepalive probes: 15 s.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// A read-loop server with heartbeat monitoring closes a client that sent
/// no heartbeat for this long, unless told otherwise: 10 s.
pub const DEFAULT_MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How long `Client::connect` tries before giving up, unless set: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pending connections the listener queues, unless set: 128.
pub const DEFAULT_BACKLOG: i32 = 128;

/// The settings both sides share.
#[derive(Clone, Debug)]
pub(crate) struct LinkConfig {
    pub(crate) name: String,
    pub(crate) encoding: Encoding,
    pub(crate) terminator: Vec<u8>,
    pub(crate) read_limit: usize,
    pub(crate) monitor_interval: Duration,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: bool,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            name: String::new(),
            encoding: DEFAULT_ENCODING,
            terminator: DEFAULT_TERMINATOR.to_vec(),
            read_limit: DEFAULT_READ_LIMIT,
            monitor_interval: DEFAULT_MONITOR_CONNECTION_INTERVAL,
            nodelay: true,
            keepalive: true,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

impl LinkConfig {
    /// Refuses what cannot work, before any socket exists.
    pub(crate) fn validate(&self) -> Result<()> {
        check_terminator(&self.terminator)?;
        if self.read_limit == 0 {
            return Err(Error::InvalidArgument(
                "read_limit must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

pub(crate) fn check_terminator(terminator: &[u8]) -> Result<()> {
    if terminator.is_empty() {
        return Err(Error::InvalidArgument(
            "the terminator must not be empty".into(),
        ));
    }
    Ok(())
}

/// Builder setters both sides share; `$($field).+` is the path to the
/// builder's [`LinkConfig`].
macro_rules! link_setters {
    ($($field:ident).+) => {
        /// Name used in log messages, e.g. `"Commands"`. Default: empty.
        pub fn name(mut self, name: &str) -> Self {
            self.$($field).+.name = name.to_owned();
            self
        }

        /// Encoding of `read_str`, `write_str` and JSON. Default:
        /// [`DEFAULT_ENCODING`](crate::DEFAULT_ENCODING) (UTF-8).
        pub fn encoding(mut self, encoding: $crate::Encoding) -> Self {
            self.$($field).+.encoding = encoding;
            self
        }

        /// Terminator of `read_str`, `write_str` and JSON; must not be
        /// empty (checked when starting). Default:
        /// [`DEFAULT_TERMINATOR`](crate::DEFAULT_TERMINATOR) (`b"\r\n"`).
        pub fn terminator(mut self, terminator: impl Into<Vec<u8>>) -> Self {
            self.$($field).+.terminator = terminator.into();
            self
        }

        /// Most bytes a separator may be preceded by before a read fails
        /// with [`Error::LimitOverrun`](crate::Error::LimitOverrun); also
        /// bounds the receive buffer. Default:
        /// [`DEFAULT_READ_LIMIT`](crate::DEFAULT_READ_LIMIT) (64 KiB).
        pub fn read_limit(mut self, bytes: usize) -> Self {
            self.$($field).+.read_limit = bytes;
            self
        }

        /// Sets TCP_NODELAY on each connection. Default: true, as the
        /// Python reference's asyncio streams.
        pub fn nodelay(mut self, on: bool) -> Self {
            self.$($field).+.nodelay = on;
            self
        }

        /// Sets TCP keepalive ([`KEEPALIVE_TIME`](crate::KEEPALIVE_TIME),
        /// [`KEEPALIVE_INTERVAL`](crate::KEEPALIVE_INTERVAL),
        /// [`KEEPALIVE_PROBES`](crate::KEEPALIVE_PROBES)) on each
        /// connection. Default: true.
        pub fn keepalive(mut self, on: bool) -> Self {
            self.$($field).+.keepalive = on;
            self
        }

        /// Read timeout of each connection (see
        /// [`Link::set_read_timeout`](crate::Link::set_read_timeout)).
        /// Default: `None`, reads wait for data.
        pub fn read_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.$($field).+.read_timeout = timeout;
            self
        }

        /// Write timeout of each connection (see
        /// [`Link::set_write_timeout`](crate::Link::set_write_timeout)).
        /// Default: `None`, writes wait for the peer to take the data.
        pub fn write_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.$($field).+.write_timeout = timeout;
            self
        }
    };
}
pub(crate) use link_setters;

/// The monitor setter of the builders that run a connection monitor.
macro_rules! monitor_setter {
    ($($field:ident).+) => {
        /// How late, at most, a peer that went away is noticed while bytes
        /// wait unread or a read is running; on an idle link it is noticed
        /// at once (within this interval too if a read timeout shorter
        /// than it is set: the monitor's wait on the socket obeys it). `Duration::ZERO` starts no monitor: then only reads,
        /// writes and (on a server) the next client's arrival notice.
        /// Default: [`DEFAULT_MONITOR_CONNECTION_INTERVAL`](crate::DEFAULT_MONITOR_CONNECTION_INTERVAL)
        /// (100 ms).
        pub fn monitor_connection_interval(mut self, interval: std::time::Duration) -> Self {
            self.$($field).+.monitor_interval = interval;
            self
        }
    };
}
pub(crate) use monitor_setter;
