//! `OneClientServer`: listens, serves one client at a time, turns the
//! others away.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use socket2::Socket;

use super::admission::{Allowlist, PeerPredicate, SlotPolicy};
use super::builder::{sealed, Builder, ServerBuilder};
use crate::config::{DEFAULT_BACKLOG, DEFAULT_LOCALHOST};
use crate::error::{Error, Result};
use crate::link::connection::Connection;
use crate::link::endpoint::{Endpoint, Intent, Takeover};
use crate::link::slot::Waited;
use crate::link::socket;
use crate::link::stats::Counters;
use crate::link::transport::Tcp;
use crate::link::{api::impl_link, DisconnectReason, Wait};

type ServerCallback = Box<dyn FnMut(&OneClientServer, bool) + Send>;

/// What a [`ServerBuilder`] holds beside the link's settings.
pub struct ServerSide {
    host: Option<String>,
    port: u16,
    backlog: i32,
    callback: Option<ServerCallback>,
    /// CIDR text, parsed by `start()`.
    allow: Vec<String>,
    allow_peer: Vec<PeerPredicate>,
    slot_policy: SlotPolicy,
    listeners: Vec<TcpListener>,
    reuse_port: bool,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::ServerTls>,
}

impl Default for ServerSide {
    fn default() -> Self {
        ServerSide {
            host: Some(DEFAULT_LOCALHOST.to_owned()),
            port: 0,
            backlog: DEFAULT_BACKLOG,
            callback: None,
            allow: Vec::new(),
            allow_peer: Vec::new(),
            slot_policy: SlotPolicy::default(),
            listeners: Vec::new(),
            reuse_port: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// The ends that serve one client: [`ServerBuilder`] and
/// [`ReadLoopServerBuilder`](crate::ReadLoopServerBuilder) share these
/// settings.
pub trait ServesOne: sealed::Sealed {
    #[doc(hidden)]
    fn server_side(&mut self) -> &mut ServerSide;
}

impl ServesOne for ServerSide {
    fn server_side(&mut self) -> &mut ServerSide {
        self
    }
}

impl<S: ServesOne> Builder<S> {
    /// Address to listen on: an IP address or a host name (every address
    /// it resolves to is bound). Default:
    /// [`DEFAULT_LOCALHOST`](crate::DEFAULT_LOCALHOST).
    pub fn host(mut self, host: &str) -> Self {
        self.side.server_side().host = Some(host.to_owned());
        self
    }

    /// Listen on every interface, on an IPv4 and an IPv6 socket (Python's
    /// `host=None`). With port 0 each socket gets its own port, so
    /// [`OneClientServer::port`] is 0: see
    /// [`OneClientServer::local_addrs`].
    pub fn any_host(mut self) -> Self {
        self.side.server_side().host = None;
        self
    }

    /// Port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.side.server_side().port = port;
        self
    }

    /// Pending connections the listener queues. Default:
    /// [`DEFAULT_BACKLOG`](crate::DEFAULT_BACKLOG) (128).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.side.server_side().backlog = backlog;
        self
    }

    /// Serves TLS with `config` (feature `tls`): every client must
    /// complete a handshake, within the
    /// [`tls_handshake_timeout`](Builder::tls_handshake_timeout), on a
    /// thread of its own (a client that sends nothing never holds up the
    /// next). Client certificates are required when `config` says so. A
    /// failed handshake is counted in `connections_rejected` and logged
    /// with the peer and the reason; the served client is undisturbed.
    /// Default: plain TCP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.side.server_side().tls = Some(super::tls::ServerTls::Config(config));
        self
    }

    /// [`tls`](Self::tls) with a configuration made from PEM files when
    /// the server starts (see
    /// [`tls::server_config_from_pem`](crate::tls::server_config_from_pem)):
    /// the certificate chain, its key and, for mutual TLS, the CA that
    /// client certificates must come from.
    #[cfg(feature = "tls")]
    pub fn tls_from_pem(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
        client_ca: Option<std::path::PathBuf>,
    ) -> Self {
        self.side.server_side().tls = Some(super::tls::ServerTls::Pem {
            cert: cert.into(),
            key: key.into(),
            client_ca,
        });
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
        self.side.server_side().callback = Some(Box::new(callback));
        self
    }

