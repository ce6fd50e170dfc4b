//! The state one side of a link keeps, shared by the server and the
//! client: the current connection, the change notifications, the counters
//! and the threads to join.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::LinkConfig;
use crate::connection::{Connection, Source};
use crate::events::{ConnectionEvent, DisconnectReason, Events};
use crate::frame::FrameReader;
use crate::stats::Counters;
use crate::{Encoding, Error, Result};

/// Encoding and terminator, swapped whole so a read in progress keeps the
/// pair it started with.
#[derive(Debug)]
pub(crate) struct Codec {
    pub(crate) encoding: Encoding,
    pub(crate) terminator: Vec<u8>,
    /// The terminator's searcher, built once rather than per read.
    pub(crate) finder: memchr::memmem::Finder<'static>,
}

impl Codec {
    pub(crate) fn new(encoding: Encoding, terminator: Vec<u8>) -> Codec {
        let finder = memchr::memmem::Finder::new(&terminator).into_owned();
        Codec {
            encoding,
            terminator,
            finder,
        }
    }
}

/// One side of a link. Public only so the sealed [`Link`](crate::Link)
/// trait can name it; not reachable from outside the crate.
pub struct Endpoint {
    /// `Role(name)`, the prefix of every log message.
    pub(crate) log_name: String,
    pub(crate) name: String,
    pub(crate) config: LinkConfig,
    codec: RwLock<Arc<Codec>>,
    /// Bumped by every `set_codec`, so a connection's cached codec is
    /// checked with one plain load instead of a lock and two RMWs.
    codec_version: std::sync::atomic::AtomicU64,
    slot: Mutex<Slot>,
    /// Signalled on every change of `slot`.
    changed: Condvar,
    should_be_connected: AtomicBool,
    pub(crate) events: Events,
    pub(crate) counters: Counters,
    threads: Mutex<Threads>,
    /// Held by whoever joins the threads, so that a second `close()`
    /// returns only once the first has joined them all.
    joining: Mutex<()>,
}

