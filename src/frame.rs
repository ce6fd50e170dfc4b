//! Frames out of a byte stream: a buffered reader over any [`Read`], with
//! bounded separator search. Pure code: the link hands it the socket, the
//! tests hand it a `Cursor`.
//!
//! Nothing is lost on an error that leaves the stream usable: a timeout
//! (`WouldBlock` from the source) or a limit overrun leaves every
//! byte buffered for the next call. End of file hands the partial bytes to
//! the caller in [`Error::IncompleteRead`].

use std::io::{self, Read};

use crate::separator::Separator;
use crate::{Error, Result};

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

impl FrameReader {
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
    pub(crate) fn read_until<R: Read>(
        &mut self,
        src: &mut R,
        sep: &[u8],
        limit: usize,
    ) -> Result<&[u8]> {
        self.read_until_with(src, &Separator::new(sep), limit)
    }

    /// As `read_until`, with the separator built by the caller.
    pub(crate) fn read_until_with<R: Read>(
        &mut self,
        src: &mut R,
        sep: &Separator,
        limit: usize,
    ) -> Result<&[u8]> {
        match self.search(src, sep, limit)? {
            Search::Found(len) => Ok(self.take(len)),
            Search::Eof => Err(Error::IncompleteRead {
                partial: self.take(self.end - self.start).to_vec(),
                expected: None,
            }),
        }
    }

    /// As `read_until(b"\n")`, but end of file returns the partial line
    /// (empty when nothing was left), as Python's `readline` does.
    pub(crate) fn read_line<R: Read>(&mut self, src: &mut R, limit: usize) -> Result<&[u8]> {
        let len = match self.search(src, &Separator::new(b"\n"), limit)? {
            Search::Found(len) => len,
            Search::Eof => self.end - self.start,
        };
        Ok(self.take(len))
    }

    /// Reads exactly `n` bytes into a buffer of the reader's own, for small
    /// fixed-size records (binary structs) read without an allocation.
    pub(crate) fn read_exact_ref<R: Read>(&mut self, src: &mut R, n: usize) -> Result<&[u8]> {
        while self.end - self.start < n {
            if self.fill(src, n)? == 0 {
                return Err(Error::IncompleteRead {
                    partial: self.take(self.end - self.start).to_vec(),
                    expected: Some(n),
                });
            }
        }
        Ok(self.take(n))
    }

