//! `OneClientServer`: listens, serves one client at a time, turns the
//! others away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::accept::Listening;
use super::admission::{Allowlist, SlotPolicy};
use super::builder::{Builder, ServerBuilder};
use super::server_options::ServerCallback;
use crate::error::Result;
use crate::link::api::{sealed, LinkRef};
use crate::link::endpoint::{Endpoint, Intent, Takeover};
use crate::link::{monitor, socket, DisconnectReason, Link};

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
        let server = OneClientServer {
            ep,
            listening,
            owner: true,
        };
        // On error, dropping `server` closes what was started.
        server.spawn_threads(side.callback)?;
        log::info!(
            "{}: listening on {:?}",
            server.ep.log_name(),
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
/// interval is zero), one for the callback (if one is set) and, with TLS,
/// one per handshake under way; `close()` joins them all.
pub struct OneClientServer {
    /// Also in `listening`, where the accept threads reach it.
    pub(crate) ep: Arc<Endpoint>,
    listening: Arc<Listening>,
    /// False for the view handed to the callback, whose drop closes nothing.
    owner: bool,
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
        self.ep.wait_connected(timeout)
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

    /// Closes the client and the listeners, ends the TLS handshakes under
    /// way, calls the callback with `false` if a client was connected, and
    /// joins every thread the server started (waiting for a running
    /// callback). The port is free again on return,
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
        self.ep.close(Intent::Clear);
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
        monitor::spawn(ep)?;
        for listener in self.listening.listeners.lock().iter() {
            let (listening, listener) = (self.listening.clone(), listener.clone());
            ep.spawn("accept", move || listening.serve(listener))?;
            self.listening.accepting.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

impl sealed::Sealed for OneClientServer {}

impl Link for OneClientServer {
    #[inline]
    fn link(&self) -> LinkRef<'_> {
        LinkRef::new(&self.ep)
    }
}

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
