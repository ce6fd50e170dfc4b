//! One builder for every end: [`Builder`] holds the link's settings and
//! has their setters once; the end it builds (its *side*) holds the rest
//! and adds its own setters and its start, in that end's `builder.rs`
//! ([`ServerBuilder`](crate::ServerBuilder),
//! [`ClientBuilder`](crate::ClientBuilder) and
//! [`ReadLoopServerBuilder`](crate::ReadLoopServerBuilder) are its three
//! forms). This file names no side: the sides name it.

use std::time::Duration;

use crate::config::LinkConfig;
use crate::encoding::Encoding;
use crate::json_style::JsonStyle;

/// The settings of a link and of the end `S` that will hold it. Consuming
/// setters; nothing is checked or opened until the end begins (a
/// server's `start()`, a client's `connect()` or
/// `connect_in_background()`), which refuses bad settings before any
/// socket exists.
///
/// ```
/// use ts_tcpip::prelude::*;
/// let server = OneClientServer::builder()
///     .name("Commands")
///     .encoding(Encoding::Latin1)
///     .terminator(b"\n")
///     .start()?;
/// assert_eq!(server.terminator(), b"\n");
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[must_use = "a builder does nothing until it starts or connects"]
pub struct Builder<S> {
    pub(crate) link: LinkConfig,
    pub(crate) side: S,
}

impl<S: Default> Default for Builder<S> {
    fn default() -> Self {
        Builder {
            link: LinkConfig::default(),
            side: S::default(),
        }
    }
}

impl<S> Builder<S> {
    /// Name used in log messages and thread names, e.g. `"Commands"`.
    /// Default: empty (logs then name the end by its address).
    pub fn name(mut self, name: &str) -> Self {
        self.link.name = name.to_owned();
        self
    }

