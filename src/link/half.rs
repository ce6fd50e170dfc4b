//! The read and write halves of one side of a link.
//!
//! Each half is locked for the whole of one call, so a frame is never split
//! between two readers nor interleaved with another writer's, and reading
//! never waits for writing. A half stays bound to the connection it served
//! last, with the slot's epoch at which that connection was current: while
//! the epoch has not moved, a call takes one lock (the half's) and no
//! reference count. The endpoint rebinds a half when the epoch moves on.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use super::connection::{remaining, Connection};
use super::shared_codec::{CodecCache, SharedCodec};
use super::socket::Peek;
use super::stats::Counters;
use crate::error::{Error, Result};
use crate::wire::codec::Codec;
use crate::wire::frame::{FrameReader, Request};

/// How long a call may wait for the peer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// As long as the link's own timeout allows (for ever without one).
    Block,
    /// Not at all: only what has arrived (the `try_` reads).
    Never,
    /// Until this instant, or the link's own timeout if that comes first.
    Until(Instant),
}

impl Wait {
    /// The deadline, for a write (which never takes `Never`).
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Until(deadline) => Some(deadline),
            Wait::Block | Wait::Never => None,
        }
    }
}

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
pub(crate) type ReadHalf = Half<FrameReader>;
/// The write half keeps a scratch buffer that frames are built in.
pub(crate) type WriteHalf = Half<Vec<u8>>;

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

    /// How the connection it serves broke, if a thread heard.
    pub(crate) fn broken(&self) -> Option<super::connection::Broken> {
        self.conn.as_ref().and_then(|c| c.broken())
    }

    /// Lets go of a connection that has ended, so its socket closes with
    /// the last reference; the next call rebinds.
    pub(crate) fn release(&mut self) -> Option<Arc<Connection>> {
        self.state = S::default();
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

    /// One read: the frame reader serves `request` from the buffer and the
    /// transport, and `decode` turns the frame into the caller's value
    /// with the half's codec. The codec and the read limit are resolved
    /// once, here.
    #[inline]
    pub(crate) fn read<T>(
        &mut self,
        shared: &SharedCodec,
        counters: &Counters,
        wait: Wait,
        request: Request<'_>,
        limit: usize,
        decode: impl FnOnce(Cow<'_, [u8]>, &Codec) -> Result<T>,
    ) -> ReadOutcome<T> {
        let Some((conn, codec, frames)) = self.parts(shared) else {
            return ReadOutcome {
                result: Err(Error::NotConnected),
                drained: false,
            };
        };
        let mut src = Source::new(conn, counters, wait);
        let mut result = frames
            .read(&mut src, request, &codec.separator, limit)
            .and_then(|frame| decode(frame, codec));
        src.finish();
        let drained = frames.at_eof() && frames.buffered().is_empty();
        // The system told another thread why the connection broke, and
        // this one met only the end of the stream: with nothing cut short,
        // it gets the cause too.
        match &result {
            Err(Error::IncompleteRead(e)) if e.partial.is_empty() => {
                if let Some(cause) = conn.broken() {
                    result = Err(cause.error());
                }
            }
            // A second-hand fallout (a reset after the system's timeout
            // was told to another thread): the cause the first one kept.
            Err(Error::ConnectionLost(_)) => {
                if let Some(cause) = conn.broken() {
                    result = Err(cause.error());
                }
            }
            _ => {}
        }
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
                result = Err(conn.ended_error());
            }
        }
        ReadOutcome { result, drained }
    }
}

impl WriteHalf {
    /// One write: `build` fills the reused scratch buffer with the frame
    /// (with the half's codec), and the connection sends it whole. Returns
    /// the count of bytes sent.
    #[inline]
    pub(crate) fn write(
        &mut self,
        shared: &SharedCodec,
        wait: Wait,
        build: impl FnOnce(&mut Vec<u8>, &Codec) -> Result<()>,
    ) -> Result<usize> {
        let Some((conn, codec, scratch)) = self.parts(shared) else {
            return Err(Error::NotConnected);
        };
        scratch.clear();
        let result = build(scratch, codec).and_then(|()| conn.send(scratch, wait.deadline()));
        shrink(scratch);
        result
    }

    /// Sends `frame` as it is, with no copy (bulk data).
    #[inline]
    pub(crate) fn write_slice(&mut self, frame: &[u8], wait: Wait) -> Result<usize> {
        match self.conn.as_deref() {
            Some(conn) => conn.send(frame, wait.deadline()),
            None => Err(Error::NotConnected),
        }
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

/// The transport as the frame reader sees it: counts what it receives,
/// refuses to wait for a `try_` read, and keeps a deadline.
struct Source<'a> {
    conn: &'a Connection,
    counters: &'a Counters,
    wait: Wait,
    /// A deadline narrowed the socket's read timeout.
    narrowed: bool,
}

impl<'a> Source<'a> {
    fn new(conn: &'a Connection, counters: &'a Counters, wait: Wait) -> Source<'a> {
        Source {
            conn,
            counters,
            wait,
            narrowed: false,
        }
    }

    /// Puts back the link's read timeout if a deadline narrowed it.
    fn finish(self) {
        if self.narrowed {
            self.conn.restore_read_timeout();
        }
    }
}

