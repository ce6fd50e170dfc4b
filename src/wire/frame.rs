//! Frames out of a byte stream: a buffered reader over any [`Read`], with
//! bounded separator search. Pure code: the link hands it the socket, the
//! tests hand it a `Cursor`.
//!
//! Nothing is lost on an error that leaves the stream usable: a timeout
//! (`WouldBlock` from the source) or a limit overrun leaves every
//! byte buffered for the next call. End of file hands the partial bytes to
//! the caller in [`Error::IncompleteRead`].

use std::borrow::Cow;
use std::io::{self, Read};

use super::separator::Separator;
use crate::error::{Error, Result};

/// Bytes asked of the source per read: enough for many short lines per
/// system call, small enough that a peer sending an endless line cannot
/// push the buffer far past the read limit.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Buffered frame reader. The unread bytes are `buf[start..end]`.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

/// How a separator search ended.
enum Search {
    /// The frame (separator included) is `buf[start..start + len]`.
    Found(usize),
    /// End of file came first.
    Eof,
}

/// What one read asks of the stream.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Request<'a> {
    /// Up to this many bytes: what is buffered, else what one read of the
    /// source brings (Python's `read(n)`). Not a frame.
    Some(usize),
    /// Everything until end of file (`read(-1)`). Not a frame.
    ToEnd,
    /// Exactly this many bytes (`readexactly`, a binary struct).
    Exact(usize),
    /// Through the next `b"\n"`; the partial line at end of file
    /// (`readline`).
    Line,
    /// Through this separator, which is included (`readuntil`).
    Until(&'a Separator),
    /// Through the link's terminator, which is included (every line of
    /// text or JSON).
    Terminated,
}

impl Request<'_> {
    /// True when the request reads one frame (counted in `frames_read`).
    pub(crate) fn is_frame(&self) -> bool {
        !matches!(self, Request::Some(_) | Request::ToEnd)
    }
}

