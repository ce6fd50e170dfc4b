//! The halves on a real loopback connection: binding, deadlines, a local
//! close, and writes that a deadline cuts short.

use super::*;
use crate::encoding::Encoding;
use crate::link::test_util::{connection, watchdog, WAIT};
use crate::wire::separator::Separator;
use std::io::Write;
use std::time::Duration;

fn line(frame: Cow<'_, [u8]>, _: &Codec) -> Result<Vec<u8>> {
    Ok(frame.into_owned())
}

fn soon() -> Deadline {
    Deadline::after(Some(WAIT))
}

/// One read through the terminator, by `deadline`.
fn terminated(half: &mut ReadHalf, codec: &SharedCodec, deadline: Deadline) -> Result<Vec<u8>> {
    let counters = Counters::default();
    half.read(
        codec,
        &counters,
        deadline,
        Duration::ZERO,
        Request::Terminated,
        100,
        line,
    )
}

#[test]
fn rebinding_ignores_older_epochs_and_forgets_the_ended_connections_bytes() {
    let _w = watchdog(WAIT);
    let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
    let ((first, mut peer), (second, _peer2)) = (connection(), connection());
    let mut half = ReadHalf::new(&codec);
    half.rebind(2, Some(first.clone()));
    peer.write_all(b"one\npartial").expect("send");
    let one = terminated(&mut half, &codec, soon());
    assert_eq!(one.expect("a line"), b"one\n");
    while half.buffered() != b"partial" {
        let out = terminated(&mut half, &codec, Deadline::Now);
        assert!(matches!(out, Err(Error::Timeout)), "{:?}", out);
    }

    half.rebind(1, Some(second.clone()));
    assert!(
        half.serves(&first) && !half.serves(&second) && half.epoch() == 2,
        "an older epoch is ignored"
    );
    assert_eq!(half.buffered(), b"partial", "and nothing is forgotten");
    half.rebind(3, Some(second.clone()));
    assert!(half.serves(&second) && !half.serves(&first) && half.buffered().is_empty());
    assert!(half.release().is_some() && !half.is_bound());
    assert!(!half.serves(&second), "a released half serves nothing");
}

/// A local close racing a read: a frame that was whole before it is
/// still handed over; what the close itself ended is a lost connection,
/// not the peer's end of file.
#[test]
fn a_local_close_keeps_a_whole_frame_and_reports_its_own_end_of_file() {
    let _w = watchdog(WAIT);
    let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
    let counters = Counters::default();
    let (conn, mut peer) = connection();
    let mut half = ReadHalf::new(&codec);
    half.rebind(1, Some(conn.clone()));
    peer.write_all(b"line\n").expect("send");
    let sep = Separator::new(b"\n");
    let first = half.read(
        &codec,
        &counters,
        soon(),
        Duration::ZERO,
        Request::Exact(1),
        100,
        line,
    );
    assert_eq!(first.expect("a byte"), b"l");
    conn.shutdown();
    let whole = half.read(
        &codec,
        &counters,
        soon(),
        Duration::ZERO,
        Request::Until(&sep),
        100,
        line,
    );
    assert_eq!(whole.expect("the frame"), b"ine\n");
    let ended = half.read(
        &codec,
        &counters,
        soon(),
        Duration::ZERO,
        Request::ToEnd,
        100,
        line,
    );
    match ended {
        Err(Error::ConnectionLost(e)) => assert_eq!(
            crate::link::connection::ended(&e),
            crate::link::connection::Ended::Locally
        ),
        other => panic!("{other:?}"),
    }
    assert!(!half.drained(), "not the peer's end of file");
}

#[test]
fn a_deadline_times_out_and_keeps_the_partial_frame() {
    let _w = watchdog(WAIT);
    let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
    let (conn, mut peer) = connection();
    let mut half = ReadHalf::new(&codec);
    half.rebind(1, Some(conn.clone()));
    peer.write_all(b"part").expect("send");
    let brief = Deadline::after(Some(Duration::from_millis(50)));
    let out = terminated(&mut half, &codec, brief);
    assert!(matches!(out, Err(Error::Timeout)), "{:?}", out.err());
    assert_eq!(half.buffered(), b"part");
    peer.write_all(b"ial\n").expect("send");
    let out = terminated(&mut half, &codec, soon());
    assert_eq!(out.expect("the rest"), b"partial\n");
}

/// A write half on a connection whose peer does not read, with small
/// socket buffers so that a deadline cuts writes short quickly.
fn stalled() -> (WriteHalf, SharedCodec, std::net::TcpStream) {
    let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
    let (conn, peer) = crate::link::test_util::connection_with_send_buffer(4096);
    let mut half = WriteHalf::new(&codec);
    half.rebind(1, Some(conn));
    (half, codec, peer)
}

/// Frame `i`: its number, then filler, then a newline; every byte tells
/// which frame it belongs to.
fn frame(i: u8) -> Vec<u8> {
    let mut frame = vec![b'a' + i % 26; 3000];
    frame.push(b'\n');
    frame
}

