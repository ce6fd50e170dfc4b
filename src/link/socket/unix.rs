//! The socket layer on Unix: a connection's socket as it is, in blocking
//! mode. A call with no deadline waits in the system call itself; one with
//! a deadline tries without waiting and then `poll`s for the time left.
//! `shutdown` wakes every thread blocked on the socket, in a call or in
//! `poll`. Listeners set SO_REUSEADDR.

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use socket2::Socket;

use super::wait::{spin_then, wait_ready, Peek, Waker};
use crate::deadline::Deadline;

pub(super) const READABLE: PollFlags = PollFlags::IN;
pub(super) const WRITABLE: PollFlags = PollFlags::OUT;

/// No SIGPIPE from a send to a broken connection: `MSG_NOSIGNAL` where it
/// exists; Apple's systems have none, and `configure` sets SO_NOSIGPIPE on
/// the socket there instead.
#[cfg(not(target_vendor = "apple"))]
const NO_SIGNAL: SendFlags = SendFlags::NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NO_SIGNAL: SendFlags = SendFlags::empty();

/// Unix: SO_REUSEADDR, so that a closed server's port can be bound again
/// at once while its old connections wait out TIME_WAIT (as asyncio does
/// on Unix). A port that another socket listens on stays refused
/// (`AddrInUse`).
pub(super) fn address_use(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)
}

/// True for the error of a non-blocking connect still under way.
pub(super) fn connect_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// A connected socket as the threads of a link share it: one reads while
/// another writes, a third waits for the peer's hang-up, and any of them
/// may shut it down, which releases all the others at once. Each read and
/// write takes its call's [`Deadline`]; the socket's own timeouts are
/// never set, so no call can change another's wait.
///
/// On Unix that is the socket alone: `shutdown` wakes every thread blocked
/// on it. On Windows it does not (rust-lang/rust#121594), so there the
/// socket is non-blocking and every wait is a `WSAPoll` on it and on a
/// [`Wake`] that `Stream::shutdown` sets.
#[derive(Debug)]
pub(crate) struct Stream {
    socket: TcpStream,
}

impl Stream {
    /// The stream over a connected socket, in blocking mode; on failure
    /// the socket comes back with the error.
    pub(crate) fn new(socket: TcpStream) -> std::result::Result<Stream, (io::Error, TcpStream)> {
        match socket.set_nonblocking(false) {
            Ok(()) => Ok(Stream { socket }),
            Err(e) => Err((e, socket)),
        }
    }

