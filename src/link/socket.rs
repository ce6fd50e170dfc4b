//! The socket layer: binding listeners, connecting, socket options, the
//! waits of each call (bounded by the call's own [`Deadline`], never by a
//! timeout left on the socket), the peeks that tell whether a peer is
//! still there, and the [`Wake`] that ends a wait on close. Every
//! difference between platforms lives here and in `socket/unix.rs` and
//! `socket/windows.rs`.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::AsFd;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::config::{LinkConfig, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, KEEPALIVE_TIME};
use crate::deadline::Deadline;
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
/// an IPv4 socket can share the port; see [`address_use`] for who else may
/// bind it (SO_REUSEADDR on Unix, SO_EXCLUSIVEADDRUSE on Windows), and
/// [`reuse_port`] for `share_port` (refused where the platform has no
/// SO_REUSEPORT).
pub(crate) fn bind_listeners(
    addrs: &[SocketAddr],
    backlog: i32,
    share_port: bool,
) -> Result<Vec<Socket>> {
    if share_port && !HAS_REUSE_PORT {
        return Err(Error::invalid_argument(
            "reuse_port: this platform has no SO_REUSEPORT",
        ));
    }
    let mut listeners: Vec<Socket> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        // With port 0 and several addresses each socket picks its own port.
        let bound = (|| {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            address_use(&socket)?;
            if share_port {
                reuse_port(&socket)?;
            }
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

/// Connects to the first address of `host:port` that answers, all of them
/// within `timeout` together (name resolution aside: the system resolver
/// has no timeout to give it and cannot be interrupted). From `local` if
/// given (bound before connecting; port 0 lets the system pick the port):
/// then only the addresses of `local`'s family are tried.
///
/// Each attempt is a non-blocking connect whose wait `wake` ends at once
/// when it is set (a client's `close()`): then the error is
/// `ConnectionAborted`. The stream comes back non-blocking; [`Stream::new`]
/// gives it the mode the link uses.
pub(crate) fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    local: Option<SocketAddr>,
    wake: Option<&Wake>,
) -> Result<TcpStream> {
    let deadline = Deadline::after(Some(timeout));
    let mut addrs = resolve(host, port)?;
    if let Some(local) = local {
        addrs.retain(|a| a.is_ipv4() == local.is_ipv4());
    }
    let Some(&first) = addrs.first() else {
        // `resolve` gives an address or an error: only `local`'s family
        // can leave none.
        let (family, from) = match local {
            Some(l) => (
                if l.is_ipv4() { " IPv4" } else { " IPv6" },
                format!(" to reach from local address {l}"),
            ),
            None => ("", String::new()),
        };
        return Err(Error::invalid_argument(format!(
            "host {host:?} has no{family} address{from}"
        )));
    };
    let mut last = (first, io::Error::from(io::ErrorKind::TimedOut));
    for addr in addrs {
        if deadline.passed() {
            break;
        }
        match connect_one(addr, local, deadline, wake) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                return Err(Error::at_address("connect to", addr, e))
            }
            Err(e) => last = (addr, e),
        }
    }
    Err(Error::at_address("connect to", last.0, last.1))
}

/// One non-blocking connect to `addr`, waited for until `deadline` or
/// `wake`.
fn connect_one(
    addr: SocketAddr,
    local: Option<SocketAddr>,
    deadline: Deadline,
    wake: Option<&Wake>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(local) = local {
        socket
            .bind(&local.into())
            .map_err(|e| io::Error::new(e.kind(), format!("bind to {local}: {e}")))?;
    }
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if connect_in_progress(&e) => loop {
            wait_ready(&socket, WRITABLE, wake, deadline).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => io::Error::from(io::ErrorKind::TimedOut),
                _ => e,
            })?;
            if let Some(e) = socket.take_error()? {
                return Err(e);
            }
            match socket.peer_addr() {
                Ok(_) => break,
                // The wait ended with the connect still under way.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(e),
            }
        },
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from(socket))
}

/// Waits until `socket` is ready for `events` (or has an error or a
/// hang-up to tell), `wake` is set, or `deadline` passes: `Ok` means "try
/// the call again"; a passed deadline is `WouldBlock`, a set `wake`
/// `ConnectionAborted`.
pub(crate) fn wait_ready(
    socket: &impl AsFd,
    events: PollFlags,
    wake: Option<&Wake>,
    deadline: Deadline,
) -> io::Result<()> {
    if wake.is_some_and(Wake::is_set) {
        return Err(cancelled());
    }
    let left = match deadline.left() {
        Some(left) if left.is_zero() => return Err(io::ErrorKind::WouldBlock.into()),
        left => left,
    };
    let timespec = left.map(timespec);
    let ready = match wake {
        Some(wake) => {
            let mut fds = [PollFd::new(socket, events), wake.poll_fd()];
            poll(&mut fds, timespec.as_ref())
        }
        None => poll(&mut [PollFd::new(socket, events)], timespec.as_ref()),
    };
    match ready {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    if wake.is_some_and(Wake::is_set) {
        return Err(cancelled());
    }
    Ok(())
}

/// What a wait that a [`Wake`] ended returns.
fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "cancelled: closing")
}

