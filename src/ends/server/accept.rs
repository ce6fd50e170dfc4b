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
#[cfg(feature = "tls")]
use crate::link::socket::Wake;
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

/// The TLS handshakes under way, each on a thread of its own, oldest
/// first: a [`Wake`] for each, so that `stop` can end them all at once (a
/// client that sends nothing would hold `close` for the whole handshake
/// timeout) and a newcomer can end one to make room; their count is
/// capped at [`MAX_TLS_HANDSHAKES`](crate::MAX_TLS_HANDSHAKES).
#[cfg(feature = "tls")]
#[derive(Default)]
pub(crate) struct Handshakes {
    running: Mutex<Running>,
}

#[cfg(feature = "tls")]
#[derive(Default)]
struct Running {
    next: u64,
    list: Vec<Arc<Shaking>>,
}

/// One handshake under way.
#[cfg(feature = "tls")]
pub(crate) struct Shaking {
    id: u64,
    peer: SocketAddr,
    /// Set to end the handshake at once.
    wake: Wake,
    /// Up once the client sent its first byte.
    received: AtomicBool,
    /// Ended to make room for a newer client.
    evicted: AtomicBool,
    /// Disconnected when its thread has ended (the thread holds the
    /// sender), so that a newcomer's thread starts only once the one ended
    /// for it has gone: the threads stay bounded whatever the flood.
    ended: Receiver<()>,
}

/// A handshake registered: its entry, the sender its thread holds until
/// it ends, and the handshake ended to make room for it, if one was.
#[cfg(feature = "tls")]
struct Begun {
    shaking: Arc<Shaking>,
    done: Sender<()>,
    evicted: Option<Arc<Shaking>>,
}

#[cfg(feature = "tls")]
impl Handshakes {
    /// Registers a handshake with `peer`, or says why it may not start.
    /// With [`MAX_TLS_HANDSHAKES`](crate::MAX_TLS_HANDSHAKES) under way,
    /// the oldest of those whose client has sent nothing yet is ended to
    /// make room (the oldest of all if every one has): a real client sends
    /// its hello at once and is done in milliseconds, so connections that
    /// say nothing, however many, cannot keep it out. `stopping` is read
    /// under the lock `stop_all` takes, so a handshake registered after it
    /// ran saw the flag up.
    fn begin(&self, peer: SocketAddr, stopping: &AtomicBool) -> std::result::Result<Begun, String> {
        let wake = Wake::new().map_err(|e| format!("cannot make its wake socket: {e}"))?;
        let mut running = self.running.lock();
        if stopping.load(Ordering::Acquire) {
            return Err("the server is closing".into());
        }
        let mut evicted = None;
        if running.list.len() >= crate::config::MAX_TLS_HANDSHAKES {
            let silent = running
                .list
                .iter()
                .position(|h| !h.received.load(Ordering::Acquire));
            let oldest = running.list.remove(silent.unwrap_or(0));
            oldest.evicted.store(true, Ordering::Release);
            oldest.wake.set();
            evicted = Some(oldest);
        }
        let (done, ended) = crossbeam_channel::bounded(0);
        let shaking = Arc::new(Shaking {
            id: running.next,
            peer,
            wake,
            received: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            ended,
        });
        running.next += 1;
        running.list.push(shaking.clone());
        Ok(Begun {
            shaking,
            done,
            evicted,
        })
    }

    fn end(&self, id: u64) {
        self.running.lock().list.retain(|h| h.id != id);
    }

    /// Ends every handshake under way, at once.
    fn stop_all(&self) {
        for shaking in self.running.lock().list.drain(..) {
            shaking.wake.set();
        }
    }
}

/// Takes a handshake off the list when dropped (at the end of its
/// thread's work, or as that thread unwinds).
#[cfg(feature = "tls")]
struct Listed<'a> {
    handshakes: &'a Handshakes,
    id: u64,
}

