//! The read and write API both sides share (Python's `BaseClientOrServer`):
//! the [`Link`] trait, a per-call deadline ([`Within`]), and the macro
//! that implements the trait for each end by calling its endpoint.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::endpoint::Endpoint;
use super::events::ConnectionEvent;
use super::stats::Stats;
use crate::encoding::Encoding;
use crate::error::Result;
use crate::wire::BinaryStruct;

pub(crate) mod sealed {
    /// Keeps [`Link`](super::Link) implemented by this crate's types only,
    /// so that methods can be added to it.
    pub trait Sealed {}
}

/// Reads, writes and connection state of one side of a link: implemented
/// by [`OneClientServer`](crate::OneClientServer),
/// [`Client`](crate::Client) and [`Within`], so code written against
/// `&impl Link` works on either end. The [prelude](crate::prelude) brings
/// it into scope.
///
/// Every method takes `&self`: one thread may read while others write
/// (each write call reaches the wire whole, never interleaved with
/// another). Reads and writes on a side with no peer fail at once with
/// [`Error::NotConnected`](crate::Error::NotConnected). A connection error
/// (see [`Error::is_connection_error`](crate::Error::is_connection_error))
/// ends the connection: the connect callback and [`events`](Link::events)
/// hear of it.
///
/// ```
/// use ts_tcpip::prelude::*;
/// let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
/// let client = Client::builder().host(LOCALHOST_IPV4).port(server.port()).connect()?;
/// server.wait_connected(std::time::Duration::from_secs(5))?;
/// client.write_str("ping")?;
/// assert_eq!(server.read_str()?, "ping");
/// server.write_json(&serde_json::json!({"pong": 1}))?;
/// let reply: serde_json::Value = client.read_json()?;
/// assert_eq!(reply["pong"], 1);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
pub trait Link: sealed::Sealed {
    /// The name given to the builder, used in log messages.
    fn name(&self) -> &str;

    /// True while a peer is connected. Bytes received and not yet read
    /// keep the link connected even after the peer closed; the disconnect
    /// is reported once they are read.
    fn connected(&self) -> bool;

    /// True from connecting until this side closes on purpose
    /// (`close`, `close_client`); a peer that went away leaves it true,
    /// which is how "unexpectedly lost" is told apart (Python's
    /// `should_be_connected`).
    fn should_be_connected(&self) -> bool;

    /// The connected peer's address.
    fn peer_addr(&self) -> Option<SocketAddr>;

    /// A receiver of every later change of connection state, in order,
    /// beside the connect callback; each call makes a new receiver. A
    /// control loop can `select!` on it with its own channels (the crate
    /// re-exports [`crossbeam_channel`](crate::crossbeam_channel)).
    fn events(&self) -> Receiver<ConnectionEvent>;

    /// Traffic counters since start (relaxed atomics: no lock, no cost).
    fn stats(&self) -> Stats;

    /// The encoding of `read_str`, `write_str` and JSON.
    fn encoding(&self) -> Encoding;

    /// Changes the encoding; reads and writes already running keep the old.
    fn set_encoding(&self, encoding: Encoding);

    /// The terminator of `read_str`, `write_str` and JSON.
    fn terminator(&self) -> Vec<u8>;

    /// Changes the terminator; an empty one is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    fn set_terminator(&self, terminator: impl Into<Vec<u8>>) -> Result<()>;

    /// Bounds how long a read waits; `None` waits for ever. A read that
    /// times out fails with [`Error::Timeout`](crate::Error::Timeout),
    /// consumes nothing and leaves the connection open. Applies to later
    /// connections too, until changed; zero means the shortest wait the
    /// socket allows. For one call only, see [`within`](Link::within).
    fn set_read_timeout(&self, timeout: Option<Duration>);

