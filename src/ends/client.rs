//! `Client`: connects to a server, optionally sends heartbeats and
//! reconnects.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::builder::ClientBuilder;
use super::reconnect::{self, Backoff};
use crate::config::LinkConfig;
use crate::config::{DEFAULT_CONNECT_TIMEOUT, HEARTBEAT};
use crate::deadline::Deadline;
use crate::error::Result;
use crate::link::api::{sealed, LinkRef};
use crate::link::connection::Connection;
use crate::link::endpoint::{Endpoint, Intent};
use crate::link::monitor;
use crate::link::socket::{self, Wake};
use crate::link::transport::Tcp;
use crate::Link;

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
    /// Set by `close()`: ends a connect attempt or a TLS handshake under
    /// way at once. None for [`Client::closed`], which never connects.
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
    fn cancel(&self) {
        if let Some(wake) = &self.wake {
            wake.set();
        }
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
                wake: None,
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
        monitor::spawn(&self.ep)?;
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
        self.ep.wait_connected(timeout)
    }

    /// Closes the connection, stops and joins every thread and makes
    /// `should_be_connected()` false. Idempotent; dropping does the same.
    ///
    /// It returns at once, whatever is under way: blocked reads and
    /// writes on other threads fail with a connection error, and a
    /// reconnecting client's connect attempt or TLS handshake is ended.
    /// It waits for two things only: a callback that is running (it then
    /// gets `false` if the link was up; a slow callback is the caller's),
    /// and a name lookup under way when the host is a name, not an
    /// address (the system's resolver cannot be interrupted; it gives up
    /// after its own timeouts, a few seconds per server on most systems).
    pub fn close(&self) {
        self.target.cancel();
        self.ep.close(Intent::Clear);
    }

    /// As [`close`](Self::close), but leaves `should_be_connected()` as it
    /// is, so an unexpected loss can still be told from a deliberate close.
    pub fn basic_close(&self) {
        self.target.cancel();
        self.ep.close(Intent::Keep);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.ep.is_closed()
    }
}

/// Writes a heartbeat line every `period` while connected, until closed;
/// while the link is down it sleeps until the next connection. A
/// heartbeat that cannot go out within its period (a peer that stopped
/// reading) is not sent, so the thread never holds the write half longer.
fn send_heartbeats(ep: &Endpoint, period: Duration) {
    let mut seen = 0;
    while let Some((_, epoch)) = ep.next_connection(seen) {
        seen = epoch;
        while ep.is_current(epoch) {
            let deadline = Deadline::after(Some(period));
            if let Err(e) = ep.write_raw_line(deadline, HEARTBEAT) {
                log::debug!("{}: heartbeat not sent: {e}", ep.log_name());
            }
            if ep.wait_closed(period) {
                return;
            }
        }
    }
}

impl sealed::Sealed for Client {}

impl Link for Client {
    #[inline]
    fn link(&self) -> LinkRef<'_> {
        LinkRef::new(&self.ep)
    }
}

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
