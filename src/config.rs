//! Constants and defaults, in one place. Every builder setter's doc names
//! the constant it defaults to; [`LinkConfig::default`] is where the
//! settings of the link itself start.

use std::time::Duration;

use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::json_style::JsonStyle;

/// Encoding of `read_str`/`write_str`/JSON unless set: UTF-8.
pub const DEFAULT_ENCODING: Encoding = Encoding::Utf8;
/// Terminator of `read_str`/`write_str`/JSON unless set: `b"\r\n"`.
pub const DEFAULT_TERMINATOR: &[u8] = b"\r\n";
/// How `write_json` writes unless set: [`JsonStyle::Compact`], serde_json's
/// compact text, as before the Python style existed (see
/// [`Builder::json_style`](crate::builder::Builder::json_style)).
pub const DEFAULT_JSON_STYLE: JsonStyle = JsonStyle::Compact;
/// Whether `read_json` takes Python's `NaN`, `Infinity` and `-Infinity`
/// as floats unless set: true, as Python's `json.loads` does (see
/// [`Builder::json_non_finite`](crate::builder::Builder::json_non_finite)).
pub const DEFAULT_JSON_NON_FINITE: bool = true;
/// How long a read that finds nothing spins before it sleeps, unless set:
/// zero, it sleeps at once (see
/// [`Builder::spin`](crate::builder::Builder::spin)).
pub const DEFAULT_SPIN: Duration = Duration::ZERO;
/// How often a busy link is checked for a dropped peer: 100 ms. An idle
/// link notices at once (see [`Builder::monitor_connection_interval`](crate::builder::Builder::monitor_connection_interval)).
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
/// The Python package's deprecated name of [`DEFAULT_LOCALHOST`], kept so
/// that a port's old name points to the new one.
#[deprecated(note = "use DEFAULT_LOCALHOST, as the Python package advises")]
pub const LOCAL_HOST: &str = DEFAULT_LOCALHOST;
/// The Python package's deprecated name of [`DEFAULT_TERMINATOR`], kept so
/// that a port's old name points to the new one.
#[deprecated(note = "use DEFAULT_TERMINATOR, as the Python package advises")]
pub const TERMINATOR: &[u8] = DEFAULT_TERMINATOR;
/// Idle time before TCP keepalive probes start with a dead-peer bound of
/// zero (the Python package's setting): 60 s.
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// Unanswered keepalive probes before the connection is dropped: 4.
pub const KEEPALIVE_PROBES: u32 = 4;
/// Time between keepalive probes with a dead-peer bound of zero (the
/// Python package's setting): 15 s.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How long a peer that stopped answering (powered off, cable pulled) can
/// hold a link, unless set: 10 s. A control loop notices within a few of
/// its own timeouts, not the two minutes (idle) to fifteen (data in
/// flight) that the system's TCP defaults and the Python package take.
/// See [`Builder::dead_peer_timeout`](crate::builder::Builder::dead_peer_timeout).
pub const DEFAULT_DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take before the connection is dropped,
/// unless set: 10 s. The server runs each handshake on a thread of its
/// own, so a silent client never holds up the next one.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes a server runs at once (each on its own thread): a
/// client that arrives while this many are under way is turned away at
/// once, counted in `connections_rejected`, so that silent connections
/// cannot pile up threads. A server serves one client; 16 leaves room for
/// it among a few stragglers.
pub const MAX_TLS_HANDSHAKES: usize = 16;
/// The Python package's longest wait for a client's heartbeat, 10 s: a
/// value to give `heartbeat_monitor(Some(..))` (the monitoring is off
/// unless asked for).
pub const DEFAULT_MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// A reconnecting client's first wait after a failed attempt, unless set
/// in its [`Backoff`](crate::Backoff): 100 ms.
pub const DEFAULT_RECONNECT_INITIAL: Duration = Duration::from_millis(100);
/// A reconnecting client's longest wait between attempts, unless set in
/// its [`Backoff`](crate::Backoff): 5 s.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(5);
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
    pub(crate) json_style: JsonStyle,
    pub(crate) json_non_finite: bool,
    pub(crate) read_limit: usize,
    pub(crate) monitor_interval: Duration,
    pub(crate) spin: Duration,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: bool,
    pub(crate) dead_peer_timeout: Duration,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            name: String::new(),
            encoding: DEFAULT_ENCODING,
            terminator: DEFAULT_TERMINATOR.to_vec(),
            json_style: DEFAULT_JSON_STYLE,
            json_non_finite: DEFAULT_JSON_NON_FINITE,
            read_limit: DEFAULT_READ_LIMIT,
            monitor_interval: DEFAULT_MONITOR_CONNECTION_INTERVAL,
            spin: DEFAULT_SPIN,
            nodelay: true,
            keepalive: true,
            dead_peer_timeout: DEFAULT_DEAD_PEER_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

impl LinkConfig {
    /// Refuses what cannot work, before any socket exists.
    pub(crate) fn validate(&self) -> Result<()> {
        check_separator("terminator", &self.terminator)?;
        if self.tls_handshake_timeout.is_zero() {
            return Err(Error::invalid_argument(
                "the TLS handshake timeout must be above zero",
            ));
        }
        if self.read_limit == 0 {
            return Err(Error::invalid_argument("read_limit must be at least 1"));
        }
        Ok(())
    }
}

/// A terminator or separator (`what`) must not be empty: a frame would
/// end before its first byte.
pub(crate) fn check_separator(what: &str, separator: &[u8]) -> Result<()> {
    if separator.is_empty() {
        return Err(Error::invalid_argument(format!(
            "the {what} must not be empty"
        )));
    }
    Ok(())
}
