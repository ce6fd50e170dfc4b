//! The read and write API both sides share (Python's `BaseClientOrServer`):
//! the [`Link`] trait, whose methods all go through one hidden accessor
//! (the endpoint and the deadline of the call), and a per-call deadline
//! ([`Within`]).

use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::endpoint::Endpoint;
use super::events::ConnectionEvent;
use super::stats::Stats;
use crate::deadline::Deadline;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::wire::BinaryStruct;

pub(crate) mod sealed {
    /// Keeps [`Link`](super::Link) implemented by this crate's types only,
    /// so that methods can be added to it.
    pub trait Sealed {}
}

/// Reads, writes and connection state of one side of a link: implemented
/// by [`OneClientServer`](crate::OneClientServer),
/// [`Client`](crate::Client),
/// [`OneClientReadLoopServer`](crate::OneClientReadLoopServer) and
/// [`Within`], so code written against
/// `&impl Link` works on either end. The [prelude](crate::prelude) brings
/// it into scope.
///
/// Every method takes `&self`: one thread may read while others write
/// (each write call reaches the wire whole, never interleaved with
/// another), and a frame goes to exactly one reader. Reads and writes on
/// a side with no peer fail at once with
/// [`Error::NotConnected`](crate::Error::NotConnected). A connection error
/// (see [`Error::is_connection_error`](crate::Error::is_connection_error))
/// ends the connection: the connect callback and [`events`](Link::events)
/// hear of it.
///
/// # Deadlines
///
/// Each read or write has one deadline for the whole call: the one given
/// by [`within`](Link::within), else the link's read or write timeout
/// ([`set_read_timeout`](Link::set_read_timeout),
/// [`set_write_timeout`](Link::set_write_timeout)) counted from the start
/// of the call, else none (it waits as long as it takes). It bounds
/// everything the call waits for, whatever other threads do on the same
/// link: another thread's read or write of the same half, the socket, the
/// rest of a frame. Past it the call fails with
/// [`Error::Timeout`](crate::Error::Timeout) and nothing received is lost.
/// The `try_` reads never wait for anything: while another thread holds
/// the read half (a blocking read in progress) they return `None` (or
/// `false`) at once.
///
/// A write past its deadline sends nothing of its frame
/// ([`Error::Timeout`](crate::Error::Timeout)), or, if part of the frame
/// went out, keeps the rest and sends it first on the next write or
/// [`flush`](Link::flush) ([`Error::WritePending`](crate::Error::WritePending);
/// the frame must not be sent again): the peer never sees half a frame
/// followed by another. `within(Duration::ZERO)` gives a write that never
/// waits, for a control loop whose peer may stop reading:
///
/// ```
/// # use ts_tcpip::prelude::*;
/// # use std::time::Duration;
/// # let server = OneClientServer::builder().start()?;
/// # let client = Client::builder().port(server.port()).connect()?;
/// match client.within(Duration::ZERO).write_str("setpoint 1.5") {
///     Ok(()) | Err(ts_tcpip::Error::WritePending(_)) => { /* on its way */ }
///     Err(ts_tcpip::Error::Timeout) => { /* the peer is not reading: skip this tick */ }
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
///
/// ```
/// use ts_tcpip::prelude::*;
/// let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
/// let client = Client::builder().host(LOCALHOST_IPV4).port(server.port()).connect()?;
/// server.wait_connected(std::time::Duration::from_secs(5))?;
/// client.write_str("ping")?;
/// assert_eq!(server.read_str()?, "ping");
/// server.write_json(&ts_tcpip::serde_json::json!({"pong": 1}))?;
/// let reply: ts_tcpip::serde_json::Value = client.read_json()?;
/// assert_eq!(reply["pong"], 1);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
pub trait Link: sealed::Sealed {
    /// The endpoint and the deadline every method goes through.
    #[doc(hidden)]
    fn link(&self) -> LinkRef<'_>;

    /// The name given to the builder, used in log messages.
    fn name(&self) -> &str {
        self.link().ep.name()
    }

    /// True while a peer is connected. Bytes received and not yet read
    /// keep the link connected even after the peer closed; the disconnect
    /// is reported once they are read.
    fn connected(&self) -> bool {
        self.link().ep.connected()
    }

