//! The socket layer: binding listeners, connecting, socket options, the
//! waits of each call (bounded by the call's own [`Deadline`], never by a
//! timeout left on the socket), the peeks that tell whether a peer is
//! still there, and the [`Wake`] that ends a wait on close. Every
//! difference between platforms lives here and in `socket/unix.rs` and
//! `socket/windows.rs`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

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

mod connect;
#[cfg(not(windows))]
mod unix;
mod wait;
#[cfg(windows)]
mod windows;

pub(crate) use connect::connect;
use connect::resolve;
#[cfg(feature = "tls")]
pub(crate) use connect::Handshaking;
#[cfg(all(not(windows), feature = "tls"))]
use unix::READABLE;
#[cfg(not(windows))]
use unix::{address_use, connect_in_progress, WRITABLE};
#[cfg(not(windows))]
pub(crate) use unix::{Stream, Wake};
pub(crate) use wait::{Peek, WAITS_FOR_HANGUP_ONLY};
#[cfg(all(windows, feature = "tls"))]
use windows::READABLE;
#[cfg(windows)]
use windows::{address_use, connect_in_progress, WRITABLE};
#[cfg(windows)]
pub(crate) use windows::{Stream, Wake};

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

/// What the test kit does to a connection and the link never does.
impl Stream {
    /// Ends the sending side only: the peer reads end of file, and this
    /// side can still read.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.tcp().shutdown(std::net::Shutdown::Write)
    }

    /// Makes the last close of the socket a reset (SO_LINGER 0): the
    /// peer's next read or write fails with "connection reset".
    pub(crate) fn reset_on_close(&self) -> io::Result<()> {
        SockRef::from(self.tcp()).set_linger(Some(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests;
