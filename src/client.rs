//! `Client`: connects to a server, optionally sends heartbeats.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    link_setters, monitor_setter, LinkConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCALHOST, HEARTBEAT,
};
use crate::connection::Connection;
use crate::endpoint::Endpoint;
use crate::link::sealed::Sealed;
use crate::reconnect::{self, Backoff, Target};
use crate::{net, Error, Link, Result};

type ClientCallback = Box<dyn FnMut(&Client, bool) + Send>;

/// Configures and connects a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use ts_tcpip::*;
/// let server = OneClientServer::builder().start()?;
/// let client = Client::builder()
///     .host(LOCALHOST_IPV4)
///     .port(server.port())
///     .heartbeat(Some(Duration::from_secs(1)))
///     .connect()?;
/// assert!(client.connected());
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[must_use = "a builder does nothing until connect()"]
pub struct ClientBuilder {
    host: String,
    port: u16,
    connect_timeout: Duration,
    heartbeat: Option<Duration>,
    reconnect: Option<Backoff>,
    config: LinkConfig,
    callback: Option<ClientCallback>,
}

impl ClientBuilder {
    /// Server address: an IP address or a host name. Default:
    /// [`DEFAULT_LOCALHOST`](crate::DEFAULT_LOCALHOST).
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_owned();
        self
    }

    /// Server port; must be set (0 is refused by `connect`).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long `connect` (and each reconnect attempt) tries, every
    /// address of the host together; resolving the host name is not
    /// bounded by it (the system resolver takes no timeout). Zero is
    /// refused by `connect`. Default:
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT) (10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// With `Some(period)`, a named thread writes
    /// [`HEARTBEAT`](crate::HEARTBEAT) plus the terminator every `period`
    /// while connected, for a read-loop server's heartbeat monitor.
    /// Default: `None`.
    pub fn heartbeat(mut self, period: Option<Duration>) -> Self {
        self.heartbeat = period;
        self
    }

    /// After the link drops, a named thread connects again, backing off
    /// as `backoff` says, until it succeeds or the client is closed; the
    /// callback and `events()` hear of each change. While down, reads and
    /// writes fail at once with [`Error::NotConnected`]. `close()` stops it
    /// (waiting for an attempt in progress, at most the connect timeout).
    /// The first `connect()` still fails if nobody listens. Default: off.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// Called on its own thread with `true` on connecting and `false` when
    /// the link ends, once per change, in order. A panic in it is logged;
    /// it may call `close()`. Default: none.
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&Client, bool) + Send + 'static,
    {
        self.callback = Some(Box::new(callback));
        self
    }

    monitor_setter!(config);
    link_setters!(config);

    /// Connects; returns once connected (Python's `start_task`). Nobody
    /// listening is [`Error::Io`](crate::Error::Io) (connection refused),
    /// a silent host [`Error::Io`](crate::Error::Io) (timed out).
    pub fn connect(self) -> Result<Client> {
        self.config.validate()?;
        if self.port == 0 {
            return Err(Error::InvalidArgument("the client needs a port".into()));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "the connect timeout must be above zero".into(),
            ));
        }
        if self.heartbeat.is_some_and(|p| p.is_zero()) {
            return Err(Error::InvalidArgument(
                "the heartbeat period must be above zero".into(),
            ));
        }
        if self
            .reconnect
            .is_some_and(|b| b.initial.is_zero() || b.initial > b.max)
        {
            return Err(Error::InvalidArgument(
                "the reconnect backoff needs 0 < initial <= max".into(),
            ));
        }
        let stream = net::connect(&self.host, self.port, self.connect_timeout)?;
        net::configure(&stream, &self.config)?;
        let peer = stream.peer_addr()?;
        let client = Client::new(Endpoint::new("Client", self.config), self.host, self.port);
        // The callback thread first, so that it hears of the connection.
        if let Some(mut callback) = self.callback {
            let view = client.view();
            client.ep.spawn_callback(move |c| callback(&view, c))?;
        }
        // A fresh endpoint takes its first connection.
        let _ = client
            .ep
            .attach(Arc::new(Connection::new(stream, peer)), false);
        client.ep.spawn_monitor()?;
        if let Some(period) = self.heartbeat {
            let ep = client.ep.clone();
            client
                .ep
                .spawn("heartbeat", move || send_heartbeats(&ep, period))?;
        }
        if let Some(backoff) = self.reconnect {
            let ep = client.ep.clone();
            let target = Target {
                host: client.shared.host.clone(),
                port: client.shared.port,
                connect_timeout: self.connect_timeout,
            };
            client
                .ep
                .spawn("reconnect", move || reconnect::run(&ep, &target, backoff))?;
        }
        Ok(client)
    }
}

/// A TCP/IP client of a server. Share it between threads with `Arc`; the
/// read and write methods are those of [`Link`]. Dropping it closes it.
pub struct Client {
    ep: Arc<Endpoint>,
    shared: Arc<Shared>,
    /// False for the view handed to the callback, whose drop closes nothing.
    owner: bool,
}

struct Shared {
    host: String,
    port: u16,
}

impl Client {
    fn new(ep: Endpoint, host: String, port: u16) -> Client {
        Client {
            ep: Arc::new(ep),
            shared: Arc::new(Shared { host, port }),
            owner: true,
        }
    }

    /// The callback's handle: its drop closes nothing.
    fn view(&self) -> Client {
        Client {
            ep: self.ep.clone(),
            shared: self.shared.clone(),
            owner: false,
        }
    }

    /// A builder with every default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            host: DEFAULT_LOCALHOST.to_owned(),
            port: 0,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            heartbeat: None,
            reconnect: None,
            config: LinkConfig::default(),
            callback: None,
        }
    }

    /// A client that is closed from the start (Python's `host=""`): every
    /// read and write fails with [`Error::NotConnected`]. A placeholder for
    /// a field that has no connection yet.
    pub fn closed() -> Client {
        let ep = Endpoint::new("Client", LinkConfig::default());
        ep.shut();
        Client::new(ep, String::new(), 0)
    }

    /// The server host it was given (empty for [`Client::closed`]).
    pub fn host(&self) -> &str {
        &self.shared.host
    }

    /// The server port it was given (0 for [`Client::closed`]).
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Closes the connection, stops and joins every thread (waiting for a
    /// running callback, which gets `false` if connected) and makes
    /// `should_be_connected()` false. Idempotent; dropping does the same.
    pub fn close(&self) {
        self.ep.set_should_be_connected(false);
        self.basic_close();
    }

    /// As [`close`](Self::close), but leaves `should_be_connected()` as it
    /// is, so an unexpected loss can still be told from a deliberate close.
    pub fn basic_close(&self) {
        // The monitor, heartbeat and reconnect threads all wake on the
        // shutdown and the closed slot: nothing else to wake.
        self.ep.close(|| {});
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
    while let Some((_, epoch)) = ep.next_connection(seen) {
        seen = epoch;
        while ep.is_current(epoch) {
            let sent = ep.write_with(|w, codec| {
                w.write_built(|buf| {
                    buf.extend_from_slice(HEARTBEAT);
                    buf.extend_from_slice(codec.terminator());
                    Ok(())
                })
            });
            if let Err(e) = sent {
                log::debug!("{}: heartbeat not sent: {e}", ep.log_name);
            }
            if ep.wait_closed(period) {
                return;
            }
        }
    }
}

impl Sealed for Client {
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}

impl Link for Client {}

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
            .field("host", &self.shared.host)
            .field("port", &self.shared.port)
            .field("connected", &self.connected())
            .finish()
    }
}
