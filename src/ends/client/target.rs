//! Where a client connects and how: one connection attempt (socket
//! options, the TLS handshake), made by `connect()` and by the reconnect
//! thread alike.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::LinkConfig;
use crate::error::Result;
use crate::link::connection::Connection;
use crate::link::socket::{self, Wake};
use crate::link::transport::Tcp;

/// Where a client connects, and how.
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) connect_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::ends::tls::ClientTlsReady>,
    /// Set by `close()`: ends a connect attempt or a TLS handshake under
    /// way at once. None for [`Client::closed`](crate::Client::closed), which never connects.
    pub(crate) wake: Option<Wake>,
}

impl Target {
    /// One connection attempt, with the link's socket options set (and
    /// the TLS handshake, with TLS); the client's close ends it at once.
    pub(crate) fn connect(&self, link: &LinkConfig) -> Result<Connection> {
        let stream = socket::connect(
            &self.host,
            self.port,
            self.connect_timeout,
            self.local_addr,
            self.wake.as_ref(),
        )?;
        let peer = stream.peer_addr()?;
        self.adopt((stream, peer), link)
    }

    /// A connected stream (one the caller connected, or `connect`'s) made
    /// a connection: socket options, and the TLS handshake with TLS.
    pub(crate) fn adopt(
        &self,
        (stream, peer): (TcpStream, SocketAddr),
        link: &LinkConfig,
    ) -> Result<Connection> {
        socket::configure(&stream, link)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.connect(stream, peer, link.tls_handshake_timeout, self.wake.as_ref());
        }
        Ok(Connection::new(Tcp::new(stream)?, peer))
    }

    /// Ends the attempt under way, if any, and every later one.
    pub(crate) fn cancel(&self) {
        if let Some(wake) = &self.wake {
            wake.set();
        }
    }
}
