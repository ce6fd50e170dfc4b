//! `OneClientServer`: listens, serves one client at a time, turns the
//! others away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use socket2::Socket;

use crate::config::{link_setters, monitor_setter, LinkConfig, DEFAULT_BACKLOG, DEFAULT_LOCALHOST};
use crate::connection::Connection;
use crate::endpoint::Endpoint;
use crate::events::DisconnectReason;
use crate::link::sealed::Sealed;
use crate::stats::Counters;
use crate::{net, Link, Result};

type ServerCallback = Box<dyn FnMut(&OneClientServer, bool) + Send>;

/// Configures and starts a [`OneClientServer`].
///
/// ```
/// use ts_tcpip::*;
/// let server = OneClientServer::builder()
///     .host(LOCALHOST_IPV4)
///     .port(0)
///     .name("Commands")
///     .connect_callback(|server, connected| log::info!("{}: {connected}", server.name()))
///     .start()?;
/// assert_ne!(server.port(), 0);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[must_use = "a builder does nothing until start()"]
pub struct ServerBuilder {
    host: Option<String>,
    port: u16,
    backlog: i32,
    pub(crate) config: LinkConfig,
    callback: Option<ServerCallback>,
}

impl ServerBuilder {
    /// Address to listen on: an IP address or a host name (every address
    /// it resolves to is bound). Default:
    /// [`DEFAULT_LOCALHOST`](crate::DEFAULT_LOCALHOST).
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    /// Listen on every interface, on an IPv4 and an IPv6 socket (Python's
    /// `host=None`). With port 0 each socket gets its own port, so
    /// [`OneClientServer::port`] is 0: see
    /// [`OneClientServer::local_addrs`].
    pub fn any_host(mut self) -> Self {
        self.host = None;
        self
    }

    /// Port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Pending connections the listener queues. Default:
    /// [`DEFAULT_BACKLOG`](crate::DEFAULT_BACKLOG) (128).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Called on its own thread with `true` when a client connects and
    /// `false` when it goes, once per change, in order. A panic in it is
    /// logged and changes nothing else; it may call `close()` or
    /// `close_client()`. Default: none.
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&OneClientServer, bool) + Send + 'static,
    {
        self.callback = Some(Box::new(callback));
        self
    }

    monitor_setter!(config);
    link_setters!(config);

    /// Binds and starts listening; returns once connections are accepted.
    /// A port in use is [`Error::Io`](crate::Error::Io).
    pub fn start(self) -> Result<OneClientServer> {
        self.config.validate()?;
        let addrs = net::listen_addrs(self.host.as_deref(), self.port)?;
        let listeners = net::bind_listeners(&addrs, self.backlog)?;
        let local_addrs: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok().and_then(|a| a.as_socket()))
            .collect();
        // As in Python: a port picked per socket is ambiguous with several.
        let port = match local_addrs.as_slice() {
            [one] => one.port(),
            _ => self.port,
        };
        let shared = Arc::new(Shared {
            ep: Arc::new(Endpoint::new("OneClientServer", self.config)),
            host: self.host,
            port,
            local_addrs,
            listeners: Mutex::new(listeners.into_iter().map(Arc::new).collect()),
        });
        let server = OneClientServer {
            ep: shared.ep.clone(),
            shared,
            owner: true,
        };
        // On error, dropping `server` closes what was started.
        server.spawn_threads(self.callback)?;
        log::info!(
            "{}: listening on {:?}",
            server.ep.log_name,
            server.shared.local_addrs
        );
        Ok(server)
    }
}

/// A TCP/IP server that serves a single client; others are accepted and
/// closed at once (they see end of file).
///
/// Share it between threads with `Arc`; every method takes `&self`. The
/// read and write methods are those of [`Link`]. Dropping the server
/// closes it.
///
/// Threads: one accepting per listening socket, a monitor (unless the
/// interval is zero) and one for the callback (if one is set); `close()`
/// joins them all.
pub struct OneClientServer {
    /// Also in `shared`, where the accept threads reach it.
    ep: Arc<Endpoint>,
    shared: Arc<Shared>,
    /// False for the view handed to the callback, whose drop closes nothing.
    owner: bool,
}

struct Shared {
    ep: Arc<Endpoint>,
    host: Option<String>,
    port: u16,
    local_addrs: Vec<SocketAddr>,
    listeners: Mutex<Vec<Arc<Socket>>>,
}

