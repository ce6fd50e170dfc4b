//! The socket layer: binding listeners, connecting, socket options, the
//! peeks that tell whether a peer is still there, and how the platform
//! reports a timeout. Every difference between platforms lives here.

use std::io;
#[cfg(unix)]
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
/// an IPv4 socket can share the port; SO_REUSEADDR lets a closed server's
/// port be bound again at once, as asyncio does on Unix.
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
            socket.set_reuse_address(true)?;
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
    /// Nothing yet (from [`peek_now`], or from [`wait_hangup`] when the
    /// wait ended for no reason).
    Empty,
}

/// True where [`wait_hangup`] sleeps through data and wakes only for the
/// peer's close, an error or a local shutdown; elsewhere it wakes for data
/// too, and the monitor paces its looks by its interval.
pub(crate) const WAITS_FOR_HANGUP_ONLY: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// Waits until the peer closes its side, the connection breaks or this
/// side shuts it down, then looks (without consuming) at what is left:
/// `Eof` (closed, nothing unread), `Data` (closed with bytes unread) or an
/// error. Bytes arriving do not wake it.
///
/// `poll()` for `POLLRDHUP` alone: the wake-up a socket sends for data
/// carries `POLLIN`, which this wait did not ask for, so the kernel leaves
/// the thread asleep; a FIN sets `POLLRDHUP`, an RST or a keepalive
/// failure `POLLERR`, and a local `shutdown` both (`POLLHUP` too), and
/// those are reported whether asked for or not. `poll` ignores the
/// socket's read timeout, so a short one does not wake it either. Once the
/// peer has closed the call returns at once, every time: the caller paces
/// its looks while bytes wait unread.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn wait_hangup(stream: &TcpStream) -> io::Result<Peek> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(stream, PollFlags::RDHUP)];
    loop {
        match poll(&mut fds, None) {
            Ok(_) => return peek_now(stream),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Elsewhere (no `POLLRDHUP`): a blocking peek, which data wakes as well.
/// It obeys the socket's read timeout (`WouldBlock`/`TimedOut`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn wait_hangup(stream: &TcpStream) -> io::Result<Peek> {
    let mut byte = [0u8; 1];
    Ok(match stream.peek(&mut byte)? {
        0 => Peek::Eof,
        _ => Peek::Data,
    })
}

/// Looks without waiting. Unlike switching the socket to non-blocking mode
/// this does not disturb a blocking read on another thread.
#[cfg(unix)]
pub(crate) fn peek_now(stream: &TcpStream) -> io::Result<Peek> {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    match SockRef::from(stream).recv_with_flags(&mut byte, flags) {
        Ok(0) => Ok(Peek::Eof),
        Ok(_) => Ok(Peek::Data),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Peek::Empty),
        Err(e) => Err(e),
    }
}

/// Looks without waiting, on Windows, which has no per-call `MSG_DONTWAIT`
/// and where switching the socket to non-blocking mode (`FIONBIO`, a
/// property of the socket, not of the call) would make a concurrent
/// blocking read fail with `WouldBlock`. So: `WSAPoll` with a zero timeout
/// (a query that changes nothing), then `FIONREAD` for how much is queued.
/// End of file is `POLLHUP` (the peer closed; it stays set) with nothing
/// queued: "readable with nothing queued" alone would take a live link
/// whose bytes another thread read between the two calls for a closed one.
/// Through rustix, whose Winsock calls are safe (this crate forbids
/// `unsafe`).
#[cfg(windows)]
pub(crate) fn peek_now(stream: &TcpStream) -> io::Result<Peek> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(stream, PollFlags::RDNORM)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&now))?;
    let revents = fds[0].revents();
    if revents.intersects(PollFlags::ERR | PollFlags::NVAL) {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::ErrorKind::NotConnected.into()));
    }
    if !revents.intersects(PollFlags::RDNORM | PollFlags::HUP) {
        return Ok(Peek::Empty);
    }
    let queued = rustix::io::ioctl_fionread(stream)?;
    Ok(if queued > 0 {
        Peek::Data
    } else if revents.contains(PollFlags::HUP) {
        Peek::Eof
    } else {
        // Readable, then drained by a concurrent reader.
        Peek::Empty
    })
}

/// Receives what has arrived, without waiting (`WouldBlock` when nothing
/// has) and without disturbing a blocking read on another thread.
#[cfg(all(unix, feature = "tls"))]
pub(crate) fn recv_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    match peek_now(stream)? {
        Peek::Empty => Err(io::ErrorKind::WouldBlock.into()),
        // Bytes or the end of file wait: a read returns at once.
        Peek::Data | Peek::Eof => (&*stream).read(buf),
    }
}

/// Sends what the socket takes at once (`WouldBlock` when it takes
/// nothing), without waiting for room.
#[cfg(all(unix, feature = "tls"))]
pub(crate) fn send_now(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    SockRef::from(stream).send_with_flags(buf, libc::MSG_DONTWAIT)
}

/// Receives what has arrived, without waiting: on Windows a read of no
/// more than the queued count returns at once.
#[cfg(all(windows, feature = "tls"))]
pub(crate) fn recv_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    match peek_now(stream)? {
        Peek::Empty => Err(io::ErrorKind::WouldBlock.into()),
        Peek::Eof => Ok(0),
        Peek::Data => {
            let queued = rustix::io::ioctl_fionread(stream)? as usize;
            let take = queued.clamp(1, buf.len());
            (&*stream).read(&mut buf[..take])
        }
    }
}

/// On Windows there is no per-call "do not wait": nothing is sent.
#[cfg(all(windows, feature = "tls"))]
pub(crate) fn send_now(_stream: &TcpStream, _buf: &[u8]) -> io::Result<usize> {
    Err(io::ErrorKind::WouldBlock.into())
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

/// True for the error a socket read or write timeout gives. On Unix that
/// is `EAGAIN` (`WouldBlock`); `ETIMEDOUT` (`TimedOut`) there means the
/// connection died (keepalive probes or retransmissions went unanswered),
/// so it is a lost connection. Windows reports its socket timeouts as
/// `TimedOut`.
pub(crate) fn is_socket_timeout(kind: io::ErrorKind) -> bool {
    kind == io::ErrorKind::WouldBlock || (cfg!(windows) && kind == io::ErrorKind::TimedOut)
}

/// A socket error as the layers above expect it: the socket's own timeout
/// as `WouldBlock` (the frame reader's "nothing yet"), anything else as
/// it is.
pub(crate) fn sort_timeout(err: io::Error) -> io::Error {
    if err.kind() != io::ErrorKind::WouldBlock && is_socket_timeout(err.kind()) {
        return io::ErrorKind::WouldBlock.into();
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ETIMEDOUT on Unix is a dead connection (keepalive or retransmission
    /// gave up), not the socket's read or write timeout.
    #[cfg(unix)]
    #[test]
    fn a_keepalive_timeout_is_not_a_socket_timeout() {
        assert!(!is_socket_timeout(io::ErrorKind::TimedOut));
        assert!(is_socket_timeout(io::ErrorKind::WouldBlock));
    }

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
