//! The frame reader against scripted sources: splits, timeouts, end of
//! file, the read limit.

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
        Err(Error::IncompleteRead(e)) => {
            assert_eq!((&e.partial[..], e.expected), (&b"par"[..], None))
        }
        other => panic!("{other:?}"),
    }
    let mut src = Cursor::new(b"abc".to_vec());
    let mut r = FrameReader::default();
    match r.read_exact(&mut src, 5) {
        Err(Error::IncompleteRead(e)) => {
            assert_eq!((&e.partial[..], e.expected), (&b"abc"[..], Some(5)))
        }
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
        Err(Error::LimitOverrun(e)) => assert!(e.limit == 5 && e.buffered >= 5),
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
        Err(Error::LimitOverrun(_))
    ));
}

#[test]
fn b13_endless_line_keeps_memory_near_the_limit() {
    let limit = 64 * 1024;
    let mut src = io::repeat(b'x').take(10 << 20);
    let mut r = FrameReader::default();
    assert!(matches!(
        r.read_until(&mut src, b"\n", limit),
        Err(Error::LimitOverrun(_))
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

#[test]
fn reads_of_some_bytes_or_to_the_end_are_not_frames() {
    // Stats count frames: a line, a struct, bytes through a separator; a
    // read of what is there, or of everything, is not one.
    let sep = Separator::new(b"\n");
    for frame in [
        Request::Line,
        Request::Terminated,
        Request::Until(&sep),
        Request::Exact(4),
    ] {
        assert!(frame.is_frame(), "{frame:?}");
    }
    for bytes in [Request::Some(4), Request::ToEnd] {
        assert!(!bytes.is_frame(), "{bytes:?}");
    }
}

/// End of file after a frame was taken from the same buffer: the error
/// holds only the bytes after that frame.
#[test]
fn end_of_file_after_a_frame_holds_only_the_bytes_after_it() {
    let mut reader = FrameReader::default();
    let mut src = Cursor::new(b"a\nbc".to_vec());
    assert_eq!(reader.read_until(&mut src, b"\n", 100).unwrap(), b"a\n");
    let err = reader.read_until(&mut src, b"\n", 100).unwrap_err();
    assert_eq!(err.partial(), Some(&b"bc"[..]), "{err:?}");
}

/// A read of more than a chunk, after a frame was taken from the same
/// buffer, returns exactly the bytes that follow that frame.
#[test]
fn a_large_read_exact_after_a_frame_returns_the_bytes_after_it() {
    let body: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let mut src = Cursor::new([&b"a\n"[..], &body].concat());
    let mut reader = FrameReader::default();
    assert_eq!(reader.read_until(&mut src, b"\n", 100).unwrap(), b"a\n");
    assert!(reader.buffered().len() < body.len(), "part still to read");
    assert_eq!(reader.read_exact(&mut src, body.len()).unwrap(), body);
}

/// A source that gives its chunks one read at a time, with an
/// `Interrupted` error between them (a signal during a system call).
struct Interrupting(VecDeque<Vec<u8>>, bool);

impl Read for Interrupting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = !self.1;
        if !self.1 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let Some(mut chunk) = self.0.pop_front() else {
            return Ok(0);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.0.push_front(chunk.split_off(n));
        }
        Ok(n)
    }
}

/// A read interrupted by a signal is tried again, in a small read and in
/// a large one that reads past the buffer.
#[test]
fn an_interrupted_read_is_tried_again() {
    for len in [100, 40_000] {
        let body: Vec<u8> = (0..len as u32).map(|i| (i % 251) as u8).collect();
        let halves = vec![body[..len / 2].to_vec(), body[len / 2..].to_vec()];
        let mut src = Interrupting(halves.into(), false);
        let mut reader = FrameReader::default();
        assert_eq!(reader.read_exact(&mut src, len).unwrap(), body, "{len}");
    }
}

/// A read of up to 0 bytes returns nothing at once: it does not read the
/// source (which could block).
#[test]
fn a_read_of_nothing_does_not_read_the_source() {
    let mut reader = FrameReader::default();
    let mut blocking = Chunks::new(&[None, Some(b"later")]);
    assert_eq!(reader.read_some(&mut blocking, 0).unwrap(), b"");
    assert_eq!(
        reader.read_some(&mut blocking, 10).unwrap_err().to_string(),
        Error::Timeout.to_string()
    );
    assert_eq!(reader.read_some(&mut blocking, 10).unwrap(), b"later");
}

/// The buffer neither grows with the stream nor shrinks the reads:
/// lines arriving in pieces that cut them elsewhere (1,009-byte lines,
/// 997-byte pieces: the two line up once in a megabyte) are read through
/// a buffer that stays within a couple of chunks, its unread tail moved
/// to the front as it fills, with one read per piece (a full buffer left
/// unmoved would be read into a byte at a time).
#[test]
fn the_buffer_does_not_grow_with_the_stream_nor_shrink_the_reads() {
    let line = |i: usize| {
        let mut line = format!("line {i:05} ").into_bytes();
        line.resize(1008, b'x');
        line.push(b'\n');
        line
    };
    let data: Vec<u8> = (0..2_000).flat_map(line).collect();
    let pieces: Vec<Option<&[u8]>> = data.chunks(997).map(Some).collect();
    let mut src = Counted(Chunks::new(&pieces), 0);
    let mut reader = FrameReader::default();
    for i in 0..2_000 {
        assert_eq!(reader.read_until(&mut src, b"\n", 2_000).unwrap(), line(i));
        assert!(
            reader.buf.len() <= 2 * CHUNK,
            "line {i}: {} bytes",
            reader.buf.len()
        );
    }
    assert!(
        src.1 <= pieces.len() + 1,
        "{} reads for {} pieces",
        src.1,
        pieces.len()
    );
}

/// A source that counts the reads made of it.
struct Counted<R>(R, usize);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 += 1;
        self.0.read(buf)
    }
}

/// An endless line grows the buffer to about the read limit, no further.
#[test]
fn an_endless_line_grows_the_buffer_to_about_the_limit() {
    for limit in [100, 100_000] {
        let mut reader = FrameReader::default();
        let mut endless = std::io::repeat(b'x');
        let err = reader.read_until(&mut endless, b"\n", limit).unwrap_err();
        assert!(matches!(err, Error::LimitOverrun(_)), "{err:?}");
        let bound = (limit + 1).max(CHUNK) + 1;
        assert!(
            reader.buf.len() <= bound,
            "{limit}: {} bytes",
            reader.buf.len()
        );
    }
}
