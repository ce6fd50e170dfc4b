//! The accept threads of a server: each accepted socket is checked
//! against the allowlist, taken through its TLS handshake (on a thread of
//! its own), and offered to the slot, or turned away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use socket2::Socket;

use super::admission::Allowlist;
use crate::link::connection::Connection;
use crate::link::endpoint::{Endpoint, Takeover};
use crate::link::socket;
use crate::link::stats::Counters;
use crate::link::transport::Tcp;

/// What the accept threads share with the server.
pub(crate) struct Listening {
    pub(crate) ep: Arc<Endpoint>,
    pub(crate) host: Option<String>,
    pub(crate) allowlist: Allowlist,
    /// From the slot policy.
    pub(crate) takeover: Takeover,
    pub(crate) port: u16,
    pub(crate) local_addrs: Vec<SocketAddr>,
    pub(crate) listeners: Mutex<Vec<Arc<Socket>>>,
    /// Set by the first `close`: the accept threads return and close their
    /// listening sockets, telling `released` each.
    pub(crate) stopping: AtomicBool,
    pub(crate) accepting: AtomicUsize,
    pub(crate) released: (Sender<()>, Receiver<()>),
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Listening {
    /// Runs one accept thread on `listener`, and closes it (the last
    /// reference) when the thread returns.
    pub(crate) fn serve(self: &Arc<Self>, listener: Arc<Socket>) {
        self.accept_loop(&listener);
        drop(listener);
        let _ = self.released.0.send(());
    }

    /// Stops taking connections, once: wakes every accept thread and waits
    /// (a second at most) until each has returned and closed its socket,
    /// so that the port refuses connections on return.
    pub(crate) fn stop(&self) {
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
            if self.takeover == Takeover::IfDead
                && self.ep.holds_live_peer()
                && !self.ep.is_closed()
            {
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