    /// True from connecting until this side closes on purpose
    /// (`close`, `close_client`); a peer that went away leaves it true,
    /// which is how "unexpectedly lost" is told apart (Python's
    /// `should_be_connected`).
    fn should_be_connected(&self) -> bool {
        self.link().ep.should_be_connected()
    }

    /// The connected peer's address.
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.link().ep.peer_addr()
    }

    /// A receiver of every later change of connection state, in order,
    /// beside the connect callback; each call makes a new receiver. A
    /// control loop can `select!` on it with its own channels (the crate
    /// re-exports [`crossbeam_channel`](crate::crossbeam_channel)).
    fn events(&self) -> Receiver<ConnectionEvent> {
        self.link().ep.subscribe()
    }

    /// Traffic counters since start (relaxed atomics: no lock, no cost).
    fn stats(&self) -> Stats {
        self.link().ep.stats()
    }

    /// The encoding of `read_str`, `write_str` and JSON.
    fn encoding(&self) -> Encoding {
        self.link().ep.encoding()
    }

    /// Changes the encoding; reads and writes already running keep the old.
    fn set_encoding(&self, encoding: Encoding) {
        self.link().ep.set_encoding(encoding)
    }

    /// The terminator of `read_str`, `write_str` and JSON.
    fn terminator(&self) -> Vec<u8> {
        self.link().ep.terminator()
    }

    /// Changes the terminator; an empty one is
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    fn set_terminator(&self, terminator: impl Into<Vec<u8>>) -> Result<()> {
        self.link().ep.set_terminator(terminator.into())
    }

    /// Bounds how long each read waits, from the start of the call to its
    /// end (the half's lock, the socket, the rest of a frame); `None`
    /// waits for ever. A read that times out fails with
    /// [`Error::Timeout`](crate::Error::Timeout), consumes nothing and
    /// leaves the connection open. Applies to every later call, on later
    /// connections too, until changed; zero takes only what is there.
    /// For one call, see [`within`](Link::within).
    fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.link().ep.set_read_timeout(timeout)
    }

    /// Bounds how long each write waits, for the half's lock and for the
    /// peer to take the data; `None` waits for ever. With nothing of the
    /// frame sent it fails with [`Error::Timeout`](crate::Error::Timeout);
    /// with part of it sent, with
    /// [`Error::WritePending`](crate::Error::WritePending), and the rest
    /// goes first on the next write (see the trait's
    /// [deadlines](Link#deadlines)). The connection stays open either way.
    fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.link().ep.set_write_timeout(timeout)
    }

    /// The same link with one deadline, `timeout` from now, for the calls
    /// made through it (Python's `asyncio.wait_for` around one call): it
    /// takes the place of the link's read and write timeouts for those
    /// calls, which stay as they are for every other call. A read or
    /// write that runs out of time fails as it would on the link's own
    /// timeout. `Duration::ZERO` never waits (see the trait's
    /// [deadlines](Link#deadlines)); `Duration::MAX` has no deadline at
    /// all.
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
    fn within(&self, timeout: Duration) -> Within<'_> {
        Within {
            ep: self.link().ep,
            deadline: Deadline::after(Some(timeout)),
        }
    }

    /// Reads up to `n` bytes: what is buffered, else what one socket read
    /// brings. Empty at end of file, which also ends the connection.
    fn read(&self, n: usize) -> Result<Vec<u8>> {
        let link = self.link();
        link.ep.read_some(link.read_deadline(), n)
    }

    /// Reads until the peer closes and returns all of it (Python's
    /// `read(-1)`); the connection then ends.
    fn read_to_end(&self) -> Result<Vec<u8>> {
        let link = self.link();
        link.ep.read_to_end(link.read_deadline())
    }

    /// Reads exactly `n` bytes (Python's `readexactly`). End of file first
    /// is [`Error::IncompleteRead`](crate::Error::IncompleteRead) with the
    /// bytes that came.
    fn read_exact(&self, n: usize) -> Result<Vec<u8>> {
        let link = self.link();
        link.ep.read_exact(link.read_deadline(), n)
    }

    /// Reads through the next `b"\n"` (Python's `readline`). At end of file
    /// returns the partial line (empty if nothing was left).
    fn read_line(&self) -> Result<Vec<u8>> {
        let link = self.link();
        link.ep.read_line(link.read_deadline())
    }

    /// Reads through the next `sep`, which is included (Python's
    /// `readuntil`). [`Error::LimitOverrun`](crate::Error::LimitOverrun) if
    /// more than the read limit's worth of bytes come before `sep` (nothing
    /// consumed); [`Error::IncompleteRead`](crate::Error::IncompleteRead)
    /// at end of file.
    fn read_until(&self, sep: &[u8]) -> Result<Vec<u8>> {
        let link = self.link();
        link.ep.read_until(link.read_deadline(), sep)
    }

    /// Reads through the terminator, strips it and decodes the rest
    /// strictly. Undecodable bytes are
    /// [`Error::Decode`](crate::Error::Decode) with the bytes.
    #[inline]
    fn read_str(&self) -> Result<String> {
        let link = self.link();
        link.ep.read_str(link.read_deadline())
    }

    /// Reads a line as `read_str` does and parses it as JSON. A line that
    /// is not the JSON asked for is [`Error::Json`](crate::Error::Json),
    /// which holds the line. Numbers decode as written (floats correctly
    /// rounded). `NaN`, `Infinity` and `-Infinity`, which Python's
    /// `json.dumps` writes for non-finite floats, are read as Python reads
    /// them: exactly into an `f64` or `f32`, as `null` into a
    /// `serde_json::Value` (which has no NaN); `json_non_finite(false)` on
    /// the builder refuses them. Integers beyond 64 bits become the
    /// nearest `f64` in a `serde_json::Value` (Python keeps them exact).
    /// `T`'s `Deserialize` runs on the line in the receive buffer, with the
    /// read half held: it must not read from the same link.
    #[inline]
    fn read_json<T: DeserializeOwned>(&self) -> Result<T> {
        let link = self.link();
        link.ep.read_json(link.read_deadline())
    }

    /// Reads exactly `value.size()` bytes into `value` (Python's
    /// `read_into`); `decode` runs with no lock held.
    fn read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<()> {
        let link = self.link();
        link.ep.read_into(link.read_deadline(), value)
    }

    /// `read_str` without waiting: a line if one has arrived whole, else
    /// `None` at once, keeping any partial line for later. `None` too while
    /// another thread holds the read half (a read in progress): this never
    /// waits for anything.
    fn try_read_str(&self) -> Result<Option<String>> {
        optional(self.link().ep.read_str(Deadline::Now))
    }

    /// `read_json` without waiting: a value if its line has arrived whole,
    /// else `None` at once (or while another thread holds the read half),
    /// keeping any partial line for later.
    fn try_read_json<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        optional(self.link().ep.read_json(Deadline::Now))
    }

    /// `read_into` without waiting: true if the whole struct had arrived,
    /// else false at once (or while another thread holds the read half),
    /// keeping the partial bytes for later.
    fn try_read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<bool> {
        Ok(optional(self.link().ep.read_into(Deadline::Now, value))?.is_some())
    }

    /// Writes `data` as it is, in one write.
    ///
    /// Past its deadline: [`Error::Timeout`](crate::Error::Timeout) with
    /// nothing of the frame sent, or
    /// [`Error::WritePending`](crate::Error::WritePending) with part sent
    /// and the rest kept for the next write (do not send it again; see
    /// [Deadlines](Link#deadlines)).
    fn write(&self, data: &[u8]) -> Result<()> {
        let link = self.link();
        link.ep.write_bytes(link.write_deadline(), data)
    }

    /// Writes every item, back to back, in one write (Python's
    /// `writelines`). The iterator runs with the write lock held, straight
    /// into the frame buffer: it must not write to the same link.
    ///
    /// Past its deadline: [`Error::Timeout`](crate::Error::Timeout) with
    /// nothing of the frame sent, or
    /// [`Error::WritePending`](crate::Error::WritePending) with part sent
    /// and the rest kept for the next write (do not send it again; see
    /// [Deadlines](Link#deadlines)).
    fn write_lines<I>(&self, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let link = self.link();
        link.ep.write_lines(link.write_deadline(), lines)
    }

    /// Writes each struct's bytes, back to back, in one write (Python's
    /// `write_from`). A hand-written [`BinaryStruct::encode`] runs with
    /// the write lock held: it must not write to the same link.
    ///
    /// Past its deadline: [`Error::Timeout`](crate::Error::Timeout) with
    /// nothing of the frame sent, or
    /// [`Error::WritePending`](crate::Error::WritePending) with part sent
    /// and the rest kept for the next write (do not send it again; see
    /// [Deadlines](Link#deadlines)).
    fn write_from(&self, structs: &[&dyn BinaryStruct]) -> Result<()> {
        let link = self.link();
        link.ep.write_from(link.write_deadline(), structs)
    }

    /// Encodes `line` strictly, appends the terminator and writes both in
    /// one write. Text the encoding cannot hold is
    /// [`Error::Encode`](crate::Error::Encode), and nothing is sent.
    ///
    /// Past its deadline: [`Error::Timeout`](crate::Error::Timeout) with
    /// nothing of the frame sent, or
    /// [`Error::WritePending`](crate::Error::WritePending) with part sent
    /// and the rest kept for the next write (do not send it again; see
    /// [Deadlines](Link#deadlines)).
    #[inline]
    fn write_str(&self, line: &str) -> Result<()> {
        let link = self.link();
        link.ep.write_str(link.write_deadline(), line)
    }

    /// Writes `value` as JSON text in the link's
    /// [`JsonStyle`](crate::JsonStyle) plus the terminator. `Compact` (the
    /// default) is serde_json's compact text, with non-ASCII characters
    /// escaped (`\u00e9`) in the ascii and latin-1 encodings so that any
    /// value can be sent, and a non-finite float as `null`; `Python` is
    /// exactly what Python's `json.dumps` writes, `NaN` and `Infinity`
    /// included. `value`'s `Serialize` runs with the write half held,
    /// straight into the frame buffer: it must not write to the same link.
    ///
    /// Past its deadline: [`Error::Timeout`](crate::Error::Timeout) with
    /// nothing of the frame sent, or
    /// [`Error::WritePending`](crate::Error::WritePending) with part sent
    /// and the rest kept for the next write (do not send it again; see
    /// [Deadlines](Link#deadlines)).
    #[inline]
    fn write_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let link = self.link();
        link.ep.write_json(link.write_deadline(), value)
    }

    /// Sends the rest of a frame that an earlier write left unsent when
    /// its deadline passed ([`Error::WritePending`](crate::Error::WritePending)),
    /// within this call's deadline: [`Error::Timeout`](crate::Error::Timeout)
    /// if some is still unsent then. `Ok` at once when nothing is left.
    /// The next write does this first by itself.
    fn flush(&self) -> Result<()> {
        let link = self.link();
        link.ep.flush(link.write_deadline())
    }
}

