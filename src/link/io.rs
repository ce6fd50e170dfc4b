//! The data path of one side of a link, one method per call of the
//! public API: socket -> transport -> frame reader -> codec -> caller for
//! reads, and the reverse for writes. Each method names its request and
//! its codec step; [`Endpoint::read`] and [`Endpoint::write`] run them on
//! the bound half and apply the rule of `ending.rs`.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::ending;
use super::endpoint::Endpoint;
use super::half::Wait;
use super::stats::Counters;
use crate::error::{Error, Result};
use crate::wire::binary::BinaryStruct;
use crate::wire::codec::Codec;
use crate::wire::frame::Request;
use crate::wire::separator::Separator;

impl Endpoint {
    /// One read call on the current connection: the read half serves
    /// `request` and `decode` makes the value. A read that ends the
    /// connection (see [`ending::after_read`]) detaches it.
    #[inline]
    fn read<T>(
        &self,
        wait: Wait,
        request: Request<'_>,
        decode: impl FnOnce(Cow<'_, [u8]>, &Codec) -> Result<T>,
    ) -> Result<T> {
        let Some(mut half) = self.bound(&self.reader) else {
            return Err(Error::NotConnected);
        };
        let limit = self.config.read_limit;
        let out = half.read(&self.codec, &self.counters, wait, request, limit, decode);
        if out.result.is_ok() && request.is_frame() {
            Counters::add_exclusive(&self.counters.frames_read, 1);
        }
        let reason = ending::after_read(out.result.as_ref().err(), out.drained, || half.broken());
        match reason {
            Some(reason) => self.end(half, reason),
            None => self.release_if_stale(&mut half),
        }
        out.result
    }

    /// One write call on the current connection: `build` makes the frame
    /// with the codec, the write half sends it whole. A write that breaks
    /// the connection detaches it.
    #[inline]
    fn write(
        &self,
        wait: Wait,
        build: impl FnOnce(&mut Vec<u8>, &Codec) -> Result<()>,
    ) -> Result<()> {
        let Some(mut half) = self.bound(&self.writer) else {
            return Err(Error::NotConnected);
        };
        let sent = half.write(&self.codec, wait, build);
        self.wrote(half, sent)
    }

    /// After a write: counts it, or ends the connection it broke.
    #[inline]
    fn wrote(
        &self,
        mut half: parking_lot::MutexGuard<'_, super::half::WriteHalf>,
        sent: Result<usize>,
    ) -> Result<()> {
        match sent {
            Ok(n) => {
                Counters::add_exclusive(&self.counters.bytes_written, n as u64);
                Counters::add_exclusive(&self.counters.frames_written, 1);
                self.release_if_stale(&mut half);
                Ok(())
            }
            Err(e) => {
                match ending::after_write(&e, || half.broken()) {
                    Some(reason) => self.end(half, reason),
                    None => self.release_if_stale(&mut half),
                }
                Err(e)
            }
        }
    }

    pub(crate) fn read_some(&self, wait: Wait, n: usize) -> Result<Vec<u8>> {
        self.read(wait, Request::Some(n), owned)
    }

    pub(crate) fn read_to_end(&self, wait: Wait) -> Result<Vec<u8>> {
        self.read(wait, Request::ToEnd, owned)
    }

    pub(crate) fn read_exact(&self, wait: Wait, n: usize) -> Result<Vec<u8>> {
        self.read(wait, Request::Exact(n), owned)
    }

    pub(crate) fn read_line(&self, wait: Wait) -> Result<Vec<u8>> {
        self.read(wait, Request::Line, owned)
    }

    pub(crate) fn read_until(&self, wait: Wait, sep: &[u8]) -> Result<Vec<u8>> {
        crate::config::check_separator("separator", sep)?;
        let sep = Separator::new(sep);
        self.read(wait, Request::Until(&sep), owned)
    }

    #[inline]
    pub(crate) fn read_str(&self, wait: Wait) -> Result<String> {
        self.read(wait, Request::Terminated, |frame, codec| {
            codec.decode_line(&frame)
        })
    }

    #[inline]
    pub(crate) fn read_json<T: DeserializeOwned>(&self, wait: Wait) -> Result<T> {
        self.read(wait, Request::Terminated, |frame, codec| {
            codec.parse_json(&frame)
        })
    }

    /// Reads one struct's bytes, copied out of the receive buffer so that
    /// its `decode` (user code, for a hand-written `BinaryStruct`) runs
    /// with no lock held.
    pub(crate) fn read_into<S: BinaryStruct + ?Sized>(
        &self,
        wait: Wait,
        value: &mut S,
    ) -> Result<()> {
        let bytes = self.read(wait, Request::Exact(value.size()), |frame, _| {
            Ok(StructBytes::new(&frame))
        })?;
        value.decode(&bytes)
    }

    pub(crate) fn write_bytes(&self, wait: Wait, data: &[u8]) -> Result<()> {
        let Some(mut half) = self.bound(&self.writer) else {
            return Err(Error::NotConnected);
        };
        let sent = half.write_slice(data, wait);
        self.wrote(half, sent)
    }

    pub(crate) fn write_lines<I>(&self, wait: Wait, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.write(wait, |buf, _| {
            lines
                .into_iter()
                .for_each(|l| buf.extend_from_slice(l.as_ref()));
            Ok(())
        })
    }

    pub(crate) fn write_from(&self, wait: Wait, structs: &[&dyn BinaryStruct]) -> Result<()> {
        self.write(wait, |buf, _| {
            structs.iter().for_each(|s| s.encode(buf));
            Ok(())
        })
    }

    #[inline]
    pub(crate) fn write_str(&self, wait: Wait, line: &str) -> Result<()> {
        self.write(wait, |buf, codec| codec.encode_line(line, buf))
    }

    /// A line of the terminator alone after `text`'s raw bytes: the
    /// heartbeat.
    pub(crate) fn write_raw_line(&self, wait: Wait, text: &[u8]) -> Result<()> {
        self.write(wait, |buf, codec| {
            buf.extend_from_slice(text);
            buf.extend_from_slice(codec.terminator());
            Ok(())
        })
    }

    pub(crate) fn write_json<T: Serialize + ?Sized>(&self, wait: Wait, value: &T) -> Result<()> {
        self.write(wait, |buf, codec| codec.encode_json(value, buf))
    }
}

fn owned(frame: Cow<'_, [u8]>, _: &Codec) -> Result<Vec<u8>> {
    Ok(frame.into_owned())
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