    /// Allows peers whose address is in `cidr`: an IPv4 or IPv6 range
    /// such as `"10.0.0.0/8"`, `"127.0.0.1/32"` or `"::1/128"`, or a bare
    /// address for one host. Repeatable: each range (and each
    /// [`allow_peer`](Self::allow_peer) predicate) adds to what is
    /// allowed, and a peer is allowed if any of them allows it. An IPv4
    /// peer on an IPv6 socket (`::ffff:a.b.c.d`) is matched as IPv4.
    ///
    /// A peer that is not allowed is closed as soon as it is accepted (it
    /// sees end of file), before it can take the slot, so the served
    /// client is never disturbed; it is counted in
    /// [`Stats::connections_refused`](crate::Stats::connections_refused)
    /// and logged at WARN with its address and why. A range that does
    /// not parse, or has bits set past its prefix (`"10.0.0.1/8"`), makes
    /// `start()` fail with [`Error::InvalidArgument`]. Default: no range
    /// and no predicate, everyone is allowed.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder()
    ///     .allow("127.0.0.1/32")
    ///     .allow("10.0.0.0/8")
    ///     .start()?;
    /// assert!(OneClientServer::builder().allow("10.0.0.0/33").start().is_err());
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn allow(mut self, cidr: &str) -> Self {
        self.side.server_side().allow.push(cidr.to_owned());
        self
    }

    /// Allows the peers for which `allowed` returns true, given the
    /// peer's address as accepted. Repeatable, and adds to the
    /// [`allow`](Self::allow) ranges: a peer is allowed if any range or
    /// predicate allows it (a predicate is only asked when no range
    /// does). It runs on the accept thread, with no lock held, before the
    /// next connection is accepted: keep it quick. A predicate that panics
    /// refuses the peer (the panic is noted in the log). A refused peer is
    /// handled as `allow` says. Default: none.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder()
    ///     .allow_peer(|peer| peer.ip().is_loopback())
    ///     .start()?;
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn allow_peer<F>(mut self, allowed: F) -> Self
    where
        F: Fn(SocketAddr) -> bool + Send + Sync + 'static,
    {
        self.side.server_side().allow_peer.push(Arc::new(allowed));
        self
    }

    /// What a client that connects while another is served does: see
    /// [`SlotPolicy`]. Peers the allowlist refuses never get this far.
    /// Default: [`SlotPolicy::RejectNew`], the new client is closed at
    /// once (as in Python).
    pub fn slot_policy(mut self, policy: SlotPolicy) -> Self {
        self.side.server_side().slot_policy = policy;
        self
    }

    /// Serves connections from `listener`, a listening socket the caller
    /// already holds (socket activation, a test that reserved its port),
    /// instead of binding one. Repeatable: each call adds a socket, each
    /// served by an accept thread of its own. With any listener given,
    /// [`host`](Self::host), [`any_host`](Self::any_host),
    /// [`port`](Self::port), [`backlog`](Self::backlog) and
    /// [`reuse_port`](Self::reuse_port) are ignored (the socket is bound
    /// and listening already); [`OneClientServer::host`] is then the
    /// first listener's IP address. The listener is set to blocking mode;
    /// one that is not listening makes `start()` fail with
    /// [`Error::InvalidArgument`] where the system can tell (Linux,
    /// Android, FreeBSD). `close()` closes it. Default: none, the server
    /// binds its own.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let server = OneClientServer::builder().listener(listener).start()?;
    /// assert_eq!(server.local_addrs(), vec![addr]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.side.server_side().listeners.push(listener);
        self
    }

    /// Sets SO_REUSEPORT on the listening sockets, so that several (in
    /// this process or another of the same user) may listen on one
    /// address and port; the system spreads new connections between them
    /// (Linux balances them; other systems differ). Every Unix but
    /// Solaris and illumos has it; elsewhere (Windows) `true`
    /// makes `start()` fail with [`Error::InvalidArgument`] rather than
    /// leave a second server to fail with "address in use". Ignored with a
    /// [`listener`](Self::listener). Default: false.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.side.server_side().reuse_port = on;
        self
    }
}

