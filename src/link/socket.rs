//! The socket layer: binding listeners, connecting, socket options, the
//! peeks that tell whether a peer is still there, and how the platform
//! reports a timeout. Every difference between platforms lives here.

use std::io::{self, Read, Write};
#[cfg(not(windows))]
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::config::{LinkConfig, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, KEEPALIVE_TIME};
use crate::error::{Error, Result};

/// Resolves `host` (None: every interface, IPv4 and IPv6) and `port` into
/// the addresses to listen on, without duplicates.
pub(crate) fn listen_addrs(host: Option<&str>, port: u16) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = match host {
        None => vec![
            (Ipv4Addr::UNSPECIFIED, port).into(),
            (Ipv6Addr::UNSPECIFIED, port).into(),
        ],
        Some(host) => resolve(host, port)?,
    };
    // A resolver may list an address twice, not always side by side.
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    Ok(unique)
}

/// Binds and listens on every address. IPv6 sockets are IPv6-only so that
/// an IPv4 socket can share the port; see [`reuse_address`] for the rest.
pub(crate) fn bind_listeners(addrs: &[SocketAddr], backlog: i32) -> Result<Vec<Socket>> {
    let mut listeners: Vec<Socket> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        // With port 0 and several addresses each socket picks its own port.
        let bound = (|| {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            reuse_address(&socket)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            socket.bind(&(*addr).into())?;
            socket.listen(backlog)?;
            Ok(socket)
        })();
        listeners.push(bound.map_err(|e| Error::at_address("listen on", addr, e))?);
    }
    Ok(listeners)
}

/// Unix: SO_REUSEADDR, so that a closed server's port can be bound again
/// at once while its old connections wait out TIME_WAIT (as asyncio does
/// on Unix). A port that another socket listens on stays refused
/// (`AddrInUse`).
///
/// Windows: nothing, as std and asyncio set nothing there. Windows's
/// SO_REUSEADDR means something else: another socket could bind the port
/// while this one listens on it and take its connections. Unset, a second
/// bind is refused (`AddrInUse`, or `PermissionDenied`, WSAEACCES, where
/// the other socket asked for exclusive use), and a server restarted on
/// its port while old connections wait in TIME_WAIT binds it again under
/// Wine (tests/client.rs; not checked on Windows itself).
/// SO_EXCLUSIVEADDRUSE would also refuse a second socket of the same user
/// that sets SO_REUSEADDR itself, but neither std, socket2 nor rustix sets
/// it, and a raw `setsockopt` needs `unsafe`, which this crate forbids.
fn reuse_address(socket: &Socket) -> io::Result<()> {
    if cfg!(windows) {
        return Ok(());
    }
    socket.set_reuse_address(true)
}

/// Connects to the first address of `host:port` that answers, all of them
/// within `timeout` together (name resolution aside: the system resolver
/// has no timeout to give it).
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let addrs = resolve(host, port)?;
    let mut last = (addrs[0], io::Error::from(io::ErrorKind::TimedOut));
    for addr in addrs {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = (addr, e),
        }
    }
    Err(Error::at_address("connect to", last.0, last.1))
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    // A literal address needs no resolver (and "::1" has no port syntax).
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::invalid_argument(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::invalid_argument(format!(
            "host {host:?} has no address"
        )));
    }
    Ok(addrs)
}

/// As [`bind_listeners`], with SO_REUSEPORT set on each socket before it
/// binds: several sockets (of this process or another, of the same user)
/// may then listen on one address and port, and the system spreads the
/// connections between them. Every Unix but Solaris and illumos has it
/// (and Cygwin, a target only since Rust 1.86, which this crate does not
/// build for: socket2 has no SO_REUSEPORT there).
#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
pub(crate) fn bind_listeners_reusing_port(
    addrs: &[SocketAddr],
    backlog: i32,
) -> Result<Vec<Socket>> {
    let mut listeners: Vec<Socket> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let bound = (|| {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            socket.bind(&(*addr).into())?;
            socket.listen(backlog)?;
            Ok(socket)
        })();
        listeners.push(bound.map_err(|e| Error::at_address("listen on", addr, e))?);
    }
    Ok(listeners)
}

