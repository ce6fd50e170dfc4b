//! One connection: its transport, its peer, the local shutdown that
//! releases whoever is blocked on it, and the one place where what the
//! transport reports is judged. Its receive buffer and write state live in
//! the endpoint's halves (`half.rs`), which outlast any one connection.
//!
//! Every read, write and look goes through here, and comes out as one of:
//! bytes; the peer's end of stream (`Ok(0)`, only when the peer really
//! closed); `WouldBlock` (the call's deadline passed, the stream is good);
//! or an error that means the connection has ended, saying why: the first
//! cause any thread heard ([`Connection::cause`]), "closed locally", or
//! [`pending`] (it broke, and the thread that heard why has not said so
//! yet). The layers above never look at the transport's own errors.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::socket::{Peek, Wake};
use super::transport::Transport;
use crate::deadline::Deadline;
use crate::sync::{AtomicBool, Condvar, Mutex};
use std::sync::atomic::Ordering;

/// How long a thread that met the fallout of a break (an end of file, a
/// broken pipe) waits for the thread that heard its cause to say it: that
/// thread's system call has returned, and it keeps the cause before
/// anything else. Past this, the fallout is taken as the cause.
const CAUSE_WAIT: Duration = Duration::from_secs(1);

/// A connection shared by the reading thread, the writing threads, the
/// monitor and whoever closes it.
#[derive(Debug)]
pub(crate) struct Connection {
    transport: Box<dyn Transport>,
    peer: SocketAddr,
    /// Set before the transport is shut down locally, so that the end of
    /// file this causes is reported as a local close, not the peer's.
    closing: AtomicBool,
    /// Why this side ended it (set before `closing`), for the calls the
    /// shutdown cuts short: the peer's close that the monitor saw, say,
    /// not "closed locally".
    why_closed: Mutex<Option<(io::ErrorKind, String)>>,
    /// How the connection broke, as the first thread to hear of it heard.
    /// The system tells its error to one caller only; the others see an
    /// end of file or a broken pipe, and read the cause here. A leaf lock.
    cause: Mutex<Option<Broken>>,
    /// Signalled when `cause` is set.
    heard: Condvar,
}

/// The error that broke a connection, kept to tell every thread the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) kind: io::ErrorKind,
    pub(crate) os_code: Option<i32>,
}

impl Broken {
    fn of(err: &io::Error) -> Broken {
        Broken {
            kind: err.kind(),
            os_code: err.raw_os_error(),
        }
    }

    pub(crate) fn io(self) -> io::Error {
        match self.os_code {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(self.kind),
        }
    }
}

/// What a connection error says about who ends the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// This side closed it: whoever closed has ended it already.
    Locally,
    /// It broke and the cause is not known yet: the thread that heard it
    /// ends it.
    CausePending,
    /// It broke for this cause.
    Broke,
}

/// The marker inside the errors [`pending`] makes.
#[derive(Debug)]
struct Marker(&'static str, Ended);

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Marker {}

/// The error of a call that a local close ended.
pub(crate) fn closed_locally() -> io::Error {
    ended_here(io::ErrorKind::ConnectionAborted, "closed locally".into())
}

/// The error of a call on a connection this side has ended, saying why
/// (`kind` and `why`): the connection's end is already taken care of.
fn ended_here(kind: io::ErrorKind, why: String) -> io::Error {
    io::Error::new(kind, EndedHere(why))
}

/// The marker inside the errors [`ended_here`] makes.
#[derive(Debug)]
struct EndedHere(String);

impl std::fmt::Display for EndedHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EndedHere {}

/// The error of a call that met a break whose cause another thread heard
/// and has not told yet (a `try_` call does not wait for it).
pub(crate) fn pending() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        Marker(
            "the connection broke (another call on it heard why)",
            Ended::CausePending,
        ),
    )
}

/// What a connection error (as this module makes them) says about the
/// connection's end.
pub(crate) fn ended(err: &io::Error) -> Ended {
    let inner = err.get_ref();
    if inner.is_some_and(|e| e.is::<EndedHere>()) {
        return Ended::Locally;
    }
    match inner.and_then(|e| e.downcast_ref::<Marker>()) {
        Some(Marker(_, Ended::CausePending)) => Ended::CausePending,
        _ => Ended::Broke,
    }
}

