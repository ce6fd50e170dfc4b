//! A client's settings beside the link's: where to connect, how long to
//! try, heartbeats, reconnecting, TLS, an existing stream; and the two
//! ways to begin, `connect()` and `start()`.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::builder::{Builder, ClientBuilder};
use super::client::{Client, ClientCallback, Target};
use super::reconnect::Backoff;
use crate::config::LinkConfig;
use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCALHOST};
use crate::error::{Error, Result};
use crate::link::endpoint::Takeover;
use crate::link::socket::Wake;

/// What a [`ClientBuilder`] holds beside the link's settings.
pub struct ClientSide {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) reconnect: Option<Backoff>,
    pub(crate) callback: Option<ClientCallback>,
    pub(crate) stream: Option<TcpStream>,
    pub(crate) local_addr: Option<SocketAddr>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::ClientTls>,
}

impl Default for ClientSide {
    fn default() -> Self {
        ClientSide {
            host: DEFAULT_LOCALHOST.to_owned(),
            port: 0,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            heartbeat: None,
            reconnect: None,
            callback: None,
            stream: None,
            local_addr: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// Server address: an IP address or a host name. Default:
    /// [`DEFAULT_LOCALHOST`](crate::DEFAULT_LOCALHOST).
    pub fn host(mut self, host: &str) -> Self {
        self.side.host = host.to_owned();
        self
    }

    /// Server port; must be set (0 is refused when connecting).
    pub fn port(mut self, port: u16) -> Self {
        self.side.port = port;
        self
    }

    /// How long a connection attempt tries, every address of the host
    /// together; resolving the host name is not bounded by it (the system
    /// resolver takes no timeout). Zero is refused. Default:
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT) (10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.side.connect_timeout = timeout;
        self
    }

    /// With `Some(period)`, a named thread writes
    /// [`HEARTBEAT`](crate::HEARTBEAT) plus the terminator every `period`
    /// while connected, for a read-loop server's heartbeat monitor.
    /// Default: `None`.
    pub fn heartbeat(mut self, period: Option<Duration>) -> Self {
        self.side.heartbeat = period;
        self
    }

    /// After the link drops, a named thread connects again, backing off
    /// as `backoff` says, until it succeeds or the client is closed; the
    /// callback and `events()` hear of each change. While down, reads and
    /// writes fail at once with [`Error::NotConnected`]. `close()` stops it,
    /// waiting for an attempt in progress: at most the connect timeout,
    /// plus the TLS handshake timeout with TLS, plus the system's name
    /// lookup when the host is a name (which has no timeout to give it).
    /// With [`connect`](Builder::connect) the first connection must
    /// succeed; with [`start`](Builder::start) the first one is made by
    /// the same thread, so a client may start before its server. Default:
    /// off.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.side.reconnect = Some(backoff);
        self
    }