    /// Bounds how long a write waits for the peer to take the data. With
    /// nothing sent it fails with [`Error::Timeout`](crate::Error::Timeout);
    /// if part of the frame went out the stream can no longer be trusted,
    /// so the connection is closed and the error is
    /// [`Error::ConnectionLost`](crate::Error::ConnectionLost).
    fn set_write_timeout(&self, timeout: Option<Duration>);

    /// The same link with a deadline `timeout` from now for the calls made
    /// through it (Python's `asyncio.wait_for` around one call). A read or
    /// write that runs out of time fails as it would on the link's own
    /// timeout, which stays as it is (and still applies if shorter).
    ///
    /// ```
    /// # use ts_tcpip::prelude::*;
    /// # use std::time::Duration;
    /// # let server = OneClientServer::builder().start()?;
    /// # let client = Client::builder().port(server.port()).connect()?;
    /// let nothing = client.within(Duration::from_millis(20)).read_str();
    /// assert!(matches!(nothing, Err(ts_tcpip::Error::Timeout)));
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    fn within(&self, timeout: Duration) -> Within<'_>;

    /// Reads up to `n` bytes: what is buffered, else what one socket read
    /// brings. Empty at end of file, which also ends the connection.
    fn read(&self, n: usize) -> Result<Vec<u8>>;

    /// Reads until the peer closes and returns all of it (Python's
    /// `read(-1)`); the connection then ends.
    fn read_to_end(&self) -> Result<Vec<u8>>;

    /// Reads exactly `n` bytes (Python's `readexactly`). End of file first
    /// is [`Error::IncompleteRead`](crate::Error::IncompleteRead) with the
    /// bytes that came.
    fn read_exact(&self, n: usize) -> Result<Vec<u8>>;

    /// Reads through the next `b"\n"` (Python's `readline`). At end of file
    /// returns the partial line (empty if nothing was left).
    fn read_line(&self) -> Result<Vec<u8>>;

    /// Reads through the next `sep`, which is included (Python's
    /// `readuntil`). [`Error::LimitOverrun`](crate::Error::LimitOverrun) if
    /// more than the read limit's worth of bytes come before `sep` (nothing
    /// consumed); [`Error::IncompleteRead`](crate::Error::IncompleteRead)
    /// at end of file.
    fn read_until(&self, sep: &[u8]) -> Result<Vec<u8>>;

    /// Reads through the terminator, strips it and decodes the rest
    /// strictly. Undecodable bytes are
    /// [`Error::Decode`](crate::Error::Decode) with the bytes.
    fn read_str(&self) -> Result<String>;

    /// Reads a line as `read_str` does and parses it as JSON. A line that
    /// is not the JSON asked for is [`Error::Json`](crate::Error::Json),
    /// which holds the line. Numbers decode as written (floats correctly
    /// rounded). `NaN`, `Infinity` and `-Infinity`, which Python's
    /// `json.dumps` writes for non-finite floats, are read as Python reads
    /// them: exactly into an `f64` or `f32`, as `null` into a
    /// `serde_json::Value` (which has no NaN); `json_non_finite(false)` on
    /// the builder refuses them. Integers beyond 64 bits become the
    /// nearest `f64` in a `serde_json::Value` (Python keeps them exact).
    /// `T`'s `Deserialize` runs on the line in the receive buffer, with its
    /// lock held: it must not read from the same link.
    fn read_json<T: DeserializeOwned>(&self) -> Result<T>;

    /// Reads exactly `value.size()` bytes into `value` (Python's
    /// `read_into`); `decode` runs with no lock held.
    fn read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<()>;

    /// `read_str` without waiting: a line if one has arrived whole, else
    /// `None` at once, keeping any partial line for later.
    fn try_read_str(&self) -> Result<Option<String>>;

    /// `read_json` without waiting: a value if its line has arrived whole,
    /// else `None` at once, keeping any partial line for later.
    fn try_read_json<T: DeserializeOwned>(&self) -> Result<Option<T>>;

    /// `read_into` without waiting: true if the whole struct had arrived,
    /// else false at once, keeping the partial bytes for later.
    fn try_read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<bool>;