impl Read for Source<'_> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.wait {
            Wait::Block => {}
            // With data (or end of file) waiting, a blocking read returns
            // at once; and the caller holds the read half, so no other
            // reader can take the data in between.
            Wait::Never => {
                if self.conn.peek_now()? == Peek::Empty {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
            Wait::Until(deadline) => match remaining(deadline, self.conn.read_timeout()) {
                Some(left) => {
                    self.narrowed = true;
                    self.conn
                        .transport()
                        .socket()
                        .set_read_timeout(Some(left))?;
                }
                None => return Err(io::ErrorKind::WouldBlock.into()),
            },
        }
        let n = self.conn.read(buf)?;
        // Only ever written with the read half locked.
        Counters::add_exclusive(&self.counters.bytes_read, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;
    use crate::link::transport::Tcp;
    use crate::wire::separator::Separator;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A connection and its peer's end.
    fn connection() -> (Arc<Connection>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (stream, addr) = listener.accept().expect("accept");
        (
            Arc::new(Connection::new(Tcp::new(stream).expect("transport"), addr)),
            peer,
        )
    }

    fn line(frame: Cow<'_, [u8]>, _: &Codec) -> Result<Vec<u8>> {
        Ok(frame.into_owned())
    }

    /// One read through the terminator, waiting as `wait` says.
    fn terminated(half: &mut ReadHalf, codec: &SharedCodec, wait: Wait) -> ReadOutcome<Vec<u8>> {
        let counters = Counters::default();
        half.read(codec, &counters, wait, Request::Terminated, 100, line)
    }

    #[test]
    fn rebinding_ignores_older_epochs_and_forgets_the_ended_connections_bytes() {
        let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
        let ((first, mut peer), (second, _peer2)) = (connection(), connection());
        let mut half = ReadHalf::new(&codec);
        half.rebind(2, Some(first.clone()));
        peer.write_all(b"one\npartial").expect("send");
        let one = terminated(&mut half, &codec, Wait::Block);
        assert_eq!(one.result.expect("a line"), b"one\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while half.buffered() != b"partial" && Instant::now() < deadline {
            let _ = terminated(&mut half, &codec, Wait::Never);
        }
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
        let (conn, mut peer) = connection();
        let mut half = ReadHalf::new(&codec);
        half.rebind(1, Some(conn.clone()));
        peer.write_all(b"line\n").expect("send");
        let sep = Separator::new(b"\n");
        // Wait until the line is in the buffer, then close locally.
        let first = half.read(&codec, &counters, Wait::Block, Request::Exact(1), 100, line);
        assert_eq!(first.result.expect("a byte"), b"l");
        conn.shutdown();
        let whole = half.read(
            &codec,
            &counters,
            Wait::Block,
            Request::Until(&sep),
            100,
            line,
        );
        assert_eq!(whole.result.expect("the frame"), b"ine\n");
        let ended = half.read(&codec, &counters, Wait::Block, Request::ToEnd, 100, line);
        assert!(matches!(ended.result, Err(Error::ConnectionLost(_))));
    }

    #[test]
    fn a_deadline_times_out_keeps_the_partial_frame_and_restores_the_link_timeout() {
        let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
        let (conn, mut peer) = connection();
        let own = Some(Duration::from_secs(30));
        conn.set_timeouts(own, None).expect("timeout");
        let mut half = ReadHalf::new(&codec);
        half.rebind(1, Some(conn.clone()));
        peer.write_all(b"part").expect("send");
        let soon = Wait::Until(Instant::now() + Duration::from_millis(50));
        let out = terminated(&mut half, &codec, soon);
        assert!(
            matches!(out.result, Err(Error::Timeout)),
            "{:?}",
            out.result.err()
        );
        assert_eq!(half.buffered(), b"part");
        assert_eq!(conn.transport().socket().read_timeout().expect("get"), own);
        peer.write_all(b"ial\n").expect("send");
        let out = terminated(&mut half, &codec, Wait::Block);
        assert_eq!(out.result.expect("the rest"), b"partial\n");
    }

    /// A read timeout set while a call with a deadline runs (from another
    /// thread, through the endpoint) is the one on the socket when the
    /// call ends: the call puts back the link's timeout, not the one it
    /// found when it began.
    #[test]
    fn a_timeout_set_during_a_deadline_outlives_it() {
        let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
        let (conn, _peer) = connection();
        let mut half = ReadHalf::new(&codec);
        half.rebind(1, Some(conn.clone()));
        let counters = Counters::default();
        let (_, codec_now, frames) = half.parts(&codec).expect("bound");
        let soon = Instant::now() + Duration::from_millis(20);
        let mut src = Source::new(&conn, &counters, Wait::Until(soon));
        let timed_out = frames.read(&mut src, Request::Terminated, &codec_now.separator, 100);
        assert!(matches!(timed_out, Err(Error::Timeout)), "{timed_out:?}");
        let later = Some(Duration::from_secs(7));
        conn.set_timeouts(later, None).expect("set meanwhile");
        src.finish();
        assert_eq!(
            conn.transport().socket().read_timeout().expect("get"),
            later
        );
    }
}