impl OneClientServer {
    /// A builder with every default: loopback IPv4, port 0.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            host: Some(DEFAULT_LOCALHOST.to_owned()),
            port: 0,
            backlog: DEFAULT_BACKLOG,
            config: LinkConfig::default(),
            callback: None,
        }
    }

    /// The host it was asked to listen on; `None` for every interface.
    pub fn host(&self) -> Option<&str> {
        self.shared.host.as_deref()
    }

    /// The port it listens on; 0 when it listens on several sockets with
    /// ports picked for each (see [`local_addrs`](Self::local_addrs)).
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The address of every listening socket.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.local_addrs.clone()
    }

    /// Waits for a client: `Ok` at once if one is connected, else when the
    /// next one connects; [`Error::Timeout`](crate::Error::Timeout) when
    /// `timeout` runs out, [`Error::NotConnected`](crate::Error::NotConnected)
    /// if the server is closed meanwhile (Python's `connected_task`).
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        self.ep.wait_connected(timeout)
    }

    /// Closes the client, if any: it sees end of file, the callback gets
    /// `false`, `should_be_connected()` becomes false, and the server goes
    /// on listening. Idempotent.
    pub fn close_client(&self) {
        self.ep.set_should_be_connected(false);
        self.basic_close_client();
    }

    /// As [`close_client`](Self::close_client), but leaves
    /// `should_be_connected()` as it is.
    pub fn basic_close_client(&self) {
        self.ep.detach_current(DisconnectReason::ClosedLocally);
    }

    /// Closes the client and the listeners, calls the callback with `false`
    /// if a client was connected, and joins every thread the server started
    /// (waiting for a running callback). The port is free again on return,
    /// except when called from the server's own callback: a thread cannot
    /// join itself, so the owner's `close` (or drop) finishes the job.
    /// Idempotent; dropping the server does the same (Python's `close`
    /// then `done_task`).
    pub fn close(&self) {
        self.ep.set_should_be_connected(false);
        self.ep.close(|| {
            for listener in self.shared.listeners.lock().iter() {
                net::wake_accept(listener);
            }
        });
        // The accepting threads are gone: dropping the sockets frees the port.
        self.shared.listeners.lock().clear();
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.ep.is_closed()
    }

    pub(crate) fn endpoint_arc(&self) -> Arc<Endpoint> {
        self.ep.clone()
    }

    fn spawn_threads(&self, callback: Option<ServerCallback>) -> Result<()> {
        let ep = &self.ep;
        if let Some(mut callback) = callback {
            let view = OneClientServer {
                ep: self.ep.clone(),
                shared: self.shared.clone(),
                owner: false,
            };
            ep.spawn_callback(move |c| callback(&view, c))?;
        }
        ep.spawn_monitor()?;
        for listener in self.shared.listeners.lock().iter() {
            let (shared, listener) = (self.shared.clone(), listener.clone());
            ep.spawn("accept", move || shared.accept_loop(&listener))?;
        }
        Ok(())
    }
}

impl Shared {
    fn accept_loop(&self, listener: &Socket) {
        loop {
            let accepted = listener.accept();
            if self.ep.is_closed() {
                return;
            }
            match accepted {
                Ok((socket, addr)) => match addr.as_socket() {
                    Some(peer) => self.offer(socket, peer),
                    None => log::warn!("{}: accepted a non-IP peer; dropped", self.ep.log_name),
                },
                Err(e) => {
                    // Out of descriptors and the like: pace the retries.
                    log::warn!("{}: accept failed: {e}", self.ep.log_name);
                    if self.ep.wait_closed(Duration::from_millis(100)) {
                        return;
                    }
                }
            }
        }
    }

    /// Takes `socket` as the client, or turns it away if one is connected.
    fn offer(&self, socket: Socket, peer: SocketAddr) {
        let stream = std::net::TcpStream::from(socket);
        if let Err(e) = net::configure(&stream, &self.ep.config) {
            log::warn!(
                "{}: cannot set socket options for {peer}: {e}",
                self.ep.log_name
            );
        }
        if let Err(rejected) = self
            .ep
            .attach(Arc::new(Connection::new(stream, peer)), true)
        {
            // Dropping it closes it: the caller sees end of file.
            drop(rejected);
            if self.ep.is_closed() {
                log::debug!("{}: closing; dropped {peer}", self.ep.log_name);
                return;
            }
            Counters::add(&self.ep.counters.connections_rejected, 1);
            log::warn!(
                "{}: rejecting {peer}: a client is already connected",
                self.ep.log_name
            );
        }
    }
}

impl Sealed for OneClientServer {
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
}

impl Link for OneClientServer {}

impl Drop for OneClientServer {
    fn drop(&mut self) {
        if self.owner {
            self.close();
        }
    }
}

impl std::fmt::Debug for OneClientServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneClientServer")
            .field("name", &self.ep.name())
            .field("local_addrs", &self.shared.local_addrs)
            .field("connected", &self.connected())
            .finish()
    }
}