/// What every [`Link`] method goes through: the endpoint, and the
/// deadline of the calls made through a [`Within`]. Only this crate's
/// types make one.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct LinkRef<'a> {
    ep: &'a Endpoint,
    deadline: Option<Deadline>,
}

impl<'a> LinkRef<'a> {
    /// The link itself: each call's deadline from the link's timeouts.
    pub(crate) fn new(ep: &'a Endpoint) -> LinkRef<'a> {
        LinkRef { ep, deadline: None }
    }

    #[inline]
    fn read_deadline(&self) -> Deadline {
        self.deadline.unwrap_or_else(|| self.ep.read_deadline())
    }

    #[inline]
    fn write_deadline(&self) -> Deadline {
        self.deadline.unwrap_or_else(|| self.ep.write_deadline())
    }
}

/// A link with one deadline for the calls made through it: see
/// [`Link::within`]. Every other method is the link's own.
#[derive(Clone, Copy)]
pub struct Within<'a> {
    ep: &'a Endpoint,
    deadline: Deadline,
}

impl sealed::Sealed for Within<'_> {}

impl Link for Within<'_> {
    #[inline]
    fn link(&self) -> LinkRef<'_> {
        LinkRef {
            ep: self.ep,
            deadline: Some(self.deadline),
        }
    }
}

impl std::fmt::Debug for Within<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Within")
            .field("link", &self.ep.log_name())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// A `try_` read: "nothing complete yet" (or the read half busy with
/// another call) is `None`, not an error.
fn optional<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::Timeout) => Ok(None),
        Err(e) => Err(e),
    }
}
