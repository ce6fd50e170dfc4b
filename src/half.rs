//! The read and write halves of one side of a link.
//!
//! Each half is locked for the whole of one call, so a frame is never split
//! between two readers nor interleaved with another writer's, and reading
//! never waits for writing (B10). A half stays bound to the connection it
//! served last, with the endpoint's epoch at which that connection was
//! current: while the epoch has not moved, a call takes one lock (the
//! half's) and no reference count. The endpoint rebinds a half when the
//! epoch moves on (`Endpoint::bound`).

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;

use crate::codec::{Codec, CodecCache, SharedCodec};
use crate::connection::{closed_locally, Connection};
use crate::frame::FrameReader;
use crate::net::{self, Peek};
use crate::stats::Counters;
use crate::{Error, Result};

/// One half: the connection it is bound to, its copy of the codec, and
/// what it keeps per connection (`S`).
#[derive(Debug)]
pub(crate) struct Half<S> {
    /// The endpoint's epoch when `conn` was taken from its slot.
    epoch: u64,
    conn: Option<Arc<Connection>>,
    codec: CodecCache,
    state: S,
}

/// The read half keeps the receive buffer.
pub(crate) type ReadHalf = Half<FrameReader>;
/// The write half keeps a scratch buffer that frames are built in.
pub(crate) type WriteHalf = Half<Vec<u8>>;

/// What a half keeps for the connection it serves.
pub(crate) trait PerConnection: Default {
    /// Forgets it, for another connection.
    fn reset(&mut self) {
        *self = Self::default();
    }
}

impl PerConnection for FrameReader {}
impl PerConnection for Vec<u8> {}

impl<S: PerConnection> Half<S> {
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

    /// Binds the half to `conn`, the endpoint's connection at `epoch`,
    /// unless another thread bound it to a later epoch meanwhile (epochs
    /// only grow). A connection is current at one epoch only, so what the
    /// half kept belongs to an ended one and goes.
    pub(crate) fn rebind(&mut self, epoch: u64, conn: Option<Arc<Connection>>) {
        if epoch <= self.epoch {
            return;
        }
        self.state.reset();
        self.epoch = epoch;
        self.conn = conn;
    }

    /// Lets go of a connection that has ended, so its socket closes with
    /// the last reference; the next call rebinds.
    pub(crate) fn release(&mut self) -> Option<Arc<Connection>> {
        self.state.reset();
        self.conn.take()
    }
}

/// What a read call left behind.
pub(crate) struct ReadOutcome<T> {
    pub(crate) result: Result<T>,
    /// The peer has closed and every byte it sent has been read.
    pub(crate) drained: bool,
}

impl ReadHalf {
    /// The receive buffer, for a look from the endpoint.
    pub(crate) fn buffered(&self) -> &[u8] {
        self.state.buffered()
    }

