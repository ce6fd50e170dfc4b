//! The socket layer on Unix: a connection's socket as it is; `shutdown`
//! wakes every thread blocked on it. Listeners set SO_REUSEADDR.

use super::*;

/// Unix: SO_REUSEADDR, so that a closed server's port can be bound again
/// at once while its old connections wait out TIME_WAIT (as asyncio does
/// on Unix). A port that another socket listens on stays refused
/// (`AddrInUse`).
pub(super) fn address_use(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)
}

impl Stream {
    /// The stream over a connected socket; on failure the socket comes
    /// back with the error.
    pub(crate) fn new(socket: TcpStream) -> std::result::Result<Stream, (io::Error, TcpStream)> {
        Ok(Stream { socket })
    }

    /// Receives what has arrived, without waiting (`WouldBlock` when
    /// nothing has) and without disturbing a blocking read on another
    /// thread.
    #[cfg(feature = "tls")]
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.peek_now()? {
            Peek::Empty => Err(io::ErrorKind::WouldBlock.into()),
            // Bytes or the end of file wait: a read returns at once.
            Peek::Data | Peek::Eof => (&self.socket).read(buf),
        }
    }

    /// Sends what the socket takes at once (`WouldBlock` when it takes
    /// nothing), without waiting for room.
    #[cfg(feature = "tls")]
    pub(crate) fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(&self.socket).send_with_flags(buf, libc::MSG_DONTWAIT)
    }

    /// Reads what is there, waiting for something or the socket's read
    /// timeout (`WouldBlock`, as `EAGAIN` is); 0 at end of file.
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.socket).read(buf)
    }

    /// Writes some of `buf`, waiting for room or the socket's write
    /// timeout (`WouldBlock`).
    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.socket).write(buf)
    }

    /// Looks without waiting. Unlike switching the socket to non-blocking
    /// mode this does not disturb a blocking read on another thread.
    pub(crate) fn peek_now(&self) -> io::Result<Peek> {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        match SockRef::from(&self.socket).recv_with_flags(&mut byte, flags) {
            Ok(0) => Ok(Peek::Eof),
            Ok(_) => Ok(Peek::Data),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Peek::Empty),
            Err(e) => Err(e),
        }
    }

    /// Waits until the peer closes its side, the connection breaks or
    /// this side shuts it down, then looks (without consuming) at what is
    /// left: `Eof` (closed, nothing unread), `Data` (closed with bytes
    /// unread) or an error. Bytes arriving do not wake it.
    ///
    /// `poll()` for `POLLRDHUP` alone: the wake-up a socket sends for data
    /// carries `POLLIN`, which this wait did not ask for, so the kernel
    /// leaves the thread asleep; a FIN sets `POLLRDHUP`, an RST or a
    /// keepalive failure `POLLERR`, and a local `shutdown` both (`POLLHUP`
    /// too), and those are reported whether asked for or not. `poll`
    /// ignores the socket's read timeout, so a short one does not wake it
    /// either. Once the peer has closed the call returns at once, every
    /// time: the caller paces its looks while bytes wait unread.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn wait_hangup(&self) -> io::Result<Peek> {
        use rustix::event::{poll, PollFd, PollFlags};
        let mut fds = [PollFd::new(&self.socket, PollFlags::RDHUP)];
        loop {
            match poll(&mut fds, None) {
                Ok(_) => return self.peek_now(),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Elsewhere on Unix (no `POLLRDHUP`): a blocking peek, which data
    /// wakes as well. It obeys the socket's read timeout (`WouldBlock`).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn wait_hangup(&self) -> io::Result<Peek> {
        let mut byte = [0u8; 1];
        Ok(match self.socket.peek(&mut byte)? {
            0 => Peek::Eof,
            _ => Peek::Data,
        })
    }

    /// Ends both directions; every thread blocked on the socket returns.
    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Releases the threads blocked reading the socket (their reads give
    /// 0) without telling the peer anything: shutting the receiving side
    /// sends no FIN, so a close with SO_LINGER 0 that follows is a bare
    /// reset. (A thread blocked writing is not released: it needs a write
    /// timeout.) The test kit's proxy resets connections this way.
    pub(crate) fn interrupt(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Read);
    }

    /// The socket, for its options and timeouts.
    #[inline]
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }
}
