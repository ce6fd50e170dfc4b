//! Frames large enough that the kernel takes each in several pieces,
//! written at once by several threads through every write method of a
//! link, and a reader that checks each frame arrived whole: a write that
//! let another thread's bytes in between its pieces shows as a frame cut
//! short or a line of another frame inside it.
//!
//! Every frame is text in lines ending `\r\n`, so one reader takes them
//! all: `write_str` and `write_json` send a frame of one long line;
//! `write`, `write_lines` and `write_from` a frame of many short lines
//! (for `write_from`, binary structs whose bytes are such a line).

use std::io::BufRead;
use std::sync::Barrier;
use std::thread;

use ts_tcpip::{binary_struct, BinaryStruct, Link};

/// Bytes of a frame, about: far more than one `send()` takes on loopback,
/// and more than a TLS record.
pub const FRAME: usize = 256 * 1024;
/// Bytes of one line of a frame of many, `\r\n` included.
const ROW: usize = 96;
/// Lines in a frame of many.
const ROWS: usize = FRAME / ROW;

binary_struct! {
    /// One line of a `write_from` frame, as a packed struct.
    struct Row { text: [u8; 94], end: [u8; 2] }
}

/// The write methods, taken in turn by the writers.
const METHODS: [Method; 5] = [
    Method::Write,
    Method::WriteStr,
    Method::WriteLines,
    Method::WriteJson,
    Method::WriteFrom,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Write,
    WriteStr,
    WriteLines,
    WriteJson,
    WriteFrom,
}

impl Method {
    /// The first byte of the frames of the method that sends many lines.
    fn tag(self) -> u8 {
        match self {
            Method::Write => b'B',
            Method::WriteLines => b'L',
            Method::WriteFrom => b'F',
            Method::WriteStr => b'S',
            Method::WriteJson => b'{',
        }
    }
}

/// The byte writer `w` fills its frames with.
fn fill(w: usize) -> u8 {
    b'a' + (w % 26) as u8
}

/// Line `j` of frame `k` of writer `w`, `\r\n` included: ROW bytes.
fn row(tag: u8, w: usize, k: usize, j: usize) -> Vec<u8> {
    let mut line = format!("{}{w} {k} {j} ", tag as char).into_bytes();
    line.resize(ROW - 2, fill(w));
    line.extend_from_slice(b"\r\n");
    line
}

/// The long text of a one-line frame of writer `w`.
fn long_fill(w: usize) -> String {
    String::from(fill(w) as char).repeat(FRAME)
}

/// Writes `frames` frames from each of `writers` threads at once on
/// `link` (writer `w` uses method `w % 5`), while `reader` (the peer's
/// end, `\r\n` lines) checks that every frame arrives whole and each
/// writer's in order. Panics on the first frame that is not.
#[track_caller]
pub fn concurrent_writes_arrive_whole<L: Link + Sync>(
    link: &L,
    reader: &mut impl BufRead,
    writers: usize,
    frames: usize,
) {
    let start = Barrier::new(writers);
    thread::scope(|s| {
        for w in 0..writers {
            let start = &start;
            s.spawn(move || {
                start.wait();
                for k in 0..frames {
                    write_frame(link, w, k);
                }
            });
        }
        // Read while they write: a writer whose peer stops reading blocks
        // with half a frame out, which is when another could cut in.
        let mut next = vec![0usize; writers];
        for _ in 0..writers * frames {
            let (w, k) = read_frame(reader);
            assert!(w < writers, "a frame of writer {w}");
            assert_eq!(k, next[w], "writer {w}'s frames out of order");
            next[w] += 1;
        }
        assert_eq!(next, vec![frames; writers]);
    });
}

fn write_frame(link: &impl Link, w: usize, k: usize) {
    let method = METHODS[w % METHODS.len()];
    let tag = method.tag();
    let written = match method {
        Method::Write => link.write(
            &(0..ROWS)
                .flat_map(|j| row(tag, w, k, j))
                .collect::<Vec<u8>>(),
        ),
        Method::WriteLines => link.write_lines((0..ROWS).map(|j| row(tag, w, k, j))),
        Method::WriteFrom => {
            let rows: Vec<Row> = (0..ROWS)
                .map(|j| {
                    let line = row(tag, w, k, j);
                    Row {
                        text: line[..ROW - 2].try_into().expect("94 bytes"),
                        end: *b"\r\n",
                    }
                })
                .collect();
            let structs: Vec<&dyn BinaryStruct> =
                rows.iter().map(|r| r as &dyn BinaryStruct).collect();
            link.write_from(&structs)
        }
        Method::WriteStr => link.write_str(&format!("S{w} {k} {}", long_fill(w))),
        Method::WriteJson => {
            link.write_json(&serde_json::json!({"w": w, "k": k, "fill": long_fill(w)}))
        }
    };
    written.unwrap_or_else(|e| panic!("{method:?} of frame {k} of writer {w}: {e}"));
}

/// Reads one frame and checks it is whole; returns its writer and number.
#[track_caller]
fn read_frame(reader: &mut impl BufRead) -> (usize, usize) {
    let line = read_line(reader);
    let shown = || String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
    match line.first() {
        Some(b'{') => {
            let value: serde_json::Value = serde_json::from_slice(&line)
                .unwrap_or_else(|e| panic!("a JSON frame cut or mixed ({e}): {}", shown()));
            let w = value["w"].as_u64().expect("w") as usize;
            let k = value["k"].as_u64().expect("k") as usize;
            assert!(
                value["fill"].as_str() == Some(long_fill(w).as_str()),
                "the JSON frame {k} of writer {w} holds other bytes"
            );
            (w, k)
        }
        Some(b'S') => {
            let (w, k, rest) = header(&line);
            assert!(
                rest == long_fill(w).as_bytes(),
                "the write_str frame {k} of writer {w} holds other bytes ({} of {FRAME})",
                rest.len()
            );
            (w, k)
        }
        Some(&tag @ (b'B' | b'L' | b'F')) => {
            let (w, k, _) = header(&line);
            let mut expected = row(tag, w, k, 0);
            expected.truncate(ROW - 2);
            assert_eq!(line, expected, "not the first line of a frame");
            for j in 1..ROWS {
                let next = read_line(reader);
                let mut expected = row(tag, w, k, j);
                expected.truncate(ROW - 2);
                assert!(
                    next == expected,
                    "line {j} of frame {k} of writer {w} ({}): got {:?}",
                    tag as char,
                    String::from_utf8_lossy(&next[..next.len().min(80)])
                );
            }
            (w, k)
        }
        _ => panic!("not the start of a frame: {}", shown()),
    }
}

/// A frame's "<tag><w> <k> " and the bytes after it.
#[track_caller]
fn header(line: &[u8]) -> (usize, usize, &[u8]) {
    let text = std::str::from_utf8(&line[1..line.len().min(40)]).unwrap_or("");
    let mut parts = text.splitn(3, ' ');
    let (Some(w), Some(k)) = (
        parts.next().and_then(|p| p.parse().ok()),
        parts.next().and_then(|p| p.parse().ok()),
    ) else {
        panic!(
            "no frame header: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        );
    };
    let len = 1 + format!("{w} {k} ").len();
    (w, k, &line[len..])
}

/// The next line without its `\r\n`.
#[track_caller]
fn read_line(reader: &mut impl BufRead) -> Vec<u8> {
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .unwrap_or_else(|e| panic!("read a frame: {e}"));
    assert!(line.ends_with(b"\r\n"), "a line cut short at end of file");
    line.truncate(line.len() - 2);
    line
}