impl FrameReader {
    /// Serves `request` from the buffer and `src`; `limit` bounds how far a
    /// separator is looked for. The frame is borrowed from the buffer when
    /// it fits there, owned when it went past it.
    #[inline]
    pub(crate) fn read<R: Read>(
        &mut self,
        src: &mut R,
        request: Request<'_>,
        terminator: &Separator,
        limit: usize,
    ) -> Result<Cow<'_, [u8]>> {
        Ok(match request {
            Request::Terminated => Cow::Borrowed(self.read_until_with(src, terminator, limit)?),
            Request::Until(sep) => Cow::Borrowed(self.read_until_with(src, sep, limit)?),
            Request::Line => Cow::Borrowed(self.read_line(src, limit)?),
            Request::Exact(n) if n <= CHUNK => Cow::Borrowed(self.read_exact_ref(src, n)?),
            Request::Exact(n) => Cow::Owned(self.read_exact(src, n)?),
            Request::Some(n) => Cow::Owned(self.read_some(src, n)?),
            Request::ToEnd => Cow::Owned(self.read_to_end(src)?),
        })
    }

    /// The bytes received and not yet read.
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// True once the source has reported end of file.
    #[inline]
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Reads through the first `sep`, which may be preceded by at most
    /// `limit` bytes; returns the frame with its separator.
    #[cfg(test)]
    fn read_until<R: Read>(&mut self, src: &mut R, sep: &[u8], limit: usize) -> Result<&[u8]> {
        self.read_until_with(src, &Separator::new(sep), limit)
    }

    /// As `read_until`, with the separator built by the caller.
    fn read_until_with<R: Read>(
        &mut self,
        src: &mut R,
        sep: &Separator,
        limit: usize,
    ) -> Result<&[u8]> {
        match self.search(src, sep, limit)? {
            Search::Found(len) => Ok(self.take(len)),
            Search::Eof => Err(Error::incomplete(
                self.take(self.end - self.start).to_vec(),
                None,
            )),
        }
    }

    /// As `read_until(b"\n")`, but end of file returns the partial line
    /// (empty when nothing was left), as Python's `readline` does.
    fn read_line<R: Read>(&mut self, src: &mut R, limit: usize) -> Result<&[u8]> {
        let len = match self.search(src, &Separator::new(b"\n"), limit)? {
            Search::Found(len) => len,
            Search::Eof => self.end - self.start,
        };
        Ok(self.take(len))
    }

    /// Reads exactly `n` bytes into a buffer of the reader's own, for small
    /// fixed-size records (binary structs) read without an allocation.
    fn read_exact_ref<R: Read>(&mut self, src: &mut R, n: usize) -> Result<&[u8]> {
        while self.end - self.start < n {
            if self.fill(src, n)? == 0 {
                return Err(Error::incomplete(
                    self.take(self.end - self.start).to_vec(),
                    Some(n),
                ));
            }
        }
        Ok(self.take(n))
    }

    /// Reads exactly `n` bytes. Large requests go straight from the source
    /// into the result, past the buffer.
    fn read_exact<R: Read>(&mut self, src: &mut R, n: usize) -> Result<Vec<u8>> {
        if n <= CHUNK || self.end - self.start >= n {
            return self.read_exact_ref(src, n).map(<[u8]>::to_vec);
        }
        // The count may come from the peer (a corrupt length prefix): grow
        // as bytes arrive rather than trust it with an allocation.
        let mut out = Vec::with_capacity(n.min(1 << 20));
        out.extend_from_slice(self.take(self.end - self.start));
        let mut filled = out.len();
        // Reads straight into the result, as much as the socket holds (one
        // system call per 64 KiB block when the data is there; read_to_end
        // on a Take starts at 8 KiB and zeroes each chunk anyway). The
        // zeroed room grows to 1 MiB at once, then doubles as bytes come.
        while filled < n {
            if filled == out.len() {
                let step = filled.max(1 << 20).min(n - filled);
                out.resize(filled + step, 0);
            }
            match src.read(&mut out[filled..]) {
                Ok(0) => {
                    out.truncate(filled);
                    self.eof = true;
                    return Err(Error::incomplete(out, Some(n)));
                }
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(filled);
                    return Err(self.keep(out, e));
                }
            }
        }
        Ok(out)
    }

    /// Reads up to `n` bytes: what is buffered, else one read of the
    /// source. Empty only at end of file (or when `n` is 0).
    fn read_some<R: Read>(&mut self, src: &mut R, n: usize) -> Result<Vec<u8>> {
        if n > 0 && self.start == self.end {
            self.fill(src, n.min(4 * CHUNK))?;
        }
        let len = n.min(self.end - self.start);
        Ok(self.take(len).to_vec())
    }

    /// Reads until end of file and returns everything (Python `read(-1)`).
    fn read_to_end<R: Read>(&mut self, src: &mut R) -> Result<Vec<u8>> {
        let mut out = self.take(self.end - self.start).to_vec();
        if self.eof {
            return Ok(out);
        }
        match src.read_to_end(&mut out) {
            Ok(_) => {
                self.eof = true;
                Ok(out)
            }
            Err(e) => Err(self.keep(out, e)),
        }
    }

    /// Searches for `sep`, reading more until it is found, the limit is
    /// overrun, or the source ends. Consumes nothing.
    #[inline]
    fn search<R: Read>(
        &mut self,
        src: &mut R,
        separator: &Separator,
        limit: usize,
    ) -> Result<Search> {
        // As in asyncio, the separator may start at any offset up to and
        // including `limit` (a line as long as the limit fits), so the
        // search window is `limit + sep.len()` bytes long.
        let window = limit.saturating_add(separator.bytes().len());
        match self.scan(separator, window, 0) {
            // The usual case for short lines: the frame is buffered.
            Ok(len) => Ok(Search::Found(len)),
            Err(resume) => self.search_more(src, separator, limit, window, resume),
        }
    }

    /// `search` once the buffered bytes hold no whole frame.
    fn search_more<R: Read>(
        &mut self,
        src: &mut R,
        separator: &Separator,
        limit: usize,
        window: usize,
        mut searched: usize,
    ) -> Result<Search> {
        loop {
            let buffered = self.end - self.start;
            if buffered >= window {
                return Err(Error::overrun(limit, buffered));
            }
            if self.fill(src, window)? == 0 {
                return Ok(Search::Eof);
            }
            match self.scan(separator, window, searched) {
                Ok(len) => return Ok(Search::Found(len)),
                Err(resume) => searched = resume,
            }
        }
    }

    /// Looks for the separator in the buffered bytes of the window, from
    /// offset `from`: the frame's length with its separator, or else the
    /// offset to look from once more bytes arrive.
    #[inline(always)]
    fn scan(
        &self,
        separator: &Separator,
        window: usize,
        from: usize,
    ) -> std::result::Result<usize, usize> {
        let sep_len = separator.bytes().len();
        let avail = &self.buf[self.start..self.end];
        let upto = avail.len().min(window);
        if from < upto {
            if let Some(pos) = separator.find(&avail[from..upto]) {
                return Ok(from + pos + sep_len);
            }
        }
        // A separator cut in two by the last read can start this far back.
        Err(upto.saturating_sub(sep_len.saturating_sub(1)).max(from))
    }

    /// Reads once from the source, making room so that up to `want` bytes
    /// can be buffered. Returns the count read; 0 means end of file.
    fn fill<R: Read>(&mut self, src: &mut R, want: usize) -> Result<usize> {
        if self.eof {
            return Ok(0);
        }
        self.make_room(want);
        loop {
            match src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(sort_io(e)),
            }
        }
    }

    /// Ensures free space after `end`, with room to hold up to `want`
    /// unread bytes (callers only ask for more than are buffered).
    fn make_room(&mut self, want: usize) {
        if self.start > 0 && self.buf.len() - self.start < want {
            // Only the unread tail moves: a partial frame, usually short.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Doubling keeps an endless line linear; `want` caps the size.
            let len = (self.buf.len() * 2).max(CHUNK).min(want.max(CHUNK));
            self.buf.resize(len.max(self.end + 1), 0);
        }
    }

    /// Consumes `len` unread bytes and returns them.
    #[inline]
    fn take(&mut self, len: usize) -> &[u8] {
        let frame = self.start..self.start + len;
        self.start += len;
        if self.start == self.end {
            // Empty: later reads start at the front, no compaction needed.
            self.start = 0;
            self.end = 0;
        }
        &self.buf[frame]
    }

    /// Puts bytes already taken back in front of the buffer after an error
    /// (a timeout mid-read must not lose them) and converts the error.
    fn keep(&mut self, mut taken: Vec<u8>, err: io::Error) -> Error {
        taken.extend_from_slice(&self.buf[self.start..self.end]);
        self.end = taken.len();
        self.start = 0;
        self.buf = taken;
        sort_io(err)
    }
}

/// A source's error as the reader reports it: `WouldBlock` means "nothing
/// yet" (a timeout, or nothing there for a `try_` read) and keeps the
/// stream usable; anything else ends it.
fn sort_io(err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::WouldBlock => Error::Timeout,
        _ => Error::ConnectionLost(err),
    }
}

#[cfg(test)]
mod tests;
