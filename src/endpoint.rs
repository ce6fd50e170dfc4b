//! The state one side of a link keeps, shared by the server and the
//! client: the current connection (the slot) and its epoch, the read and
//! write halves bound to it, the codec, the change notifications, the
//! counters and the threads to join.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::codec::{Codec, SharedCodec};
use crate::config::LinkConfig;
use crate::connection::Connection;
use crate::events::{ConnectionEvent, DisconnectReason, Events};
use crate::frame::FrameReader;
use crate::half::{Half, PerConnection, ReadHalf, ReadOutcome, Source, WriteHalf, Writer};
use crate::monitor;
use crate::net::{self, Peek};
use crate::stats::Counters;
use crate::{Error, Result};

/// One side of a link. Public only so the sealed [`Link`](crate::Link)
/// trait can name it; not reachable from outside the crate.
pub struct Endpoint {
    /// `Role(name)`, the prefix of every log message.
    pub(crate) log_name: String,
    /// As built. Its encoding, terminator and timeouts are only where the
    /// link started: the live ones are in `codec` and `slot`.
    pub(crate) config: LinkConfig,
    pub(crate) codec: SharedCodec,
    slot: Mutex<Slot>,
    /// Bumped (under the slot lock) by every attach and detach: a half
    /// bound at the current epoch serves the current connection.
    epoch: AtomicU64,
    /// Lock order: a thread holding a half never waits for the slot lock,
    /// and the slot lock's holder only tries a half (`is_dead`,
    /// `release_halves`). The two halves are never held together.
    reader: Mutex<ReadHalf>,
    writer: Mutex<WriteHalf>,
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
    closed: bool,
    /// Applied to every connection; they outlive it ("a read timeout stays
    /// until changed").
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Endpoint {
    pub(crate) fn new(role: &str, config: LinkConfig) -> Endpoint {
        let codec = SharedCodec::new(Codec::new(config.encoding, &config.terminator));
        Endpoint {
            log_name: format!("{role}({})", config.name),
            reader: Mutex::new(Half::new(&codec)),
            writer: Mutex::new(Half::new(&codec)),
            codec,
            slot: Mutex::new(Slot {
                read_timeout: config.read_timeout,
                write_timeout: config.write_timeout,
                ..Slot::default()
            }),
            epoch: AtomicU64::new(0),
            config,
            changed: Condvar::new(),
            should_be_connected: AtomicBool::new(false),
            events: Events::default(),
            counters: Counters::default(),
            threads: Mutex::default(),
            joining: Mutex::new(()),
        }
    }

    /// The name given to the builder.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
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

    pub(crate) fn current(&self) -> Option<Arc<Connection>> {
        self.slot.lock().conn.clone()
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
            if !(replace_dead && self.is_dead(&old)) {
                return Err(conn);
            }
            self.detach_locked(&mut slot, &old, DisconnectReason::PeerClosed);
        }
        let peer = conn.peer();
        if let Err(e) = apply_timeouts(&conn, slot.read_timeout, slot.write_timeout) {
            log::warn!("{}: cannot set timeouts on {peer}: {e}", self.log_name);
        }
        slot.conn = Some(conn);
        self.epoch.fetch_add(1, Ordering::Release);
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
        self.epoch.fetch_add(1, Ordering::Release);
        conn.shutdown();
        self.release_halves(conn);
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
        let deadline = deadline_after(timeout);
        let mut slot = self.slot.lock();
        loop {
            if slot.conn.is_some() {
                return Ok(());
            }
            if slot.closed {
                return Err(Error::NotConnected);
            }
            if self.wait_changed(&mut slot, deadline) && slot.conn.is_none() {
                return Err(if slot.closed {
                    Error::NotConnected
                } else {
                    Error::Timeout
                });
            }
        }
    }

    /// Waits until a connection newer than the one current at epoch `seen`
    /// exists; returns it with its epoch. None once closed.
    pub(crate) fn next_connection(&self, seen: u64) -> Option<(Arc<Connection>, u64)> {
        let mut slot = self.slot.lock();
        loop {
            if slot.closed {
                return None;
            }
            // Only attach and detach move the epoch, and a detach empties
            // the slot: a connection at another epoch is a new one.
            let epoch = self.epoch.load(Ordering::Acquire);
            if let (Some(conn), true) = (&slot.conn, epoch != seen) {
                return Some((conn.clone(), epoch));
            }
            self.changed.wait(&mut slot);
        }
    }

