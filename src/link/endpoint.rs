//! One side of a link: the slot and what a change of it sets off, the two
//! halves, the codec, the timeouts, the counters, the events and the
//! threads, all behind methods, so that the lock order below is kept here
//! and nowhere else. The read and write calls are in `endpoint/io.rs`.
//!
//! Lock order: the slot lock first. Its holder publishes events (taking the
//! events' lock inside it, so that they are told in the order the changes
//! happened) and only *tries* a half (`release_halves`); it never waits for
//! anything else while it holds the slot, so that a call that must not wait
//! at all can try the slot too. A thread holding a half never waits for the
//! slot lock, and never holds both halves. The checks that must wait for a
//! busy reader (`is_dead`) hold no lock but `looking`, then the read half.
//! No lock is held while user code runs (the callback has a thread of its
//! own), but for what builds a frame on the write side and what decodes
//! JSON on the read side, which run with their half held (see
//! `endpoint/io.rs`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::connection::{self, Connection, Ended};
use super::ending;
use super::events::{ConnectionEvent, DisconnectReason, Events};
use super::half::{Half, ReadHalf, WriteHalf};
use super::shared_codec::SharedCodec;
use super::slot::{Slot, SlotGuard, Waited};
use super::socket::Peek;
use super::stats::{Counters, Stats};
use super::threads::Threads;
use crate::config::LinkConfig;
use crate::deadline::Deadline;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, MutexGuard};
use crate::wire::codec::Codec;

mod io;

/// One side of a link.
pub(crate) struct Endpoint {
    /// `Role(name)`, the prefix of every log message.
    log_name: String,
    /// As built. Its encoding, terminator and timeouts are only where the
    /// link started: the live ones are in `codec` and `timeouts`.
    config: LinkConfig,
    codec: SharedCodec,
    slot: Slot<Connection>,
    /// Applied to every call that has no deadline of its own; they
    /// outlive any connection ("a read timeout stays until changed").
    timeouts: Timeouts,
    reader: Mutex<ReadHalf>,
    writer: Mutex<WriteHalf>,
    /// Held by whoever looks whether the peer is gone (`is_dead`: the
    /// monitor, a new client's attach), so that two looks never take each
    /// other's hold of the read half for a busy reader's.
    looking: Mutex<()>,
    /// The monitor waits on the socket for the peer's hang-up: the kernel
    /// then calls its wait entry for every packet that arrives. A read
    /// takes it off (see `monitor.rs`).
    monitor_watching: AtomicBool,
    /// What a read sets to take the monitor off the socket, where the
    /// monitor has one.
    monitor_kick: std::sync::OnceLock<super::socket::Wake>,
    /// Read calls so far (only ever written with the read half held), and
    /// their count when the monitor last went to wait on the socket.
    read_calls: AtomicU64,
    watched_from: AtomicU64,
    should_be_connected: AtomicBool,
    events: Events,
    /// The number of the callback's call for the last `Connected` (see
    /// [`Events::publish`]), written under the slot lock.
    connected_call: AtomicU64,
    counters: Counters,
    threads: Threads,
}

/// The link's read and write timeouts, read by every call without a lock:
/// nanoseconds, [`NO_TIMEOUT`] for none.
struct Timeouts {
    read: AtomicU64,
    write: AtomicU64,
}

const NO_TIMEOUT: u64 = u64::MAX;

/// Read calls in one monitor interval that make a link busy enough to
/// take the monitor off the socket (see `monitor.rs`): 1,000 in the
/// default 100 ms, 10,000 a second. A control loop at 1 kHz stays below
/// and keeps its monitor on the socket, where it hears a hang-up at once.
pub(crate) const BUSY_READS: u64 = 1_000;