impl Connection {
    pub(crate) fn new(transport: impl Transport, peer: SocketAddr) -> Connection {
        Connection {
            transport: Box::new(transport),
            peer,
            closing: AtomicBool::new(false),
            why_closed: Mutex::new(None),
            cause: Mutex::new(None),
            heard: Condvar::new(),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// How the connection broke, if a thread has heard.
    pub(crate) fn cause(&self) -> Option<Broken> {
        *self.cause.lock()
    }

    /// Reads from the transport (spinning first for up to `spin`): bytes,
    /// `Ok(0)` for the peer's end of stream, `WouldBlock` past the
    /// deadline, or the connection's end.
    #[inline]
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        deadline: Deadline,
        spin: Duration,
    ) -> io::Result<usize> {
        match self.transport.read(buf, deadline, spin) {
            Ok(0) if !buf.is_empty() => self.end_of_stream(deadline).map(|()| 0),
            Ok(n) => Ok(n),
            Err(e) => Err(self.judge(e, deadline)),
        }
    }

    /// Takes some of `buf` to send (see [`Transport::write`]).
    #[inline]
    pub(crate) fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize> {
        self.transport
            .write(buf, deadline)
            .map_err(|e| self.judge(e, deadline))
    }

    /// Sends what the transport holds from earlier writes.
    pub(crate) fn flush(&self, deadline: Deadline) -> io::Result<()> {
        self.transport
            .flush(deadline)
            .map_err(|e| self.judge(e, deadline))
    }

    /// Looks without waiting: `Eof` only for the peer's own close.
    pub(crate) fn peek_now(&self) -> io::Result<Peek> {
        self.look(self.transport.peek_now())
    }

    /// Waits for the peer's hang-up, then looks: `Eof` only for the peer's
    /// own close; a break is its error, as soon as its cause is known.
    pub(crate) fn wait_hangup(&self, kick: Option<&Wake>) -> io::Result<Peek> {
        self.look(self.transport.wait_hangup(kick))
    }

    fn look(&self, looked: io::Result<Peek>) -> io::Result<Peek> {
        // A look is no caller's call: it waits for a cause as long as a
        // cause is waited for.
        let deadline = Deadline::Forever;
        match looked {
            Ok(Peek::Eof) => self.end_of_stream(deadline).map(|()| Peek::Eof),
            Ok(peek) => Ok(peek),
            Err(e) => Err(self.judge(e, deadline)),
        }
    }

    /// A transport error, judged once: a passed deadline stays
    /// `WouldBlock`; the fallout of a local close is "closed locally"; a
    /// broken pipe is the fallout of a break another thread heard of (or,
    /// if nobody tells a cause within [`CAUSE_WAIT`], its own); anything
    /// else is the cause, kept for every thread unless one was kept first.
    fn judge(&self, err: io::Error, deadline: Deadline) -> io::Error {
        if self.is_closing() {
            return self.closed_error();
        }
        match err.kind() {
            io::ErrorKind::WouldBlock => err,
            io::ErrorKind::BrokenPipe => self.fallout(err, deadline),
            _ => self.keep(&err),
        }
    }

    /// The stream ended: `Ok` when the peer closed it, else the error that
    /// ended it (a break shows as an end of file to every thread but the
    /// one the system told, and then this side cannot send either).
    fn end_of_stream(&self, deadline: Deadline) -> io::Result<()> {
        if self.is_closing() {
            return Err(self.closed_error());
        }
        if let Some(cause) = self.cause() {
            return Err(cause.io());
        }
        match self.transport.send_closed() {
            Ok(false) => Ok(()),
            Ok(true) => Err(self.fallout(pending(), deadline)),
            Err(e) => Err(self.judge(e, deadline)),
        }
    }

    /// A second-hand sign of a break (`seen`): the cause, once the thread
    /// that heard it keeps it. Waits for that no longer than `deadline`
    /// (then [`pending`]) and [`CAUSE_WAIT`] (then `seen` is the cause).
    fn fallout(&self, seen: io::Error, deadline: Deadline) -> io::Error {
        let waited = Instant::now() + CAUSE_WAIT;
        let mut cause = self.cause.lock();
        loop {
            if let Some(cause) = *cause {
                return cause.io();
            }
            if self.is_closing() {
                drop(cause);
                return self.closed_error();
            }
            let until = match deadline {
                Deadline::Forever => waited,
                Deadline::At(at) if at < waited => at,
                Deadline::At(_) => waited,
                Deadline::Now => return pending(),
            };
            if self.heard.wait_until(&mut cause, until).timed_out() && cause.is_none() {
                if until < waited {
                    return pending();
                }
                drop(cause);
                let seen = match ended(&seen) {
                    Ended::CausePending => io::Error::from(io::ErrorKind::BrokenPipe),
                    _ => seen,
                };
                return self.keep(&seen);
            }
        }
    }

    /// Keeps `err` as the cause unless one was kept first; returns the
    /// cause kept.
    fn keep(&self, err: &io::Error) -> io::Error {
        let mut cause = self.cause.lock();
        let kept = *cause.get_or_insert_with(|| Broken::of(err));
        drop(cause);
        self.heard.notify_all();
        if kept == Broken::of(err) {
            // This thread's own error, with its message.
            return clone_io(err);
        }
        kept.io()
    }

    /// The error of a call that this side's shutdown cut short: the
    /// cause of a break if one was heard, else why this side ended it.
    fn closed_error(&self) -> io::Error {
        if let Some(cause) = self.cause() {
            return cause.io();
        }
        match &*self.why_closed.lock() {
            Some((kind, why)) => ended_here(*kind, why.clone()),
            None => closed_locally(),
        }
    }

    /// [`shutdown`](Self::shutdown), telling the calls it cuts short why:
    /// `kind` and `why` (the end's reason, as the events tell it).
    pub(crate) fn shutdown_because(&self, kind: io::ErrorKind, why: String) {
        self.why_closed.lock().get_or_insert((kind, why));
        self.shutdown();
    }

    /// Shuts the transport down, releasing any thread blocked on it with
    /// an error. Idempotent.
    pub(crate) fn shutdown(&self) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            self.transport.shutdown();
            // A thread waiting for a cause hears of the close instead.
            let _held = self.cause.lock();
            self.heard.notify_all();
        }
    }
}

/// A copy of `err`: the system's code if it has one, else its kind and
/// message.
fn clone_io(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shutdown();
    }
}