/// A wait's time left as `poll` takes it. WSAPoll takes whole
/// milliseconds, at most `i32::MAX` of them (rustix rounds up, so a short
/// wait is not a busy one); the cap does no harm elsewhere.
fn timespec(left: Duration) -> Timespec {
    let left = left.min(Duration::from_millis(i32::MAX as u64));
    Timespec {
        tv_sec: left.as_secs() as _,
        tv_nsec: left.subsec_nanos() as _,
    }
}

/// How many times a read that spun in vain yields the CPU before it sleeps.
const YIELDS: u32 = 3;

/// The spin of a read (see `Builder::spin`): `try_now`, a read that never
/// waits (`Ok(None)` when nothing is there), tried over and over for up
/// to `spin`, no later than `deadline`, then after each of a few yields.
/// `Some` with what a try got, `None` if nothing came: the caller then
/// sleeps as usual.
fn spin_then(
    mut try_now: impl FnMut() -> io::Result<Option<usize>>,
    deadline: Deadline,
    spin: Duration,
) -> Option<io::Result<usize>> {
    let started = std::time::Instant::now();
    loop {
        match try_now() {
            Ok(None) => {}
            done => return done.transpose(),
        }
        if started.elapsed() >= spin || deadline.passed() {
            break;
        }
        std::hint::spin_loop();
    }
    for _ in 0..YIELDS {
        std::thread::yield_now();
        match try_now() {
            Ok(None) => {}
            done => return done.transpose(),
        }
    }
    None
}

/// A TLS handshake's I/O: the non-blocking socket of a connection not yet
/// made a [`Stream`], each wait bounded by the handshake's deadline and
/// ended by `wake` (a close, or a server making room for a newer
/// handshake). `received` goes up when the peer first sends a byte.
#[cfg(feature = "tls")]
pub(crate) struct Handshaking<'a> {
    pub(crate) socket: &'a TcpStream,
    pub(crate) wake: Option<&'a Wake>,
    pub(crate) deadline: Deadline,
    pub(crate) received: Option<&'a std::sync::atomic::AtomicBool>,
}

#[cfg(feature = "tls")]
impl Handshaking<'_> {
    /// The error a wait that ran out gives: the handshake timed out.
    fn waited(&self, events: PollFlags) -> io::Result<()> {
        wait_ready(self.socket, events, self.wake, self.deadline).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
            }
            _ => e,
        })
    }
}

#[cfg(feature = "tls")]
impl Read for Handshaking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&*self.socket).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.waited(READABLE)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => {
                    if let (Some(flag), true) = (self.received, n > 0) {
                        flag.store(true, std::sync::atomic::Ordering::Release);
                    }
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(feature = "tls")]
impl Write for Handshaking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match (&*self.socket).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.waited(WRITABLE)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

/// Sets SO_REUSEPORT: several sockets (of this process or another, of the
/// same user) may then listen on one address and port, and the system
/// spreads the connections between them. Every Unix but Solaris and
/// illumos has it (and Cygwin, a target only since Rust 1.86, which this
/// crate does not build for: socket2 has no SO_REUSEPORT there).
#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

/// Where SO_REUSEPORT is missing (Windows, Solaris, illumos): `start()`
/// refuses the setting before any socket exists.
#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this platform has no SO_REUSEPORT",
    ))
}

/// True where [`reuse_port`] can be set.
const HAS_REUSE_PORT: bool = cfg!(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos"))
));

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

/// TCP_NODELAY, keepalive and the dead-peer bound.
pub(crate) fn configure(stream: &TcpStream, config: &LinkConfig) -> io::Result<()> {
    stream.set_nodelay(config.nodelay)?;
    // Apple's systems have no MSG_NOSIGNAL: a send to a broken connection
    // must not raise SIGPIPE.
    #[cfg(target_vendor = "apple")]
    SockRef::from(stream).set_nosigpipe(true)?;
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
/// may shut it down, which releases all the others at once. Each read and
/// write takes its call's [`Deadline`]; the socket's own timeouts are
/// never set, so no call can change another's wait.
///
/// On Unix that is the socket alone: `shutdown` wakes every thread blocked
/// on it. On Windows it does not (rust-lang/rust#121594), so there the
/// socket is non-blocking and every wait is a `WSAPoll` on it and on a
/// [`Wake`] that [`Stream::shutdown`] sets.
#[derive(Debug)]
pub(crate) struct Stream {
    socket: TcpStream,
    #[cfg(windows)]
    wake: Wake,
}

/// What the test kit does to a connection and the link never does.
impl Stream {
    /// Ends the sending side only: the peer reads end of file, and this
    /// side can still read.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.socket.shutdown(std::net::Shutdown::Write)
    }

    /// Makes the last close of the socket a reset (SO_LINGER 0): the
    /// peer's next read or write fails with "connection reset".
    pub(crate) fn reset_on_close(&self) -> io::Result<()> {
        SockRef::from(&self.socket).set_linger(Some(Duration::ZERO))
    }
}

#[cfg(not(windows))]
mod unix;
#[cfg(not(windows))]
pub(crate) use unix::Wake;
#[cfg(all(not(windows), feature = "tls"))]
use unix::READABLE;
#[cfg(not(windows))]
use unix::{address_use, connect_in_progress, WRITABLE};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::Wake;
#[cfg(all(windows, feature = "tls"))]
use windows::READABLE;
#[cfg(windows)]
use windows::{address_use, connect_in_progress, WRITABLE};

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
mod tests;