#[cfg(feature = "tls")]
impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.handshakes.end(self.id);
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
                log::warn!("{}: an accept thread did not return", self.ep.log_name());
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
                    None => log::warn!("{}: accepted a non-IP peer; dropped", self.ep.log_name()),
                },
                Err(e) => {
                    // Out of descriptors and the like: pace the retries.
                    log::warn!("{}: accept failed: {e}", self.ep.log_name());
                    if self.ep.wait_closed(Duration::from_millis(100)) {
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
            self.ep.count_refused();
            log::warn!("{}: refusing {peer}: {why}", self.ep.log_name());
            // Dropping it closes it: the peer sees end of file.
            drop(socket);
            return;
        }
        let stream = std::net::TcpStream::from(socket);
        if let Err(e) = socket::configure(&stream, self.ep.config()) {
            log::warn!(
                "{}: cannot set socket options for {peer}: {e}",
                self.ep.log_name()
            );
        }
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            self.shake_hands(config, stream, peer);
            return;
        }
        match Tcp::new(stream) {
            Ok(transport) => {
                self.ep
                    .offer(Arc::new(Connection::new(transport, peer)), self.takeover);
            }
            Err(e) => log::warn!("{}: cannot take {peer}: {e}; dropped", self.ep.log_name()),
        }
    }

    /// Runs the TLS handshake with `peer` on a thread of its own, then
    /// offers the connection to the slot.
    #[cfg(feature = "tls")]
    fn shake_hands(
        self: &Arc<Self>,
        config: &Arc<rustls::ServerConfig>,
        stream: std::net::TcpStream,
        peer: SocketAddr,
    ) {
        // No handshake for a client that would be turned away anyway
        // (under the default slot policy).
        if self.takeover == Takeover::IfDead && self.ep.holds_live_peer() && !self.ep.is_closed() {
            self.ep.turned_away(peer, "a client is already connected");
            return;
        }
        let (shaking, done) = match self.handshakes.begin(peer, &self.stopping) {
            Ok(Begun {
                shaking,
                done,
                evicted,
            }) => {
                if let Some(evicted) = evicted {
                    log::warn!(
                        "{}: {} TLS handshakes under way: ending the one with {} to make room for {peer}",
                        self.ep.log_name(),
                        crate::config::MAX_TLS_HANDSHAKES,
                        evicted.peer
                    );
                    // Ended at once; its thread goes when it next runs.
                    let _ = evicted.ended.recv_timeout(Duration::from_secs(1));
                }
                (shaking, done)
            }
            Err(why) => {
                self.ep.turned_away(peer, &why);
                return;
            }
        };
        let (listening, config) = (self.clone(), config.clone());
        let timeout = self.ep.config().tls_handshake_timeout;
        let id = shaking.id;
        let spawned = self.ep.spawn("tls", move || {
            let _done = done;
            // Listed until the thread's work is done (the connection
            // offered or turned away), not only its handshake: the list's
            // cap is then a cap on the threads, whatever the flood.
            let _listed = Listed {
                handshakes: &listening.handshakes,
                id,
            };
            let shaken = crate::ends::tls::accept(
                &config,
                stream,
                peer,
                timeout,
                &shaking.wake,
                &shaking.received,
            );
            match shaken {
                Ok(conn) => {
                    listening.ep.offer(Arc::new(conn), listening.takeover);
                }
                Err((_, stream)) if shaking.evicted.load(Ordering::Acquire) => {
                    listening
                        .ep
                        .turned_away(peer, "TLS handshake ended to make room for a newer client");
                    drop(stream);
                }
                Err((e, stream)) => {
                    listening
                        .ep
                        .turned_away(peer, &format!("TLS handshake failed: {e}"));
                    drop(stream);
                }
            }
        });
        if let Err(e) = spawned {
            self.handshakes.end(id);
            self.ep
                .turned_away(peer, &format!("no thread for its TLS handshake: {e}"));
        }
    }
}
