//! The crate's one error type.
//!
//! [`Error`] is 16 bytes: each variant holds at most one pointer (an
//! `io::Error`, a `serde_json::Error` or a box of the details), so a
//! `Result` moves in registers on the hot path. Display gives this crate's
//! own message; `source()` gives the cause underneath it, whose text the
//! message does not repeat.

use std::fmt;
use std::io;

use crate::encoding::Encoding;

/// Everything that can go wrong on a link.
///
/// [`Error::is_connection_error`] groups the variants that mean the link is
/// gone (Python's `ConnectionError` family plus `IncompleteReadError`); the
/// others leave the connection open and, unless a variant says it consumed
/// a frame, every received byte still buffered for the next read.
///
/// ```
/// use ts_tcpip::Error;
/// assert_eq!(std::mem::size_of::<Error>(), 16);
/// ```
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
    /// `IncompleteReadError`); the details hold every byte that did arrive.
    /// The link is closed.
    IncompleteRead(Box<IncompleteRead>),
    /// More than the read limit's worth of bytes came before the separator
    /// (Python's `LimitOverrunError`). Nothing was consumed: the bytes stay
    /// buffered and the connection stays open.
    LimitOverrun(Box<LimitOverrun>),
    /// A frame was not valid text in the link's encoding. The frame is
    /// consumed and handed back in the details.
    Decode(Box<DecodeError>),
    /// `write_str` was given text the encoding cannot hold (a character
    /// outside latin-1 or ascii). Nothing was sent.
    Encode(Box<EncodeError>),
    /// A line was not the JSON asked for. The line is consumed and handed
    /// back in the details.
    Json(Box<JsonError>),
    /// A value given to `write_json` cannot be represented as JSON (for
    /// example a map with non-string keys). Nothing was sent.
    Serialize(serde_json::Error),
    /// A binary struct's bytes hold a value its field type cannot take (a
    /// bool byte other than 0 or 1). The bytes are consumed and handed back
    /// in the details.
    InvalidStruct(Box<StructError>),
    /// A read or write timeout expired. Nothing was consumed or sent; the
    /// connection stays open.
    Timeout,
    /// A write ran out of time after part of its frame went out. The frame
    /// is not lost and must not be sent again: the link keeps the rest and
    /// sends it first, before any other frame, on the next write (or
    /// `flush`), so the peer never sees half a frame followed by another.
    /// Not a connection error; the connection stays open.
    WritePending(Box<WritePending>),
    /// An argument was refused: unknown encoding name, empty terminator,
    /// unresolvable host, and so on.
    // A thin pointer, not a `Box<str>`, keeps the enum at 16 bytes.
    #[allow(clippy::box_collection)]
    InvalidArgument(Box<String>),
    /// Any other I/O error: bind, connect (naming the address), socket
    /// options.
    Io(io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// End of file before a read was satisfied: [`Error::IncompleteRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncompleteRead {
    /// The bytes received before end of file.
    pub partial: Vec<u8>,
    /// How many bytes were asked for, when a count was asked for.
    pub expected: Option<usize>,
}

/// A frame whose write ran out of time part-way: [`Error::WritePending`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WritePending {
    /// The frame's length in bytes (before encryption, over TLS).
    pub len: usize,
}

/// No separator within the read limit: [`Error::LimitOverrun`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitOverrun {
    /// The read limit in force.
    pub limit: usize,
    /// How many bytes were buffered when the search gave up.
    pub buffered: usize,
}

/// Undecodable text: [`Error::Decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeError {
    /// The undecodable frame, terminator stripped.
    pub bytes: Vec<u8>,
    /// The encoding it failed to decode in.
    pub encoding: Encoding,
    /// Byte offset of the first invalid sequence.
    pub position: usize,
    /// Why it is invalid.
    pub reason: &'static str,
}

/// Text the encoding cannot hold: [`Error::Encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeError {
    /// The encoding that cannot hold it.
    pub encoding: Encoding,
    /// The first character it cannot hold.
    pub character: char,
    /// Its character index in the text (as Python counts positions).
    pub position: usize,
}

/// A line that is not the JSON asked for: [`Error::Json`].
#[derive(Debug)]
#[non_exhaustive]
pub struct JsonError {
    /// The whole line, exactly as received (terminator stripped).
    pub line: String,
    /// What serde_json found wrong with it.
    pub source: serde_json::Error,
    /// The line was read with `NaN`, `Infinity` and `-Infinity` taken as
    /// floats, so they are not what is wrong with it.
    non_finite_read: bool,
}