    /// Runs one read call with the receive buffer and a source that counts
    /// the bytes it takes from the socket. With `wait` false the source
    /// never blocks: it reports `WouldBlock` when the socket holds nothing.
    // Inlined: the outcome is too big to pass back through memory cheaply.
    #[inline(always)]
    pub(crate) fn read<T>(
        &mut self,
        codec: &SharedCodec,
        counters: &Counters,
        wait: bool,
        f: impl FnOnce(&mut FrameReader, &mut Source<'_>, &Codec) -> Result<T>,
    ) -> ReadOutcome<T> {
        let Half {
            conn,
            codec: cache,
            state: frames,
            ..
        } = self;
        let Some(conn) = conn.as_deref() else {
            let result = Err(Error::NotConnected);
            return ReadOutcome {
                result,
                drained: false,
            };
        };
        let mut src = Source {
            stream: conn.stream(),
            counters,
            wait,
        };
        let mut result = f(frames, &mut src, cache.get(codec));
        let drained = frames.at_eof() && frames.buffered().is_empty();
        if conn.is_closing() {
            // An end of file or a cut-short wait caused by our own
            // shutdown: report it as the connection error it is, not as
            // the peer's end of stream. A frame read whole before the
            // shutdown is still handed over.
            let ours = match &result {
                Ok(_) => frames.at_eof(),
                Err(e) => matches!(e, Error::Timeout),
            };
            if ours {
                result = Err(closed_locally());
            }
        }
        ReadOutcome { result, drained }
    }
}

impl WriteHalf {
    /// Runs one write call; `f` returns the count of bytes it sent.
    pub(crate) fn write(
        &mut self,
        codec: &SharedCodec,
        f: impl FnOnce(Writer<'_>, &Codec) -> Result<usize>,
    ) -> Result<usize> {
        let Half {
            conn,
            codec: cache,
            state: scratch,
            ..
        } = self;
        match conn.as_deref() {
            Some(conn) => f(Writer { conn, scratch }, cache.get(codec)),
            None => Err(Error::NotConnected),
        }
    }
}

/// The connection as one write call sees it, with the write half locked.
pub(crate) struct Writer<'a> {
    conn: &'a Connection,
    scratch: &'a mut Vec<u8>,
}

impl Writer<'_> {
    /// Writes one frame that `fill` builds in the reused scratch buffer.
    pub(crate) fn write_built(
        self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<usize> {
        self.scratch.clear();
        let result = fill(self.scratch).and_then(|()| self.conn.write_all(self.scratch));
        shrink(self.scratch);
        result
    }

    /// Writes `frame` as it is (no copy for bulk data).
    pub(crate) fn write_slice(self, frame: &[u8]) -> Result<usize> {
        self.conn.write_all(frame)
    }
}

/// A huge frame should not pin its memory for the link's lifetime.
fn shrink(buf: &mut Vec<u8>) {
    const KEEP: usize = 64 * 1024;
    if buf.capacity() > KEEP {
        buf.clear();
        buf.shrink_to(KEEP);
    }
}

/// The socket as the frame reader sees it: counts what it receives and, for
/// the `try_` reads, refuses to wait.
pub(crate) struct Source<'a> {
    stream: &'a TcpStream,
    counters: &'a Counters,
    wait: bool,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // With data (or end of file) waiting, a blocking read returns at
        // once; and the caller holds the read half, so no other reader can
        // take the data in between.
        if !self.wait && net::peek_now(self.stream)? == Peek::Empty {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (&*self.stream).read(buf)?;
        // Only ever written with the read half locked.
        Counters::add_exclusive(&self.counters.bytes_read, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoding;
    use std::io::Cursor;
    use std::net::{TcpListener, TcpStream};

    /// A connection (its peer's end dropped: only its identity matters).
    fn connection() -> Arc<Connection> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let _peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (stream, addr) = listener.accept().expect("accept");
        Arc::new(Connection::new(stream, addr))
    }

    #[test]
    fn rebinding_ignores_older_epochs_and_forgets_the_ended_connections_bytes() {
        let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
        let (first, second) = (connection(), connection());
        let mut half = ReadHalf::new(&codec);
        half.rebind(2, Some(first.clone()));
        let mut src = Cursor::new(b"one\npartial".to_vec());
        let line = half.state.read_until(&mut src, b"\n", 100).expect("a line");
        assert_eq!(line, b"one\n");
        assert_eq!(half.buffered(), b"partial");

        half.rebind(1, Some(second.clone()));
        assert!(
            half.serves(&first) && half.epoch() == 2,
            "an older epoch is ignored"
        );
        assert_eq!(half.buffered(), b"partial", "and nothing is forgotten");
        half.rebind(3, Some(second.clone()));
        assert!(half.serves(&second) && half.buffered().is_empty());
        assert!(half.release().is_some() && !half.is_bound());
    }

    /// A local close racing a read: a frame that was whole before it is
    /// still handed over; what the close itself ended is a lost connection.
    #[test]
    fn a_local_close_keeps_a_whole_frame_and_reports_its_own_end_of_file() {
        let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
        let counters = Counters::default();
        let conn = connection();
        let mut half = ReadHalf::new(&codec);
        half.rebind(1, Some(conn.clone()));
        conn.shutdown();
        let whole = half.read(&codec, &counters, true, |r, _, _| {
            r.read_until(&mut Cursor::new(b"line\n".to_vec()), b"\n", 100)
                .map(<[u8]>::to_vec)
        });
        assert_eq!(whole.result.expect("the frame"), b"line\n");
        let ended = half.read(&codec, &counters, true, |r, src, _| r.read_to_end(src));
        assert!(matches!(ended.result, Err(Error::ConnectionLost(_))));
    }
}
