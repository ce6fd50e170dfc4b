//! Socket set-up and probes: binding listeners, connecting, socket options,
//! and the peeks that tell whether a peer is still there.

use std::io;
#[cfg(unix)]
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::config::{LinkConfig, KEEPALIVE_INTERVAL, KEEPALIVE_TIME};
use crate::{Error, Result};

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
        listeners.push(socket);
    }
    Ok(listeners)
}

/// Connects to the first address of `host:port` that answers, all of them
/// within `timeout` together (name resolution aside: the system resolver
/// has no timeout to give it).
pub(crate) fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let mut last = io::Error::from(io::ErrorKind::TimedOut);
    for addr in resolve(host, port)? {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    // A literal address needs no resolver (and "::1" has no port syntax).
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::InvalidArgument(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "host {host:?} has no address"
        )));
    }
    Ok(addrs)
}

/// TCP_NODELAY and keepalive, as the Python reference sets them.
pub(crate) fn configure(stream: &TcpStream, config: &LinkConfig) -> io::Result<()> {
    stream.set_nodelay(config.nodelay)?;
    if config.keepalive {
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_TIME)
            .with_interval(KEEPALIVE_INTERVAL);
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "freebsd"
        ))]
        let keepalive = keepalive.with_retries(crate::config::KEEPALIVE_PROBES);
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}

/// What a look at the receive queue found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Bytes are waiting.
    Data,
    /// The peer closed its side and everything it sent has been read.
    Eof,
    /// Nothing yet (only from [`peek_now`]).
    Empty,
}

/// Waits until bytes arrive or the peer closes, without consuming anything.
/// Returns early (`WouldBlock`) when a read timeout is set on the socket.
pub(crate) fn peek_wait(stream: &TcpStream) -> io::Result<Peek> {
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
