//! One connection: its transport, its peer, and the local shutdown that
//! releases whoever is blocked on it. Its receive buffer and write lock
//! live in the endpoint's halves (`half.rs`), which outlast any one
//! connection.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::socket::Peek;
use super::transport::Transport;
use crate::error::{Error, Result};

/// A connection shared by the reading thread, the writing threads, the
/// monitor and whoever closes it.
#[derive(Debug)]
pub(crate) struct Connection {
    transport: Box<dyn Transport>,
    peer: SocketAddr,
    /// Set before the transport is shut down locally, so that the end of
    /// file this causes is reported as a local close, not the peer's.
    closing: AtomicBool,
    /// How the connection broke, as the first thread to hear of it heard.
    /// The system tells its error to one caller only; the others see an
    /// end of file or a closed socket, and read the cause here.
    broken: OnceLock<Broken>,
    /// The link's read and write timeouts as last set on the socket: what
    /// a call with a deadline narrows for its length and then puts back.
    /// Set and put back under this lock, so a timeout set while such a
    /// call runs is the one left on the socket when it ends. A leaf lock.
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
}

/// The error that broke a connection, kept to tell every thread the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) kind: io::ErrorKind,
    pub(crate) os_code: Option<i32>,
}

impl Broken {
    /// The connection error for a thread that heard of it second hand.
    pub(crate) fn error(self) -> Error {
        Error::ConnectionLost(self.io())
    }

    pub(crate) fn io(self) -> io::Error {
        match self.os_code {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(self.kind),
        }
    }
}

impl Connection {
    pub(crate) fn new(transport: impl Transport, peer: SocketAddr) -> Connection {
        Connection {
            transport: Box::new(transport),
            peer,
            closing: AtomicBool::new(false),
            broken: OnceLock::new(),
            timeouts: Mutex::new((None, None)),
        }
    }

    /// Sets the link's read and write timeouts on the socket.
    pub(crate) fn set_timeouts(
        &self,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        let mut timeouts = self.timeouts.lock();
        let socket = self.transport.socket();
        socket.set_read_timeout(read)?;
        socket.set_write_timeout(write)?;
        *timeouts = (read, write);
        Ok(())
    }

    /// The link's read timeout (not a deadline's narrowing of it).
    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.timeouts.lock().0
    }

    /// The link's write timeout (not a deadline's narrowing of it).
    fn write_timeout(&self) -> Option<Duration> {
        self.timeouts.lock().1
    }

    /// Puts the link's read timeout back on the socket after a deadline.
    pub(crate) fn restore_read_timeout(&self) {
        let timeouts = self.timeouts.lock();
        let _ = self.transport.socket().set_read_timeout(timeouts.0);
    }

    /// Puts the link's write timeout back on the socket after a deadline.
    fn restore_write_timeout(&self) {
        let timeouts = self.timeouts.lock();
        let _ = self.transport.socket().set_write_timeout(timeouts.1);
    }

    /// How the connection broke, if a thread has heard.
    pub(crate) fn broken(&self) -> Option<Broken> {
        self.broken.get().copied()
    }

    /// Keeps `err` as the cause, unless a cause is known or `err` is not
    /// one (a timeout, an interruption, or the fallout of a local close).
    fn note(&self, err: &io::Error) {
        use io::ErrorKind::*;
        if matches!(err.kind(), WouldBlock | Interrupted) || self.is_closing() {
            return;
        }
        let _ = self.broken.set(Broken {
            kind: err.kind(),
            os_code: err.raw_os_error(),
        });
    }

    /// Reads from the transport, keeping the cause of a break.
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.transport.read(buf).inspect_err(|e| self.note(e))
    }

    /// Looks without waiting, keeping the cause of a break.
    pub(crate) fn peek_now(&self) -> io::Result<Peek> {
        self.transport.peek_now().inspect_err(|e| self.note(e))
    }

    /// Waits for the peer's hang-up, keeping the cause of a break.
    pub(crate) fn wait_hangup(&self) -> io::Result<Peek> {
        self.transport.wait_hangup().inspect_err(|e| self.note(e))
    }

    /// The error a thread gets when the connection was ended while it
    /// waited: the cause if one is known, else a local close.
    pub(crate) fn ended_error(&self) -> Error {
        match self.broken() {
            Some(broken) => broken.error(),
            None => closed_locally(),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    #[inline]
    pub(crate) fn transport(&self) -> &dyn Transport {
        &*self.transport
    }

    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Sends the whole frame, before `deadline` if there is one. A write
    /// cut short by a timeout after part of the frame went out leaves the
    /// stream corrupt, so it is reported as a lost connection; with nothing
    /// sent it is a plain timeout.
    #[inline]
    pub(crate) fn send(&self, frame: &[u8], deadline: Option<Instant>) -> Result<usize> {
        // Usually the socket takes the whole frame at once.
        if deadline.is_none() {
            match self.transport.write(frame) {
                Ok(n) if n == frame.len() => return Ok(n),
                first => return self.send_rest(frame, Some(first), None),
            }
        }
        self.send_rest(frame, None, deadline)
    }

    /// `send` after a `first` write that did not take the whole frame, or
    /// with a deadline.
    #[cold]
    fn send_rest(
        &self,
        frame: &[u8],
        mut first: Option<io::Result<usize>>,
        deadline: Option<Instant>,
    ) -> Result<usize> {
        if frame.is_empty() {
            return Ok(0);
        }
        let mut sent = 0;
        let socket = self.transport.socket();
        // With a deadline the socket's timeout is narrowed for this call
        // and put back after it.
        let result = loop {
            if sent >= frame.len() {
                break Ok(sent);
            }
            if let Some(deadline) = deadline {
                match remaining(deadline, self.write_timeout()) {
                    Some(left) => socket.set_write_timeout(Some(left))?,
                    None => break Err(timed_out(sent, frame.len())),
                }
            }
            let written = match first.take() {
                Some(result) => result,
                None => self.transport.write(&frame[sent..]),
            };
            if let Err(e) = &written {
                self.note(e);
            }
            match written {
                Ok(0) => break Err(Error::ConnectionLost(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.is_closing() => break Err(self.ended_error()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Err(timed_out(sent, frame.len()))
                }
                // The cause the first thread to hear of the break kept (this
                // one's error if it was first), not a second-hand fallout.
                Err(e) => {
                    break Err(self
                        .broken()
                        .map_or(Error::ConnectionLost(e), Broken::error))
                }
            }
        };
        if deadline.is_some() {
            self.restore_write_timeout();
        }
        result
    }

    /// Shuts the transport down, releasing any thread blocked on it with
    /// an error. Idempotent.
    pub(crate) fn shutdown(&self) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            self.transport.shutdown();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A write that ran out of time: a timeout if nothing went out, else a
/// lost connection (the peer has part of a frame).
fn timed_out(sent: usize, len: usize) -> Error {
    if sent == 0 {
        return Error::Timeout;
    }
    let msg = format!("write timed out after {sent} of {len} bytes");
    Error::ConnectionLost(io::Error::new(io::ErrorKind::TimedOut, msg))
}

/// Time left before `deadline`, no longer than the link's own `timeout`;
/// None once it has passed.
pub(crate) fn remaining(deadline: Instant, timeout: Option<Duration>) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    // Zero would mean "no timeout" to the socket.
    let left = left.max(Duration::from_micros(1));
    Some(timeout.map_or(left, |t| t.min(left)))
}

pub(crate) fn closed_locally() -> Error {
    Error::ConnectionLost(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed locally",
    ))
}