/// Invalid struct bytes: [`Error::InvalidStruct`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StructError {
    /// The struct's type name.
    pub type_name: &'static str,
    /// The struct's bytes as received.
    pub bytes: Vec<u8>,
    /// What is wrong with them.
    pub reason: String,
}

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
            Error::NotConnected | Error::ConnectionLost(_) | Error::IncompleteRead(_)
        )
    }

    /// The bytes that came before end of file, for [`Error::IncompleteRead`].
    pub fn partial(&self) -> Option<&[u8]> {
        match self {
            Error::IncompleteRead(e) => Some(&e.partial),
            _ => None,
        }
    }

    /// An [`Error::InvalidArgument`] with `message`.
    pub fn invalid_argument(message: impl Into<String>) -> Error {
        Error::InvalidArgument(Box::new(message.into()))
    }

    pub(crate) fn incomplete(partial: Vec<u8>, expected: Option<usize>) -> Error {
        Error::IncompleteRead(Box::new(IncompleteRead { partial, expected }))
    }

    pub(crate) fn write_pending(len: usize) -> Error {
        Error::WritePending(Box::new(WritePending { len }))
    }

    pub(crate) fn overrun(limit: usize, buffered: usize) -> Error {
        Error::LimitOverrun(Box::new(LimitOverrun { limit, buffered }))
    }

    pub(crate) fn decode(
        bytes: Vec<u8>,
        encoding: Encoding,
        position: usize,
        reason: &'static str,
    ) -> Error {
        Error::Decode(Box::new(DecodeError {
            bytes,
            encoding,
            position,
            reason,
        }))
    }

    pub(crate) fn encode(encoding: Encoding, character: char, position: usize) -> Error {
        Error::Encode(Box::new(EncodeError {
            encoding,
            character,
            position,
        }))
    }

    /// A line refused by a reader that takes no `NaN` or `Infinity`.
    #[cfg(test)]
    pub(crate) fn json(line: String, source: serde_json::Error) -> Error {
        Error::json_read(line, source, false)
    }

    /// A line refused; `non_finite_read`: by a reader that takes `NaN`,
    /// `Infinity` and `-Infinity` as floats.
    pub(crate) fn json_read(
        line: String,
        source: serde_json::Error,
        non_finite_read: bool,
    ) -> Error {
        Error::Json(Box::new(JsonError {
            line,
            source,
            non_finite_read,
        }))
    }

    pub(crate) fn invalid_struct(type_name: &'static str, bytes: Vec<u8>, reason: String) -> Error {
        Error::InvalidStruct(Box::new(StructError {
            type_name,
            bytes,
            reason,
        }))
    }

    /// An [`Error::Io`] whose message names the address it concerns; the
    /// kind stays the original's, which becomes the source.
    pub(crate) fn at_address(what: &'static str, addr: impl fmt::Display, err: io::Error) -> Error {
        let kind = err.kind();
        Error::Io(io::Error::new(
            kind,
            AddressError {
                what,
                addr: addr.to_string(),
                source: err,
            },
        ))
    }
}

/// An I/O error with the address it happened at (`cannot connect to …`).
#[derive(Debug)]
struct AddressError {
    what: &'static str,
    addr: String,
    source: io::Error,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}", self.what, self.addr)
    }
}

impl std::error::Error for AddressError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Longest part of a line that a message shows.
const SHOWN: usize = 200;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotConnected => f.write_str("not connected"),
            Error::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            Error::IncompleteRead(e) => fmt::Display::fmt(e, f),
            Error::LimitOverrun(e) => write!(
                f,
                "separator not found after the read limit of {} bytes ({} bytes buffered)",
                e.limit, e.buffered
            ),
            Error::Decode(e) => write!(
                f,
                "'{}' codec can't decode bytes at position {}: {}",
                e.encoding, e.position, e.reason
            ),
            Error::Encode(e) => write!(
                f,
                "'{}' codec can't encode character {:?} in position {}",
                e.encoding, e.character, e.position
            ),
            Error::Json(e) => fmt::Display::fmt(e, f),
            Error::Serialize(_) => f.write_str("cannot write the value as JSON"),
            Error::InvalidStruct(e) => write!(f, "invalid {}: {}", e.type_name, e.reason),
            Error::Timeout => f.write_str("timed out"),
            Error::WritePending(e) => write!(
                f,
                "timed out with part of a {}-byte frame sent; the rest goes out before the next frame",
                e.len
            ),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl fmt::Display for IncompleteRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "end of file after {} of {n} expected bytes",
                self.partial.len()
            ),
            None if self.partial.is_empty() => f.write_str("end of file before the separator"),
            None => write!(
                f,
                "end of file after {} bytes, before the separator",
                self.partial.len()
            ),
        }
    }
}

impl JsonError {
    /// True when the line is valid JSON of another shape than the one
    /// asked for (a string where a number was expected, a missing field).
    pub fn is_wrong_shape(&self) -> bool {
        self.source.classify() == serde_json::error::Category::Data
    }

    /// `NaN`, `Infinity` or `-Infinity` when the line holds one outside a
    /// string: Python's `json.dumps` writes them, JSON has no such values.
    /// `read_json` takes them as floats unless the link was built with
    /// `json_non_finite(false)`; only then are they what is wrong.
    pub fn non_finite(&self) -> Option<&'static str> {
        non_finite_token(&self.line)
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_wrong_shape() {
            f.write_str("valid JSON of the wrong shape")?;
        } else if let Some(token) = self.non_finite().filter(|_| !self.non_finite_read) {
            write!(f, "invalid JSON: {token} is not a JSON number")?;
        } else {
            f.write_str("invalid JSON")?;
        }
        let chars = self.line.chars().count();
        match self.line.char_indices().nth(SHOWN) {
            None => write!(f, " in line: {}", self.line),
            Some((cut, _)) => write!(f, " in line of {chars} characters: {}…", &self.line[..cut]),
        }
    }
}

/// The first bare `NaN`, `Infinity` or `-Infinity` outside a string.
fn non_finite_token(line: &str) -> Option<&'static str> {
    let bytes = line.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'N' if bytes[i..].starts_with(b"NaN") => return Some("NaN"),
            b'-' if bytes[i..].starts_with(b"-Infinity") => return Some("-Infinity"),
            b'I' if bytes[i..].starts_with(b"Infinity") => return Some("Infinity"),
            _ => {}
        }
    }
    None
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The io::Error's own text is in the message; its cause is not.
            Error::ConnectionLost(e) | Error::Io(e) => e.get_ref()?.source(),
            Error::Json(e) => Some(&e.source),
            Error::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

/// An error and every source under it, `: `-separated, for log lines.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