    /// Encoding of `read_str`, `write_str` and JSON. Default:
    /// [`DEFAULT_ENCODING`](crate::DEFAULT_ENCODING) (UTF-8).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.link.encoding = encoding;
        self
    }

    /// Terminator of `read_str`, `write_str` and JSON; must not be empty
    /// (checked when starting). Default:
    /// [`DEFAULT_TERMINATOR`](crate::DEFAULT_TERMINATOR) (`b"\r\n"`).
    pub fn terminator(mut self, terminator: impl Into<Vec<u8>>) -> Self {
        self.link.terminator = terminator.into();
        self
    }

    /// How `write_json` writes a value: [`JsonStyle::Compact`] (serde_json's
    /// compact text; NaN and infinite floats become `null`) or
    /// [`JsonStyle::Python`] (exactly the bytes Python's `json.dumps`
    /// writes, `NaN` and `Infinity` included). A Python peer reads
    /// either. Default: [`DEFAULT_JSON_STYLE`](crate::DEFAULT_JSON_STYLE)
    /// (`Compact`).
    pub fn json_style(mut self, style: JsonStyle) -> Self {
        self.link.json_style = style;
        self
    }

    /// Whether `read_json` takes `NaN`, `Infinity` and `-Infinity` (which
    /// Python's `json.dumps` writes for non-finite floats) as floats, as
    /// Python's `json.loads` does: exactly into an `f64` or `f32`, as
    /// `null` into a `serde_json::Value` (which has no NaN). With `false`
    /// such a line is [`Error::Json`](crate::Error::Json), as for any
    /// text that is not JSON. A line without them is read by serde_json
    /// alone either way, at the same cost. Default:
    /// [`DEFAULT_JSON_NON_FINITE`](crate::DEFAULT_JSON_NON_FINITE) (`true`).
    pub fn json_non_finite(mut self, accept: bool) -> Self {
        self.link.json_non_finite = accept;
        self
    }

    /// Most bytes a separator may be preceded by (`read_str`, `read_json`,
    /// `read_line`, `read_until`) before the read fails with
    /// [`Error::LimitOverrun`](crate::Error::LimitOverrun), nothing
    /// consumed: a peer that sends an endless line grows the receive
    /// buffer to about this much (the limit and the separator, 16 KiB at
    /// least), no further. Reads that ask for a count or for everything
    /// are not bounded by it: `read_exact(n)` takes `n` bytes and
    /// `read_to_end` all the peer sends. At least 1. Default:
    /// [`DEFAULT_READ_LIMIT`](crate::DEFAULT_READ_LIMIT) (64 KiB).
    pub fn read_limit(mut self, bytes: usize) -> Self {
        self.link.read_limit = bytes;
        self
    }

    /// Sets TCP_NODELAY on each connection. Default: true, as the Python
    /// reference's asyncio streams.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.link.nodelay = on;
        self
    }

    /// Sets TCP keepalive on each connection, timed by
    /// [`dead_peer_timeout`](Self::dead_peer_timeout). Default: true.
    pub fn keepalive(mut self, on: bool) -> Self {
        self.link.keepalive = on;
        self
    }

    /// Bounds how long a peer that stopped answering (powered off, cable
    /// pulled, host frozen in its kernel) can hold the link: idle on every
    /// platform, busy too on Linux. Keepalive probes start after half of
    /// it and [`KEEPALIVE_PROBES`](crate::KEEPALIVE_PROBES) of them fit in
    /// the other half; on Linux, TCP_USER_TIMEOUT also drops a connection
    /// whose data (or probes) went unacknowledged for this long (elsewhere
    /// data in flight is left to the system's retransmission limit, and
    /// Windows sets no probe count: its own, 10, stands). When it
    /// fires, blocked reads and writes fail with a connection error and
    /// the link ends with [`DisconnectReason::PeerUnresponsive`](crate::DisconnectReason::PeerUnresponsive).
    ///
    /// On Linux (5.11 and later) the bound also ends a connection whose
    /// peer is alive but has taken no data for this long while this side
    /// has data to send (its window stays shut): a peer that stops reading
    /// is treated as gone. The kernel counts keepalive in whole seconds,
    /// so bounds under 2 s act as about 2 s on an idle link.
    ///
    /// `Duration::ZERO` keeps the system's TCP behaviour with the Python
    /// package's keepalive ([`KEEPALIVE_TIME`](crate::KEEPALIVE_TIME) +
    /// [`KEEPALIVE_PROBES`](crate::KEEPALIVE_PROBES) x
    /// [`KEEPALIVE_INTERVAL`](crate::KEEPALIVE_INTERVAL): about 2 minutes
    /// idle; data in flight is left to the retransmission limit, about 15
    /// minutes on Linux). Default:
    /// [`DEFAULT_DEAD_PEER_TIMEOUT`](crate::DEFAULT_DEAD_PEER_TIMEOUT) (10 s).
    pub fn dead_peer_timeout(mut self, bound: Duration) -> Self {
        self.link.dead_peer_timeout = bound;
        self
    }

    /// How long a TLS handshake may take (feature `tls`; ignored without
    /// TLS); zero is refused. Default:
    /// [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`](crate::DEFAULT_TLS_HANDSHAKE_TIMEOUT) (10 s).
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.link.tls_handshake_timeout = timeout;
        self
    }

    /// How long each read may take, from the start of the call to its end
    /// (see [`Link::set_read_timeout`](crate::Link::set_read_timeout)).
    /// Default: `None`, reads wait for data. On a read-loop server a read
    /// that times out does not close the client: the handler is called
    /// again.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.link.read_timeout = timeout;
        self
    }

    /// How long a read that finds nothing waiting spins, trying the socket
    /// without sleeping (and yielding the CPU between tries, so a thread
    /// woken on the same CPU runs at once), before it sleeps as usual: the
    /// thread then picks up a reply microseconds sooner, without the
    /// system's wake-up, at the price of the CPU it spins. It spins only
    /// while a reply is due: after this side wrote (until a frame is read)
    /// and while the bytes of a frame are arriving; an idle link, or a
    /// link that only receives, never spins, so it stays at 0 % CPU.
    /// Deadlines, `try_` reads (which never wait), `close()`, the monitor
    /// and the dead-peer bound are as without it.
    ///
    /// What it buys depends on who waits. The end that writes a command
    /// and reads its reply gains most: set a spin a little longer than the
    /// peer's reply time (on loopback 20 to 100 µs). An end that answers
    /// spins after each answer too (it wrote), which pays when the next
    /// command comes within the spin (a loop running as fast as it can:
    /// no wake-up on either side) and is CPU spent in vain when commands
    /// come further apart (a 1 kHz loop: the answering end sleeps between
    /// commands whatever it spins, and pays that wake-up). Each spinning
    /// read costs up to the spin in CPU time; it suits a machine with a
    /// core to spare for each spinning thread. The README's Performance
    /// section has the figures. `Duration::ZERO` (the default,
    /// [`DEFAULT_SPIN`](crate::DEFAULT_SPIN)) sleeps at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder().spin(Duration::from_micros(50)).start()?;
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn spin(mut self, spin: Duration) -> Self {
        self.link.spin = spin;
        self
    }

    /// How long each write may take, from the start of the call to its
    /// end (see [`Link::set_write_timeout`](crate::Link::set_write_timeout):
    /// a write cut short keeps the rest of its frame). Default: `None`,
    /// writes wait for the peer to take the data.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.link.write_timeout = timeout;
        self
    }
}

