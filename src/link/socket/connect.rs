//! Connecting: resolving a host, a non-blocking connect that a [`Wake`]
//! ends, and the I/O of a TLS handshake on the socket before it is a
//! [`Stream`](super::Stream), bounded by a deadline and a wake alike.

use std::io;
#[cfg(feature = "tls")]
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::wait::wait_ready;
#[cfg(feature = "tls")]
use super::READABLE;
use super::{connect_in_progress, Wake, WRITABLE};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
#[cfg(feature = "tls")]
use rustix::event::PollFlags;

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

/// The addresses of `host`. A name the resolver cannot answer for is an
/// [`Error::Io`] naming the host, as a refused connection is: the name
/// may be right and the resolver down, so it is no invalid argument.
pub(super) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    // A literal address needs no resolver (and "::1" has no port syntax).
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let named = format!("host {host:?}");
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::at_address("resolve", &named, e))?
        .collect();
    if addrs.is_empty() {
        let none = io::Error::new(io::ErrorKind::NotFound, "no address");
        return Err(Error::at_address("resolve", named, none));
    }
    Ok(addrs)
}
