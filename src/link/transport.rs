//! The transport seam: the byte stream under a connection. Plain TCP is
//! the one transport today; an encrypted stream fills the same trait, and
//! everything above (halves, frames, codec) works unchanged on it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::socket::{self, Peek};

/// A connected byte stream. Every method takes `&self`: one thread reads
/// while another writes and a third shuts the stream down.
pub(crate) trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Reads what is there, waiting for something (or the socket's read
    /// timeout, reported as `WouldBlock`); 0 at end of file.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes some of `buf`, waiting for room (or the socket's write
    /// timeout, reported as `WouldBlock`).
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Looks, without waiting and without disturbing a blocked reader,
    /// whether a read would return at once.
    fn peek_now(&self) -> io::Result<Peek>;

    /// Waits for the peer's hang-up (or a local shutdown), then looks
    /// without consuming: see [`socket::wait_hangup`]. Bytes arriving do
    /// not wake it where the platform allows (`WAITS_FOR_HANGUP_ONLY`).
    fn wait_hangup(&self) -> io::Result<Peek>;

    /// Ends both directions, releasing every thread blocked on the stream.
    fn shutdown(&self);

    /// The socket underneath, for its options and timeouts.
    fn socket(&self) -> &TcpStream;
}

/// Plain TCP.
#[derive(Debug)]
pub(crate) struct Tcp(pub(crate) TcpStream);

impl Transport for Tcp {
    #[inline]
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf).map_err(socket::sort_timeout)
    }

    #[inline]
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf).map_err(socket::sort_timeout)
    }

    fn peek_now(&self) -> io::Result<Peek> {
        socket::peek_now(&self.0)
    }

    fn wait_hangup(&self) -> io::Result<Peek> {
        socket::wait_hangup(&self.0).map_err(socket::sort_timeout)
    }

    fn shutdown(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }

    fn socket(&self) -> &TcpStream {
        &self.0
    }
}
