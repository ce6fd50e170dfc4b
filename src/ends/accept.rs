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
    #[cfg(feature = "tls")]
    pub(crate) handshakes: Handshakes,
}

/// The TLS handshakes under way, each on a thread of its own: a copy of
/// each one's socket, so that `stop` can end them (a client that sends
/// nothing would hold `close` for the whole handshake timeout), and their
/// count, capped at [`MAX_TLS_HANDSHAKES`](crate::MAX_TLS_HANDSHAKES).
#[cfg(feature = "tls")]
#[derive(Default)]
pub(crate) struct Handshakes {
    /// The next handshake's number, and the sockets of those under way.
    running: Mutex<(u64, Vec<(u64, std::net::TcpStream)>)>,
}

#[cfg(feature = "tls")]
impl Handshakes {
    /// Registers a handshake on `stream`: its number, or why it may not
    /// start. `stopping` is read under the lock `stop_all` takes, so a
    /// handshake registered after it ran saw the flag up.
    fn begin(
        &self,
        stream: &std::net::TcpStream,
        stopping: &AtomicBool,
    ) -> std::result::Result<u64, String> {
        let mut running = self.running.lock();
        if stopping.load(Ordering::Acquire) {
            return Err("the server is closing".into());
        }
        if running.1.len() >= crate::config::MAX_TLS_HANDSHAKES {
            return Err(format!(
                "{} TLS handshakes are under way already",
                running.1.len()
            ));
        }
        let copy = stream
            .try_clone()
            .map_err(|e| format!("cannot keep its socket: {e}"))?;
        let id = running.0;
        running.0 += 1;
        running.1.push((id, copy));
        Ok(id)
    }

    fn end(&self, id: u64) {
        self.running.lock().1.retain(|(n, _)| *n != id);
    }

    /// Shuts down the socket of every handshake under way: each ends at
    /// once with an error (on Unix; on Windows a shutdown does not wake a
    /// blocked read, and a handshake there ends at its timeout).
    fn stop_all(&self) {
        for (_, stream) in self.running.lock().1.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
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
        #[cfg(feature = "tls")]
        self.handshakes.stop_all();
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
            let id = match self.handshakes.begin(&stream, &self.stopping) {
                Ok(id) => id,
                Err(why) => {
                    self.reject(peer, &why);
                    return;
                }
            };
            let (listening, config) = (self.clone(), config.clone());
            let timeout = self.ep.config.tls_handshake_timeout;
            let spawned = self.ep.spawn("tls", move || {
                let shaken = super::tls::accept(&config, stream, peer, timeout);
                listening.handshakes.end(id);
                match shaken {
                    Ok(conn) => listening.take(conn),
                    Err((e, stream)) => {
                        listening.reject(peer, &format!("TLS handshake failed: {e}"));
                        drop(stream);
                    }
                }
            });
            if let Err(e) = spawned {
                self.handshakes.end(id);
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
