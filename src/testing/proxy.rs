//! The fault-injecting proxy: its handle, its accept loop, and the
//! per-direction fault setters.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use socket2::Socket;

use super::capture::{Capture, Direction, Event, Recorder};
use super::faults::{Change, Ending, FaultSet};
use super::pipe::Conn;
use crate::config::{DEFAULT_BACKLOG, DEFAULT_CONNECT_TIMEOUT};
use crate::error::Result;
use crate::link::socket::{bind_listeners, wake_accept};

/// Sits between the program under test and a real peer, and breaks the
/// connection in the ways networks and peers do, each way on its own and
/// changeable while it runs.
///
/// It listens on 127.0.0.1, port 0 ([`addr`](FaultProxy::addr)); for each
/// connection it accepts it connects to the upstream address and forwards
/// bytes both ways, with TCP_NODELAY on both legs. [`to_server`] and
/// [`to_client`] give the [`Faults`] of each direction: latency with
/// jitter, a bandwidth limit, slicing into small segments, holding
/// everything, a reset, a close or a limit after N bytes, a slow close. A
/// change applies to every open connection at once, to the bytes not yet
/// forwarded, and to later connections.
///
/// ```
/// use std::time::Duration;
/// use ts_tcpip::prelude::*;
/// use ts_tcpip::testing::{self, FaultProxy};
///
/// let server = testing::start_server(OneClientServer::builder())?;
/// let proxy = FaultProxy::start(server.local_addrs()[0])?;
/// // Replies come in 3-byte pieces, 2 ms apart, 10 ms late.
/// proxy.to_client().slice(3, Duration::from_millis(2)).latency(Duration::from_millis(10));
///
/// let client = Client::builder().port(proxy.port()).connect()?;
/// server.wait_connected(Duration::from_secs(5))?;
/// server.write_str("position 1.5")?;
/// assert_eq!(client.within(Duration::from_secs(5)).read_str()?, "position 1.5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With no fault on, bytes go straight through: the reader thread of each
/// direction writes what it read at once. Threads: one accepting
/// (`tcpip-proxy NAME`) and, per connection, a reader and a writer each
/// way (`tcpip-proxy-in`, `tcpip-proxy-out`); all are joined by
/// [`close`](FaultProxy::close), which drop calls. A connection ends when
/// both sides have closed, when a fault ends it, or when the proxy closes
/// (both legs then see end of file). If the upstream refuses, the client's
/// connection is closed at once (it reads end of file) and a warning is
/// logged.
///
/// With [`record`](FaultProxyBuilder::record) on, it keeps every chunk
/// each way with its time: [`capture`](FaultProxy::capture).
///
/// [`to_server`]: FaultProxy::to_server
/// [`to_client`]: FaultProxy::to_client
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Arc<Socket>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// Settings of a [`FaultProxy`] before it starts: see
/// [`FaultProxy::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until start() is called"]
pub struct FaultProxyBuilder {
    upstream: SocketAddr,
    name: String,
    record: bool,
}

impl FaultProxyBuilder {
    /// Names the proxy in logs and its threads' names.
    pub fn name(mut self, name: impl Into<String>) -> FaultProxyBuilder {
        self.name = name.into();
        self
    }

    /// Keeps every chunk each way, with its time, for
    /// [`FaultProxy::capture`] (default off: a capture grows with the
    /// traffic).
    pub fn record(mut self, record: bool) -> FaultProxyBuilder {
        self.record = record;
        self
    }

    /// Listens on 127.0.0.1, port 0, and starts accepting.
    pub fn start(self) -> Result<FaultProxy> {
        let bound = bind_listeners(
            &["127.0.0.1:0".parse().expect("an address")],
            DEFAULT_BACKLOG,
            false,
        )?;
        let listener = Arc::new(bound.into_iter().next().expect("one address, one listener"));
        let addr = listener
            .local_addr()?
            .as_socket()
            .expect("an IP listener has an IP address");
        let label = match self.name.as_str() {
            "" => String::new(),
            name => format!(" {name}"),
        };
        let started = Instant::now();
        let shared = Arc::new(Shared {
            label,
            upstream: self.upstream,
            faults: Mutex::new([FaultSet::default(), FaultSet::default()]),
            conns: Mutex::new(Registry::default()),
            recorder: self.record.then(|| Arc::new(Recorder::new(started))),
            closed: AtomicBool::new(false),
        });
        let thread = {
            let (shared, listener) = (Arc::clone(&shared), Arc::clone(&listener));
            std::thread::Builder::new()
                .name(format!("tcpip-proxy{}", shared.label))
                .spawn(move || shared.accept_loop(&listener))?
        };
        log::debug!("proxy{} on {addr} for {}", shared.label, shared.upstream);
        Ok(FaultProxy {
            shared,
            addr,
            listener,
            accept: Mutex::new(Some(thread)),
        })
    }
}

