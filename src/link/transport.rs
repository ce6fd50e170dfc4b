//! The transport seam: the byte stream under a connection. Plain TCP is
//! here; TLS (`tls.rs`, feature `tls`) fills the same trait, and
//! everything above (halves, frames, codec) works unchanged on it.

use std::fmt;
use std::io;
use std::net::TcpStream;

use super::socket::{self, Peek};

/// A connected byte stream. Every method takes `&self`: one thread reads
/// while another writes and a third shuts the stream down.
pub(crate) trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Reads what is there, waiting for something (or the socket's read
    /// timeout, reported as `WouldBlock`); 0 at end of file. `Interrupted`
    /// when bytes came but nothing to hand over yet (part of a TLS
    /// record): the caller reads again, its deadline looked at first.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes some of `buf`, waiting for room (or the socket's write
    /// timeout, reported as `WouldBlock`).
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Looks, without waiting and without disturbing a blocked reader,
    /// whether a read would return at once.
    fn peek_now(&self) -> io::Result<Peek>;

    /// Waits for the peer's hang-up (or a local shutdown), then looks
    /// without consuming: see [`socket::Stream::wait_hangup`]. Bytes arriving do
    /// not wake it where the platform allows (`WAITS_FOR_HANGUP_ONLY`).
    fn wait_hangup(&self) -> io::Result<Peek>;

    /// Ends both directions, releasing every thread blocked on the stream.
    fn shutdown(&self);

    /// The socket underneath, for its options and timeouts.
    fn socket(&self) -> &TcpStream;
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
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    #[inline]
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn peek_now(&self) -> io::Result<Peek> {
        self.0.peek_now()
    }

    fn wait_hangup(&self) -> io::Result<Peek> {
        self.0.wait_hangup()
    }

    fn shutdown(&self) {
        self.0.shutdown();
    }

    #[inline]
    fn socket(&self) -> &TcpStream {
        self.0.socket()
    }
}