    /// True while the connection current at `epoch` (from
    /// `next_connection`) still is.
    pub(crate) fn is_current(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::Acquire) == epoch
    }

    /// Waits up to `timeout` unless `conn` stops being the connection
    /// first. True if it still is.
    pub(crate) fn wait_while_current(&self, conn: &Arc<Connection>, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut slot = self.slot.lock();
        let current = |slot: &Slot| slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn));
        while current(&slot) && !self.wait_changed(&mut slot, deadline) {}
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
        let deadline = deadline_after(timeout);
        let mut slot = self.slot.lock();
        while !slot.closed && !self.wait_changed(&mut slot, deadline) {}
        slot.closed
    }

    /// Waits for a change of the slot until `deadline` (for ever without
    /// one); true if the deadline passed.
    fn wait_changed(&self, slot: &mut MutexGuard<'_, Slot>, deadline: Option<Instant>) -> bool {
        match deadline {
            Some(deadline) => self.changed.wait_until(slot, deadline).timed_out(),
            None => {
                self.changed.wait(slot);
                false
            }
        }
    }

    /// Starts a thread named `tcpip-<kind> <name>` (Linux shows its first
    /// 15 bytes), joined by `join_threads`.
    pub(crate) fn spawn(&self, kind: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
        let name = format!("tcpip-{kind} {}", self.name());
        let handle = std::thread::Builder::new().name(name).spawn(f)?;
        let mut threads = self.threads.lock();
        threads.ids.push(handle.thread().id());
        threads.handles.push(handle);
        Ok(())
    }

    /// Starts the monitor thread, unless its interval is zero.
    pub(crate) fn spawn_monitor(self: &Arc<Self>) -> Result<()> {
        let interval = self.config.monitor_interval;
        if interval.is_zero() {
            return Ok(());
        }
        let watched = self.clone();
        self.spawn("monitor", move || monitor::run(&watched, interval))
    }

    /// Starts the thread that calls `callback` on every change.
    pub(crate) fn spawn_callback(&self, callback: impl FnMut(bool) + Send + 'static) -> Result<()> {
        let body = self.events.callback_loop(self.log_name.clone(), callback);
        self.spawn("callback", body)
    }

    /// Closes the endpoint: ends the connection, runs `wake` (what the
    /// endpoint's own shutdown does not release, such as a blocked
    /// `accept`), lets the callback thread finish its queue, and joins
    /// every thread (see `join_threads` for a call from one of them).
    pub(crate) fn close(&self, wake: impl FnOnce()) {
        if self.shut() {
            log::info!("{}: closing", self.log_name);
        }
        wake();
        self.events.close_callback();
        self.join_threads();
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
        self.is_dead(conn) && self.detach_locked(&mut slot, conn, DisconnectReason::PeerClosed)
    }

    /// True when `conn`'s peer has closed and nothing it sent is left
    /// unread. Called with the slot lock held.
    ///
    /// Once the socket is at end of file a blocked reader returns at once,
    /// so a busy read half is waited for (briefly) rather than taken for a
    /// live link: a client that connects just after the old one dropped
    /// must not be turned away because a reader had not yet woken. The
    /// wait is a timed try, and a reader never waits for the slot lock with
    /// the read half held, so the two cannot deadlock.
    fn is_dead(&self, conn: &Arc<Connection>) -> bool {
        const BUSY_READER_WAIT: Duration = Duration::from_millis(100);
        if !matches!(net::peek_now(conn.stream()), Ok(Peek::Eof) | Err(_)) {
            return false;
        }
        self.reader
            .try_lock_for(BUSY_READER_WAIT)
            .is_some_and(|half| !half.serves(conn) || half.buffered().is_empty())
    }

    /// Lets the halves drop an ended connection now, unless busy: a busy
    /// half drops it when its call ends, or at the latest at its next
    /// call (its socket is shut down already; only the descriptor and the
    /// buffer wait). Called with the slot lock held, so only tried.
    fn release_halves(&self, conn: &Arc<Connection>) {
        if let Some(mut half) = self.reader.try_lock().filter(|h| h.serves(conn)) {
            half.release();
        }
        if let Some(mut half) = self.writer.try_lock().filter(|h| h.serves(conn)) {
            half.release();
        }
    }

    /// A half locked and bound to the current connection; None without
    /// one. (An Option, not a Result: it comes back in a register.)
    #[inline(always)]
    fn bound<'a, S: PerConnection>(
        &'a self,
        half: &'a Mutex<Half<S>>,
    ) -> Option<MutexGuard<'a, Half<S>>> {
        let guard = half.lock();
        if guard.epoch() == self.epoch.load(Ordering::Acquire) {
            return guard.is_bound().then_some(guard);
        }
        self.rebind(half, guard)
    }

    /// `bound` after the epoch moved on: takes the new connection from the
    /// slot. The slot lock is never waited for with a half held.
    #[cold]
    fn rebind<'a, S: PerConnection>(
        &'a self,
        half: &'a Mutex<Half<S>>,
        mut guard: MutexGuard<'a, Half<S>>,
    ) -> Option<MutexGuard<'a, Half<S>>> {
        loop {
            drop(guard);
            let (epoch, conn) = {
                let slot = self.slot.lock();
                (self.epoch.load(Ordering::Acquire), slot.conn.clone())
            };
            guard = half.lock();
            guard.rebind(epoch, conn);
            if guard.epoch() == self.epoch.load(Ordering::Acquire) {
                return guard.is_bound().then_some(guard);
            }
        }
    }

    /// After a call: a half whose connection ended meanwhile lets go of it.
    fn release_if_stale<S: PerConnection>(&self, half: &mut Half<S>) {
        if half.epoch() != self.epoch.load(Ordering::Acquire) {
            half.release();
        }
    }

    /// Ends `conn`, taken from `half` (whose lock is released first).
    fn end<S: PerConnection>(&self, mut half: MutexGuard<'_, Half<S>>, reason: DisconnectReason) {
        let conn = half.release();
        drop(half);
        if let Some(conn) = conn {
            self.detach(&conn, reason);
        }
    }

    /// One read call on the current connection (`frame`: count it as a
    /// frame when it succeeds). A connection error, or the peer's end of
    /// file once everything before it has been read, ends the connection.
    // Inlined into each read method, so the value read stays in registers
    // instead of a round trip through memory that stalls the load.
    #[inline(always)]
    pub(crate) fn read_with<T>(
        &self,
        wait: bool,
        frame: bool,
        f: impl FnOnce(&mut FrameReader, &mut Source<'_>, &Codec) -> Result<T>,
    ) -> Result<T> {
        let Some(mut half) = self.bound(&self.reader) else {
            return Err(Error::NotConnected);
        };
        let ReadOutcome { result, drained } = half.read(&self.codec, &self.counters, wait, f);
        // Ok is rebuilt rather than `result` moved whole: the error type is
        // large, and copying it back costs more than the rest of the call.
        match result {
            Ok(value) => {
                if frame {
                    Counters::add_exclusive(&self.counters.frames_read, 1);
                }
                if drained {
                    self.end(half, DisconnectReason::PeerClosed);
                } else {
                    self.release_if_stale(&mut half);
                }
                Ok(value)
            }
            Err(e) => {
                let reason = match &e {
                    Error::ConnectionLost(io) => Some(DisconnectReason::Error(io.to_string())),
                    e if e.is_connection_error() || drained => Some(DisconnectReason::PeerClosed),
                    _ => None,
                };
                match reason {
                    Some(reason) => self.end(half, reason),
                    None => self.release_if_stale(&mut half),
                }
                Err(e)
            }
        }
    }

    /// One frame written on the current connection by `f`, which returns
    /// the bytes it sent. A connection error ends the connection.
    pub(crate) fn write_with(
        &self,
        f: impl FnOnce(Writer<'_>, &Codec) -> Result<usize>,
    ) -> Result<()> {
        let Some(mut half) = self.bound(&self.writer) else {
            return Err(Error::NotConnected);
        };
        match half.write(&self.codec, f) {
            Ok(n) => {
                Counters::add_exclusive(&self.counters.bytes_written, n as u64);
                Counters::add_exclusive(&self.counters.frames_written, 1);
                self.release_if_stale(&mut half);
                Ok(())
            }
            Err(e) => {
                match &e {
                    Error::ConnectionLost(io) => {
                        self.end(half, DisconnectReason::Error(io.to_string()))
                    }
                    _ => self.release_if_stale(&mut half),
                }
                Err(e)
            }
        }
    }
}

/// `timeout` from now; None (no deadline) when that is further than an
/// `Instant` reaches, so `Duration::MAX` means "for ever", not a panic.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
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