    /// Reads what is there, waiting for something until `deadline`
    /// (`WouldBlock` once it has passed with nothing), after spinning for
    /// up to `spin` (see `spin_then`); 0 at end of file.
    #[inline]
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        deadline: Deadline,
        spin: Duration,
    ) -> io::Result<usize> {
        if !spin.is_zero() && deadline != Deadline::Now {
            if let Some(read) = spin_then(|| self.try_read(buf), deadline, spin) {
                return read;
            }
        }
        if deadline == Deadline::Forever {
            return (&self.socket).read(buf);
        }
        loop {
            match self.try_read(buf)? {
                Some(n) => return Ok(n),
                None => wait_ready(&self.socket, READABLE, None::<&Wake>, deadline)?,
            }
        }
    }

    /// A read that never waits: `None` when nothing is there.
    #[inline]
    fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match rustix::net::recv(&self.socket, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => return Ok(Some(n)),
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes some of `buf`, waiting for room until `deadline`
    /// (`WouldBlock` once it has passed with nothing taken).
    #[inline]
    pub(crate) fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize> {
        if deadline == Deadline::Forever {
            return (&self.socket).write(buf);
        }
        loop {
            match rustix::net::send(&self.socket, buf, SendFlags::DONTWAIT | NO_SIGNAL) {
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => wait_ready(&self.socket, WRITABLE, None::<&Wake>, deadline)?,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Looks without waiting, and without disturbing a blocking read on
    /// another thread (the socket's mode is left alone).
    pub(crate) fn peek_now(&self) -> io::Result<Peek> {
        let mut byte = [0u8; 1];
        let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        match rustix::net::recv(&self.socket, &mut byte, flags) {
            Ok((0, _)) => Ok(Peek::Eof),
            Ok(_) => Ok(Peek::Data),
            Err(Errno::AGAIN | Errno::INTR) => Ok(Peek::Empty),
            Err(e) => Err(e.into()),
        }
    }

    /// True when this side can no longer send although no error is left
    /// to tell: the connection broke and the system told why to an
    /// earlier call (on another thread), as opposed to a peer that only
    /// closed its sending side (a FIN), to which this side could still
    /// send. A send of nothing asks, and sends nothing. An error not yet
    /// told comes back as the error: the caller keeps it as the cause.
    pub(crate) fn send_closed(&self) -> io::Result<bool> {
        // A send refuses a broken connection with EPIPE whether or not
        // its error was told: the error pending, if any, is asked for
        // first (which tells it).
        if let Some(e) = self.socket.take_error()? {
            return Err(e);
        }
        match rustix::net::send(&self.socket, &[], SendFlags::DONTWAIT | NO_SIGNAL) {
            Ok(_) | Err(Errno::AGAIN | Errno::INTR) => Ok(false),
            Err(Errno::PIPE) => Ok(true),
            Err(e) => Err(e.into()),
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
    /// too), and those are reported whether asked for or not. Once the
    /// peer has closed the call returns at once, every time: the caller
    /// paces its looks while bytes wait unread. A set `kick` ends the
    /// wait too (then the look is taken all the same).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn wait_hangup(&self, kick: Option<&Wake>) -> io::Result<Peek> {
        loop {
            let polled = match kick {
                Some(kick) if kick.is_set() => return self.peek_now(),
                Some(kick) => poll(
                    &mut [PollFd::new(&self.socket, PollFlags::RDHUP), kick.poll_fd()],
                    None,
                ),
                None => poll(&mut [PollFd::new(&self.socket, PollFlags::RDHUP)], None),
            };
            match polled {
                Ok(_) => return self.peek_now(),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Elsewhere on Unix (no `POLLRDHUP`): a blocking peek, which data
    /// wakes as well (so nobody kicks it).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn wait_hangup(&self, _kick: Option<&Wake>) -> io::Result<Peek> {
        let mut byte = [0u8; 1];
        Ok(match self.socket.peek(&mut byte)? {
            0 => Peek::Eof,
            _ => Peek::Data,
        })
    }

    /// The socket, for what the socket layer does to it beside reads and
    /// writes.
    pub(super) fn tcp(&self) -> &TcpStream {
        &self.socket
    }

    /// Ends both directions; every thread blocked on the socket returns.
    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Releases the threads blocked reading the socket (their reads give
    /// 0) without telling the peer anything: shutting the receiving side
    /// sends no FIN, so a close with SO_LINGER 0 that follows is a bare
    /// reset. (A thread blocked writing is not released: its write needs
    /// a deadline.) The test kit's proxy resets connections this way.
    pub(crate) fn interrupt(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Read);
    }
}

/// What ends a wait that no shutdown reaches (a connect or a TLS
/// handshake under way, before its connection exists; the monitor's wait
/// for a hang-up, which a busy reader kicks): a descriptor that a
/// [`Wake::set`] makes readable until cleared, so every `poll` that
/// includes it returns. On Linux an eventfd (one descriptor), elsewhere a
/// socket pair.
#[derive(Debug)]
pub(crate) struct Wake {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: std::os::fd::OwnedFd,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pair: (UnixStream, UnixStream),
    set: AtomicBool,
}

impl Wake {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Wake> {
        use rustix::event::{eventfd, EventfdFlags};
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Wake {
            fd,
            set: AtomicBool::new(false),
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Wake> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Wake {
            pair: (rx, tx),
            set: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Idempotent: the descriptor stays readable until [`clear`](Self::clear).
    pub(crate) fn set(&self) {
        if !self.set.swap(true, Ordering::AcqRel) {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = (&self.pair.1).write(&[1]);
        }
    }

    /// Makes the descriptor unreadable again, so that the wake can be set
    /// again.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 8];
        #[cfg(any(target_os = "linux", target_os = "android"))]
        while matches!(rustix::io::read(&self.fd, &mut buf), Ok(n) if n > 0) {}
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        while matches!((&self.pair.0).read(&mut buf), Ok(n) if n > 0) {}
        self.set.store(false, Ordering::Release);
    }
}

impl Waker for Wake {
    fn is_set(&self) -> bool {
        Wake::is_set(self)
    }

    fn poll_fd(&self) -> PollFd<'_> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return PollFd::new(&self.fd, READABLE);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return PollFd::new(&self.pair.0, READABLE);
    }
}
