//! One side of a link: the slot and what a change of it sets off, the two
//! halves, the codec, the counters, the events and the threads. The read
//! and write calls on it are in `io.rs`.
//!
//! Lock order: the slot lock first. Its holder publishes events (taking
//! the events' lock inside it, so that they are told in the order the
//! changes happened), reads the timeouts, and only *tries* a half
//! (`is_dead`, `release_halves`). A thread holding a half never waits for
//! the slot lock; the two halves are never held together. The timeouts'
//! locks (this one, then the connection's, which a half also takes) are
//! leaves. No lock is held while user code runs (the callback has a
//! thread of its own), but for what builds a frame on the write side: a
//! `Serialize` impl, a hand-written `BinaryStruct::encode` and the
//! `write_lines` iterator run with the write half held (see `io.rs`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::connection::Connection;
use super::ending;
use super::events::{ConnectionEvent, DisconnectReason, Events};
use super::half::{Half, ReadHalf, WriteHalf};
use super::monitor;
use super::shared_codec::SharedCodec;
use super::slot::{Slot, SlotGuard};
use super::socket::Peek;
use super::stats::Counters;
use super::threads::Threads;
use crate::config::LinkConfig;
use crate::error::Result;
use crate::wire::codec::Codec;

/// One side of a link.
pub(crate) struct Endpoint {
    /// `Role(name)`, the prefix of every log message.
    pub(crate) log_name: String,
    /// As built. Its encoding, terminator and timeouts are only where the
    /// link started: the live ones are in `codec` and `timeouts`.
    pub(crate) config: LinkConfig,
    pub(crate) codec: SharedCodec,
    pub(crate) slot: Slot<Connection>,
    /// Applied to every connection; they outlive it ("a read timeout stays
    /// until changed").
    timeouts: Mutex<Timeouts>,
    pub(crate) reader: Mutex<ReadHalf>,
    pub(crate) writer: Mutex<WriteHalf>,
    should_be_connected: AtomicBool,
    pub(crate) events: Events,
    pub(crate) counters: Counters,
    threads: Threads,
}

#[derive(Clone, Copy, Default)]
struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// Whether a new connection may take a slot that is occupied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Takeover {
    /// Never: the new one is turned away.
    Never,
    /// When the current peer is gone with nothing left unread (it dropped
    /// before the monitor noticed).
    IfDead,
    /// Always: the current connection is ended first, with
    /// [`DisconnectReason::Replaced`] (or, if its peer is gone already, the
    /// reason `IfDead` would give), so that its `Disconnected` comes
    /// before the new `Connected`.
    Always,
}

/// What ending a connection does to `should_be_connected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Leave it: the peer went, or a `basic_` close.
    Keep,
    /// Clear it: this side closed on purpose.
    Clear,
}

impl Endpoint {
    /// `log_name` is `Role(name)`, or `Role(where)` for an unnamed one.
    pub(crate) fn new(role: &str, place: &str, config: LinkConfig) -> Endpoint {
        let codec = SharedCodec::new(
            Codec::new(config.encoding, &config.terminator)
                .with_json(config.json_style, config.json_non_finite),
        );
        let shown = if config.name.is_empty() {
            place
        } else {
            &config.name
        };
        Endpoint {
            log_name: format!("{role}({shown})"),
            reader: Mutex::new(Half::new(&codec)),
            writer: Mutex::new(Half::new(&codec)),
            codec,
            slot: Slot::default(),
            timeouts: Mutex::new(Timeouts {
                read: config.read_timeout,
                write: config.write_timeout,
            }),
            config,
            should_be_connected: AtomicBool::new(false),
            events: Events::default(),
            counters: Counters::default(),
            threads: Threads::default(),
        }
    }