    /// Reads exactly `n` bytes. Large requests go straight from the source
    /// into the result, past the buffer.
    pub(crate) fn read_exact<R: Read>(&mut self, src: &mut R, n: usize) -> Result<Vec<u8>> {
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
                    return Err(Error::IncompleteRead {
                        partial: out,
                        expected: Some(n),
                    });
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
    pub(crate) fn read_some<R: Read>(&mut self, src: &mut R, n: usize) -> Result<Vec<u8>> {
        if n > 0 && self.start == self.end {
            self.fill(src, n.min(4 * CHUNK))?;
        }
        let len = n.min(self.end - self.start);
        Ok(self.take(len).to_vec())
    }

    /// Reads until end of file and returns everything (Python `read(-1)`).
    pub(crate) fn read_to_end<R: Read>(&mut self, src: &mut R) -> Result<Vec<u8>> {
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
                return Err(Error::LimitOverrun { limit, buffered });
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
                Err(e) => return Err(Error::from_link_io(e)),
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
        Error::from_link_io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::io::Cursor;

    /// A source that hands out the given chunks one read at a time; `None`
    /// is a `WouldBlock` (a timeout); after the last chunk, end of file.
    struct Chunks(VecDeque<Option<Vec<u8>>>);

    impl Chunks {
        fn new(chunks: &[Option<&[u8]>]) -> Chunks {
            // An empty read means end of file, so empty chunks are dropped.
            let chunks = chunks.iter().filter(|c| c.is_none_or(|c| !c.is_empty()));
            Chunks(chunks.map(|c| c.map(<[u8]>::to_vec)).collect())
        }
    }

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                None => Ok(0),
                Some(None) => Err(io::ErrorKind::WouldBlock.into()),
                Some(Some(mut chunk)) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        self.0.push_front(Some(chunk.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    #[test]
    fn frames_survive_every_two_way_split_of_the_stream() {
        let stream = b"one\r\ntwo\r\n\r\nthree\r\n";
        for cut in 0..=stream.len() {
            let mut src = Chunks::new(&[Some(&stream[..cut]), Some(&stream[cut..])]);
            let mut r = FrameReader::default();
            for want in [&b"one\r\n"[..], b"two\r\n", b"\r\n", b"three\r\n"] {
                assert_eq!(
                    r.read_until(&mut src, b"\r\n", 100).expect("frame"),
                    want,
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn b11_timeout_mid_frame_keeps_the_partial_bytes() {
        let mut src = Chunks::new(&[Some(b"hel"), None, Some(b"lo\n")]);
        let mut r = FrameReader::default();
        assert!(matches!(
            r.read_until(&mut src, b"\n", 100),
            Err(Error::Timeout)
        ));
        assert_eq!(r.buffered(), b"hel");
        assert_eq!(
            r.read_until(&mut src, b"\n", 100).expect("frame"),
            b"hello\n"
        );
    }

    #[test]
    fn b11_timeout_in_a_large_read_exact_keeps_the_bytes() {
        let big = vec![7u8; 3 * CHUNK];
        let mut src = Chunks::new(&[Some(&big[..CHUNK + 5]), None, Some(&big[CHUNK + 5..])]);
        let mut r = FrameReader::default();
        assert!(matches!(
            r.read_exact(&mut src, big.len()),
            Err(Error::Timeout)
        ));
        assert_eq!(r.buffered().len(), CHUNK + 5);
        assert_eq!(r.read_exact(&mut src, big.len()).expect("block"), big);
    }

    #[test]
    fn b12_eof_mid_frame_hands_back_the_partial_bytes() {
        let mut r = FrameReader::default();
        let mut src = Cursor::new(b"par".to_vec());
        match r.read_until(&mut src, b"\n", 100) {
            Err(Error::IncompleteRead {
                partial,
                expected: None,
            }) => assert_eq!(partial, b"par"),
            other => panic!("{other:?}"),
        }
        let mut src = Cursor::new(b"abc".to_vec());
        let mut r = FrameReader::default();
        match r.read_exact(&mut src, 5) {
            Err(Error::IncompleteRead {
                partial,
                expected: Some(5),
            }) => assert_eq!(partial, b"abc"),
            other => panic!("{other:?}"),
        }
        assert!(r.at_eof());
    }

    #[test]
    fn b12_read_line_returns_the_partial_line_at_eof() {
        let mut r = FrameReader::default();
        let mut src = Cursor::new(b"a\nbc".to_vec());
        assert_eq!(r.read_line(&mut src, 100).expect("line"), b"a\n");
        assert_eq!(r.read_line(&mut src, 100).expect("partial"), b"bc");
        assert_eq!(r.read_line(&mut src, 100).expect("empty at eof"), b"");
    }

    #[test]
    fn b13_limit_overrun_consumes_nothing() {
        let mut r = FrameReader::default();
        let mut src = Cursor::new(b"0123456789\n".to_vec());
        match r.read_until(&mut src, b"\n", 5) {
            Err(Error::LimitOverrun { limit: 5, buffered }) => assert!(buffered >= 5),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.read_until(&mut src, b"\n", 100).expect("all of it"),
            b"0123456789\n"
        );
    }

    #[test]
    fn b13_a_line_as_long_as_the_limit_fits_and_one_byte_more_overruns() {
        // As Python's StreamReader(limit=5).readuntil(b"\r\n"): "abcde\r\n"
        // fits, "abcdef\r\n" is longer than the limit.
        let mut r = FrameReader::default();
        let mut src = Cursor::new(b"abcde\r\nabcdef\r\n".to_vec());
        assert_eq!(
            r.read_until(&mut src, b"\r\n", 5).expect("fits"),
            b"abcde\r\n"
        );
        assert!(matches!(
            r.read_until(&mut src, b"\r\n", 5),
            Err(Error::LimitOverrun { .. })
        ));
    }

    #[test]
    fn b13_endless_line_keeps_memory_near_the_limit() {
        let limit = 64 * 1024;
        let mut src = io::repeat(b'x').take(10 << 20);
        let mut r = FrameReader::default();
        assert!(matches!(
            r.read_until(&mut src, b"\n", limit),
            Err(Error::LimitOverrun { .. })
        ));
        assert!(
            r.buf.len() <= limit + CHUNK,
            "buffer grew to {}",
            r.buf.len()
        );
    }

    #[test]
    fn read_some_and_read_to_end_take_buffered_bytes_first() {
        let mut r = FrameReader::default();
        let mut src = Chunks::new(&[Some(b"line\nrest"), Some(b" and more")]);
        assert_eq!(r.read_until(&mut src, b"\n", 100).expect("line"), b"line\n");
        assert_eq!(r.read_some(&mut src, 2).expect("two"), b"re");
        assert_eq!(r.read_to_end(&mut src).expect("all"), b"st and more");
        assert_eq!(r.read_some(&mut src, 10).expect("eof"), b"");
        assert!(r.at_eof());
    }

    #[test]
    fn long_separator_split_anywhere_is_found_once() {
        let sep = b"XYZZY";
        let stream = b"aXYZZbXYZZYc";
        for cut in 0..=stream.len() {
            let mut src = Chunks::new(&[Some(&stream[..cut]), Some(&stream[cut..])]);
            let mut r = FrameReader::default();
            assert_eq!(
                r.read_until(&mut src, sep, 100).expect("frame"),
                b"aXYZZbXYZZY"
            );
        }
    }

    proptest::proptest! {
        /// Any split of the stream, with a timeout (`WouldBlock`) between
        /// any two chunks as a `try_` read meets it, gives the same frames
        /// as the whole stream read at once: nothing is lost or doubled.
        #[test]
        fn any_split_and_any_timeouts_give_the_same_frames(
            lines in proptest::collection::vec("[a-z ]{0,12}", 1..8),
            cuts in proptest::collection::vec(1usize..9, 1..40),
            stalls in proptest::collection::vec(proptest::bool::ANY, 40),
            sep in "(\\r\\n|\\n|XYZZY|;)",
        ) {
            let stream: Vec<u8> = lines.iter().flat_map(|l| [l.as_bytes(), sep.as_bytes()].concat()).collect();
            let mut chunks = Vec::new();
            let mut at = 0;
            for (i, cut) in cuts.iter().cycle().enumerate() {
                if at >= stream.len() {
                    break;
                }
                let end = (at + cut).min(stream.len());
                chunks.push(Some(&stream[at..end]));
                if stalls[i % stalls.len()] {
                    chunks.push(None);
                }
                at = end;
            }
            let mut src = Chunks::new(&chunks);
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            while got.len() < lines.len() {
                match r.read_until(&mut src, sep.as_bytes(), 100) {
                    Ok(frame) => got.push(frame.to_vec()),
                    Err(Error::Timeout) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            let want: Vec<Vec<u8>> = lines.iter().map(|l| [l.as_bytes(), sep.as_bytes()].concat()).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
