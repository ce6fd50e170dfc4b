//! The frame reader through the public API, over a real loopback pair.
//!
//! Each input is a terminator, bytes a raw peer sends before half-closing,
//! and a sequence of reads the server makes (read_str, read_json,
//! read_line, read_until, read_exact, read, try_read_str, read_to_end).
//! Every result is checked against a model of the stream: the frames,
//! the partial bytes at end of file, the limit overruns (read limit 32),
//! undecodable text, invalid JSON (Python's NaN and Infinity are JSON
//! here, null in a Value), and the disconnect once everything
//! sent was read. One server serves every input; each input gets its own
//! peer, which resets on drop so no TIME_WAIT piles up.
#![no_main]

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ts_tcpip::prelude::*;
use ts_tcpip::Error;

/// What the model expects where the crate gives an error.
#[derive(Debug)]
enum Want {
    Overrun,
    Incomplete {
        partial: Vec<u8>,
        expected: Option<usize>,
    },
    Decode {
        bytes: Vec<u8>,
    },
    Json {
        line: String,
    },
}

type Expected<T> = std::result::Result<T, Want>;

const LIMIT: usize = 32;

#[derive(Arbitrary, Debug)]
enum Op {
    Str,
    Json,
    Line,
    Until(u8, Option<u8>),
    Exact(u8),
    Some(u8),
    TryStr,
    ToEnd,
}

#[derive(Arbitrary, Debug)]
struct Input {
    term: (u8, Option<u8>),
    ops: Vec<Op>,
    data: Vec<u8>,
}

/// `line` with each `NaN`, `Infinity` and `-Infinity` outside a string
/// replaced by `null`: read by serde_json, what `read_json` must give as a
/// `Value` (written apart from the crate's own reader, as a model).
fn tokens_as_null(line: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(token) = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t))
            {
                out.push_str("null");
                rest = &rest[token.len()..];
                continue;
            }
        }
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn server() -> &'static OneClientServer {
    static SERVER: OnceLock<OneClientServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = OneClientServer::builder()
            .host(LOCALHOST_IPV4)
            .port(0)
            .name("fuzz")
            .read_limit(LIMIT)
            // No monitor: the disconnect is noticed by the reads alone,
            // which keeps the model deterministic.
            .monitor_connection_interval(Duration::ZERO)
            .start()
            .expect("server starts");
        // A hang guard: a model error shows as a Timeout mismatch.
        server.set_read_timeout(Some(Duration::from_secs(5)));
        server
    })
}

fn sep_of((first, second): (u8, Option<u8>)) -> Vec<u8> {
    std::iter::once(first).chain(second).collect()
}

/// The stream as the model sees it.
struct Model<'a> {
    rest: &'a [u8],
    connected: bool,
}

enum Search {
    Found(usize),
    Overrun,
    Eof,
}