    /// Speaks TLS with `config` (feature `tls`), verifying the server for
    /// `server_name`; the handshake is part of each connection attempt and
    /// bounded by the
    /// [`tls_handshake_timeout`](Builder::tls_handshake_timeout). A failed
    /// handshake is an [`Error::Io`] naming the server. Default: plain TCP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>, server_name: &str) -> Self {
        self.side.tls = Some(super::tls::ClientTls {
            config: super::tls::ClientTlsConfig::Config(config),
            server_name: Some(server_name.to_owned()),
        });
        self
    }

    /// [`tls`](Self::tls) with a configuration made from PEM files when
    /// connecting (see
    /// [`tls::client_config_from_pem`](crate::tls::client_config_from_pem)):
    /// the CA to verify the server against, a client certificate chain and
    /// key for a server that asks for one, and the name to verify the
    /// server for (`None`: the host).
    #[cfg(feature = "tls")]
    pub fn tls_from_pem(
        mut self,
        ca: impl Into<std::path::PathBuf>,
        identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
        server_name: Option<&str>,
    ) -> Self {
        self.side.tls = Some(super::tls::ClientTls {
            config: super::tls::ClientTlsConfig::Pem {
                ca: ca.into(),
                identity,
            },
            server_name: server_name.map(str::to_owned),
        });
        self
    }

    /// Called on its own thread with `true` on connecting and `false` when
    /// the link ends, once per change, in order. A panic in it is logged;
    /// it may call `close()`. Default: none.
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&Client, bool) + Send + 'static,
    {
        self.side.callback = Some(Box::new(callback));
        self
    }

    /// Uses `stream`, a connection the caller already made (and for
    /// which it set any socket option it wants), as the first
    /// connection: [`connect`](Self::connect) (or [`start`](Self::start))
    /// takes it instead of connecting, sets the link's socket options on
    /// it ([`nodelay`](Builder::nodelay), keepalive, the dead-peer bound,
    /// the timeouts) and puts it in blocking mode. A stream with no peer
    /// makes them fail with [`Error::InvalidArgument`]. Unless
    /// [`port`](Self::port) is set, host and port become the stream's
    /// peer address. With [`reconnect`](Self::reconnect), later
    /// connections are made to host and port as usual (from
    /// [`local_addr`](Self::local_addr) if set). Default: none.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder().start()?;
    /// let stream = std::net::TcpStream::connect(("127.0.0.1", server.port()))?;
    /// let client = Client::builder().stream(stream).connect()?;
    /// assert_eq!(client.port(), server.port());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream(mut self, stream: TcpStream) -> Self {
        self.side.stream = Some(stream);
        self
    }

    /// Binds each connection's socket to `addr` before connecting (an
    /// interface's address, port 0 for any port), as Python's
    /// `local_addr`. Only the server's addresses of the same family are
    /// tried; with none, connecting fails with
    /// [`Error::InvalidArgument`]. A fixed port may be refused (address
    /// in use) while an earlier connection from it is in TIME_WAIT.
    /// Not applied to a [`stream`](Self::stream) given ready-made.
    /// Default: none, the system picks.
    pub fn local_addr(mut self, addr: SocketAddr) -> Self {
        self.side.local_addr = Some(addr);
        self
    }

    /// Connects; returns once connected and, with a
    /// [`connect_callback`](Self::connect_callback), once its `true` call
    /// has returned (Python's `start_task`, done after the callback). The
    /// callback runs on its own thread meanwhile: one that waits for
    /// something the caller of `connect()` does after it returns (takes a
    /// lock the caller holds, receives what the caller sends next) never
    /// returns, and neither does `connect()`. The heartbeat and monitor
    /// threads are already running while it waits; a link that drops
    /// meanwhile still returns `Ok` (the callback's `false` follows).
    /// [`start`](Self::start) does not wait.
    ///
    /// Nobody listening is [`Error::Io`] (connection refused), a silent
    /// host [`Error::Io`] (timed out), both naming the address.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder().start()?;
    /// let client = Client::builder()
    ///     .host(LOCALHOST_IPV4)
    ///     .port(server.port())
    ///     .heartbeat(Some(Duration::from_secs(1)))
    ///     .connect()?;
    /// assert!(client.connected());
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn connect(mut self) -> Result<Client> {
        self.check()?;
        let given = self.take_stream()?;
        let (link, target, callback) = self.into_parts()?;
        let conn = match given {
            Some(stream) => target.adopt(stream, &link)?,
            None => target.connect(&link)?,
        };
        let client = Client::new(link, target, callback)?;
        // A fresh endpoint takes its first connection.
        let _ = client.ep.attach(Arc::new(conn), Takeover::Never);
        // Read before the reconnect thread can install a newer one.
        let call = client.ep.connected_call();
        client.spawn_link_threads()?;
        // As Python's `start_task`, done once `connect_callback` has run.
        client.ep.wait_callback_returned(call, None);
        Ok(client)
    }

    /// Returns at once with a client that connects in the background:
    /// the reconnect thread (with the backoff given to
    /// [`reconnect`](Self::reconnect), else [`Backoff::default`]) makes the
    /// first connection too and every later one. For a controller that may
    /// start before its server; wait with [`Client::wait_connected`] or
    /// the callback.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ts_tcpip::prelude::*;
    /// # let port = { let l = std::net::TcpListener::bind("127.0.0.1:0")?; l.local_addr()?.port() };
    /// let client = Client::builder().port(port).start()?; // nobody listens yet
    /// assert!(!client.connected());
    /// let server = OneClientServer::builder().port(port).start()?;
    /// client.wait_connected(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(mut self) -> Result<Client> {
        self.side.reconnect.get_or_insert_with(Backoff::default);
        self.check()?;
        let given = self.take_stream()?;
        let (link, target, callback) = self.into_parts()?;
        let first = given
            .map(|stream| target.adopt(stream, &link))
            .transpose()?;
        let client = Client::new(link, target, callback)?;
        if let Some(conn) = first {
            // A fresh endpoint takes its first connection.
            let _ = client.ep.attach(Arc::new(conn), Takeover::Never);
        }
        client.spawn_link_threads()?;
        Ok(client)
    }

    /// Refuses what cannot work, before any socket exists.
    fn check(&self) -> Result<()> {
        self.link.validate()?;
        let side = &self.side;
        if side.port == 0 && side.stream.is_none() {
            return Err(Error::invalid_argument("the client needs a port"));
        }
        if side.connect_timeout.is_zero() {
            return Err(Error::invalid_argument(
                "the connect timeout must be above zero",
            ));
        }
        if side.heartbeat.is_some_and(|p| p.is_zero()) {
            return Err(Error::invalid_argument(
                "the heartbeat period must be above zero",
            ));
        }
        if side
            .reconnect
            .is_some_and(|b| b.initial.is_zero() || b.initial > b.max)
        {
            return Err(Error::invalid_argument(
                "the reconnect backoff needs 0 < initial <= max",
            ));
        }
        Ok(())
    }

    /// The stream given to [`stream`](Self::stream), checked for a peer;
    /// host and port become that peer's unless the port was set.
    fn take_stream(&mut self) -> Result<Option<(TcpStream, SocketAddr)>> {
        let Some(stream) = self.side.stream.take() else {
            return Ok(None);
        };
        let peer = stream.peer_addr().map_err(|e| {
            Error::invalid_argument(format!("the stream given is not connected: {e}"))
        })?;
        if self.side.port == 0 {
            self.side.host = peer.ip().to_string();
            self.side.port = peer.port();
        }
        Ok(Some((stream, peer)))
    }

    fn into_parts(self) -> Result<(LinkConfig, Target, Option<ClientCallback>)> {
        let Builder { link, side } = self;
        #[cfg(feature = "tls")]
        let tls = side.tls.map(|t| t.resolve(&side.host)).transpose()?;
        let target = Target {
            host: side.host,
            port: side.port,
            local_addr: side.local_addr,
            connect_timeout: side.connect_timeout,
            heartbeat: side.heartbeat,
            reconnect: side.reconnect,
            #[cfg(feature = "tls")]
            tls,
            wake: Some(Wake::new()?),
        };
        Ok((link, target, side.callback))
    }
}