impl FaultProxy {
    /// A proxy to `upstream` with default settings, started.
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        FaultProxy::builder(upstream).start()
    }

    /// Settings for a proxy to `upstream`.
    pub fn builder(upstream: SocketAddr) -> FaultProxyBuilder {
        FaultProxyBuilder {
            upstream,
            name: String::new(),
            record: false,
        }
    }

    /// Where the program under test connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port of [`addr`](FaultProxy::addr).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// The faults of the bytes from the client (the program that
    /// connected) to the server.
    pub fn to_server(&self) -> Faults {
        self.faults(Direction::ToServer)
    }

    /// The faults of the bytes from the server to the client.
    pub fn to_client(&self) -> Faults {
        self.faults(Direction::ToClient)
    }

    /// The faults of one direction: a handle that can be kept, cloned and
    /// sent to another thread.
    pub fn faults(&self, direction: Direction) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
            direction,
        }
    }

    /// Connections forwarded so far (accepted, and connected upstream).
    pub fn connections(&self) -> u32 {
        self.shared.conns.lock().accepted
    }

    /// What a recording proxy has seen so far (empty unless
    /// [`record`](FaultProxyBuilder::record) is on).
    pub fn capture(&self) -> Capture {
        self.shared
            .recorder
            .as_ref()
            .map_or_else(Capture::default, |r| r.snapshot())
    }

    /// Stops accepting, closes every connection (both legs read end of
    /// file) and joins every thread. Idempotent; drop calls it.
    pub fn close(&self) {
        let mut accept = self.accept.lock();
        let Some(thread) = accept.take() else {
            return;
        };
        self.shared.closed.store(true, Ordering::Release);
        wake_accept(&self.listener);
        let _ = thread.join();
        let entries = std::mem::take(&mut self.shared.conns.lock().entries);
        for entry in &entries {
            if let Some(conn) = entry.conn.upgrade() {
                conn.end(Ending::Close);
            }
        }
        for thread in entries.into_iter().flat_map(|e| e.threads) {
            let _ = thread.join();
        }
        log::debug!("proxy{} closed", self.shared.label);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// The faults of one direction of a [`FaultProxy`]: setters that take
/// effect at once, on every open connection's bytes not yet forwarded and
/// on later connections. They return the handle, so they chain:
/// `proxy.to_client().latency(ms(20)).jitter(ms(5))`.
///
/// Faults combine in this order: a chunk is held while [`hold`] is on;
/// then it waits out its latency (counted from when the proxy read it;
/// bytes never overtake each other, so a chunk with less jitter waits for
/// the one before it); then it goes out in pieces, each no larger than
/// the [`slice`] size and paced by the slice's pause and the
/// [`bandwidth`]; the counts of [`reset_after`], [`close_after`] and
/// [`limit`] are of the bytes forwarded this way. Up to 256 KiB can wait
/// in the proxy per direction; past that it stops reading, so a sender's
/// writes block as they would on a slow peer.
///
/// [`hold`]: Faults::hold
/// [`slice`]: Faults::slice
/// [`bandwidth`]: Faults::bandwidth
/// [`reset_after`]: Faults::reset_after
/// [`close_after`]: Faults::close_after
/// [`limit`]: Faults::limit
#[derive(Debug, Clone)]
pub struct Faults {
    shared: Arc<Shared>,
    direction: Direction,
}

impl Faults {
    /// The direction these faults are of.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    fn set(&self, change: Change) -> &Faults {
        self.shared.change(self.direction, change);
        self
    }

    /// Delays every chunk by `latency` (plus or minus the jitter) from
    /// when the proxy read it. Zero: no delay.
    pub fn latency(&self, latency: Duration) -> &Faults {
        self.set(Change::Latency(latency))
    }

    /// Varies each chunk's latency by up to `jitter` either way (uniform,
    /// never below zero). Zero: none.
    pub fn jitter(&self, jitter: Duration) -> &Faults {
        self.set(Change::Jitter(jitter))
    }

    /// Forwards at most `bytes_per_second`, in pieces of 10 ms worth.
    /// Zero: no limit.
    pub fn bandwidth(&self, bytes_per_second: u64) -> &Faults {
        self.set(Change::Bandwidth(bytes_per_second))
    }

    /// Writes in segments of at most `size` bytes, each at least `pause`
    /// after the one before, so a reader gets a frame in pieces. `size`
    /// 0: no slicing.
    pub fn slice(&self, size: usize, pause: Duration) -> &Faults {
        self.set(Change::Slice(size, pause))
    }

    /// Forwards nothing more, end of file included, until
    /// [`release`](Faults::release): the peer seems frozen, its
    /// connection open.
    pub fn hold(&self) -> &Faults {
        self.set(Change::Hold(true))
    }

    /// Lets held bytes go, in order, and those that follow.
    pub fn release(&self) -> &Faults {
        self.set(Change::Hold(false))
    }

    /// Passes a side's close (end of file) on `delay` after it came.
    pub fn slow_close(&self, delay: Duration) -> &Faults {
        self.set(Change::SlowClose(delay))
    }

    /// Resets the connection (both legs: RST) once `n` more bytes have
    /// gone through this way; with `n` 0, before the next byte would.
    /// A reader on this side gets exactly those bytes, then "connection
    /// reset".
    pub fn reset_after(&self, n: u64) -> &Faults {
        self.set(Change::ResetAfter(n))
    }

    /// Closes the connection (both legs: end of file) once `n` more bytes
    /// have gone through this way (a close in the middle of a frame); with
    /// `n` 0, before the next byte would.
    pub fn close_after(&self, n: u64) -> &Faults {
        self.set(Change::CloseAfter(n))
    }

    /// Forwards `n` more bytes this way, then swallows the rest: the
    /// sender's writes succeed, nothing more arrives, and the connection
    /// stays open.
    pub fn limit(&self, n: u64) -> &Faults {
        self.set(Change::Limit(n))
    }

    /// Turns every fault of this direction off (releasing held bytes).
    pub fn clear(&self) -> &Faults {
        self.set(Change::Clear)
    }
}

