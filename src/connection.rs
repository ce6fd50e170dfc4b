//! One connected socket, and the shutdown that releases whoever is blocked
//! on it. Its receive buffer and write lock live in the endpoint's halves
//! (`half.rs`), which outlast any one connection.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

/// A connected socket shared by the reading thread, the writing threads,
/// the monitor and whoever closes it.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Set before the socket is shut down locally, so that the end of file
    /// this causes is reported as a local close, not the peer's.
    closing: AtomicBool,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
            stream,
            peer,
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    #[inline]
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// A write cut short by the write timeout after part of the frame went
    /// out leaves the stream corrupt, so it is reported as a lost
    /// connection; with nothing sent it is a plain timeout.
    #[inline]
    pub(crate) fn write_all(&self, frame: &[u8]) -> Result<usize> {
        // Usually the socket takes the whole frame at once.
        match (&self.stream).write(frame) {
            Ok(n) if n == frame.len() => Ok(n),
            first => self.write_rest(frame, first),
        }
    }

    /// `write_all` after a first write that did not take the whole frame.
    #[cold]
    fn write_rest(&self, frame: &[u8], first: io::Result<usize>) -> Result<usize> {
        let mut sent = 0;
        let mut written = first;
        loop {
            match written {
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
            if sent >= frame.len() {
                return Ok(sent);
            }
            written = (&self.stream).write(&frame[sent..]);
        }
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

pub(crate) fn closed_locally() -> Error {
    Error::ConnectionLost(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed locally",
    ))
}