    /// Writes `data` as it is.
    fn write(&self, data: &[u8]) -> Result<()>;

    /// Writes every item, back to back, in one write (Python's
    /// `writelines`). The iterator runs with the write lock held, straight
    /// into the frame buffer: it must not write to the same link.
    fn write_lines<I>(&self, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>;

    /// Writes each struct's bytes, back to back, in one write (Python's
    /// `write_from`). A hand-written [`BinaryStruct::encode`] runs with
    /// the write lock held: it must not write to the same link.
    fn write_from(&self, structs: &[&dyn BinaryStruct]) -> Result<()>;

    /// Encodes `line` strictly, appends the terminator and writes both in
    /// one write. Text the encoding cannot hold is
    /// [`Error::Encode`](crate::Error::Encode), and nothing is sent.
    fn write_str(&self, line: &str) -> Result<()>;

    /// Writes `value` as JSON text in the link's
    /// [`JsonStyle`](crate::JsonStyle) plus the terminator. `Compact` (the
    /// default) is serde_json's compact text, with non-ASCII characters
    /// escaped (`\u00e9`) in the ascii and latin-1 encodings so that any
    /// value can be sent, and a non-finite float as `null`; `Python` is
    /// exactly what Python's `json.dumps` writes, `NaN` and `Infinity`
    /// included. `value`'s `Serialize` runs with the write lock held,
    /// straight into the frame buffer: it must not write to the same link.
    fn write_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()>;
}

/// A link with a deadline for each call made through it: see
/// [`Link::within`]. Every other method is the link's own.
#[derive(Clone, Copy)]
pub struct Within<'a> {
    pub(crate) ep: &'a Endpoint,
    pub(crate) deadline: Option<Instant>,
}

