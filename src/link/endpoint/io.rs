//! The data path of one side of a link, one method per call of the
//! public API: socket -> transport -> frame reader -> codec -> caller for
//! reads, and the reverse for writes. Each method names its request and
//! its codec step; [`Endpoint::read`] and [`Endpoint::write`] run them on
//! the half, locked within the call's deadline, and apply the rule of
//! `ending.rs`.
//!
//! User code that runs with a half held: a `Serialize` impl
//! (`write_json`), a hand-written `BinaryStruct::encode` (`write_from`)
//! and the `write_lines` iterator build their frame straight into the
//! write half's buffer, and a `Deserialize` impl (`read_json`) decodes the
//! line where it lies in the receive buffer. They must not call the same
//! link's reads or writes (a half's lock is not reentrant). A
//! hand-written `BinaryStruct::decode` runs on a copy, with no lock held.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::super::ending;
use super::super::half::WriteHalf;
use super::super::stats::Counters;
use super::Endpoint;
use crate::deadline::Deadline;
use crate::error::Result;
use crate::sync::MutexGuard;
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
        deadline: Deadline,
        request: Request<'_>,
        decode: impl FnOnce(Cow<'_, [u8]>, &Codec) -> Result<T>,
    ) -> Result<T> {
        let mut half = self.bound(&self.reader, deadline)?;
        self.count_read_call();
        let (limit, spin) = (self.config.read_limit, self.config.spin);
        let result = half.read(
            &self.codec,
            &self.counters,
            deadline,
            spin,
            request,
            limit,
            decode,
        );
        if result.is_ok() && request.is_frame() {
            Counters::add_exclusive(&self.counters.frames_read, 1);
        }
        match ending::after_read(result.as_ref().err(), half.drained()) {
            Some(reason) => self.end(half, reason),
            None => self.release_if_stale(&mut half),
        }
        result
    }

    /// One write call on the current connection: `build` makes the frame
    /// with the codec, the write half sends it whole. A write that breaks
    /// the connection detaches it.
    #[inline]
    fn write(
        &self,
        deadline: Deadline,
        build: impl FnOnce(&mut Vec<u8>, &Codec) -> Result<()>,
    ) -> Result<()> {
        let mut half = self.bound(&self.writer, deadline)?;
        let sent = half.write(&self.codec, deadline, build);
        self.wrote(half, sent)
    }

    /// After a write: counts it (a frame held back by its deadline too:
    /// it is on its way), or ends the connection it broke.
    #[inline]
    fn wrote(&self, mut half: MutexGuard<'_, WriteHalf>, sent: Result<usize>) -> Result<()> {
        let counted = match &sent {
            Ok(n) => Some(*n),
            Err(crate::error::Error::WritePending(e)) => Some(e.len),
            Err(_) => None,
        };
        if let Some(n) = counted {
            Counters::add_exclusive(&self.counters.bytes_written, n as u64);
            Counters::add_exclusive(&self.counters.frames_written, 1);
        }
        match sent {
            Ok(_) => {
                self.release_if_stale(&mut half);
                Ok(())
            }
            Err(e) => {
                match ending::after_write(&e) {
                    Some(reason) => self.end(half, reason),
                    None => self.release_if_stale(&mut half),
                }
                Err(e)
            }
        }
    }

    /// Sends what an earlier write left unsent.
    pub(crate) fn flush(&self, deadline: Deadline) -> Result<()> {
        let mut half = self.bound(&self.writer, deadline)?;
        let flushed = half.flush(deadline);
        if let Err(e) = &flushed {
            if let Some(reason) = ending::after_write(e) {
                self.end(half, reason);
                return flushed;
            }
        }
        self.release_if_stale(&mut half);
        flushed
    }

    pub(crate) fn read_some(&self, deadline: Deadline, n: usize) -> Result<Vec<u8>> {
        self.read(deadline, Request::Some(n), owned)
    }

    pub(crate) fn read_to_end(&self, deadline: Deadline) -> Result<Vec<u8>> {
        self.read(deadline, Request::ToEnd, owned)
    }

    pub(crate) fn read_exact(&self, deadline: Deadline, n: usize) -> Result<Vec<u8>> {
        self.read(deadline, Request::Exact(n), owned)
    }

    pub(crate) fn read_line(&self, deadline: Deadline) -> Result<Vec<u8>> {
        self.read(deadline, Request::Line, owned)
    }

    pub(crate) fn read_until(&self, deadline: Deadline, sep: &[u8]) -> Result<Vec<u8>> {
        crate::config::check_separator("separator", sep)?;
        let sep = Separator::new(sep);
        self.read(deadline, Request::Until(&sep), owned)
    }

    #[inline]
    pub(crate) fn read_str(&self, deadline: Deadline) -> Result<String> {
        self.read(deadline, Request::Terminated, |frame, codec| {
            codec.decode_line(&frame)
        })
    }

    #[inline]
    pub(crate) fn read_json<T: DeserializeOwned>(&self, deadline: Deadline) -> Result<T> {
        self.read(deadline, Request::Terminated, |frame, codec| {
            codec.parse_json(&frame)
        })
    }

    /// Reads one struct's bytes, copied out of the receive buffer so that
    /// its `decode` (user code, for a hand-written `BinaryStruct`) runs
    /// with no lock held.
    pub(crate) fn read_into<S: BinaryStruct + ?Sized>(
        &self,
        deadline: Deadline,
        value: &mut S,
    ) -> Result<()> {
        let bytes = self.read(deadline, Request::Exact(value.size()), |frame, _| {
            Ok(StructBytes::new(&frame))
        })?;
        value.decode(&bytes)
    }

    pub(crate) fn write_bytes(&self, deadline: Deadline, data: &[u8]) -> Result<()> {
        let mut half = self.bound(&self.writer, deadline)?;
        let sent = half.write_slice(data, deadline);
        self.wrote(half, sent)
    }

    pub(crate) fn write_lines<I>(&self, deadline: Deadline, lines: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.write(deadline, |buf, _| {
            lines
                .into_iter()
                .for_each(|l| buf.extend_from_slice(l.as_ref()));
            Ok(())
        })
    }

    pub(crate) fn write_from(
        &self,
        deadline: Deadline,
        structs: &[&dyn BinaryStruct],
    ) -> Result<()> {
        self.write(deadline, |buf, _| {
            structs.iter().for_each(|s| s.encode(buf));
            Ok(())
        })
    }

    #[inline]
    pub(crate) fn write_str(&self, deadline: Deadline, line: &str) -> Result<()> {
        self.write(deadline, |buf, codec| codec.encode_line(line, buf))
    }

    /// A line of the terminator alone after `text`'s raw bytes: the
    /// heartbeat.
    pub(crate) fn write_raw_line(&self, deadline: Deadline, text: &[u8]) -> Result<()> {
        self.write(deadline, |buf, codec| {
            buf.extend_from_slice(text);
            buf.extend_from_slice(codec.terminator());
            Ok(())
        })
    }

    pub(crate) fn write_json<T: Serialize + ?Sized>(
        &self,
        deadline: Deadline,
        value: &T,
    ) -> Result<()> {
        self.write(deadline, |buf, codec| codec.encode_json(value, buf))
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
