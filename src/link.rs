//! The read and write API both sides share (Python's `BaseClientOrServer`).

use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::Receiver;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Codec;
use crate::config::check_terminator;
use crate::endpoint::Endpoint;
use crate::{BinaryStruct, ConnectionEvent, Encoding, Error, Result, Stats};

pub(crate) mod sealed {
    /// Keeps [`Link`](super::Link) implemented by this crate's types only.
    pub trait Sealed {
        fn endpoint(&self) -> &super::Endpoint;
    }
}

/// Reads, writes and connection state of one side of a link: implemented
/// by [`OneClientServer`](crate::OneClientServer) and
/// [`Client`](crate::Client), so code written against `&impl Link` works on
/// either end. `use ts_tcpip::*` brings it into scope.
///
/// Every method takes `&self`: one thread may read while others write
/// (each write call reaches the wire whole, never interleaved with
/// another). Reads and writes on a side with no peer fail at once with
/// [`Error::NotConnected`]. A connection error (see
/// [`Error::is_connection_error`]) ends the connection: the connect
/// callback and [`events`](Link::events) hear of it.
///
/// ```
/// use ts_tcpip::*;
/// let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
/// let client = Client::builder().host(LOCALHOST_IPV4).port(server.port()).connect()?;
/// server.wait_connected(std::time::Duration::from_secs(5))?;
/// client.write_str("ping")?;
/// assert_eq!(server.read_str()?, "ping");
/// server.write_json(&serde_json::json!({"pong": 1}))?;
/// let reply: serde_json::Value = client.read_json()?;
/// assert_eq!(reply["pong"], 1);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
pub trait Link: sealed::Sealed {
    /// The name given to the builder, used in log messages.
    fn name(&self) -> &str {
        self.endpoint().name()
    }

    /// True while a peer is connected. Bytes received and not yet read
    /// keep the link connected even after the peer closed; the disconnect
    /// is reported once they are read.
    fn connected(&self) -> bool {
        self.endpoint().connected()
    }

    /// True from connecting until this side closes on purpose
    /// (`close`, `close_client`); a peer that went away leaves it true,
    /// which is how "unexpectedly lost" is told apart (Python's
    /// `should_be_connected`).
    fn should_be_connected(&self) -> bool {
        self.endpoint().should_be_connected()
    }