impl<'a> Within<'a> {
    pub(crate) fn new(ep: &'a Endpoint, timeout: Duration) -> Within<'a> {
        Within {
            ep,
            deadline: super::slot::deadline_after(timeout),
        }
    }

    /// The wait of a call made through it: no deadline past an `Instant`'s
    /// range means none at all.
    pub(crate) fn wait(&self) -> super::half::Wait {
        match self.deadline {
            Some(deadline) => super::half::Wait::Until(deadline),
            None => super::half::Wait::Block,
        }
    }
}

impl std::fmt::Debug for Within<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Within")
            .field("link", &self.ep.log_name)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Implements [`Link`] for `$ty` by calling the endpoint `$ep` (an
/// expression of `$me`, the receiver) with the wait `$wait`.
macro_rules! impl_link {
    ($ty:ty, |$me:ident| $ep:expr, $wait:expr) => {
        impl $crate::link::api::sealed::Sealed for $ty {}

        impl $crate::link::Link for $ty {
            fn name(&self) -> &str {
                let $me = self;
                $ep.name()
            }
            fn connected(&self) -> bool {
                let $me = self;
                $ep.connected()
            }
            fn should_be_connected(&self) -> bool {
                let $me = self;
                $ep.should_be_connected()
            }
            fn peer_addr(&self) -> Option<std::net::SocketAddr> {
                let $me = self;
                $ep.peer_addr()
            }
            fn events(&self) -> crossbeam_channel::Receiver<$crate::link::ConnectionEvent> {
                let $me = self;
                $ep.events.subscribe()
            }
            fn stats(&self) -> $crate::link::Stats {
                let $me = self;
                $ep.counters.snapshot()
            }
            fn encoding(&self) -> $crate::encoding::Encoding {
                let $me = self;
                $ep.encoding()
            }
            fn set_encoding(&self, encoding: $crate::encoding::Encoding) {
                let $me = self;
                $ep.set_encoding(encoding)
            }
            fn terminator(&self) -> Vec<u8> {
                let $me = self;
                $ep.terminator()
            }
            fn set_terminator(&self, terminator: impl Into<Vec<u8>>) -> $crate::error::Result<()> {
                let $me = self;
                $ep.set_terminator(terminator.into())
            }
            fn set_read_timeout(&self, timeout: Option<std::time::Duration>) {
                let $me = self;
                $ep.set_read_timeout(timeout)
            }
            fn set_write_timeout(&self, timeout: Option<std::time::Duration>) {
                let $me = self;
                $ep.set_write_timeout(timeout)
            }
            fn within(&self, timeout: std::time::Duration) -> $crate::link::Within<'_> {
                let $me = self;
                $crate::link::Within::new(&$ep, timeout)
            }
            fn read(&self, n: usize) -> $crate::error::Result<Vec<u8>> {
                let $me = self;
                $ep.read_some($wait, n)
            }
            fn read_to_end(&self) -> $crate::error::Result<Vec<u8>> {
                let $me = self;
                $ep.read_to_end($wait)
            }
            fn read_exact(&self, n: usize) -> $crate::error::Result<Vec<u8>> {
                let $me = self;
                $ep.read_exact($wait, n)
            }
            fn read_line(&self) -> $crate::error::Result<Vec<u8>> {
                let $me = self;
                $ep.read_line($wait)
            }
            fn read_until(&self, sep: &[u8]) -> $crate::error::Result<Vec<u8>> {
                let $me = self;
                $ep.read_until($wait, sep)
            }
            #[inline]
            fn read_str(&self) -> $crate::error::Result<String> {
                let $me = self;
                $ep.read_str($wait)
            }
            #[inline]
            fn read_json<T: serde::de::DeserializeOwned>(&self) -> $crate::error::Result<T> {
                let $me = self;
                $ep.read_json($wait)
            }
            fn read_into<S: $crate::wire::BinaryStruct + ?Sized>(
                &self,
                value: &mut S,
            ) -> $crate::error::Result<()> {
                let $me = self;
                $ep.read_into($wait, value)
            }
            fn try_read_str(&self) -> $crate::error::Result<Option<String>> {
                let $me = self;
                $crate::link::api::optional($ep.read_str($crate::link::Wait::Never))
            }
            fn try_read_json<T: serde::de::DeserializeOwned>(
                &self,
            ) -> $crate::error::Result<Option<T>> {
                let $me = self;
                $crate::link::api::optional($ep.read_json($crate::link::Wait::Never))
            }
            fn try_read_into<S: $crate::wire::BinaryStruct + ?Sized>(
                &self,
                value: &mut S,
            ) -> $crate::error::Result<bool> {
                let $me = self;
                let read = $ep.read_into($crate::link::Wait::Never, value);
                Ok($crate::link::api::optional(read)?.is_some())
            }
            fn write(&self, data: &[u8]) -> $crate::error::Result<()> {
                let $me = self;
                $ep.write_bytes($wait, data)
            }
            fn write_lines<I>(&self, lines: I) -> $crate::error::Result<()>
            where
                I: IntoIterator,
                I::Item: AsRef<[u8]>,
            {
                let $me = self;
                $ep.write_lines($wait, lines)
            }
            fn write_from(
                &self,
                structs: &[&dyn $crate::wire::BinaryStruct],
            ) -> $crate::error::Result<()> {
                let $me = self;
                $ep.write_from($wait, structs)
            }
            #[inline]
            fn write_str(&self, line: &str) -> $crate::error::Result<()> {
                let $me = self;
                $ep.write_str($wait, line)
            }
            fn write_json<T: serde::Serialize + ?Sized>(
                &self,
                value: &T,
            ) -> $crate::error::Result<()> {
                let $me = self;
                $ep.write_json($wait, value)
            }
        }
    };
}
pub(crate) use impl_link;

impl_link!(Within<'_>, |me| me.ep, me.wait());

/// A `try_` read: "nothing complete yet" is `None`, not an error.
pub(crate) fn optional<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(crate::error::Error::Timeout) => Ok(None),
        Err(e) => Err(e),
    }
}
