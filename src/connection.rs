//! One connected socket: its receive buffer, its write lock, and the
//! shutdown that releases whoever is blocked on it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use crate::frame::FrameReader;
use crate::net::{self, Peek};
use crate::stats::Counters;
use crate::{Error, Result};

/// A connected socket shared by the reading thread, the writing threads,
/// the monitor and whoever closes it.
///
/// The read and write halves have separate locks, so one thread may read
/// while another writes (B10). The two are never held together.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// The receive buffer; held for the whole of one read call, so a frame
    /// is never split between two readers.
    reader: Mutex<ReadHalf>,
    /// A scratch buffer reused for every frame; holding it makes each frame
    /// one uninterrupted run of bytes on the wire.
    writer: Mutex<Vec<u8>>,
    /// Set before the socket is shut down locally, so that the end of file
    /// this causes is reported as a local close, not the peer's.
    closing: AtomicBool,
}

/// The receive buffer and the codec the last read used.
#[derive(Debug)]
struct ReadHalf {
    frames: FrameReader,
    codec: Option<(u64, std::sync::Arc<crate::endpoint::Codec>)>,
}

/// What a read call on the connection left behind.
pub(crate) struct ReadOutcome<T> {
    pub(crate) result: Result<T>,
    /// The peer has closed and every byte it sent has been read.
    pub(crate) drained: bool,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
            stream,
            peer,
            reader: Mutex::new(ReadHalf {
                frames: FrameReader::new(),
                codec: None,
            }),
            writer: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Runs one read call with the receive buffer and a source that counts
    /// the bytes it takes from the socket. With `wait` false the source
    /// never blocks: it reports `WouldBlock` when the socket holds nothing.
    pub(crate) fn read<T>(
        &self,
        counters: &Counters,
        wait: bool,
        f: impl FnOnce(
            &mut FrameReader,
            &mut Source<'_>,
            &mut Option<(u64, std::sync::Arc<crate::endpoint::Codec>)>,
        ) -> Result<T>,
    ) -> ReadOutcome<T> {
        let mut half = self.reader.lock();
        let ReadHalf {
            frames: reader,
            codec,
        } = &mut *half;
        let mut src = Source {
            stream: &self.stream,
            counters,
            wait,
        };
        let mut result = f(reader, &mut src, codec);
        let drained = reader.at_eof() && reader.buffered().is_empty();
        if self.is_closing() {
            // The end of file was our own shutdown: report it as the
            // connection error it is, not as the peer's end of stream.
            if let Ok(_) | Err(Error::Timeout) = result {
                result = Err(closed_locally());
            }
        }
        ReadOutcome { result, drained }
    }

    /// Writes one frame that `fill` builds in the scratch buffer.
    pub(crate) fn write_built(
        &self,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<usize> {
        let mut buf = self.writer.lock();
        buf.clear();
        fill(&mut buf)?;
        let result = self.write_all(&buf);
        shrink(&mut buf);
        result
    }

    /// Writes `frame` as it is, under the same lock (no copy for bulk data).
    pub(crate) fn write_slice(&self, frame: &[u8]) -> Result<usize> {
        let _turn = self.writer.lock();
        self.write_all(frame)
    }

    /// A write cut short by the write timeout after part of the frame went
    /// out leaves the stream corrupt, so it is reported as a lost
    /// connection; with nothing sent it is a plain timeout.
    fn write_all(&self, frame: &[u8]) -> Result<usize> {
        let mut sent = 0;
        while sent < frame.len() {
            match (&self.stream).write(&frame[sent..]) {
                Ok(0) => return Err(Error::ConnectionLost(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.is_closing() => {
                    return Err(Error::ConnectionLost(io::Error::new(
                        e.kind(),
                        "closed locally",
                    )))
                }
                Err(e) => match Error::from_link_io(e) {
                    Error::Timeout if sent > 0 => {
                        let msg = format!("write timed out after {sent} of {} bytes", frame.len());
                        return Err(Error::ConnectionLost(io::Error::new(
                            io::ErrorKind::TimedOut,
                            msg,
                        )));
                    }
                    other => return Err(other),
                },
            }
        }
        Ok(sent)
    }

    /// True when the peer has closed and nothing it sent is left unread.
    ///
    /// Once the socket is at end of file a blocked reader returns at once,
    /// so a busy receive buffer is waited for (briefly) rather than taken
    /// for a live link: a client that connects just after the old one
    /// dropped must not be turned away because a reader had not yet woken.
    /// Lock order: called with the endpoint's slot lock held; no reader
    /// takes the slot lock while holding the receive buffer.
    pub(crate) fn is_dead(&self) -> bool {
        const BUSY_READER_WAIT: Duration = Duration::from_millis(100);
        if !matches!(net::peek_now(&self.stream), Ok(Peek::Eof) | Err(_)) {
            return false;
        }
        self.reader
            .try_lock_for(BUSY_READER_WAIT)
            .is_some_and(|half| half.frames.buffered().is_empty())
    }

    /// Shuts the socket down, releasing any thread blocked on it with an
    /// error. Idempotent.
    pub(crate) fn shutdown(&self) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn closed_locally() -> Error {
    Error::ConnectionLost(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed locally",
    ))
}

/// A huge frame should not pin its memory for the link's lifetime.
fn shrink(buf: &mut MutexGuard<'_, Vec<u8>>) {
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
        // once; and the caller holds the receive buffer, so no other
        // reader can take the data in between.
        if !self.wait && net::peek_now(self.stream)? == Peek::Empty {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (&*self.stream).read(buf)?;
        Counters::add(&self.counters.bytes_read, n as u64);
        Ok(n)
    }
}
