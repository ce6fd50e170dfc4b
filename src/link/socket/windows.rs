//! The socket layer on Windows: a non-blocking socket whose waits are
//! `WSAPoll`s that a local shutdown ends (`shutdown` alone wakes no
//! blocked call there), and listeners that keep their port to themselves
//! (SO_EXCLUSIVEADDRUSE, set by the crate's one function with `unsafe`
//! code).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use socket2::Socket;

use super::wait::{spin_then, timespec, Peek, Waker};
use crate::deadline::Deadline;

/// Windows: SO_EXCLUSIVEADDRUSE, and no SO_REUSEADDR. Windows's
/// SO_REUSEADDR is not Unix's: a socket that sets it
/// may bind a port another socket listens on and take its connections.
/// With SO_EXCLUSIVEADDRUSE set on the listener, no other socket may bind
/// its address while it is open, not even one of the same user that sets
/// SO_REUSEADDR itself (`PermissionDenied`, WSAEACCES, or `AddrInUse`), as
/// Microsoft advises for every server ("Using SO_REUSEADDR and
/// SO_EXCLUSIVEADDRUSE"). A port in use is refused as on Unix
/// (`AddrInUse`). The price, documented: the port cannot be bound again
/// while a connection accepted on it is still active. A server restarted
/// on its port right after `close()`, its old connection then closing or
/// in TIME_WAIT, binds it under Wine (tests/server_close.rs; not checked
/// on Windows itself).
pub(super) fn address_use(socket: &Socket) -> io::Result<()> {
    exclusive_address_use(socket)
}

/// Sets SO_EXCLUSIVEADDRUSE (before `bind`, where it takes effect). The
/// crate's one function with `unsafe` code, two calls into WinSock:
/// neither std, socket2 nor rustix has a setter for this option, so it is
/// a raw `setsockopt` from `windows-sys`, and its error is read with
/// `WSAGetLastError`.
#[allow(unsafe_code)]
fn exclusive_address_use(socket: &Socket) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{
        setsockopt, WSAGetLastError, SOCKET, SOCKET_ERROR, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
    };
    let enable: i32 = 1;
    // SAFETY: `setsockopt` reads `optlen` bytes at `optval` and touches
    // nothing else. The handle is `socket`'s own, borrowed through
    // `AsRawSocket` from a live `socket2::Socket` that the `&Socket`
    // keeps open for the whole call (a RawSocket is the SOCKET value,
    // widened to u64; the cast back loses nothing). `optval` points to
    // `enable`, a live, aligned i32 on this stack frame, and `optlen` is
    // its size, 4 bytes, the BOOL-sized value the option takes; the call
    // does not keep the pointer. The level and option are windows-sys's
    // constants.
    let rc = unsafe {
        setsockopt(
            socket.as_raw_socket() as SOCKET,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            std::ptr::from_ref(&enable).cast(),
            std::mem::size_of_val(&enable) as i32,
        )
    };
    if rc == SOCKET_ERROR {
        // SAFETY: `WSAGetLastError` takes no argument and only reads this
        // thread's last Winsock error, which the failed call just set.
        return Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }));
    }
    Ok(())
}

pub(super) const READABLE: PollFlags = PollFlags::RDNORM;
pub(super) const WRITABLE: PollFlags = PollFlags::WRNORM;

/// True for the error of a non-blocking connect still under way
/// (`WSAEWOULDBLOCK`).
pub(super) fn connect_in_progress(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
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
    wake: Wake,
}

/// Windows: the socket never blocks; a thread that must wait polls it
/// together with the wake socket, for the time its call's deadline
/// leaves, so a wait that runs out is `WouldBlock`, as on Unix.
/// `WSAETIMEDOUT` then means what `ETIMEDOUT` means on Unix: the system
/// gave up on the peer.
impl Stream {
    /// The stream over a connected socket, made non-blocking; on failure
    /// the socket comes back with the error.
    pub(crate) fn new(socket: TcpStream) -> std::result::Result<Stream, (io::Error, TcpStream)> {
        let wake = match socket.set_nonblocking(true).and_then(|()| Wake::new()) {
            Ok(wake) => wake,
            Err(e) => return Err((e, socket)),
        };
        Ok(Stream { socket, wake })
    }