impl ServerBuilder {
    /// Binds and starts listening; returns once connections are accepted.
    /// A port in use is [`Error::Io`](crate::Error::Io), naming the address.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder()
    ///     .host(LOCALHOST_IPV4)
    ///     .port(0)
    ///     .name("Commands")
    ///     .connect_callback(|server, connected| log::info!("{}: {connected}", server.name()))
    ///     .start()?;
    /// assert_ne!(server.port(), 0);
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn start(self) -> Result<OneClientServer> {
        let Builder { link, side } = self;
        link.validate()?;
        #[cfg(feature = "tls")]
        let tls = side.tls.map(super::tls::ServerTls::resolve).transpose()?;
        let allowlist = Allowlist::new(&side.allow, side.allow_peer)?;
        let takeover = match side.slot_policy {
            SlotPolicy::RejectNew => Takeover::IfDead,
            SlotPolicy::ReplaceOld => Takeover::Always,
        };
        let (listeners, host) = if side.listeners.is_empty() {
            let addrs = socket::listen_addrs(side.host.as_deref(), side.port)?;
            let listeners = match side.reuse_port {
                true => socket::bind_listeners_reusing_port(&addrs, side.backlog)?,
                false => socket::bind_listeners(&addrs, side.backlog)?,
            };
            (listeners, side.host)
        } else {
            let adopted = side
                .listeners
                .into_iter()
                .map(socket::adopt_listener)
                .collect::<Result<Vec<_>>>()?;
            let host = adopted.first().map(|(_, addr)| addr.ip().to_string());
            (adopted.into_iter().map(|(l, _)| l).collect(), host)
        };
        let local_addrs: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok().and_then(|a| a.as_socket()))
            .collect();
        // As in Python: a port picked per socket is ambiguous with several.
        let port = match local_addrs.as_slice() {
            [one] => one.port(),
            _ => side.port,
        };
        let place = match local_addrs.as_slice() {
            [one] => one.to_string(),
            _ => format!("port {port}"),
        };
        let ep = Arc::new(Endpoint::new("OneClientServer", &place, link));
        let listening = Arc::new(Listening {
            ep: ep.clone(),
            host,
            allowlist,
            takeover,
            port,
            local_addrs,
            listeners: Mutex::new(listeners.into_iter().map(Arc::new).collect()),
            stopping: AtomicBool::new(false),
            accepting: AtomicUsize::new(0),
            released: crossbeam_channel::unbounded(),
            #[cfg(feature = "tls")]
            tls,
        });
        let server = OneClientServer {
            ep,
            listening,
            owner: true,
        };
        // On error, dropping `server` closes what was started.
        server.spawn_threads(side.callback)?;
        log::info!(
            "{}: listening on {:?}",
            server.ep.log_name,
            server.listening.local_addrs
        );
        Ok(server)
    }
}

/// A TCP/IP server that serves a single client; others are accepted and
/// closed at once (they see end of file), unless
/// [`SlotPolicy::ReplaceOld`](crate::SlotPolicy::ReplaceOld) lets a new
/// one replace it. Peers outside the allowlist
/// ([`allow`](Builder::allow)) are closed before either.
///
/// Share it between threads with `Arc`; every method takes `&self`. The
/// read and write methods are those of [`Link`](crate::Link). Dropping the
/// server closes it.
///
/// Threads: one accepting per listening socket, a monitor (unless the
/// interval is zero) and one for the callback (if one is set); `close()`
/// joins them all.
pub struct OneClientServer {
    /// Also in `listening`, where the accept threads reach it.
    pub(crate) ep: Arc<Endpoint>,
    listening: Arc<Listening>,
    /// False for the view handed to the callback, whose drop closes nothing.
    owner: bool,
}

