//! The read and write halves of one side of a link.
//!
//! Each half is locked for the whole of one call, so a frame is never split
//! between two readers nor interleaved with another writer's, and reading
//! never waits for writing. The lock is taken within the call's deadline
//! (a `try_` call only tries it). A half stays bound to the connection it
//! served last, with the slot's epoch at which that connection was
//! current: while the epoch has not moved, a call takes one lock (the
//! half's) and no reference count. The endpoint rebinds a half when the
//! epoch moves on.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use super::connection::Connection;
use super::shared_codec::{CodecCache, SharedCodec};
use super::stats::Counters;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::wire::codec::Codec;
use crate::wire::frame::{FrameReader, Request};

/// One half: the connection it is bound to, its copy of the codec, and
/// what it keeps per connection (`S`).
#[derive(Debug)]
pub(crate) struct Half<S> {
    /// The slot's epoch when `conn` was taken from it.
    epoch: u64,
    conn: Option<Arc<Connection>>,
    codec: CodecCache,
    state: S,
}

/// The read half keeps the receive buffer.
pub(crate) type ReadHalf = Half<Inbox>;
/// The write half keeps the buffer frames are built in, and the rest of a
/// frame a deadline cut short.
pub(crate) type WriteHalf = Half<Outbox>;

impl<S: Default> Half<S> {
    pub(crate) fn new(codec: &SharedCodec) -> Half<S> {
        Half {
            epoch: 0,
            conn: None,
            codec: CodecCache::new(codec),
            state: S::default(),
        }
    }

    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    #[inline]
    pub(crate) fn is_bound(&self) -> bool {
        self.conn.is_some()
    }

    /// True if the half serves `conn`.
    pub(crate) fn serves(&self, conn: &Arc<Connection>) -> bool {
        self.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn))
    }

    /// Binds the half to `conn`, the slot's connection at `epoch`, unless
    /// another thread bound it to a later epoch meanwhile (epochs only
    /// grow). A connection is current at one epoch only, so what the half
    /// kept belongs to an ended one and goes.
    pub(crate) fn rebind(&mut self, epoch: u64, conn: Option<Arc<Connection>>) {
        if epoch <= self.epoch {
            return;
        }
        self.state = S::default();
        self.epoch = epoch;
        self.conn = conn;
    }

    /// The connection, the codec (refreshed if it changed) and what the
    /// half keeps, borrowed apart for one call; None when unbound.
    #[inline]
    fn parts(&mut self, shared: &SharedCodec) -> Option<(&Connection, &Codec, &mut S)> {
        let conn = self.conn.as_deref()?;
        Some((conn, self.codec.get(shared), &mut self.state))
    }

    /// Lets go of a connection that has ended, so its socket closes with
    /// the last reference; the next call rebinds.
    pub(crate) fn release(&mut self) -> Option<Arc<Connection>> {
        self.state = S::default();
        self.conn.take()
    }
}

/// The read half's state: the frame reader with its receive buffer, and
/// how many frames this side had written when the last frame was read (a
/// reply is due while more have been written since).
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    frames: FrameReader,
    replied_to: u64,
}

impl ReadHalf {
    /// The receive buffer, for a look from the endpoint.
    pub(crate) fn buffered(&self) -> &[u8] {
        self.state.frames.buffered()
    }

    /// The peer has closed and every byte it sent has been read.
    pub(crate) fn drained(&self) -> bool {
        self.state.frames.at_eof() && self.state.frames.buffered().is_empty()
    }

    /// One read: the frame reader serves `request` from the buffer and the
    /// connection, and `decode` turns the frame into the caller's value
    /// with the half's codec. The codec and the read limit are resolved
    /// once, here. A read that must wait spins for up to `spin` first, but
    /// only while a reply is due: this side wrote since the last frame it
    /// read, or bytes of a frame are arriving.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read<T>(
        &mut self,
        shared: &SharedCodec,
        counters: &Counters,
        deadline: Deadline,
        spin: Duration,
        request: Request<'_>,
        limit: usize,
        decode: impl FnOnce(Cow<'_, [u8]>, &Codec) -> Result<T>,
    ) -> Result<T> {
        // The outcome is returned alone, `drained` asked for apart: a
        // struct around the result was built on the stack and copied out,
        // a store-forwarding stall measured at a tenth of a short line's
        // read.
        let Some((conn, codec, inbox)) = self.parts(shared) else {
            return Err(Error::NotConnected);
        };
        let (mut written, mut now) = (0, Duration::ZERO);
        if !spin.is_zero() {
            written = counters
                .frames_written
                .load(std::sync::atomic::Ordering::Relaxed);
            if written != inbox.replied_to || !inbox.frames.buffered().is_empty() {
                now = spin;
            }
        }
        let mut src = Source {
            conn,
            counters,
            deadline,
            spin: now,
            arriving: spin,
        };
        let frames = &mut inbox.frames;
        let result = frames
            .read(&mut src, request, &codec.separator, limit)
            .and_then(|frame| decode(frame, codec));
        if result.is_ok() {
            inbox.replied_to = written;
        }
        result
    }
}