/// Where SO_REUSEPORT is missing (Windows, Solaris, illumos):
/// refused, before any socket exists.
#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
pub(crate) fn bind_listeners_reusing_port(
    _addrs: &[SocketAddr],
    _backlog: i32,
) -> Result<Vec<Socket>> {
    Err(Error::invalid_argument(
        "reuse_port: this platform has no SO_REUSEPORT",
    ))
}

/// Takes a listening socket the caller made (socket activation, a test),
/// in blocking mode (the accept loop blocks on it). Where the system can
/// tell, a socket that is not listening is refused.
pub(crate) fn adopt_listener(listener: std::net::TcpListener) -> Result<(Socket, SocketAddr)> {
    let bad = |why: String| Error::invalid_argument(format!("the listener given: {why}"));
    listener
        .set_nonblocking(false)
        .map_err(|e| bad(format!("cannot make it blocking: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| bad(format!("no local address: {e}")))?;
    let socket = Socket::from(listener);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    if !socket.is_listener().unwrap_or(true) {
        return Err(bad(format!("{addr} is not listening")));
    }
    Ok((socket, addr))
}

/// As [`connect`], from the local address `local` (bound before
/// connecting; port 0 lets the system pick the port). Only the addresses
/// of `host` of `local`'s family are tried.
pub(crate) fn connect_from(
    host: &str,
    port: u16,
    timeout: Duration,
    local: SocketAddr,
) -> Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let addrs: Vec<SocketAddr> = resolve(host, port)?
        .into_iter()
        .filter(|a| a.is_ipv4() == local.is_ipv4())
        .collect();
    let Some(&first) = addrs.first() else {
        let family = if local.is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(Error::invalid_argument(format!(
            "host {host:?} has no {family} address to reach from local address {local}"
        )));
    };
    let mut last = (first, io::Error::from(io::ErrorKind::TimedOut));
    for addr in addrs {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break;
        }
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket
                .bind(&local.into())
                .map_err(|e| io::Error::new(e.kind(), format!("bind to {local}: {e}")))?;
            socket.connect_timeout(&addr.into(), left)?;
            Ok::<_, io::Error>(TcpStream::from(socket))
        })();
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = (addr, e),
        }
    }
    Err(Error::at_address("connect to", last.0, last.1))
}

/// TCP_NODELAY, keepalive and the dead-peer bound.
pub(crate) fn configure(stream: &TcpStream, config: &LinkConfig) -> io::Result<()> {
    stream.set_nodelay(config.nodelay)?;
    let bound = config.dead_peer_timeout;
    if config.keepalive {
        let (time, interval) = match bound.is_zero() {
            true => (KEEPALIVE_TIME, KEEPALIVE_INTERVAL),
            false => keepalive_timing(bound),
        };
        let keepalive = TcpKeepalive::new().with_time(time).with_interval(interval);
        // Windows before 10 1709 has no probe count: its own (10) stands.
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "freebsd"
        ))]
        let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    // Unacknowledged data, window probes and (with keepalive) the probes
    // too: the connection is dropped once the peer was silent this long.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !bound.is_zero() {
        SockRef::from(stream).set_tcp_user_timeout(Some(bound))?;
    }
    Ok(())
}

/// Keepalive idle time and probe interval for a dead-peer bound: probes
/// start after half the bound and [`KEEPALIVE_PROBES`] of them fit in the
/// other half, so that where TCP_USER_TIMEOUT is missing the probes alone
/// give up within the bound. The kernel takes whole seconds, at least 1.
fn keepalive_timing(bound: Duration) -> (Duration, Duration) {
    let secs = |d: Duration| Duration::from_secs(d.as_secs().max(1));
    let time = secs(bound / 2);
    let interval = secs(bound.saturating_sub(time) / KEEPALIVE_PROBES);
    (time, interval)
}

/// What a look at the receive queue found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Bytes are waiting.
    Data,
    /// The peer closed its side and everything it sent has been read.
    Eof,
    /// Nothing yet (from [`Stream::peek_now`], or from
    /// [`Stream::wait_hangup`] when the wait ended for no reason).
    Empty,
}