#[derive(Default)]
struct Threads {
    /// Not yet joined.
    handles: Vec<JoinHandle<()>>,
    /// Every thread ever started here, joined or not.
    ids: Vec<std::thread::ThreadId>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    /// Counts connections attached, so a waiter can tell a new one.
    generation: u64,
    closed: bool,
    /// Applied to every connection; they outlive it ("a read timeout stays
    /// until changed").
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Endpoint {
    pub(crate) fn new(role: &str, config: LinkConfig) -> Endpoint {
        Endpoint {
            log_name: format!("{role}({})", config.name),
            name: config.name.clone(),
            codec: RwLock::new(Arc::new(Codec::new(
                config.encoding,
                config.terminator.clone(),
            ))),
            codec_version: std::sync::atomic::AtomicU64::new(0),
            slot: Mutex::new(Slot {
                read_timeout: config.read_timeout,
                write_timeout: config.write_timeout,
                ..Slot::default()
            }),
            config,
            changed: Condvar::new(),
            should_be_connected: AtomicBool::new(false),
            events: Events::default(),
            counters: Counters::default(),
            threads: Mutex::default(),
            joining: Mutex::new(()),
        }
    }

    pub(crate) fn codec(&self) -> Arc<Codec> {
        self.codec.read().clone()
    }

    pub(crate) fn set_codec(&self, update: impl FnOnce(&Codec) -> Codec) {
        let mut codec = self.codec.write();
        *codec = Arc::new(update(&codec));
        self.codec_version.fetch_add(1, Ordering::Release);
    }

    /// The codec, through a per-connection cache refreshed only when
    /// `set_codec` ran since.
    pub(crate) fn cached_codec<'c>(&self, cache: &'c mut Option<(u64, Arc<Codec>)>) -> &'c Codec {
        let version = self.codec_version.load(Ordering::Acquire);
        if !matches!(cache, Some((v, _)) if *v == version) {
            *cache = None;
        }
        // The version is read under the lock set_codec bumps it under, so
        // the pair cached is consistent.
        &cache
            .get_or_insert_with(|| {
                let codec = self.codec.read();
                (self.codec_version.load(Ordering::Acquire), codec.clone())
            })
            .1
    }

    pub(crate) fn connected(&self) -> bool {
        self.slot.lock().conn.is_some()
    }

    pub(crate) fn should_be_connected(&self) -> bool {
        self.should_be_connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_should_be_connected(&self, value: bool) {
        self.should_be_connected.store(value, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.slot.lock().closed
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) {
        let mut slot = self.slot.lock();
        slot.read_timeout = timeout;
        if let Some(conn) = &slot.conn {
            let _ = apply_timeouts(conn, timeout, slot.write_timeout);
        }
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let mut slot = self.slot.lock();
        slot.write_timeout = timeout;
        if let Some(conn) = &slot.conn {
            let _ = apply_timeouts(conn, slot.read_timeout, timeout);
        }
    }

    pub(crate) fn current(&self) -> Result<Arc<Connection>> {
        match &self.slot.lock().conn {
            Some(conn) => Ok(conn.clone()),
            None => Err(Error::NotConnected),
        }
    }

    /// Makes `conn` the connection. An occupied slot is taken over only if
    /// `replace_dead` and its peer is gone with nothing left unread (a
    /// client that dropped before the monitor noticed); otherwise, and
    /// once closed, `conn` is handed back.
    pub(crate) fn attach(
        &self,
        conn: Arc<Connection>,
        replace_dead: bool,
    ) -> std::result::Result<(), Arc<Connection>> {
        let mut slot = self.slot.lock();
        if slot.closed {
            return Err(conn);
        }
        if let Some(old) = slot.conn.clone() {
            if !(replace_dead && old.is_dead()) {
                return Err(conn);
            }
            self.detach_locked(&mut slot, &old, DisconnectReason::PeerClosed);
        }
        let peer = conn.peer();
        if let Err(e) = apply_timeouts(&conn, slot.read_timeout, slot.write_timeout) {
            log::warn!("{}: cannot set timeouts on {peer}: {e}", self.log_name);
        }
        slot.conn = Some(conn);
        slot.generation += 1;
        self.set_should_be_connected(true);
        Counters::add(&self.counters.connections_accepted, 1);
        log::info!("{}: connected to {peer}", self.log_name);
        self.events.publish(&ConnectionEvent::Connected { peer });
        self.changed.notify_all();
        Ok(())
    }

    /// Ends `conn` if it is still the connection; false if it was not.
    pub(crate) fn detach(&self, conn: &Arc<Connection>, reason: DisconnectReason) -> bool {
        let mut slot = self.slot.lock();
        self.detach_locked(&mut slot, conn, reason)
    }

    /// Ends the current connection, if any.
    pub(crate) fn detach_current(&self, reason: DisconnectReason) -> bool {
        let mut slot = self.slot.lock();
        match slot.conn.clone() {
            Some(conn) => self.detach_locked(&mut slot, &conn, reason),
            None => false,
        }
    }

    fn detach_locked(
        &self,
        slot: &mut Slot,
        conn: &Arc<Connection>,
        reason: DisconnectReason,
    ) -> bool {
        if !slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            return false;
        }
        slot.conn = None;
        conn.shutdown();
        Counters::add(&self.counters.disconnects, 1);
        let peer = conn.peer();
        log::info!("{}: disconnected from {peer}: {reason:?}", self.log_name);
        self.events
            .publish(&ConnectionEvent::Disconnected { peer, reason });
        self.changed.notify_all();
        true
    }

    /// Marks the endpoint closed and ends the connection (leaving
    /// `should_be_connected` to the caller). False if it was closed already.
    pub(crate) fn shut(&self) -> bool {
        let mut slot = self.slot.lock();
        if slot.closed {
            return false;
        }
        slot.closed = true;
        if let Some(conn) = slot.conn.clone() {
            self.detach_locked(&mut slot, &conn, DisconnectReason::ClosedLocally);
        }
        self.changed.notify_all();
        true
    }

    /// Waits for a connection: Ok at once if there is one.
    pub(crate) fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.slot.lock();
        loop {
            if slot.conn.is_some() {
                return Ok(());
            }
            if slot.closed {
                return Err(Error::NotConnected);
            }
            if self.changed.wait_until(&mut slot, deadline).timed_out() && slot.conn.is_none() {
                return Err(if slot.closed {
                    Error::NotConnected
                } else {
                    Error::Timeout
                });
            }
        }
    }

    /// Waits until a connection newer than `seen` exists; None once closed.
    pub(crate) fn next_connection(&self, seen: u64) -> Option<(Arc<Connection>, u64)> {
        let mut slot = self.slot.lock();
        loop {
            if slot.closed {
                return None;
            }
            if let (Some(conn), true) = (&slot.conn, slot.generation != seen) {
                return Some((conn.clone(), slot.generation));
            }
            self.changed.wait(&mut slot);
        }
    }

    /// Waits up to `timeout` unless `conn` stops being the connection
    /// first. True if it still is.
    pub(crate) fn wait_while_current(&self, conn: &Arc<Connection>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slot = self.slot.lock();
        let current = |slot: &Slot| slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn));
        while current(&slot) && !self.changed.wait_until(&mut slot, deadline).timed_out() {}
        current(&slot)
    }

    /// Waits until there is no connection; true if that is because the
    /// endpoint is closed.
    pub(crate) fn wait_disconnected(&self) -> bool {
        let mut slot = self.slot.lock();
        while slot.conn.is_some() && !slot.closed {
            self.changed.wait(&mut slot);
        }
        slot.closed
    }

    /// Waits up to `timeout` unless the endpoint is closed first. True if
    /// it is closed.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slot = self.slot.lock();
        while !slot.closed && !self.changed.wait_until(&mut slot, deadline).timed_out() {}
        slot.closed
    }

    pub(crate) fn add_thread(&self, handle: JoinHandle<()>) {
        let mut threads = self.threads.lock();
        threads.ids.push(handle.thread().id());
        threads.handles.push(handle);
    }

    /// Joins every thread started for this endpoint. Called from one of
    /// those threads (`close()` in the callback or a read-loop handler) it
    /// joins nothing: that thread cannot join itself, and waiting for the
    /// others could wait for a `close()` that waits for it. The owner's
    /// `close()` (at the latest its `Drop`) joins them all.
    pub(crate) fn join_threads(&self) {
        let me = std::thread::current().id();
        if self.threads.lock().ids.contains(&me) {
            return;
        }
        let _turn = self.joining.lock();
        let handles = std::mem::take(&mut self.threads.lock().handles);
        for handle in handles {
            if handle.join().is_err() {
                log::error!("{}: a background thread panicked", self.log_name);
            }
        }
    }

    /// Ends `conn` if its peer is gone and nothing it sent is unread. The
    /// check runs under the slot lock, as `attach`'s does, so the two never
    /// mistake each other's look at the receive buffer for a busy reader.
    pub(crate) fn detach_if_dead(&self, conn: &Arc<Connection>) -> bool {
        let mut slot = self.slot.lock();
        conn.is_dead() && self.detach_locked(&mut slot, conn, DisconnectReason::PeerClosed)
    }

    /// One read call on the current connection (`frame`: count it as a
    /// frame when it succeeds). A connection error, or the peer's end of
    /// file once everything before it has been read, ends the connection.
    pub(crate) fn read_with<T>(
        &self,
        wait: bool,
        frame: bool,
        f: impl FnOnce(&mut FrameReader, &mut Source<'_>, &Codec) -> Result<T>,
    ) -> Result<T> {
        let conn = self.current()?;
        let outcome = conn.read(&self.counters, wait, |reader, src, cache| {
            let codec = self.cached_codec(cache);
            f(reader, src, codec)
        });
        match &outcome.result {
            Ok(_) if frame => Counters::add(&self.counters.frames_read, 1),
            Err(e) if e.is_connection_error() => {
                let reason = match e {
                    Error::ConnectionLost(io) => DisconnectReason::Error(io.to_string()),
                    _ => DisconnectReason::PeerClosed,
                };
                self.detach(&conn, reason);
                return outcome.result;
            }
            _ => {}
        }
        if outcome.drained {
            self.detach(&conn, DisconnectReason::PeerClosed);
        }
        outcome.result
    }

    /// One frame written on the current connection by `f`, which returns
    /// the bytes it sent. A connection error ends the connection.
    pub(crate) fn write_with(
        &self,
        f: impl FnOnce(&Connection, &Codec) -> Result<usize>,
    ) -> Result<()> {
        let conn = self.current()?;
        let codec = self.codec();
        match f(&conn, &codec) {
            Ok(n) => {
                Counters::add(&self.counters.bytes_written, n as u64);
                Counters::add(&self.counters.frames_written, 1);
                Ok(())
            }
            Err(e) => {
                if let Error::ConnectionLost(io) = &e {
                    self.detach(&conn, DisconnectReason::Error(io.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Zero, which the socket would take as "forever", becomes the shortest
/// wait the socket has (1 µs).
fn apply_timeouts(
    conn: &Connection,
    read: Option<Duration>,
    write: Option<Duration>,
) -> std::io::Result<()> {
    let shortest = |t: Option<Duration>| t.map(|t| t.max(Duration::from_micros(1)));
    conn.stream().set_read_timeout(shortest(read))?;
    conn.stream().set_write_timeout(shortest(write))
}