    /// Reads what is there, waiting for something until `deadline`
    /// (`WouldBlock` once it has passed), after spinning for up to `spin`
    /// (see `spin_then`); 0 at end of file and after a local shutdown (std
    /// reads `WSAESHUTDOWN` as 0 too).
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        deadline: Deadline,
        spin: Duration,
    ) -> io::Result<usize> {
        if !spin.is_zero() && deadline != Deadline::Now {
            let try_read = || match (&self.socket).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                done => done.map(Some),
            };
            if let Some(read) = spin_then(try_read, deadline, spin) {
                return read;
            }
        }
        loop {
            match (&self.socket).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if self.wake.is_set() {
                return Ok(0);
            }
            self.wait(READABLE, deadline)?;
        }
    }

    /// Writes some of `buf`, waiting for room until `deadline`
    /// (`WouldBlock`). After a local shutdown: `BrokenPipe`, as on Unix
    /// (the system says `WSAESHUTDOWN`, which std leaves uncategorised).
    pub(crate) fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize> {
        loop {
            if self.wake.is_set() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            match (&self.socket).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            self.wait(WRITABLE, deadline)?;
        }
    }

    /// Looks without waiting: a peek on the non-blocking socket.
    pub(crate) fn peek_now(&self) -> io::Result<Peek> {
        match self.socket.peek(&mut [0u8; 1]) {
            Ok(0) => Ok(Peek::Eof),
            Ok(_) => Ok(Peek::Data),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Peek::Empty),
            Err(e) => Err(e),
        }
    }

    /// True when this side can no longer send although no error is left
    /// to tell. Winsock tells a broken connection's error to every call,
    /// so a send of nothing either sends nothing (`false`) or comes back
    /// with the error itself, for the caller to keep as the cause.
    pub(crate) fn send_closed(&self) -> io::Result<bool> {
        match (&self.socket).write(&[]) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until the peer closes its side, the connection breaks or this
    /// side shuts it down, then looks (without consuming) at what is left.
    /// `WSAPoll` cannot wait for the hang-up alone (it reports `POLLHUP`
    /// only with `POLLRDNORM` asked for), so bytes arriving wake it too and
    /// the look finds `Data`: the monitor then paces its looks by its
    /// interval (`WAITS_FOR_HANGUP_ONLY` is false).
    pub(crate) fn wait_hangup(&self, _kick: Option<&Wake>) -> io::Result<Peek> {
        if !self.wake.is_set() {
            self.wait(READABLE, Deadline::Forever)?;
        }
        self.peek_now()
    }

    /// The socket, for what the socket layer does to it beside reads and
    /// writes.
    pub(super) fn tcp(&self) -> &TcpStream {
        &self.socket
    }

    /// Ends both directions and wakes every thread waiting on the socket.
    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.wake.set();
    }

    /// Releases every thread waiting on the socket (reads give 0, writes
    /// `BrokenPipe`) without telling the peer anything, so a close with
    /// SO_LINGER 0 that follows is a bare reset: the wake alone.
    pub(crate) fn interrupt(&self) {
        self.wake.set();
    }

    /// Waits until the socket is ready for `events` (or has an error or a
    /// hang-up to tell), the wake socket is set, or `deadline` passes:
    /// then `WouldBlock`. A return without an error only says "try
    /// again".
    fn wait(&self, events: PollFlags, deadline: Deadline) -> io::Result<()> {
        let left = match deadline.left() {
            Some(left) if left.is_zero() => return Err(io::ErrorKind::WouldBlock.into()),
            left => left,
        };
        let limit = left.map(timespec);
        let mut fds = [
            PollFd::new(&self.socket, events),
            PollFd::new(&self.wake.socket, READABLE),
        ];
        poll(&mut fds, limit.as_ref())?;
        let (socket, wake) = (fds[0].revents(), fds[1].revents());
        if !wake.is_empty() && !self.wake.is_set() {
            // Not ours: a connected UDP socket takes datagrams from its
            // own address only, so this cannot happen; drain it anyway so
            // that it cannot turn the wait into a busy loop.
            self.wake.drain();
        }
        if socket.contains(PollFlags::HUP) && !socket.intersects(events | PollFlags::ERR) {
            // The peer hung up and stays hung up, yet the call cannot go
            // on (a write with the send buffer full to a peer that only
            // shut its sending side): pace the retries instead of
            // spinning, still woken by a local close.
            let pause = Duration::from_millis(10);
            let pause = timespec(left.map_or(pause, |left| left.min(pause)));
            let mut wake_only = [PollFd::new(&self.wake.socket, READABLE)];
            poll(&mut wake_only, Some(&pause))?;
        }
        Ok(())
    }
}

/// Windows: what [`Stream::shutdown`] sets to release the threads waiting
/// on a socket, and what ends a connect or a TLS handshake under way. A
/// UDP socket on the loopback interface, connected to itself: setting it
/// sends it one datagram, which it never reads, so it stays readable and
/// wakes every `WSAPoll` that includes it, now and later. One socket per
/// connection, no listener, no thread.
#[derive(Debug)]
pub(crate) struct Wake {
    socket: std::net::UdpSocket,
    set: std::sync::atomic::AtomicBool,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Wake> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(socket.local_addr()?)?;
        socket.set_nonblocking(true)?;
        Ok(Wake {
            socket,
            set: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Idempotent: the datagram goes once.
    pub(crate) fn set(&self) {
        if !self.set.swap(true, std::sync::atomic::Ordering::AcqRel) {
            // Loopback does not drop a datagram to an empty queue.
            let _ = self.socket.send(&[1]);
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 16];
        while self.socket.recv(&mut buf).is_ok() {}
    }

    /// Takes the datagram back, so that the wake can be set again.
    pub(crate) fn clear(&self) {
        self.drain();
        self.set.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Waker for Wake {
    fn is_set(&self) -> bool {
        Wake::is_set(self)
    }

    fn poll_fd(&self) -> PollFd<'_> {
        PollFd::new(&self.socket, READABLE)
    }
}
