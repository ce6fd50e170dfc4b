//! The crate's one error type.

use std::fmt;
use std::io;

use crate::Encoding;

/// Everything that can go wrong on a link.
///
/// [`Error::is_connection_error`] groups the variants that mean the link is
/// gone (Python's `ConnectionError` family plus `IncompleteReadError`); the
/// others leave the connection open and, unless a variant says it consumed
/// a frame, every received byte still buffered for the next read.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// There is no connected peer: the side was never connected, the peer
    /// went away, or the link was closed locally.
    NotConnected,
    /// The connection broke during the call (reset, broken pipe, shut down
    /// by `close()` from another thread). The link is closed.
    ConnectionLost(io::Error),
    /// The peer closed the connection before the request was met (Python's
    /// `IncompleteReadError`). `partial` holds every byte that did arrive.
    /// The link is closed.
    IncompleteRead {
        /// The bytes received before end of file.
        partial: Vec<u8>,
        /// How many bytes were asked for, when a count was asked for.
        expected: Option<usize>,
    },
    /// More than the read limit's worth of bytes came before the separator
    /// (Python's `LimitOverrunError`). Nothing was consumed: the bytes stay buffered
    /// and the connection stays open.
    LimitOverrun {
        /// The read limit in force.
        limit: usize,
        /// How many bytes were buffered when the search gave up.
        buffered: usize,
    },
    /// A frame was not valid text in the link's encoding. The frame (without
    /// its terminator) is consumed and handed back in `bytes`.
    Decode {
        /// The undecodable frame, terminator stripped.
        bytes: Vec<u8>,
        /// The encoding it failed to decode in.
        encoding: Encoding,
        /// Byte offset of the first invalid sequence.
        position: usize,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// `write_str` was given text the encoding cannot hold (a character
    /// outside latin-1 or ascii). Nothing was sent.
    Encode {
        /// The encoding that cannot hold it.
        encoding: Encoding,
        /// The first character it cannot hold.
        character: char,
        /// Its character index in the text (as Python counts positions).
        position: usize,
    },
    /// A line was not valid JSON. The line is consumed; `line` holds it
    /// exactly as received (terminator stripped).
    Json {
        /// The offending line.
        line: String,
        /// What serde_json found wrong with it.
        source: serde_json::Error,
    },
    /// A value given to `write_json` cannot be represented as JSON (for
    /// example a map with non-string keys). Nothing was sent.
    Serialize(serde_json::Error),
    /// A binary struct's bytes hold a value its field type cannot take (a
    /// bool byte other than 0 or 1). The struct's bytes are consumed and
    /// handed back in `bytes`.
    InvalidStruct {
        /// The struct's type name.
        type_name: &'static str,
        /// The struct's bytes as received.
        bytes: Vec<u8>,
        /// What is wrong with them.
        reason: String,
    },
    /// A read or write timeout expired. Nothing was consumed or sent; the
    /// connection stays open.
    Timeout,
    /// An argument was refused: unknown encoding name, empty terminator,
    /// unresolvable host, and so on.
    InvalidArgument(String),
    /// Any other I/O error: bind, connect, socket options.
    Io(io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True for the errors that mean the link is gone: [`Error::NotConnected`],
    /// [`Error::ConnectionLost`] and [`Error::IncompleteRead`].
    ///
    /// ```
    /// use ts_tcpip::Error;
    /// assert!(Error::NotConnected.is_connection_error());
    /// assert!(!Error::Timeout.is_connection_error());
    /// ```
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::NotConnected | Error::ConnectionLost(_) | Error::IncompleteRead { .. }
        )
    }

    /// Sorts an I/O error from an established connection: the socket's
    /// own timeout becomes [`Error::Timeout`], anything else
    /// [`Error::ConnectionLost`].
    pub(crate) fn from_link_io(err: io::Error) -> Error {
        match is_socket_timeout(err.kind()) {
            true => Error::Timeout,
            false => Error::ConnectionLost(err),
        }
    }
}

/// True for the error a socket read or write timeout gives. On Unix that
/// is `EAGAIN` (`WouldBlock`); `ETIMEDOUT` (`TimedOut`) there means the
/// connection died (keepalive probes or retransmissions went unanswered),
/// so it is a lost connection. Windows reports its socket timeouts as
/// `TimedOut`.
pub(crate) fn is_socket_timeout(kind: io::ErrorKind) -> bool {
    match kind {
        io::ErrorKind::WouldBlock => true,
        io::ErrorKind::TimedOut => cfg!(windows),
        _ => false,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("not connected"),
            Error::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            Error::IncompleteRead {
                partial,
                expected: Some(n),
            } => write!(
                f,
                "end of file after {} of {n} expected bytes",
                partial.len()
            ),
            Error::IncompleteRead { partial, .. } => write!(
                f,
                "end of file after {} bytes, before the separator",
                partial.len()
            ),
            Error::LimitOverrun { limit, buffered } => write!(
                f,
                "separator not found after the read limit of {limit} bytes \
                 ({buffered} bytes buffered)"
            ),
            Error::Decode {
                encoding,
                position,
                reason,
                ..
            } => write!(
                f,
                "'{encoding}' codec can't decode bytes at position {position}: {reason}"
            ),
            Error::Encode {
                encoding,
                character,
                position,
            } => write!(
                f,
                "'{encoding}' codec can't encode character {character:?} in position {position}"
            ),
            Error::Json { line, source } => {
                write!(f, "invalid JSON ({source}) in line: {line}")
            }
            Error::Serialize(e) => write!(f, "cannot write as JSON: {e}"),
            Error::InvalidStruct {
                type_name, reason, ..
            } => write!(f, "invalid {type_name}: {reason}"),
            Error::Timeout => f.write_str("timed out"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConnectionLost(e) | Error::Io(e) => Some(e),
            Error::Json { source, .. } | Error::Serialize(source) => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn connection_errors_are_the_python_family() {
        let lost = Error::ConnectionLost(io::ErrorKind::BrokenPipe.into());
        let eof = Error::IncompleteRead {
            partial: b"ab".to_vec(),
            expected: Some(4),
        };
        assert!(lost.is_connection_error() && eof.is_connection_error());
        for other in [
            Error::Timeout,
            Error::LimitOverrun {
                limit: 1,
                buffered: 2,
            },
            Error::InvalidArgument("x".into()),
            Error::Io(io::ErrorKind::AddrInUse.into()),
        ] {
            assert!(!other.is_connection_error(), "{other}");
        }
    }

    #[test]
    fn json_display_holds_the_line_verbatim() {
        let source = serde_json::from_str::<serde_json::Value>("[1,]").unwrap_err();
        let err = Error::Json {
            line: "[1,] \"quoted\"".into(),
            source,
        };
        assert!(err.to_string().contains("[1,] \"quoted\""));
        assert!(err.source().is_some());
    }

    #[test]
    fn link_io_errors_sort_into_timeout_and_lost() {
        assert!(matches!(
            Error::from_link_io(io::ErrorKind::WouldBlock.into()),
            Error::Timeout
        ));
        assert!(Error::from_link_io(io::ErrorKind::ConnectionReset.into()).is_connection_error());
    }

    /// ETIMEDOUT on Unix is a dead connection (keepalive or retransmission
    /// gave up), not the socket's read or write timeout.
    #[cfg(unix)]
    #[test]
    fn a_keepalive_timeout_is_a_lost_connection() {
        let dead = Error::from_link_io(io::ErrorKind::TimedOut.into());
        assert!(matches!(dead, Error::ConnectionLost(_)), "{dead:?}");
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<Error>();
    }
}
