//! A server's settings and its start: [`ServerBuilder`]. The settings of
//! every end that serves one client (this one and
//! [`ReadLoopServerBuilder`](crate::ReadLoopServerBuilder)) are here too,
//! on [`ServesOne`]: where to listen, who may connect, what happens when
//! the slot is taken, TLS.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use parking_lot::Mutex;

use super::accept::Listening;
use super::admission::{Allowlist, PeerPredicate, SlotPolicy};
use super::OneClientServer;
use crate::config::{LinkConfig, DEFAULT_BACKLOG, DEFAULT_LOCALHOST};
use crate::ends::builder::{sealed, Builder, Monitored};
use crate::error::Result;
use crate::link::endpoint::{Endpoint, Takeover};
use crate::link::socket;

/// Configures a [`OneClientServer`]: the link's settings
/// ([`Builder`]), where to listen and who may connect ([`ServesOne`]),
/// the connect callback and the connection monitor.
pub type ServerBuilder = Builder<ServerSide>;

/// The connect callback as the builder keeps it.
pub(crate) type ServerCallback = Box<dyn FnMut(&OneClientServer, bool) + Send>;

/// What a [`ServerBuilder`](crate::ServerBuilder) holds beside the link's settings.
pub struct ServerSide {
    pub(crate) host: Option<String>,
    pub(crate) port: u16,
    pub(crate) backlog: i32,
    pub(crate) callback: Option<ServerCallback>,
    /// CIDR text, parsed by `start()`.
    pub(crate) allow: Vec<String>,
    pub(crate) allow_peer: Vec<PeerPredicate>,
    pub(crate) slot_policy: SlotPolicy,
    pub(crate) listeners: Vec<TcpListener>,
    pub(crate) reuse_port: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::ends::tls::ServerTls>,
    #[cfg(feature = "tls")]
    pub(crate) tls_client_ca: Option<std::path::PathBuf>,
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
            #[cfg(feature = "tls")]
            tls_client_ca: None,
        }
    }
}

impl sealed::Sealed for ServerSide {}
impl Monitored for ServerSide {}

impl OneClientServer {
    /// A builder with every default: loopback IPv4, port 0.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// The ends that serve one client: [`ServerBuilder`](crate::ServerBuilder) and
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
    /// [`OneClientServer::local_addrs`]. Default: off, the server listens
    /// on [`host`](Self::host).
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
    /// with the peer and the reason; the served client is undisturbed. At
    /// most [`MAX_TLS_HANDSHAKES`](crate::MAX_TLS_HANDSHAKES) run at once:
    /// a client that arrives beyond them ends the oldest handshake whose
    /// client has said nothing yet (counted and logged the same way), so
    /// silent connections can neither pile up threads nor keep a real
    /// client out. `close()` ends the handshakes under way at once.
    /// Default: plain TCP.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.side.server_side().tls = Some(crate::ends::tls::ServerTls::Config(config));
        self
    }

    /// [`tls`](Self::tls) with a configuration made from PEM files when
    /// the server starts: its certificate chain and the chain's private
    /// key (see
    /// [`tls::server_config_from_pem`](crate::tls::server_config_from_pem)).
    /// A file that is missing or holds no certificate or key makes
    /// `start()` fail with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming
    /// it. Default: plain TCP.
    ///
    /// ```no_run
    /// use ts_tcpip::prelude::*;
    /// let server = OneClientServer::builder()
    ///     .port(5000)
    ///     .tls_from_pem("server.pem", "server.key")
    ///     .tls_client_ca("clients-ca.pem") // mutual TLS
    ///     .start()?;
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_from_pem(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.side.server_side().tls = Some(crate::ends::tls::ServerTls::Pem {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Mutual TLS, with [`tls_from_pem`](Self::tls_from_pem): every client
    /// must show a certificate issued by a CA of this PEM file, or its
    /// handshake fails. Without `tls_from_pem` (plain TCP, or a
    /// configuration given to [`tls`](Self::tls), which says itself which
    /// clients it takes) `start()` fails with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument). Default:
    /// none, clients show no certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_ca(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        self.side.server_side().tls_client_ca = Some(ca.into());
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
    /// `start()` fail with [`Error::InvalidArgument`](crate::Error::InvalidArgument). Default: no range
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
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) where the system can tell (Linux,
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
    /// makes `start()` fail with [`Error::InvalidArgument`](crate::Error::InvalidArgument) rather than
    /// leave a second server to fail with "address in use". Ignored with a
    /// [`listener`](Self::listener). Default: false.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.side.server_side().reuse_port = on;
        self
    }
}

impl ServerBuilder {
    /// Called on its own thread with `true` when a client connects and
    /// `false` when it goes, once per change, in order. A panic in it is
    /// logged and changes nothing else; it may call `close()` or
    /// `close_client()`. Default: none.
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&OneClientServer, bool) + Send + 'static,
    {
        self.side.callback = Some(Box::new(callback));
        self
    }

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
        let Builder { link, mut side } = self;
        let callback = side.callback.take();
        let server = listen(link, side)?;
        let callback = callback.map(|mut callback| {
            let view = server.view();
            Box::new(move |connected| callback(&view, connected)) as _
        });
        // On error, dropping `server` closes what was started.
        server.spawn_threads(callback)?;
        Ok(server)
    }
}

/// A server bound and listening, its settings checked, with no thread
/// yet: the caller starts them with `spawn_threads`, once the connect
/// callback (which may need a handle on more than the server, as the
/// read loop's does) can be made.
pub(crate) fn listen(link: LinkConfig, side: ServerSide) -> Result<OneClientServer> {
    link.validate()?;
    #[cfg(feature = "tls")]
    let tls = crate::ends::tls::ServerTls::resolve(side.tls, side.tls_client_ca)?;
    let allowlist = Allowlist::new(&side.allow, side.allow_peer)?;
    let takeover = match side.slot_policy {
        SlotPolicy::RejectNew => Takeover::IfDead,
        SlotPolicy::ReplaceOld => Takeover::Always,
    };
    let (listeners, host) = if side.listeners.is_empty() {
        let addrs = socket::listen_addrs(side.host.as_deref(), side.port)?;
        let listeners = socket::bind_listeners(&addrs, side.backlog, side.reuse_port)?;
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
        #[cfg(feature = "tls")]
        handshakes: Default::default(),
    });
    Ok(OneClientServer {
        ep,
        listening,
        owner: true,
    })
}