/// What the accept threads share with the server.
struct Listening {
    ep: Arc<Endpoint>,
    host: Option<String>,
    allowlist: Allowlist,
    /// From the slot policy.
    takeover: Takeover,
    port: u16,
    local_addrs: Vec<SocketAddr>,
    listeners: Mutex<Vec<Arc<Socket>>>,
    /// Set by the first `close`: the accept threads return and close their
    /// listening sockets, telling `released` each.
    stopping: AtomicBool,
    accepting: AtomicUsize,
    released: (Sender<()>, Receiver<()>),
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl OneClientServer {
    /// A builder with every default: loopback IPv4, port 0.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The host it was asked to listen on; `None` for every interface.
    /// Started from a [`listener`](Builder::listener): that listener's IP
    /// address.
    pub fn host(&self) -> Option<&str> {
        self.listening.host.as_deref()
    }

    /// The port it listens on; 0 when it listens on several sockets with
    /// ports picked for each (see [`local_addrs`](Self::local_addrs)).
    pub fn port(&self) -> u16 {
        self.listening.port
    }

    /// The address of every listening socket.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listening.local_addrs.clone()
    }

    /// Waits for a client: `Ok` at once if one is connected, else when the
    /// next one connects; [`Error::Timeout`](crate::Error::Timeout) when
    /// `timeout` runs out, [`Error::NotConnected`](crate::Error::NotConnected)
    /// if the server is closed meanwhile (Python's `connected_task`).
    pub fn wait_connected(&self, timeout: Duration) -> Result<()> {
        waited(self.ep.slot.wait_connected(timeout))
    }

    /// Closes the client, if any: it sees end of file, the callback gets
    /// `false`, `should_be_connected()` becomes false, and the server goes
    /// on listening. Idempotent.
    pub fn close_client(&self) {
        self.ep
            .detach_current(DisconnectReason::ClosedLocally, Intent::Clear);
    }

    /// As [`close_client`](Self::close_client), but leaves
    /// `should_be_connected()` as it is.
    pub fn basic_close_client(&self) {
        self.ep
            .detach_current(DisconnectReason::ClosedLocally, Intent::Keep);
    }

    /// Closes the client and the listeners, calls the callback with `false`
    /// if a client was connected, and joins every thread the server started
    /// (waiting for a running callback). The port is free again on return,
    /// except when called from the server's own callback: a thread cannot
    /// join itself, so the owner's `close` (or drop) finishes the job.
    /// Idempotent; dropping the server does the same (Python's `close`
    /// then `done_task`).
    pub fn close(&self) {
        // The port first: a client that reconnects as soon as it is let go
        // must be refused, not queued by a listener that is about to close
        // (on Windows a listening socket takes connections until it is
        // closed; `shutdown` does not stop it).
        self.listening.stop();
        self.ep.close(Intent::Clear, || {});
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.ep.is_closed()
    }

    /// A handle for the callback or a read loop: its drop closes nothing.
    pub(crate) fn view(&self) -> OneClientServer {
        OneClientServer {
            ep: self.ep.clone(),
            listening: self.listening.clone(),
            owner: false,
        }
    }