/// Past the deadline with part of a frame out, the rest is kept and goes
/// first on the next write: the peer reads whole frames, in order, and
/// never one inside another.
#[test]
fn a_write_cut_short_sends_the_rest_of_its_frame_before_the_next() {
    let _w = watchdog(WAIT);
    let (mut half, codec, mut peer) = stalled();
    let mut accepted = Vec::new();
    let mut pending = false;
    let mut i = 0u8;
    while !pending {
        let bytes = frame(i);
        match half.write(&codec, Deadline::Now, |buf, _| {
            buf.extend_from_slice(&bytes);
            Ok(())
        }) {
            Ok(n) => assert_eq!(n, bytes.len()),
            Err(Error::WritePending(e)) => {
                assert_eq!(e.len, bytes.len());
                pending = true;
            }
            Err(Error::Timeout) => panic!("frame {i}: a Now write sent nothing before any was cut"),
            Err(e) => panic!("frame {i}: {e}"),
        }
        accepted.push(bytes);
        i = i.wrapping_add(1);
        assert!(accepted.len() < 10_000, "the socket never filled");
    }
    // The socket is full: a write that cannot finish the rest sends
    // nothing of its own frame.
    let refused = half.write(&codec, Deadline::Now, |buf, _| {
        buf.extend_from_slice(b"never\n");
        Ok(())
    });
    assert!(matches!(refused, Err(Error::Timeout)), "{refused:?}");

    // The peer reads on a thread while the next write, with time, sends
    // the rest and then its own frame.
    let expected: Vec<u8> = accepted.concat();
    let total = expected.len() + frame(i).len();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; total];
        peer.read_exact(&mut got).expect("read everything");
        got
    });
    let last = frame(i);
    half.write(&codec, soon(), |buf, _| {
        buf.extend_from_slice(&last);
        Ok(())
    })
    .expect("the rest, then this frame");
    let got = reader.join().expect("reader");
    assert_eq!(&got[..expected.len()], &expected[..]);
    assert_eq!(&got[expected.len()..], &last[..]);
}

/// `flush` sends the rest without a new frame.
#[test]
fn flush_sends_the_rest_of_a_frame_cut_short() {
    let _w = watchdog(WAIT);
    let (mut half, codec, mut peer) = stalled();
    let mut sent = Vec::new();
    loop {
        let bytes = frame(sent.len() as u8);
        let result = half.write(&codec, Deadline::Now, |buf, _| {
            buf.extend_from_slice(&bytes);
            Ok(())
        });
        sent.push(bytes);
        match result {
            Ok(_) => {}
            Err(Error::WritePending(_)) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(half.flush(Deadline::Now), Err(Error::Timeout)));
    let expected = sent.concat();
    let len = expected.len();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; len];
        peer.read_exact(&mut got).expect("read everything");
        got
    });
    half.flush(soon()).expect("flushed");
    assert_eq!(reader.join().expect("reader"), expected);
    half.flush(Deadline::Now).expect("nothing left");
}

/// Writes one frame of `len` bytes through `half` while the peer reads it.
fn write_frame(half: &mut WriteHalf, codec: &SharedCodec, peer: &std::net::TcpStream, len: usize) {
    let mut peer = peer.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; len];
        peer.read_exact(&mut got).expect("read");
    });
    half.write(codec, soon(), |buf, _| {
        buf.resize(len, b'x');
        Ok(())
    })
    .expect("sent");
    reader.join().expect("reader");
}

/// A huge frame's buffer is given back after it is sent, so the write half
/// does not keep megabytes for the link's lifetime; an ordinary frame's is
/// kept, so that the next one needs no allocation.
#[test]
fn the_memory_of_a_huge_frame_is_given_back_and_an_ordinary_ones_kept() {
    let _w = watchdog(WAIT);
    let codec = SharedCodec::new(Codec::new(Encoding::Utf8, b"\n"));
    let (conn, peer) = connection();
    let mut half = WriteHalf::new(&codec);
    half.rebind(1, Some(conn));
    write_frame(&mut half, &codec, &peer, 60 * 1024);
    assert!(half.state.scratch.capacity() >= 60 * 1024, "kept");
    write_frame(&mut half, &codec, &peer, 4 << 20);
    let kept = half.state.scratch.capacity();
    assert!((60 * 1024..=64 * 1024).contains(&kept), "{kept}");
}

/// The rest of a huge frame cut short is given back once it has gone, as
/// a huge frame's buffer is: the write half keeps no megabytes for a
/// frame it has finished.
#[test]
fn the_rest_of_a_huge_frame_cut_short_is_given_back_once_sent() {
    let _w = watchdog(WAIT);
    let (mut half, codec, mut peer) = stalled();
    const HUGE: usize = 1 << 20;
    let cut = half.write(&codec, Deadline::Now, |buf, _| {
        buf.resize(HUGE, b'x');
        Ok(())
    });
    assert!(matches!(cut, Err(Error::WritePending(_))), "{cut:?}");
    assert!(half.state.tail.capacity() > HUGE / 2, "the rest is kept");
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; HUGE];
        peer.read_exact(&mut got).expect("read everything");
    });
    half.flush(soon()).expect("flushed");
    reader.join().expect("reader");
    assert!(half.state.tail.is_empty());
    let kept = half.state.tail.capacity();
    assert!(kept <= 64 * 1024, "{kept} bytes kept after the rest went");
}