/// The ends that run a connection monitor: servers and clients, not the
/// read-loop server.
pub trait Monitored: sealed::Sealed {}

pub(crate) mod sealed {
    /// Keeps the builder's side traits to this crate's sides.
    pub trait Sealed {}
}

impl<S: Monitored> Builder<S> {
    /// How late, at most, a peer that closed is noticed while bytes it
    /// sent wait unread. The monitor waits on the socket for the peer's
    /// hang-up (no polling: an idle link costs nothing), so a close with
    /// nothing unread is noticed at once. On Linux data does not wake that
    /// wait, so a close on a busy link is noticed at once too; with bytes
    /// still unread the link stays up until they are read, the monitor
    /// looking again after 1 ms, then twice as long each time, up to this
    /// interval. Elsewhere data wakes the wait as well, and while bytes
    /// wait unread the monitor looks once per interval. Timeouts play no
    /// part in it. `Duration::ZERO` starts no monitor: then only reads,
    /// writes and (on a server) the next client's arrival notice. Default:
    /// [`DEFAULT_MONITOR_CONNECTION_INTERVAL`](crate::DEFAULT_MONITOR_CONNECTION_INTERVAL)
    /// (100 ms).
    pub fn monitor_connection_interval(mut self, interval: Duration) -> Self {
        self.link.monitor_interval = interval;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any side will do: the setters are the same for every form.
    #[derive(Default)]
    struct Side;

    #[test]
    fn the_link_setters_set_the_link_settings() {
        let builder = Builder::<Side>::default()
            .name("s")
            .read_limit(7)
            .encoding(Encoding::Ascii)
            .terminator(b"\n")
            .json_style(JsonStyle::Python)
            .json_non_finite(false)
            .spin(Duration::from_micros(50))
            .read_timeout(Some(Duration::from_secs(1)));
        assert_eq!(
            (builder.link.name.as_str(), builder.link.read_limit),
            ("s", 7)
        );
        assert_eq!(builder.link.encoding, Encoding::Ascii);
        assert_eq!(builder.link.terminator, b"\n");
        assert_eq!(builder.link.json_style, JsonStyle::Python);
        assert!(!builder.link.json_non_finite);
        assert_eq!(builder.link.spin, Duration::from_micros(50));
        assert_eq!(builder.link.read_timeout, Some(Duration::from_secs(1)));
        let default = Builder::<Side>::default();
        assert_eq!(default.link.json_style, crate::DEFAULT_JSON_STYLE);
        assert_eq!(default.link.json_non_finite, crate::DEFAULT_JSON_NON_FINITE);
        assert_eq!(default.link.spin, crate::DEFAULT_SPIN);
    }
}