/// True where [`Stream::wait_hangup`] sleeps through data and wakes only
/// for the peer's close, an error or a local shutdown; elsewhere it wakes
/// for data too, and the monitor paces its looks by its interval.
pub(crate) const WAITS_FOR_HANGUP_ONLY: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// A connected socket as the threads of a link share it: one reads while
/// another writes, a third waits for the peer's hang-up, and any of them
/// may shut it down, which releases all the others at once.
///
/// On Unix that is the socket alone: `shutdown` wakes every thread blocked
/// on it. On Windows it does not (rust-lang/rust#121594), so there the
/// socket is non-blocking and every wait is a `WSAPoll` on it and on a
/// wake socket that [`Stream::shutdown`] makes readable (see `Wake`).
#[derive(Debug)]
pub(crate) struct Stream {
    socket: TcpStream,
    #[cfg(windows)]
    wake: Wake,
}

#[cfg(not(windows))]
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

    /// The socket, for its options and timeouts.
    #[inline]
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

/// Windows: the socket never blocks; a thread that must wait polls it
/// together with the wake socket. The link's timeouts stay where the layers
/// above set them (`SO_RCVTIMEO`, `SO_SNDTIMEO`, which a non-blocking
/// socket keeps but ignores) and are read back as the poll's timeout, so a
/// wait that runs out is `WouldBlock`, as on Unix. `WSAETIMEDOUT` then
/// means what `ETIMEDOUT` means on Unix: the system gave up on the peer.
#[cfg(windows)]
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

    /// Receives what has arrived, without waiting (`WouldBlock` when
    /// nothing has): the non-blocking socket's own read.
    #[cfg(feature = "tls")]
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.socket).read(buf)
    }

    /// Sends what the socket takes at once (`WouldBlock` when it takes
    /// nothing): the non-blocking socket's own write.
    #[cfg(feature = "tls")]
    pub(crate) fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.socket).write(buf)
    }

    /// Reads what is there, waiting for something or the socket's read
    /// timeout (`WouldBlock`); 0 at end of file and after a local
    /// shutdown (std reads `WSAESHUTDOWN` as 0 too).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::event::PollFlags;
        let mut deadline = None;
        loop {
            match (&self.socket).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if self.wake.is_set() {
                return Ok(0);
            }
            let timeout = self.socket.read_timeout()?;
            self.wait(PollFlags::RDNORM, timeout, &mut deadline)?;
        }
    }

    /// Writes some of `buf`, waiting for room or the socket's write
    /// timeout (`WouldBlock`). After a local shutdown: `BrokenPipe`, as on
    /// Unix (the system says `WSAESHUTDOWN`, which std leaves
    /// uncategorised).
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        use rustix::event::PollFlags;
        let mut deadline = None;
        loop {
            if self.wake.is_set() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            match (&self.socket).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            let timeout = self.socket.write_timeout()?;
            self.wait(PollFlags::WRNORM, timeout, &mut deadline)?;
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

    /// Waits until the peer closes its side, the connection breaks or this
    /// side shuts it down, then looks (without consuming) at what is left.
    /// `WSAPoll` cannot wait for the hang-up alone (it reports `POLLHUP`
    /// only with `POLLRDNORM` asked for), so bytes arriving wake it too and
    /// the look finds `Data`: the monitor then paces its looks by its
    /// interval (`WAITS_FOR_HANGUP_ONLY` is false). The link's read timeout
    /// does not cut this wait short.
    pub(crate) fn wait_hangup(&self) -> io::Result<Peek> {
        use rustix::event::PollFlags;
        if !self.wake.is_set() {
            self.wait(PollFlags::RDNORM, None, &mut None)?;
        }
        self.peek_now()
    }

    /// Ends both directions and wakes every thread waiting on the socket.
    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.wake.set();
    }

    /// The socket, for its options and timeouts.
    #[inline]
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Waits until the socket is ready for `events` (or has an error or a
    /// hang-up to tell), the wake socket is set, or `timeout` has passed
    /// since the first wait of this call (`deadline` keeps that instant
    /// across the caller's retries): then `WouldBlock`. A return without
    /// an error only says "try again".
    fn wait(
        &self,
        events: rustix::event::PollFlags,
        timeout: Option<Duration>,
        deadline: &mut Option<Instant>,
    ) -> io::Result<()> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let left = match timeout {
            None => None,
            Some(timeout) => {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        };
        // WSAPoll takes whole milliseconds, at most i32::MAX of them
        // (rustix rounds up, so a short wait is not a busy one).
        let left = left.map(|d| d.min(Duration::from_millis(i32::MAX as u64)));
        let timespec = left.map(|d| Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        let mut fds = [
            PollFd::new(&self.socket, events),
            PollFd::new(&self.wake.socket, PollFlags::RDNORM),
        ];
        poll(&mut fds, timespec.as_ref())?;
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
            let pause = Timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            let pause = match left {
                Some(left) if left < Duration::from_millis(10) => timespec.unwrap_or(pause),
                _ => pause,
            };
            let mut wake_only = [PollFd::new(&self.wake.socket, PollFlags::RDNORM)];
            poll(&mut wake_only, Some(&pause))?;
        }
        Ok(())
    }
}