    fn spawn_threads(&self, callback: Option<ServerCallback>) -> Result<()> {
        let ep = &self.ep;
        if let Some(mut callback) = callback {
            let view = self.view();
            ep.spawn_callback(move |c| callback(&view, c))?;
        }
        ep.spawn_monitor()?;
        for listener in self.listening.listeners.lock().iter() {
            let (listening, listener) = (self.listening.clone(), listener.clone());
            ep.spawn("accept", move || {
                listening.accept_loop(&listener);
                // The last reference: the socket closes here.
                drop(listener);
                let _ = listening.released.0.send(());
            })?;
            self.listening.accepting.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

/// A wait for a connection as the API reports it.
pub(crate) fn waited(waited: Waited) -> Result<()> {
    match waited {
        Waited::Connected => Ok(()),
        Waited::TimedOut => Err(Error::Timeout),
        Waited::Closed => Err(Error::NotConnected),
    }
}

impl Listening {
    /// Stops taking connections, once: wakes every accept thread and waits
    /// (a second at most) until each has returned and closed its socket,
    /// so that the port refuses connections on return.
    fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let listeners = std::mem::take(&mut *self.listeners.lock());
        for listener in &listeners {
            socket::wake_accept(listener);
        }
        drop(listeners);
        for _ in 0..self.accepting.load(Ordering::Acquire) {
            if self
                .released
                .1
                .recv_timeout(Duration::from_secs(1))
                .is_err()
            {
                log::warn!("{}: an accept thread did not return", self.ep.log_name);
                break;
            }
        }
    }

    fn accept_loop(self: &Arc<Self>, listener: &Socket) {
        loop {
            let accepted = listener.accept();
            if self.stopping.load(Ordering::Acquire) || self.ep.is_closed() {
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
                    if self.ep.slot.wait_closed(Duration::from_millis(100)) {
                        return;
                    }
                }
            }
        }
    }

    /// Takes `socket` as the client, or turns it away: at once if the
    /// peer is not allowed, else as the slot policy says; with TLS, after
    /// a handshake on a thread of its own.
    fn offer(self: &Arc<Self>, socket: Socket, peer: SocketAddr) {
        if let Err(why) = self.allowlist.check(peer) {
            // Counted before the peer can see its end of file.
            Counters::add(&self.ep.counters.connections_refused, 1);
            log::warn!("{}: refusing {peer}: {why}", self.ep.log_name);
            // Dropping it closes it: the peer sees end of file.
            drop(socket);
            return;
        }
        let stream = std::net::TcpStream::from(socket);
        if let Err(e) = socket::configure(&stream, &self.ep.config) {
            log::warn!(
                "{}: cannot set socket options for {peer}: {e}",
                self.ep.log_name
            );
        }
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            // No handshake for a client that would be turned away anyway
            // (under the default slot policy).
            if self.takeover == Takeover::IfDead && self.ep.connected() && !self.ep.is_closed() {
                self.reject(peer, "a client is already connected");
                return;
            }
            let (listening, config) = (self.clone(), config.clone());
            let timeout = self.ep.config.tls_handshake_timeout;
            let spawned = self.ep.spawn("tls", move || {
                match super::tls::accept(&config, stream, peer, timeout) {
                    Ok(conn) => listening.take(conn),
                    Err((e, stream)) => {
                        listening.reject(peer, &format!("TLS handshake failed: {e}"));
                        drop(stream);
                    }
                }
            });
            if let Err(e) = spawned {
                self.reject(peer, &format!("no thread for its TLS handshake: {e}"));
            }
            return;
        }
        match Tcp::new(stream) {
            Ok(transport) => self.take(Connection::new(transport, peer)),
            Err(e) => log::warn!("{}: cannot take {peer}: {e}; dropped", self.ep.log_name),
        }
    }

    /// Makes `conn` the client, unless one is connected and the slot
    /// policy keeps it.
    fn take(&self, conn: Connection) {
        let peer = conn.peer();
        if let Err(rejected) = self.ep.attach(Arc::new(conn), self.takeover) {
            self.reject(peer, "a client is already connected");
            // Dropping it closes it: the peer sees end of file.
            drop(rejected);
        }
    }

    /// Counts and logs a peer turned away (before it can see its end of
    /// file: the caller drops it after).
    fn reject(&self, peer: SocketAddr, why: &str) {
        if self.ep.is_closed() {
            log::debug!("{}: closing; dropped {peer}", self.ep.log_name);
            return;
        }
        Counters::add(&self.ep.counters.connections_rejected, 1);
        log::warn!("{}: rejecting {peer}: {why}", self.ep.log_name);
    }
}

impl_link!(OneClientServer, |me| me.ep, Wait::Block);

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
            .field("local_addrs", &self.listening.local_addrs)
            .field("connected", &self.ep.connected())
            .finish()
    }
}