    /// The name given to the builder.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    pub(crate) fn connected(&self) -> bool {
        self.slot.is_connected()
    }

    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.slot.current().map(|c| c.peer())
    }

    pub(crate) fn should_be_connected(&self) -> bool {
        self.should_be_connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_should_be_connected(&self, value: bool) {
        self.should_be_connected.store(value, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.slot.is_closed()
    }

    pub(crate) fn encoding(&self) -> crate::encoding::Encoding {
        self.codec.get().encoding
    }

    pub(crate) fn set_encoding(&self, encoding: crate::encoding::Encoding) {
        self.codec.set(|c| c.with_encoding(encoding));
    }

    pub(crate) fn terminator(&self) -> Vec<u8> {
        self.codec.get().terminator().to_vec()
    }

    pub(crate) fn set_terminator(&self, terminator: Vec<u8>) -> Result<()> {
        crate::config::check_separator("terminator", &terminator)?;
        self.codec.set(|c| c.with_terminator(&terminator));
        Ok(())
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.set_timeouts(|t| t.read = timeout);
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.set_timeouts(|t| t.write = timeout);
    }

    /// Changes the timeouts of this and every later connection.
    fn set_timeouts(&self, change: impl FnOnce(&mut Timeouts)) {
        let slot = self.slot.lock();
        let mut timeouts = self.timeouts.lock();
        change(&mut timeouts);
        if let Some(conn) = slot.conn() {
            let _ = apply_timeouts(conn, *timeouts);
        }
    }

    /// Makes `conn` the connection, unless the slot is taken (see
    /// [`Takeover`]) or the endpoint is closed: then `conn` is handed back.
    pub(crate) fn attach(
        &self,
        conn: Arc<Connection>,
        takeover: Takeover,
    ) -> std::result::Result<(), Arc<Connection>> {
        let mut slot = self.slot.lock();
        if slot.is_closed() {
            return Err(conn);
        }
        if let Some(old) = slot.conn().cloned() {
            let reason = match takeover {
                Takeover::Never => return Err(conn),
                _ if self.is_dead(&old) => ending::at_end(old.broken()),
                Takeover::IfDead => return Err(conn),
                Takeover::Always => DisconnectReason::Replaced,
            };
            self.end_locked(&mut slot, &old, reason, Intent::Keep);
        }
        let peer = conn.peer();
        if let Err(e) = apply_timeouts(&conn, *self.timeouts.lock()) {
            log::warn!("{}: cannot set timeouts on {peer}: {e}", self.log_name);
        }
        slot.install(conn);
        self.set_should_be_connected(true);
        Counters::add(&self.counters.connections_accepted, 1);
        log::info!("{}: connected to {peer}", self.log_name);
        self.events.publish(&ConnectionEvent::Connected { peer });
        Ok(())
    }

    /// Ends `conn` if it is still the connection; false if it was not.
    pub(crate) fn detach(
        &self,
        conn: &Arc<Connection>,
        reason: DisconnectReason,
        intent: Intent,
    ) -> bool {
        let mut slot = self.slot.lock();
        self.end_locked(&mut slot, conn, reason, intent)
    }

    /// Ends the current connection, if any.
    pub(crate) fn detach_current(&self, reason: DisconnectReason, intent: Intent) -> bool {
        let mut slot = self.slot.lock();
        match slot.conn().cloned() {
            Some(conn) => self.end_locked(&mut slot, &conn, reason, intent),
            None => {
                if intent == Intent::Clear {
                    self.set_should_be_connected(false);
                }
                false
            }
        }
    }

    /// Ends `conn` if its peer is gone and nothing it sent is unread. The
    /// check runs under the slot lock, as `attach`'s does, so the two never
    /// mistake each other's look at the receive buffer for a busy reader.
    pub(crate) fn detach_if_dead(&self, conn: &Arc<Connection>) -> bool {
        let mut slot = self.slot.lock();
        // The cause is read after the look: a reader that heard of a break
        // keeps it before it lets go of the read half.
        self.is_dead(conn)
            && self.end_locked(&mut slot, conn, ending::at_end(conn.broken()), Intent::Keep)
    }

    /// Every state change of an ending connection, then the news of it:
    /// `connected()`, `should_be_connected()` and `stats()` agree before
    /// the callback or an event hears.
    fn end_locked(
        &self,
        slot: &mut SlotGuard<'_, Connection>,
        conn: &Arc<Connection>,
        reason: DisconnectReason,
        intent: Intent,
    ) -> bool {
        if !slot.remove(conn) {
            return false;
        }
        conn.shutdown();
        self.release_halves(conn);
        if intent == Intent::Clear {
            self.set_should_be_connected(false);
        }
        Counters::add(&self.counters.disconnects, 1);
        let peer = conn.peer();
        if reason == DisconnectReason::PeerUnresponsive {
            Counters::add(&self.counters.peers_unresponsive, 1);
            match self.config.dead_peer_timeout {
                bound if bound.is_zero() => log::warn!(
                    "{}: disconnected from {peer}: it stopped answering (past the system's keepalive and retransmission limits)",
                    self.log_name
                ),
                bound => log::warn!(
                    "{}: disconnected from {peer}: it stopped answering (silent for the dead-peer bound, {bound:?})",
                    self.log_name
                ),
            }
        } else {
            log::info!("{}: disconnected from {peer}: {reason}", self.log_name);
        }
        self.events
            .publish(&ConnectionEvent::Disconnected { peer, reason });
        true
    }

    /// Marks the endpoint closed and ends the connection. False if it was
    /// closed already.
    pub(crate) fn shut(&self, intent: Intent) -> bool {
        let mut slot = self.slot.lock();
        if slot.is_closed() {
            return false;
        }
        if let Some(conn) = slot.conn().cloned() {
            self.end_locked(&mut slot, &conn, DisconnectReason::ClosedLocally, intent);
        } else if intent == Intent::Clear {
            self.set_should_be_connected(false);
        }
        slot.close();
        true
    }

    /// Starts a thread named after `kind` and the endpoint, joined on close.
    pub(crate) fn spawn(&self, kind: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
        self.threads.spawn(kind, self.name(), f)
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

    /// Closes the endpoint: ends the connection, lets the callback thread
    /// finish its queue, and joins every thread (called from one of them,
    /// it leaves that to the owner's close: see [`Threads::join_all`]).
    /// What the endpoint's shutdown does not release (a server's accept
    /// threads and handshakes) the owner stops first.
    pub(crate) fn close(&self, intent: Intent) {
        if self.shut(intent) {
            log::info!("{}: closing", self.log_name);
        }
        self.events.close_callback();
        if !self.threads.join_all() {
            log::error!("{}: a background thread panicked", self.log_name);
        }
    }

    /// True while a peer holds the slot and is not gone: a new client
    /// would be turned away (a dropped one that nobody noticed yet would
    /// be replaced, see [`Takeover::IfDead`]). The TLS accept asks, so as
    /// not to shake hands with a client it would turn away.
    #[cfg(feature = "tls")]
    pub(crate) fn holds_live_peer(&self) -> bool {
        let slot = self.slot.lock();
        slot.conn().is_some_and(|conn| !self.is_dead(conn))
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
        if !matches!(conn.peek_now(), Ok(Peek::Eof) | Err(_)) {
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
    /// one.
    #[inline]
    pub(crate) fn bound<'a, S: Default>(
        &'a self,
        half: &'a Mutex<Half<S>>,
    ) -> Option<MutexGuard<'a, Half<S>>> {
        let guard = half.lock();
        if self.slot.is_current(guard.epoch()) {
            return guard.is_bound().then_some(guard);
        }
        self.rebind(half, guard)
    }

    /// `bound` after the epoch moved on: takes the new connection from the
    /// slot. The slot lock is never waited for with a half held.
    #[cold]
    fn rebind<'a, S: Default>(
        &'a self,
        half: &'a Mutex<Half<S>>,
        mut guard: MutexGuard<'a, Half<S>>,
    ) -> Option<MutexGuard<'a, Half<S>>> {
        loop {
            drop(guard);
            let (epoch, conn) = self.slot.current_with_epoch();
            guard = half.lock();
            guard.rebind(epoch, conn);
            if self.slot.is_current(guard.epoch()) {
                return guard.is_bound().then_some(guard);
            }
        }
    }

    /// After a call: a half whose connection ended meanwhile lets go of it.
    pub(crate) fn release_if_stale<S: Default>(&self, half: &mut Half<S>) {
        if !self.slot.is_current(half.epoch()) {
            half.release();
        }
    }

    /// Ends the connection `half` serves (its lock released first).
    pub(crate) fn end<S: Default>(
        &self,
        mut half: MutexGuard<'_, Half<S>>,
        reason: DisconnectReason,
    ) {
        let conn = half.release();
        drop(half);
        if let Some(conn) = conn {
            self.detach(&conn, reason, Intent::Keep);
        }
    }
}

/// Zero, which the socket would take as "forever", becomes the shortest
/// wait the socket has (1 µs).
fn apply_timeouts(conn: &Connection, timeouts: Timeouts) -> std::io::Result<()> {
    let shortest = |t: Option<Duration>| t.map(|t| t.max(Duration::from_micros(1)));
    conn.set_timeouts(shortest(timeouts.read), shortest(timeouts.write))
}