impl Model<'_> {
    fn search(&self, sep: &[u8], limit: usize) -> Search {
        // As asyncio: the separator may start at any offset up to and
        // including `limit`, so the window is `limit + sep.len()` long.
        let window = limit + sep.len();
        let upto = self.rest.len().min(window);
        match find(&self.rest[..upto], sep) {
            Some(at) => Search::Found(at + sep.len()),
            None if self.rest.len() >= window => Search::Overrun,
            None => Search::Eof,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        taken.to_vec()
    }

    /// End of file met with `partial` left: the link goes.
    fn eof(&mut self, expected: Option<usize>) -> Expected<Vec<u8>> {
        let partial = self.take(self.rest.len());
        self.connected = false;
        Err(Want::Incomplete { partial, expected })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Compares a result with the model's, by variant and payload.
fn same<T: PartialEq + std::fmt::Debug>(op: &Op, got: &ts_tcpip::Result<T>, want: &Expected<T>) {
    let ok = match (got, want) {
        (Ok(a), Ok(b)) => a == b,
        (Err(Error::LimitOverrun(_)), Err(Want::Overrun)) => true,
        (Err(Error::IncompleteRead(e)), Err(Want::Incomplete { partial, expected })) => {
            &e.partial == partial && &e.expected == expected
        }
        (Err(Error::Decode(e)), Err(Want::Decode { bytes })) => &e.bytes == bytes,
        (Err(Error::Json(e)), Err(Want::Json { line })) => &e.line == line,
        _ => false,
    };
    assert!(ok, "{op:?}: got {got:?}, the model says {want:?}");
}

fuzz_target!(|input: Input| {
    let server = server();
    let term = sep_of(input.term);
    server
        .set_terminator(term.clone())
        .expect("non-empty terminator");
    let mut peer = TcpStream::connect(server.local_addrs()[0]).expect("connect");
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    server
        .wait_connected(Duration::from_secs(5))
        .expect("taken");
    peer.write_all(&input.data).expect("peer writes");
    peer.shutdown(Shutdown::Write).expect("half-close");

    let mut model = Model {
        rest: &input.data,
        connected: true,
    };
    for op in input.ops.iter().take(64) {
        if !model.connected {
            assert!(
                matches!(server.read_str(), Err(Error::NotConnected)),
                "{op:?} after the end"
            );
            break;
        }
        match op {
            Op::Str | Op::TryStr | Op::Json => {
                let want_frame: Expected<Vec<u8>> = match model.search(&term, LIMIT) {
                    Search::Found(n) => Ok(model.rest[..n - term.len()].to_vec()),
                    Search::Overrun => Err(Want::Overrun),
                    Search::Eof => Err(Want::Incomplete {
                        partial: model.rest.to_vec(),
                        expected: None,
                    }),
                };
                if let Op::TryStr = op {
                    // None is always possible: the bytes may still be in flight.
                    match server.try_read_str() {
                        Ok(None) => continue,
                        Ok(Some(line)) => {
                            let want = want_frame
                                .map(|f| String::from_utf8(f).expect("Ok only for UTF-8"));
                            same(op, &Ok(line), &want);
                        }
                        Err(e) => {
                            let want = match want_frame {
                                Ok(frame) => match String::from_utf8(frame) {
                                    Ok(s) => Ok(s),
                                    Err(e) => Err(Want::Decode {
                                        bytes: e.into_bytes(),
                                    }),
                                },
                                Err(e) => Err(e),
                            };
                            same(op, &Err(e), &want);
                        }
                    }
                }
                // The model's account of the frame, consumed or not.
                let want: Expected<String> = match model.search(&term, LIMIT) {
                    Search::Found(n) => {
                        let frame = model.take(n);
                        let body = frame[..n - term.len()].to_vec();
                        String::from_utf8(body).map_err(|e| Want::Decode {
                            bytes: e.into_bytes(),
                        })
                    }
                    Search::Overrun => Err(Want::Overrun),
                    Search::Eof => model.eof(None).map(|_| unreachable!()),
                };
                match op {
                    Op::TryStr => {} // checked above (when it returned a frame)
                    Op::Str => same(op, &server.read_str(), &want),
                    _ => {
                        let got = server.read_json::<serde_json::Value>();
                        // read_json reads Python's NaN and Infinity, which
                        // a Value holds as null.
                        let want = want.and_then(|line| {
                            serde_json::from_str::<serde_json::Value>(&tokens_as_null(&line))
                                .map_err(|_| Want::Json { line })
                        });
                        same(op, &got, &want);
                    }
                }
            }
            Op::Line => {
                let want = match model.search(b"\n", LIMIT) {
                    Search::Found(n) => Ok(model.take(n)),
                    Search::Overrun => Err(Want::Overrun),
                    Search::Eof => {
                        // read_line returns the partial line at end of file.
                        let partial = model.take(model.rest.len());
                        model.connected = false;
                        Ok(partial)
                    }
                };
                same(op, &server.read_line(), &want);
            }
            Op::Until(first, second) => {
                let sep = sep_of((*first, *second));
                let want = match model.search(&sep, LIMIT) {
                    Search::Found(n) => Ok(model.take(n)),
                    Search::Overrun => Err(Want::Overrun),
                    Search::Eof => model.eof(None),
                };
                same(op, &server.read_until(&sep), &want);
            }
            Op::Exact(n) => {
                let n = usize::from(*n);
                let want = if model.rest.len() >= n {
                    Ok(model.take(n))
                } else {
                    model.eof(Some(n))
                };
                same(op, &server.read_exact(n), &want);
            }
            Op::Some(n) => {
                let n = usize::from(*n);
                let got = server.read(n).expect("read(n) cannot fail here");
                if n == 0 {
                    assert!(got.is_empty());
                } else if model.rest.is_empty() {
                    assert!(got.is_empty(), "read({n}) at end of file gave {got:?}");
                    model.connected = false;
                } else {
                    assert!(
                        !got.is_empty() && got.len() <= n,
                        "read({n}) gave {} bytes",
                        got.len()
                    );
                    assert_eq!(got, model.take(got.len()), "read({n})");
                }
            }
            Op::ToEnd => {
                let want = Ok(model.take(model.rest.len()));
                model.connected = false;
                same(op, &server.read_to_end(), &want);
            }
        }
        if model.connected {
            assert!(
                server.connected(),
                "{op:?}: the link went while the model holds it"
            );
        } else {
            assert!(!server.connected(), "{op:?}: the link stayed after the end");
        }
    }
    server.close_client();
});
