//! The transport seam: the byte stream under a connection. Plain TCP is
//! here; TLS (`tls.rs`, feature `tls`) fills the same trait, and
//! everything above (halves, frames, codec) works unchanged on it.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use super::socket::{self, Peek};
use crate::deadline::Deadline;

/// A connected byte stream. Every method takes `&self`: one thread reads
/// while another writes and a third shuts the stream down. Each read and
/// write is bounded by its caller's deadline, passed down with it.
pub(crate) trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Reads what is there, waiting for something until `deadline`
    /// (`WouldBlock` once it has passed with nothing); 0 at end of file.
    /// With a `spin`, a read that finds nothing first tries again without
    /// sleeping for up to that long.
    fn read(&self, buf: &mut [u8], deadline: Deadline, spin: Duration) -> io::Result<usize>;

    /// Takes some of `buf` to send, waiting for room until `deadline`
    /// (`WouldBlock` when it took nothing). What it took goes out whole
    /// and ahead of anything taken later, even when part of it waits in
    /// the transport (TLS records the socket had no room for): [`flush`]
    /// sends that part, and so does the next `write` before it takes more.
    ///
    /// [`flush`]: Transport::flush
    fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize>;

    /// Sends what earlier writes took and left waiting, by `deadline`
    /// (`WouldBlock` if some still waits then).
    fn flush(&self, deadline: Deadline) -> io::Result<()>;

    /// Looks, without waiting and without disturbing a blocked reader,
    /// whether a read would return at once.
    fn peek_now(&self) -> io::Result<Peek>;

    /// Waits for the peer's hang-up (or a local shutdown), then looks
    /// without consuming: see [`socket::Stream::wait_hangup`]. Bytes
    /// arriving do not wake it where the platform allows
    /// (`WAITS_FOR_HANGUP_ONLY`).
    /// A set `kick` ends the wait too.
    fn wait_hangup(&self, kick: Option<&socket::Wake>) -> io::Result<Peek>;

    /// After an end of file: true when this side cannot send either, the
    /// sign of a connection that broke (its error told to another call)
    /// rather than one the peer closed. See [`socket::Stream::send_closed`].
    fn send_closed(&self) -> io::Result<bool>;

    /// Ends both directions, releasing every thread blocked on the stream.
    fn shutdown(&self);
}

/// Plain TCP.
#[derive(Debug)]
pub(crate) struct Tcp(socket::Stream);

impl Tcp {
    /// The transport over a connected socket (on Windows this makes the
    /// socket non-blocking and adds its wake socket: see [`socket::Stream`]).
    pub(crate) fn new(stream: TcpStream) -> io::Result<Tcp> {
        socket::Stream::new(stream).map(Tcp).map_err(|(e, _)| e)
    }
}

impl Transport for Tcp {
    #[inline]
    fn read(&self, buf: &mut [u8], deadline: Deadline, spin: Duration) -> io::Result<usize> {
        self.0.read(buf, deadline, spin)
    }

    #[inline]
    fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize> {
        self.0.write(buf, deadline)
    }

    #[inline]
    fn flush(&self, _deadline: Deadline) -> io::Result<()> {
        // The socket took what `write` said it took: nothing waits here.
        Ok(())
    }

    fn peek_now(&self) -> io::Result<Peek> {
        self.0.peek_now()
    }

    fn wait_hangup(&self, kick: Option<&socket::Wake>) -> io::Result<Peek> {
        self.0.wait_hangup(kick)
    }

    fn send_closed(&self) -> io::Result<bool> {
        self.0.send_closed()
    }

    fn shutdown(&self) {
        self.0.shutdown();
    }
}