/// Windows: what [`Stream::shutdown`] sets to release the threads waiting
/// on a socket. A UDP socket on the loopback interface, connected to
/// itself: setting it sends it one datagram, which it never reads, so it
/// stays readable and wakes every `WSAPoll` that includes it, now and
/// later. One socket per connection, no listener, no thread.
#[cfg(windows)]
#[derive(Debug)]
struct Wake {
    socket: std::net::UdpSocket,
    set: std::sync::atomic::AtomicBool,
}

#[cfg(windows)]
impl Wake {
    fn new() -> io::Result<Wake> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(socket.local_addr()?)?;
        socket.set_nonblocking(true)?;
        Ok(Wake {
            socket,
            set: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Idempotent: the datagram goes once.
    fn set(&self) {
        if !self.set.swap(true, std::sync::atomic::Ordering::AcqRel) {
            // Loopback does not drop a datagram to an empty queue.
            let _ = self.socket.send(&[1]);
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 16];
        while self.socket.recv(&mut buf).is_ok() {}
    }
}

/// True for the error a *blocking* socket's read or write timeout gives
/// (the TLS handshake runs on one, before its [`Stream`] exists): on Unix
/// `EAGAIN` (`WouldBlock`), where `ETIMEDOUT` (`TimedOut`) means the
/// connection died; Windows reports its blocking sockets' timeouts as
/// `TimedOut`. A [`Stream`] reports its timeouts as `WouldBlock` everywhere.
#[cfg(feature = "tls")]
pub(crate) fn is_socket_timeout(kind: io::ErrorKind) -> bool {
    kind == io::ErrorKind::WouldBlock || (cfg!(windows) && kind == io::ErrorKind::TimedOut)
}

/// Wakes threads blocked in `accept` on this listener. Linux returns from
/// `accept` when a listening socket is shut down; elsewhere a connection
/// to the listener itself does it.
pub(crate) fn wake_accept(listener: &Socket) {
    if listener.shutdown(std::net::Shutdown::Both).is_ok() && cfg!(target_os = "linux") {
        return;
    }
    if let Some(mut addr) = listener.local_addr().ok().and_then(|a| a.as_socket()) {
        if addr.ip().is_unspecified() {
            let loopback: IpAddr = match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            };
            addr.set_ip(loopback);
        }
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_probes_fit_in_the_dead_peer_bound() {
        let s = Duration::from_secs;
        assert_eq!(keepalive_timing(s(10)), (s(5), s(1)));
        assert_eq!(keepalive_timing(s(120)), (s(60), s(15)));
        // Below the kernel's resolution: whole seconds, at least one.
        assert_eq!(keepalive_timing(Duration::from_millis(500)), (s(1), s(1)));
        for bound in 8..300 {
            let (time, interval) = keepalive_timing(s(bound));
            assert!(time + interval * KEEPALIVE_PROBES <= s(bound), "{bound}");
        }
    }

    #[test]
    fn a_refused_connect_names_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let err = connect("127.0.0.1", port, Duration::from_secs(5)).expect_err("refused");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[test]
    fn a_port_in_use_names_the_address() {
        let first = bind_listeners(&["127.0.0.1:0".parse().expect("addr")], 1).expect("bind");
        let addr = first[0]
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("ip");
        let err = bind_listeners(&[addr], 1).expect_err("in use");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