    /// The connected peer's address.
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.endpoint().current().map(|c| c.peer())
    }

    /// A receiver of every later change of connection state, in order,
    /// beside the connect callback; each call makes a new receiver. A
    /// control loop can `select!` on it with its own channels.
    fn events(&self) -> Receiver<ConnectionEvent> {
        self.endpoint().events.subscribe()
    }

    /// Traffic counters since start (relaxed atomics: no lock, no cost).
    fn stats(&self) -> Stats {
        self.endpoint().counters.snapshot()
    }

    /// The encoding of `read_str`, `write_str` and JSON.
    fn encoding(&self) -> Encoding {
        self.endpoint().codec.get().encoding
    }

    /// Changes the encoding; reads and writes already running keep the old.
    fn set_encoding(&self, encoding: Encoding) {
        self.endpoint()
            .codec
            .set(|c| Codec::new(encoding, c.terminator()));
    }

    /// The terminator of `read_str`, `write_str` and JSON.
    fn terminator(&self) -> Vec<u8> {
        self.endpoint().codec.get().terminator().to_vec()
    }

    /// Changes the terminator; an empty one is [`Error::InvalidArgument`].
    fn set_terminator(&self, terminator: impl Into<Vec<u8>>) -> Result<()> {
        let terminator = terminator.into();
        check_terminator(&terminator)?;
        self.endpoint()
            .codec
            .set(|c| Codec::new(c.encoding, &terminator));
        Ok(())
    }

    /// Bounds how long a read waits; `None` waits for ever. A read that
    /// times out fails with [`Error::Timeout`], consumes nothing and
    /// leaves the connection open. Applies to later connections too,
    /// until changed; zero means the shortest wait the socket allows.
    fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.endpoint().set_read_timeout(timeout);
    }

    /// Bounds how long a write waits for the peer to take the data. With
    /// nothing sent it fails with [`Error::Timeout`]; if part of the frame
    /// went out the stream can no longer be trusted, so the connection is
    /// closed and the error is [`Error::ConnectionLost`].
    fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.endpoint().set_write_timeout(timeout);
    }

    /// Reads up to `n` bytes: what is buffered, else what one socket read
    /// brings. Empty at end of file, which also ends the connection.
    fn read(&self, n: usize) -> Result<Vec<u8>> {
        self.endpoint()
            .read_with(true, false, |r, src, _| r.read_some(src, n))
    }

    /// Reads until the peer closes and returns all of it (Python's
    /// `read(-1)`); the connection then ends.
    fn read_to_end(&self) -> Result<Vec<u8>> {
        self.endpoint()
            .read_with(true, false, |r, src, _| r.read_to_end(src))
    }

    /// Reads exactly `n` bytes (Python's `readexactly`). End of file first
    /// is [`Error::IncompleteRead`] with the bytes that came.
    fn read_exact(&self, n: usize) -> Result<Vec<u8>> {
        self.endpoint()
            .read_with(true, true, |r, src, _| r.read_exact(src, n))
    }

    /// Reads through the next `b"\n"` (Python's `readline`). At end of file
    /// returns the partial line (empty if nothing was left).
    fn read_line(&self) -> Result<Vec<u8>> {
        let limit = self.endpoint().config.read_limit;
        self.endpoint().read_with(true, true, |r, src, _| {
            r.read_line(src, limit).map(<[u8]>::to_vec)
        })
    }

    /// Reads through the next `sep`, which is included (Python's
    /// `readuntil`). [`Error::LimitOverrun`] if more than the read limit's
    /// worth of bytes come before `sep` (nothing consumed);
    /// [`Error::IncompleteRead`] at end of file.
    fn read_until(&self, sep: &[u8]) -> Result<Vec<u8>> {
        check_terminator(sep)?;
        let limit = self.endpoint().config.read_limit;
        self.endpoint().read_with(true, true, |r, src, _| {
            r.read_until(src, sep, limit).map(<[u8]>::to_vec)
        })
    }

    /// Reads through the terminator, strips it and decodes the rest
    /// strictly. Undecodable bytes are [`Error::Decode`] with the bytes.
    #[inline]
    fn read_str(&self) -> Result<String> {
        let mut line = String::new();
        read_text(self.endpoint(), true, &mut line)?;
        Ok(line)
    }

    /// Reads a line as `read_str` does and parses it as JSON. Invalid JSON
    /// is [`Error::Json`], whose message holds the line. Numbers decode as
    /// written (floats correctly rounded); `NaN` and `Infinity`, which
    /// Python's `json.dumps` can write, are not JSON and are refused.
    /// Integers beyond 64 bits become the nearest `f64` in a
    /// `serde_json::Value` (Python keeps them exact). `T`'s `Deserialize`
    /// runs on the line in the receive buffer, with its lock held: it must
    /// not read from the same link.
    #[inline]
    fn read_json<T: DeserializeOwned>(&self) -> Result<T> {
        let limit = self.endpoint().config.read_limit;
        self.endpoint().read_with(true, true, |r, src, codec| {
            parse_json(r.read_until_with(src, &codec.separator, limit)?, codec)
        })
    }

    /// Reads exactly `value.size()` bytes into `value` (Python's
    /// `read_into`).
    fn read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<()> {
        let bytes = read_struct_bytes(self.endpoint(), true, value.size())?;
        value.decode(&bytes)
    }

    /// `read_str` without waiting: a line if one has arrived whole, else
    /// `None` at once, keeping any partial line for later.
    fn try_read_str(&self) -> Result<Option<String>> {
        let mut line = String::new();
        Ok(optional(read_text(self.endpoint(), false, &mut line))?.map(|()| line))
    }

    /// `read_json` without waiting: a value if its line has arrived whole,
    /// else `None` at once, keeping any partial line for later.
    fn try_read_json<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let limit = self.endpoint().config.read_limit;
        optional(self.endpoint().read_with(false, true, |r, src, codec| {
            parse_json(r.read_until_with(src, &codec.separator, limit)?, codec)
        }))
    }

    /// `read_into` without waiting: true if the whole struct had arrived,
    /// else false at once, keeping the partial bytes for later.
    fn try_read_into<S: BinaryStruct + ?Sized>(&self, value: &mut S) -> Result<bool> {
        match optional(read_struct_bytes(self.endpoint(), false, value.size()))? {
            Some(bytes) => value.decode(&bytes).map(|()| true),
            None => Ok(false),
        }
    }

    /// Writes `data` as it is.
    fn write(&self, data: &[u8]) -> Result<()> {
        self.endpoint().write_with(|w, _| w.write_slice(data))
    }

    /// Writes every item, back to back, in one write (Python's
    /// `writelines`).
    fn write_lines<I>(&self, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.endpoint().write_with(|w, _| {
            w.write_built(|buf| {
                lines
                    .into_iter()
                    .for_each(|l| buf.extend_from_slice(l.as_ref()));
                Ok(())
            })
        })
    }

    /// Writes each struct's bytes, back to back, in one write (Python's
    /// `write_from`).
    fn write_from(&self, structs: &[&dyn BinaryStruct]) -> Result<()> {
        self.endpoint().write_with(|w, _| {
            w.write_built(|buf| {
                structs.iter().for_each(|s| s.encode(buf));
                Ok(())
            })
        })
    }

    /// Encodes `line` strictly, appends the terminator and writes both in
    /// one write. Text the encoding cannot hold is [`Error::Encode`], and
    /// nothing is sent.
    fn write_str(&self, line: &str) -> Result<()> {
        self.endpoint().write_with(|w, codec| {
            w.write_built(|buf| {
                codec.encoding.encode_into(line, buf)?;
                buf.extend_from_slice(codec.terminator());
                Ok(())
            })
        })
    }

    /// Writes `value` as serde_json's compact JSON text plus the
    /// terminator. With the ascii and latin-1 encodings non-ASCII
    /// characters are escaped (`\u00e9`), as Python's `json.dumps` does, so
    /// any value can be sent. serde_json writes a non-finite float as
    /// `null` (Python would write `NaN`, which is not JSON). `value`'s
    /// `Serialize` runs with the write lock held, straight into the frame
    /// buffer: it must not write to the same link.
    fn write_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.endpoint().write_with(|w, codec| {
            w.write_built(|buf| {
                if codec.encoding == Encoding::Utf8 {
                    serde_json::to_writer(&mut *buf, value).map_err(Error::Serialize)?;
                } else {
                    let mut text = serde_json::to_string(value).map_err(Error::Serialize)?;
                    if matches!(codec.encoding, Encoding::Ascii | Encoding::Latin1) {
                        text = escape_non_ascii(&text);
                    }
                    codec.encoding.encode_into(&text, buf)?;
                }
                buf.extend_from_slice(codec.terminator());
                Ok(())
            })
        })
    }
}

