//! `Client`: connects to a server, optionally sends heartbeats and
//! reconnects.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::builder::ClientBuilder;
use super::reconnect::{self, Backoff};
use super::server::waited;
use crate::config::LinkConfig;
use crate::config::{DEFAULT_CONNECT_TIMEOUT, HEARTBEAT};
use crate::error::Result;
use crate::link::connection::Connection;
use crate::link::endpoint::{Endpoint, Intent};
use crate::link::socket;
use crate::link::transport::Tcp;
use crate::link::{api::impl_link, Wait};

pub(crate) type ClientCallback = Box<dyn FnMut(&Client, bool) + Send>;

/// Where a client connects, and what it runs while connected.
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) reconnect: Option<Backoff>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::ClientTlsReady>,
}

impl Target {
    /// One connection attempt, with the link's socket options set (and
    /// the TLS handshake, with TLS).
    pub(crate) fn connect(&self, link: &LinkConfig) -> Result<Connection> {
        let stream = socket::connect(&self.host, self.port, self.connect_timeout, self.local_addr)?;
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
        // A caller's stream may be non-blocking; the link's is not.
        stream.set_nonblocking(false)?;
        socket::configure(&stream, link)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.connect(stream, peer, link.tls_handshake_timeout);
        }
        Ok(Connection::new(Tcp::new(stream)?, peer))
    }
}

/// A TCP/IP client of a server. Share it between threads with `Arc`; the
/// read and write methods are those of [`Link`](crate::Link). Dropping it
/// closes it.
pub struct Client {
    pub(crate) ep: Arc<Endpoint>,
    target: Arc<Target>,
    /// False for the view handed to the callback, whose drop closes nothing.
    owner: bool,
}

impl Client {
    /// A client with its callback thread (started first, so that it hears
    /// of the first connection); no connection yet.
    pub(crate) fn new(
        link: LinkConfig,
        target: Target,
        callback: Option<ClientCallback>,
    ) -> Result<Client> {
        let place = format!("{}:{}", target.host, target.port);
        let client = Client {
            ep: Arc::new(Endpoint::new("Client", &place, link)),
            target: Arc::new(target),
            owner: true,
        };
        if let Some(mut callback) = callback {
            let view = client.view();
            client.ep.spawn_callback(move |c| callback(&view, c))?;
        }
        Ok(client)
    }

    /// A builder with every default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client that is closed from the start (Python's `host=""`): every
    /// read and write fails with [`Error::NotConnected`](crate::Error::NotConnected). A placeholder for
    /// a field that has no connection yet.
    pub fn closed() -> Client {
        let ep = Endpoint::new("Client", "closed", LinkConfig::default());
        ep.shut(Intent::Keep);
        Client {
            ep: Arc::new(ep),
            target: Arc::new(Target {
                host: String::new(),
                port: 0,
                local_addr: None,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                heartbeat: None,
                reconnect: None,
                #[cfg(feature = "tls")]
                tls: None,
            }),
            owner: true,
        }
    }

    /// The callback's handle: its drop closes nothing.
    fn view(&self) -> Client {
        Client {
            ep: self.ep.clone(),
            target: self.target.clone(),
            owner: false,
        }
    }

    /// The monitor, heartbeat and reconnect threads, as configured.
    pub(crate) fn spawn_link_threads(&self) -> Result<()> {
        self.ep.spawn_monitor()?;
        if let Some(period) = self.target.heartbeat {
            let ep = self.ep.clone();
            self.ep
                .spawn("heartbeat", move || send_heartbeats(&ep, period))?;
        }
        if let Some(backoff) = self.target.reconnect {
            let (ep, target) = (self.ep.clone(), self.target.clone());
            self.ep
                .spawn("reconnect", move || reconnect::run(&ep, &target, backoff))?;
        }
        Ok(())
    }

    /// The server host it was given (empty for [`Client::closed`]).
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// The server port it was given (0 for [`Client::closed`]).
    pub fn port(&self) -> u16 {
        self.target.port
    }

    /// Waits for a connection: `Ok` at once if connected, else when the
    /// next connection is made (by [`start`](crate::builder::Builder::start) or
    /// reconnecting); [`Error::Timeout`](crate::Error::Timeout) when `timeout` runs out,
    /// [`Error::NotConnected`](crate::Error::NotConnected) if the client is closed meanwhile.
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        waited(self.ep.slot.wait_connected(timeout))
    }

    /// Closes the connection, stops and joins every thread (waiting for a
    /// running callback, which gets `false` if connected) and makes
    /// `should_be_connected()` false. Idempotent; dropping does the same.
    pub fn close(&self) {
        self.ep.close(Intent::Clear);
    }

    /// As [`close`](Self::close), but leaves `should_be_connected()` as it
    /// is, so an unexpected loss can still be told from a deliberate close.
    pub fn basic_close(&self) {
        // The monitor, heartbeat and reconnect threads all wake on the
        // shutdown and the closed slot: nothing else to wake.
        self.ep.close(Intent::Keep);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.ep.is_closed()
    }
}

/// Writes a heartbeat line every `period` while connected, until closed;
/// while the link is down it sleeps until the next connection.
fn send_heartbeats(ep: &Endpoint, period: Duration) {
    let mut seen = 0;
    while let Some((_, epoch)) = ep.slot.next_connection(seen) {
        seen = epoch;
        while ep.slot.is_current(epoch) {
            if let Err(e) = ep.write_raw_line(Wait::Block, HEARTBEAT) {
                log::debug!("{}: heartbeat not sent: {e}", ep.log_name);
            }
            if ep.slot.wait_closed(period) {
                return;
            }
        }
    }
}

impl_link!(Client, |me| me.ep, Wait::Block);

impl Drop for Client {
    fn drop(&mut self) {
        if self.owner {
            self.close();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.ep.name())
            .field("host", &self.target.host)
            .field("port", &self.target.port)
            .field("connected", &self.ep.connected())
            .finish()
    }
}