impl WriteHalf {
    /// One write: `build` fills the reused scratch buffer with the frame
    /// (with the half's codec), and the outbox sends it. Returns the
    /// frame's length.
    #[inline]
    pub(crate) fn write(
        &mut self,
        shared: &SharedCodec,
        deadline: Deadline,
        build: impl FnOnce(&mut Vec<u8>, &Codec) -> Result<()>,
    ) -> Result<usize> {
        let Some((conn, codec, out)) = self.parts(shared) else {
            return Err(Error::NotConnected);
        };
        out.finish(conn, deadline)?;
        let mut frame = std::mem::take(&mut out.scratch);
        frame.clear();
        let result = build(&mut frame, codec).and_then(|()| out.send(conn, &frame, deadline));
        shrink(&mut frame);
        out.scratch = frame;
        result
    }

    /// Sends `frame` as it is, with no copy (bulk data).
    #[inline]
    pub(crate) fn write_slice(&mut self, frame: &[u8], deadline: Deadline) -> Result<usize> {
        let Some(conn) = self.conn.as_deref() else {
            return Err(Error::NotConnected);
        };
        self.state.finish(conn, deadline)?;
        self.state.send(conn, frame, deadline)
    }

    /// Sends what an earlier write left unsent.
    pub(crate) fn flush(&mut self, deadline: Deadline) -> Result<()> {
        let Some(conn) = self.conn.as_deref() else {
            return Err(Error::NotConnected);
        };
        self.state.finish(conn, deadline)
    }
}

/// The write half's buffers: `scratch`, where frames are built, and the
/// rest of a frame whose write ran out of time part-way (`tail[sent..]`),
/// which goes out before anything else so that the peer never sees half a
/// frame followed by another.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    scratch: Vec<u8>,
    tail: Vec<u8>,
    sent: usize,
}

impl Outbox {
    /// Sends the rest of the frame an earlier write left, and what the
    /// transport holds, by `deadline`: [`Error::Timeout`] if some is still
    /// unsent then (this call's own frame is not started).
    fn finish(&mut self, conn: &Connection, deadline: Deadline) -> Result<()> {
        while self.sent < self.tail.len() {
            match conn.write(&self.tail[self.sent..], deadline) {
                Ok(0) => return Err(write_zero()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(Error::Timeout),
                Err(e) => return Err(Error::ConnectionLost(e)),
            }
        }
        if !self.tail.is_empty() {
            self.tail.clear();
            self.sent = 0;
            shrink(&mut self.tail);
        }
        match conn.flush(deadline) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Error::Timeout),
            Err(e) => Err(Error::ConnectionLost(e)),
        }
    }

    /// Sends `frame` by `deadline`. Nothing of it sent by then is
    /// [`Error::Timeout`]; part of it is [`Error::WritePending`], with the
    /// rest kept to go first on the next write.
    #[inline]
    fn send(&mut self, conn: &Connection, frame: &[u8], deadline: Deadline) -> Result<usize> {
        let mut sent = 0;
        while sent < frame.len() {
            match conn.write(&frame[sent..], deadline) {
                Ok(0) => return Err(write_zero()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Error::ConnectionLost(e)),
            }
        }
        if sent < frame.len() {
            if sent == 0 {
                return Err(Error::Timeout);
            }
            self.tail.clear();
            self.tail.extend_from_slice(&frame[sent..]);
            self.sent = 0;
            return Err(Error::write_pending(frame.len()));
        }
        match conn.flush(deadline) {
            Ok(()) => Ok(frame.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(Error::write_pending(frame.len()))
            }
            Err(e) => Err(Error::ConnectionLost(e)),
        }
    }
}

/// A socket that took nothing without saying why: the stream cannot go on.
fn write_zero() -> Error {
    Error::ConnectionLost(io::ErrorKind::WriteZero.into())
}

/// A huge frame should not pin its memory for the link's lifetime.
fn shrink(buf: &mut Vec<u8>) {
    const KEEP: usize = 64 * 1024;
    if buf.capacity() > KEEP {
        buf.clear();
        buf.shrink_to(KEEP);
    }
}

/// The connection as the frame reader sees it: reads within the call's
/// deadline, spinning first for up to `spin` (from the first bytes of a
/// frame on, `arriving`), and counts what it receives.
struct Source<'a> {
    conn: &'a Connection,
    counters: &'a Counters,
    deadline: Deadline,
    spin: Duration,
    arriving: Duration,
}

impl Read for Source<'_> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.conn.read(buf, self.deadline, self.spin)?;
        self.spin = self.arriving;
        // Only ever written with the read half locked.
        Counters::add_exclusive(&self.counters.bytes_read, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