fn encode_timeout(timeout: Option<Duration>) -> u64 {
    timeout.map_or(NO_TIMEOUT, |t| {
        u64::try_from(t.as_nanos()).map_or(NO_TIMEOUT, |n| n.min(NO_TIMEOUT - 1))
    })
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
            looking: Mutex::new(()),
            monitor_watching: AtomicBool::new(false),
            monitor_kick: std::sync::OnceLock::new(),
            read_calls: AtomicU64::new(0),
            watched_from: AtomicU64::new(0),
            codec,
            slot: Slot::default(),
            timeouts: Timeouts {
                read: AtomicU64::new(encode_timeout(config.read_timeout)),
                write: AtomicU64::new(encode_timeout(config.write_timeout)),
            },
            config,
            should_be_connected: AtomicBool::new(false),
            events: Events::default(),
            connected_call: AtomicU64::new(0),
            counters: Counters::default(),
            threads: Threads::default(),
        }
    }

    /// The name given to the builder.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// `Role(name)`, for log messages.
    pub(crate) fn log_name(&self) -> &str {
        &self.log_name
    }

    /// The settings the link was built with.
    pub(crate) fn config(&self) -> &LinkConfig {
        &self.config
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

    fn set_should_be_connected(&self, value: bool) {
        self.should_be_connected.store(value, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.slot.is_closed()
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.codec.get().encoding
    }

    pub(crate) fn set_encoding(&self, encoding: Encoding) {
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
        let nanos = encode_timeout(timeout);
        self.timeouts.read.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let nanos = encode_timeout(timeout);
        self.timeouts.write.store(nanos, Ordering::Relaxed);
    }

    /// The deadline of a read that has none of its own: the link's read
    /// timeout from now.
    #[inline]
    pub(crate) fn read_deadline(&self) -> Deadline {
        match self.timeouts.read.load(Ordering::Relaxed) {
            NO_TIMEOUT => Deadline::Forever,
            nanos => Deadline::after(Some(Duration::from_nanos(nanos))),
        }
    }

    /// The deadline of a write that has none of its own.
    #[inline]
    pub(crate) fn write_deadline(&self) -> Deadline {
        match self.timeouts.write.load(Ordering::Relaxed) {
            NO_TIMEOUT => Deadline::Forever,
            nanos => Deadline::after(Some(Duration::from_nanos(nanos))),
        }
    }

    /// The monitor's kick, made once (None where the platform's wait for
    /// a hang-up is not one a kick ends, or none could be made).
    pub(crate) fn monitor_kick(&self) -> Option<&super::socket::Wake> {
        if let Some(kick) = self.monitor_kick.get() {
            return Some(kick);
        }
        let made = super::socket::Wake::new().ok()?;
        Some(self.monitor_kick.get_or_init(|| made))
    }

    /// Says whether the monitor waits on the socket now (counting the
    /// reads from here when it does).
    pub(crate) fn set_monitor_watching(&self, watching: bool) {
        if watching {
            let calls = self.read_calls.load(Ordering::Relaxed);
            self.watched_from.store(calls, Ordering::Relaxed);
        }
        self.monitor_watching.store(watching, Ordering::SeqCst);
    }

    /// Counts a read call (with the read half held), and takes the monitor
    /// off the socket once [`BUSY_READS`] calls came while it waited
    /// there: a link read that often has no monitor on its packets' path.
    #[inline]
    fn count_read_call(&self) {
        let calls = self.read_calls.load(Ordering::Relaxed).wrapping_add(1);
        self.read_calls.store(calls, Ordering::Relaxed);
        if self.monitor_watching.load(Ordering::Relaxed)
            && calls.wrapping_sub(self.watched_from.load(Ordering::Relaxed)) >= BUSY_READS
        {
            self.kick_monitor_now();
        }
    }

    #[cold]
    fn kick_monitor_now(&self) {
        if self.monitor_watching.swap(false, Ordering::SeqCst) {
            if let Some(kick) = self.monitor_kick.get() {
                kick.set();
            }
        }
    }

    /// Read calls so far, for the monitor to tell whether reads go on at
    /// the rate that took it off the socket.
    pub(crate) fn read_calls(&self) -> u64 {
        self.read_calls.load(Ordering::Relaxed)
    }

    /// A receiver of every later change of state.
    pub(crate) fn subscribe(&self) -> crossbeam_channel::Receiver<ConnectionEvent> {
        self.events.subscribe()
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Counts a peer the allowlist refused.
    pub(crate) fn count_refused(&self) {
        Counters::add(&self.counters.connections_refused, 1);
    }

    /// Counts a peer turned away: the slot was taken, or its handshake
    /// failed.
    pub(crate) fn count_rejected(&self) {
        Counters::add(&self.counters.connections_rejected, 1);
    }

    /// Makes `conn` the connection, unless the slot is taken (see
    /// [`Takeover`]) or the endpoint is closed: then `conn` is handed back.
    pub(crate) fn attach(
        &self,
        conn: Arc<Connection>,
        takeover: Takeover,
    ) -> std::result::Result<(), Arc<Connection>> {
        loop {
            let slot = self.slot.lock();
            if slot.is_closed() {
                return Err(conn);
            }
            let Some(old) = slot.conn().cloned() else {
                self.install(slot, conn);
                return Ok(());
            };
            if takeover == Takeover::Never {
                return Err(conn);
            }
            // Whether the old peer is gone may take a busy reader's
            // return to tell: asked with the slot unlocked.
            drop(slot);
            let dead = self.is_dead(&old);
            let mut slot = self.slot.lock();
            if !slot.holds(&old) || slot.is_closed() {
                // It changed meanwhile: look again.
                continue;
            }
            let reason = match (dead, takeover) {
                (Some(reason), _) => reason,
                (None, Takeover::Always) => DisconnectReason::Replaced,
                (None, _) => return Err(conn),
            };
            self.end_locked(&mut slot, &old, reason, Intent::Keep);
            self.install(slot, conn);
            return Ok(());
        }
    }

    /// Installs `conn` in the empty, open slot, counts it, then tells.
    fn install(&self, mut slot: SlotGuard<'_, Connection>, conn: Arc<Connection>) {
        let peer = conn.peer();
        slot.install(conn);
        self.set_should_be_connected(true);
        Counters::add(&self.counters.connections_accepted, 1);
        log::info!("{}: connected to {peer}", self.log_name);
        let call = self.events.publish(&ConnectionEvent::Connected { peer });
        self.connected_call.store(call, Ordering::Release);
    }

    /// The callback's call for the last connection installed (0 for none,
    /// or no callback), for [`wait_callback_returned`](Self::wait_callback_returned).
    /// Read once a connection is seen installed (after `attach`, or
    /// `next_connection`): it is that connection's, or a newer one's.
    pub(crate) fn connected_call(&self) -> u64 {
        self.connected_call.load(Ordering::Acquire)
    }

    /// Waits until the callback's call number `call` has returned (at
    /// once with no callback), or, with `epoch`, until the connection
    /// current at `epoch` ends, or the endpoint closes (which ends it).
    /// A callback that never returns holds the waiter as long.
    pub(crate) fn wait_callback_returned(&self, call: u64, epoch: Option<u64>) {
        // Every install and removal moves the epoch before it publishes.
        self.events
            .wait_returned(call, || epoch.is_none_or(|e| self.slot.is_current(e)));
    }

    /// Makes `conn` the connection, or turns it away: counted before its
    /// peer can see the end of file that dropping it sends. True if taken.
    pub(crate) fn offer(&self, conn: Arc<Connection>, takeover: Takeover) -> bool {
        let peer = conn.peer();
        match self.attach(conn, takeover) {
            Ok(()) => true,
            Err(rejected) => {
                self.turned_away(peer, "a client is already connected");
                drop(rejected);
                false
            }
        }
    }

    /// Counts and logs a peer turned away (the caller closes it after).
    pub(crate) fn turned_away(&self, peer: SocketAddr, why: &str) {
        if self.is_closed() {
            log::debug!("{}: closing; dropped {peer}", self.log_name);
            return;
        }
        self.count_rejected();
        log::warn!("{}: rejecting {peer}: {why}", self.log_name);
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

    /// Ends `conn` if its peer is gone and nothing it sent is unread.
    pub(crate) fn detach_if_dead(&self, conn: &Arc<Connection>) -> bool {
        match self.is_dead(conn) {
            Some(reason) => self.detach(conn, reason, Intent::Keep),
            None => false,
        }
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
        let kind = match reason {
            DisconnectReason::PeerClosed => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::ConnectionAborted,
        };
        conn.shutdown_because(kind, reason.to_string());
        self.release_halves(conn);
        if intent == Intent::Clear {
            self.set_should_be_connected(false);
        }
        self.counters.count_disconnect(&reason);
        let peer = conn.peer();
        if reason == DisconnectReason::PeerUnresponsive {
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

    /// Starts the thread that calls `callback` on every change.
    pub(crate) fn spawn_callback(&self, callback: impl FnMut(bool) + Send + 'static) -> Result<()> {
        let body = self.events.callback_loop(self.log_name.clone(), callback);
        self.spawn("callback", body)
    }

    /// Closes the endpoint: ends the connection, lets the callback thread
    /// finish its queue, and joins every thread (called from one of them,
    /// it leaves that to the owner's close: see [`Threads::join_all`]).
    /// What the endpoint's shutdown does not release (a server's accept
    /// threads and handshakes, a client's connect attempt) the owner
    /// stops first.
    pub(crate) fn close(&self, intent: Intent) {
        if self.shut(intent) {
            log::info!("{}: closing", self.log_name);
        }
        self.events.close_callback();
        if !self.threads.join_all() {
            log::error!("{}: a background thread panicked", self.log_name);
        }
    }

    /// Waits for a connection.
    pub(crate) fn wait_connected(&self, timeout: Duration) -> Result<()> {
        match self.slot.wait_connected(timeout) {
            Waited::Connected => Ok(()),
            Waited::TimedOut => Err(Error::Timeout),
            Waited::Closed => Err(Error::NotConnected),
        }
    }

    /// Waits for a connection newer than the one current at epoch `seen`:
    /// it and its epoch; None once closed.
    pub(crate) fn next_connection(&self, seen: u64) -> Option<(Arc<Connection>, u64)> {
        self.slot.next_connection(seen)
    }

    /// True while the connection current at `epoch` still is.
    #[inline]
    pub(crate) fn is_current(&self, epoch: u64) -> bool {
        self.slot.is_current(epoch)
    }

    /// Waits up to `timeout` unless closed first; true if closed.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        self.slot.wait_closed(timeout)
    }

    /// Waits up to `timeout` unless `conn` stops being the connection
    /// first; true if it still is.
    pub(crate) fn wait_while_current(&self, conn: &Arc<Connection>, timeout: Duration) -> bool {
        self.slot.wait_while_current(conn, timeout)
    }

    /// Waits until there is no connection; true if that is because the
    /// endpoint is closed.
    pub(crate) fn wait_disconnected(&self) -> bool {
        self.slot.wait_disconnected()
    }

    /// True while a peer holds the slot and is not gone: a new client
    /// would be turned away (a dropped one that nobody noticed yet would
    /// be replaced, see [`Takeover::IfDead`]). The TLS accept asks, so as
    /// not to shake hands with a client it would turn away.
    #[cfg(feature = "tls")]
    pub(crate) fn holds_live_peer(&self) -> bool {
        self.slot
            .current()
            .is_some_and(|conn| self.is_dead(&conn).is_none())
    }

    /// The reason to end `conn` for when its peer is gone and nothing it
    /// sent is left unread; None while it is alive (or unread bytes keep
    /// it so, or it is being closed here). Never called with a lock held:
    /// once the socket is at end of file a blocked reader returns at once,
    /// so a busy read half is waited for (briefly) rather than taken for a
    /// live link, or a client that connects just after the old one dropped
    /// would be turned away because a reader had not yet woken.
    fn is_dead(&self, conn: &Arc<Connection>) -> Option<DisconnectReason> {
        const BUSY_READER_WAIT: Duration = Duration::from_millis(100);
        let _looking = self.looking.lock();
        let mut reader = None;
        let reason = loop {
            match conn.peek_now() {
                Ok(Peek::Eof) => break DisconnectReason::PeerClosed,
                // Bytes a busy reader is about to take, perhaps the last
                // (over TLS a look cannot see past ciphertext a reader is
                // taking in): look again once it is done.
                Ok(Peek::Data) if reader.is_none() => {
                    reader = Some(self.reader.try_lock_for(BUSY_READER_WAIT)?);
                }
                Ok(_) => return None,
                Err(e) => match connection::ended(&e) {
                    Ended::Broke => break ending::broken(&e),
                    Ended::Locally | Ended::CausePending => return None,
                },
            }
        };
        let reader = match reader {
            Some(reader) => reader,
            None => self.reader.try_lock_for(BUSY_READER_WAIT)?,
        };
        (!reader.serves(conn) || reader.buffered().is_empty()).then_some(reason)
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

    /// A half locked within `deadline` and bound to the current
    /// connection: [`Error::Timeout`] when another call held it (or the
    /// slot) past the deadline, [`Error::NotConnected`] without a
    /// connection.
    #[inline]
    fn bound<'a, S: Default>(
        &'a self,
        half: &'a Mutex<Half<S>>,
        deadline: Deadline,
    ) -> Result<MutexGuard<'a, Half<S>>> {
        // `let else`, not `ok_or`: `ok_or` builds the error on every call and
        // drops it (a call to the error's drop glue) when the lock is had.
        let Some(guard) = deadline.lock(half) else {
            return Err(Error::Timeout);
        };
        if self.slot.is_current(guard.epoch()) {
            return bound_or_not(guard);
        }
        self.rebind(half, guard, deadline)
    }

    /// `bound` after the epoch moved on: takes the new connection from the
    /// slot. The slot lock is never waited for with a half held.
    #[cold]
    fn rebind<'a, S: Default>(
        &'a self,
        half: &'a Mutex<Half<S>>,
        mut guard: MutexGuard<'a, Half<S>>,
        deadline: Deadline,
    ) -> Result<MutexGuard<'a, Half<S>>> {
        loop {
            drop(guard);
            let Some((epoch, conn)) = self.slot.current_with_epoch(deadline) else {
                return Err(Error::Timeout);
            };
            let Some(relocked) = deadline.lock(half) else {
                return Err(Error::Timeout);
            };
            guard = relocked;
            guard.rebind(epoch, conn);
            if self.slot.is_current(guard.epoch()) {
                return bound_or_not(guard);
            }
        }
    }

    /// After a call: a half whose connection ended meanwhile lets go of it.
    fn release_if_stale<S: Default>(&self, half: &mut Half<S>) {
        if !self.slot.is_current(half.epoch()) {
            half.release();
        }
    }

    /// Ends the connection `half` serves (its lock released first).
    fn end<S: Default>(&self, mut half: MutexGuard<'_, Half<S>>, reason: DisconnectReason) {
        let conn = half.release();
        drop(half);
        if let Some(conn) = conn {
            self.detach(&conn, reason, Intent::Keep);
        }
    }
}

fn bound_or_not<S: Default>(guard: MutexGuard<'_, Half<S>>) -> Result<MutexGuard<'_, Half<S>>> {
    match guard.is_bound() {
        true => Ok(guard),
        false => Err(Error::NotConnected),
    }
}