/// What the handle, the accept thread and the setters share.
#[derive(Debug)]
struct Shared {
    /// `" NAME"`, or empty: for thread names and logs.
    label: String,
    upstream: SocketAddr,
    /// Each direction's faults, as later connections start with them.
    faults: Mutex<[FaultSet; 2]>,
    conns: Mutex<Registry>,
    recorder: Option<Arc<Recorder>>,
    closed: AtomicBool,
}

/// The connections and their threads.
#[derive(Debug, Default)]
struct Registry {
    accepted: u32,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    conn: Weak<Conn>,
    threads: Vec<JoinHandle<()>>,
}

impl Shared {
    fn accept_loop(&self, listener: &Socket) {
        loop {
            let accepted = listener.accept();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let (client, peer) = match accepted {
                Ok((socket, peer)) => (TcpStream::from(socket), peer.as_socket()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("proxy{}: accept failed: {e}", self.label);
                    // Out of descriptors, say: do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let upstream = match TcpStream::connect_timeout(&self.upstream, DEFAULT_CONNECT_TIMEOUT)
            {
                Ok(upstream) => upstream,
                Err(e) => {
                    log::warn!(
                        "proxy{}: connect to {}: {e}; closing the client",
                        self.label,
                        self.upstream
                    );
                    continue;
                }
            };
            if let Err(e) = self.open(client, upstream, peer) {
                log::warn!("proxy{}: a connection could not start: {e}", self.label);
            }
        }
    }

    /// Registers and starts a connection.
    fn open(
        &self,
        client: TcpStream,
        upstream: TcpStream,
        peer: Option<SocketAddr>,
    ) -> std::io::Result<()> {
        let opened = Instant::now();
        let server = upstream.peer_addr()?;
        // The faults' lock across the registration: a setter sees every
        // connection that started with the faults before its change.
        let faults = self.faults.lock();
        let mut conns = self.conns.lock();
        conns.reap();
        conns.accepted += 1;
        let id = conns.accepted;
        let conn = Conn::new(
            id,
            self.label.clone(),
            client,
            upstream,
            &faults,
            self.recorder.clone(),
        )?;
        if let (Some(recorder), Some(client)) = (&self.recorder, peer) {
            recorder.record(opened, id, Event::Open { client, server });
        }
        let threads = conn.spawn()?;
        conns.entries.push(Entry {
            conn: Arc::downgrade(&conn),
            threads,
        });
        log::debug!("proxy{} connection {id} from {peer:?}", self.label);
        Ok(())
    }

    fn change(&self, direction: Direction, change: Change) {
        let mut faults = self.faults.lock();
        faults[direction.index()].apply(change);
        let conns = self.conns.lock();
        for entry in &conns.entries {
            if let Some(conn) = entry.conn.upgrade() {
                conn.change(direction, change);
            }
        }
    }
}

impl Registry {
    /// Joins the threads of connections that have ended.
    fn reap(&mut self) {
        let (ended, open): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| e.threads.iter().all(JoinHandle::is_finished));
        self.entries = open;
        for thread in ended.into_iter().flat_map(|e| e.threads) {
            let _ = thread.join();
        }
    }
}