/// One line, decoded into `line`. It is handed out through `line`, not
/// returned: a `Result<String>` passed back through memory cost more than
/// the rest of a short read (store-forwarding stalls, seen with perf).
#[inline(always)]
fn read_text(ep: &Endpoint, wait: bool, line: &mut String) -> Result<()> {
    let limit = ep.config.read_limit;
    ep.read_with(wait, true, |r, src, codec| {
        let frame = r.read_until_with(src, &codec.separator, limit)?;
        *line = codec.encoding.decode(strip(frame, codec))?;
        Ok(())
    })
}

/// Bytes of one struct, copied out of the receive buffer so that the
/// struct's `decode` (user code, for a hand-written `BinaryStruct`) runs
/// with no lock held. Structs up to 256 bytes take no allocation.
fn read_struct_bytes(ep: &Endpoint, wait: bool, size: usize) -> Result<StructBytes> {
    ep.read_with(wait, true, |r, src, _| {
        r.read_exact_ref(src, size).map(StructBytes::new)
    })
}

/// A struct's bytes, on the stack when small.
// Short-lived on the stack by design: the large variant is the point.
#[allow(clippy::large_enum_variant)]
enum StructBytes {
    Inline([u8; 256], usize),
    Heap(Vec<u8>),
}

impl StructBytes {
    fn new(bytes: &[u8]) -> StructBytes {
        let mut inline = [0u8; 256];
        match inline.get_mut(..bytes.len()) {
            Some(head) => {
                head.copy_from_slice(bytes);
                StructBytes::Inline(inline, bytes.len())
            }
            None => StructBytes::Heap(bytes.to_vec()),
        }
    }
}

impl std::ops::Deref for StructBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            StructBytes::Inline(bytes, len) => &bytes[..*len],
            StructBytes::Heap(bytes) => bytes,
        }
    }
}

/// JSON text with every non-ASCII character as a `\uXXXX` escape (a
/// surrogate pair above U+FFFF). Such characters only occur inside JSON
/// strings, where the escape means the same character.
fn escape_non_ascii(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

#[inline]
fn strip<'a>(frame: &'a [u8], codec: &Codec) -> &'a [u8] {
    &frame[..frame.len() - codec.terminator().len()]
}

fn parse_json<T: DeserializeOwned>(frame: &[u8], codec: &Codec) -> Result<T> {
    let text = codec.encoding.decode_cow(strip(frame, codec))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        line: text.into_owned(),
        source,
    })
}

/// A `try_` read: "nothing complete yet" is `None`, not an error.
fn optional<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::Timeout) => Ok(None),
        Err(e) => Err(e),
    }
}
