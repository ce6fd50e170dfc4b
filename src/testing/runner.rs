//! The scripted peer's thread: it makes the connection, plays the steps,
//! and reports every mismatch.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::{Control, Outcome};
use super::script::{Action, Planned};
use super::show::{first_difference, quoted};
use super::verdict::Mismatch;
use crate::config::DEFAULT_READ_LIMIT;
use crate::deadline::Deadline;
use crate::link::socket::{Peek, Stream};
use crate::wire::codec::Codec;

/// How often the server form looks for the program's connection: the
/// listener is non-blocking so that a drop is never kept waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(1);

/// How a wait for bytes ended, other than with bytes.
#[derive(Debug)]
enum Short {
    /// The deadline passed.
    Timeout,
    /// The program closed the connection.
    Eof,
    /// A line grew past the read limit without its terminator.
    Overrun,
    Failed(io::Error),
    /// The test dropped the peer.
    Aborted,
}

/// What a step leaves the script to do.
enum Flow {
    Next,
    /// A mismatch that ends the script: close, run nothing more.
    Stop,
}

/// The script's thread: the connection, what has arrived and not been
/// taken by a step, and the mismatches so far.
pub(super) struct Runner {
    name: String,
    control: Arc<Control>,
    codec: Codec,
    stream: Option<Arc<Stream>>,
    /// Bytes received and not yet taken by a step.
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Where `buf[0]` is in the program's byte stream.
    offset: u64,
    eof: bool,
    mismatches: Vec<Mismatch>,
}

impl Runner {
    pub(super) fn new(name: String, control: Arc<Control>, codec: Codec) -> Runner {
        Runner {
            name,
            control,
            codec,
            stream: None,
            buf: Vec::new(),
            chunk: vec![0; 16 * 1024],
            offset: 0,
            eof: false,
            mismatches: Vec::new(),
        }
    }

    pub(super) fn run(
        mut self,
        listener: Option<TcpListener>,
        addr: SocketAddr,
        connect_deadline: Duration,
        steps: Vec<Planned>,
    ) -> Outcome {
        let not_run = |from: usize| -> Vec<String> {
            let later = steps.iter().enumerate().skip(from);
            later
                .map(|(i, s)| format!("{} {}", i + 1, s.text))
                .collect()
        };
        if let Err((expected, got)) = self.connect(listener, addr, connect_deadline) {
            self.mismatches.push(Mismatch {
                step: 0,
                action: "the connection".into(),
                expected,
                got,
                offset: None,
            });
            return Outcome {
                mismatches: self.mismatches,
                not_run: not_run(0),
            };
        }
        let mut judged_the_end = false;
        for (i, step) in steps.iter().enumerate() {
            // Steps that only say how the script ends are judged at the
            // drop too: a drop that comes just before the thread reaches
            // them has not kept them from running.
            let ends = matches!(
                step.action,
                Action::StopReading | Action::GoSilent | Action::ExpectNothingMore
            );
            if self.control.aborted() && !ends {
                self.mismatches.push(Mismatch {
                    step: i + 1,
                    action: step.text.clone(),
                    expected: "the script to reach this step".into(),
                    got: "the peer dropped before finish()".into(),
                    offset: None,
                });
                return self.stop(not_run(i + 1));
            }
            log::debug!("scripted peer `{}`: step {}", self.name, step.text);
            judged_the_end |= matches!(step.action, Action::ExpectNothingMore);
            if let Flow::Stop = self.step(i + 1, step) {
                return self.stop(not_run(i + 1));
            }
        }
        if self.stream.is_some() && !judged_the_end {
            self.control.wait_end();
        }
        Outcome {
            mismatches: self.mismatches,
            not_run: Vec::new(),
        }
    }

    /// Ends the script after a mismatch. The thread ends with it, and
    /// the connection (its only owner) closes: the program hears a close
    /// now rather than wait for a peer that will not answer.
    fn stop(self, not_run: Vec<String>) -> Outcome {
        Outcome {
            mismatches: self.mismatches,
            not_run,
        }
    }

    /// Accepts the program's connection or connects to it; on failure,
    /// what was expected and what happened.
    fn connect(
        &mut self,
        listener: Option<TcpListener>,
        addr: SocketAddr,
        within: Duration,
    ) -> std::result::Result<(), (String, String)> {
        let deadline = Instant::now().checked_add(within);
        let socket = match listener {
            Some(listener) => loop {
                match listener.accept() {
                    Ok((socket, _)) => break socket,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err((format!("a connection on {addr}"), format!("{e}"))),
                }
                // Looked once more after a drop: a program that had
                // connected is served, and the drop judged on step 1.
                let expected = format!("a connection on {addr} within {within:?}");
                if self.control.aborted() {
                    return Err((expected, "none before the peer was dropped".into()));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err((expected, "none".into()));
                }
                self.control.sleep(ACCEPT_POLL);
            },
            None => TcpStream::connect_timeout(&addr, within).map_err(|e| {
                (
                    format!("to connect to {addr} within {within:?}"),
                    e.to_string(),
                )
            })?,
        };
        let set_up = |socket: &TcpStream| -> io::Result<()> {
            // An accepted socket inherits non-blocking on some systems.
            socket.set_nonblocking(false)?;
            socket.set_nodelay(true)
        };
        let stream = set_up(&socket)
            .and_then(|()| Stream::new(socket).map_err(|(e, _)| e))
            .map(Arc::new)
            .map_err(|e| ("a usable socket".to_owned(), e.to_string()))?;
        // After a drop the steps do not start (the step loop looks first).
        self.control.attach(&stream);
        log::debug!("scripted peer `{}`: connected", self.name);
        self.stream = Some(stream);
        Ok(())
    }

    fn step(&mut self, n: usize, step: &Planned) -> Flow {
        let d = step.deadline;
        match &step.action {
            Action::ExpectLine(line) => self.expect_line(n, step, line),
            Action::ExpectBytes(bytes) => self.expect_bytes(n, step, bytes),
            Action::ExpectJson(value) => self.expect_json(n, step, value),
            Action::ExpectClose => self.expect_close(n, step),
            Action::ExpectNothingFor(quiet) => self.expect_nothing_for(n, step, *quiet),
            Action::ExpectNothingMore => self.expect_nothing_more(n, step),
            Action::Send(bytes) => self.send(n, step, bytes, d),
            Action::Pause(pause) => match self.control.sleep(*pause) {
                true => Flow::Next,
                false => self.cut_short(n, step, Short::Aborted, "to pause".into()),
            },
            Action::StopReading | Action::GoSilent => Flow::Next,
            Action::Close => {
                self.close_sending();
                Flow::Next
            }
            Action::CloseMidFrame(partial) => {
                let flow = self.send(n, step, partial, d);
                self.close_sending();
                flow
            }
            Action::Reset => {
                if let Some(stream) = self.stream.take() {
                    let _ = stream.reset_on_close();
                    // The last strong reference: the socket closes here,
                    // with a reset.
                    drop(stream);
                }
                Flow::Next
            }
        }
    }

    fn expect_line(&mut self, n: usize, step: &Planned, line: &[u8]) -> Flow {
        let deadline = deadline_after(step.deadline);
        match self.take_line(deadline) {
            Ok(frame) => {
                self.compare(n, step, line, &frame);
                self.consume(frame.len());
                Flow::Next
            }
            Err(short) => self.cut_short(n, step, short, quoted(line)),
        }
    }

    fn expect_bytes(&mut self, n: usize, step: &Planned, bytes: &[u8]) -> Flow {
        let deadline = deadline_after(step.deadline);
        match self.take_exact(bytes.len(), deadline) {
            Ok(()) => {
                let got = self.buf[..bytes.len()].to_vec();
                self.compare(n, step, bytes, &got);
                self.consume(bytes.len());
                Flow::Next
            }
            Err(short) => self.cut_short(n, step, short, quoted(bytes)),
        }
    }

    fn expect_json(&mut self, n: usize, step: &Planned, value: &serde_json::Value) -> Flow {
        let deadline = deadline_after(step.deadline);
        let frame = match self.take_line(deadline) {
            Ok(frame) => frame,
            Err(short) => return self.cut_short(n, step, short, format!("JSON {value}")),
        };
        let parsed = self
            .codec
            .parse_json::<serde_json::Value>(&frame)
            .map_err(|e| e.to_string());
        match parsed {
            Ok(got) if got == *value => {}
            Ok(got) => {
                let at = self.here(&frame);
                self.mismatch(n, step, format!("JSON {value}"), format!("{got} ({at})"));
            }
            Err(e) => {
                let at = self.here(&frame);
                self.mismatch(
                    n,
                    step,
                    format!("JSON {value}"),
                    format!("{at}, which is not it: {e}"),
                );
            }
        }
        self.consume(frame.len());
        Flow::Next
    }

    fn expect_close(&mut self, n: usize, step: &Planned) -> Flow {
        let deadline = deadline_after(step.deadline);
        loop {
            if !self.buf.is_empty() {
                let got = self.here(&self.buf.clone());
                self.mismatch(
                    n,
                    step,
                    "the program to close, sending nothing more".into(),
                    got,
                );
                self.consume(self.buf.len());
            }
            if self.eof {
                return Flow::Next;
            }
            match self.fill(deadline) {
                Ok(()) | Err(Short::Eof) => {}
                Err(short) => {
                    return self.cut_short(n, step, short, "the program to close".into());
                }
            }
        }
    }

    fn expect_nothing_for(&mut self, n: usize, step: &Planned, quiet: Duration) -> Flow {
        let until = deadline_after(quiet);
        let expected = format!("nothing for {quiet:?}");
        while self.buf.is_empty() && !self.eof {
            match self.fill(until) {
                Ok(()) | Err(Short::Eof) | Err(Short::Timeout) => {}
                Err(short) => return self.cut_short(n, step, short, expected),
            }
            if until.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        if !self.buf.is_empty() {
            let got = self.here(&self.buf.clone());
            self.mismatch(n, step, expected, got);
            self.consume(self.buf.len());
        }
        Flow::Next
    }

    /// Reads until the test finishes or drops the peer. The first byte
    /// that comes is a mismatch (with whatever else has come by then) and
    /// ends the script at once: the program hears the close, which a test
    /// can wait for. The program closing is not a byte.
    fn expect_nothing_more(&mut self, n: usize, step: &Planned) -> Flow {
        self.control.read_to_end();
        while self.buf.is_empty() && !self.eof && !self.control.ended() {
            match self.fill(None) {
                Ok(()) | Err(Short::Eof) | Err(Short::Aborted) => {}
                // A broken connection: nothing more can come.
                Err(_) => break,
            }
        }
        self.drain();
        if !self.buf.is_empty() {
            let got = self.here(&self.buf.clone());
            self.mismatch(n, step, "nothing more".into(), got);
            return Flow::Stop;
        }
        self.control.wait_end();
        Flow::Next
    }

    fn send(&mut self, n: usize, step: &Planned, bytes: &[u8], within: Duration) -> Flow {
        let Some(stream) = self.stream.clone() else {
            return Flow::Next;
        };
        let deadline = deadline_after(within);
        let mut sent = 0;
        while sent < bytes.len() {
            let wait = deadline.map_or(Deadline::Forever, Deadline::At);
            if wait.passed() {
                let got = format!(
                    "{sent} of {} bytes sent by the deadline: the program is not reading",
                    bytes.len()
                );
                return self.fail(n, step, format!("to send within {within:?}"), got);
            }
            if !self.control.begin_io() {
                return self.cut_short(n, step, Short::Aborted, "to send".into());
            }
            let written = stream.write(&bytes[sent..], wait);
            self.control.end_io();
            match written {
                Ok(k) => sent += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) if self.control.aborted() => {
                    return self.cut_short(n, step, Short::Aborted, "to send".into())
                }
                Err(e) => {
                    let got = format!("the connection failed after {sent} bytes: {e}");
                    return self.fail(n, step, "to send".into(), got);
                }
            }
        }
        Flow::Next
    }

    /// Ends the peer's sending side: the program reads end of file.
    fn close_sending(&mut self) {
        if let Some(stream) = &self.stream {
            let _ = stream.shutdown_write();
        }
    }

    /// Records a mismatch that ends the script: `expected` did not happen
    /// because of `short`.
    fn cut_short(&mut self, n: usize, step: &Planned, short: Short, expected: String) -> Flow {
        let pending = match self.buf.is_empty() {
            true => format!("nothing (offset {})", self.offset),
            false => format!("only {}", self.here(&self.buf)),
        };
        let (expected, got) = match short {
            Short::Timeout => (
                format!("{expected} within {:?}", step.deadline),
                format!("{pending} by the deadline"),
            ),
            Short::Eof => (
                expected,
                format!("{pending}, then the program closed the connection"),
            ),
            Short::Overrun => (
                expected,
                format!("{pending} with no terminator in {DEFAULT_READ_LIMIT} bytes"),
            ),
            Short::Failed(e) => (
                expected,
                format!("{pending}, then the connection failed: {e}"),
            ),
            Short::Aborted => (expected, format!("{pending} before the peer was dropped")),
        };
        self.fail(n, step, expected, got)
    }

    fn fail(&mut self, n: usize, step: &Planned, expected: String, got: String) -> Flow {
        self.mismatch(n, step, expected, got);
        Flow::Stop
    }

    /// Records a mismatch at the current offset.
    fn mismatch(&mut self, n: usize, step: &Planned, expected: String, got: String) {
        let mismatch = Mismatch {
            step: n,
            action: step.text.clone(),
            expected,
            got,
            offset: Some(self.offset),
        };
        log::warn!("scripted peer `{}`: {mismatch}", self.name);
        self.mismatches.push(mismatch);
    }

    /// A mismatch unless `got` (at the current offset) is `expected`.
    fn compare(&mut self, n: usize, step: &Planned, expected: &[u8], got: &[u8]) {
        if let Some(at) = first_difference(expected, got) {
            let got = format!(
                "{} (first difference at offset {})",
                self.here(got),
                self.offset + at as u64
            );
            self.mismatch(n, step, quoted(expected), got);
        }
    }

    /// `bytes`, received at the current offset, for a message.
    fn here(&self, bytes: &[u8]) -> String {
        format!("{} at offset {}", quoted(bytes), self.offset)
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.offset += n as u64;
    }

    /// Reads through the terminator; the frame, still in `buf`, copied.
    fn take_line(&mut self, deadline: Option<Instant>) -> std::result::Result<Vec<u8>, Short> {
        let terminator = self.codec.terminator().len();
        let mut searched = 0;
        loop {
            if let Some(at) = self.codec.separator.find(&self.buf[searched..]) {
                return Ok(self.buf[..searched + at + terminator].to_vec());
            }
            if self.buf.len() > DEFAULT_READ_LIMIT {
                return Err(Short::Overrun);
            }
            searched = self.buf.len().saturating_sub(terminator - 1);
            self.fill(deadline)?;
        }
    }

    /// Reads until `buf` holds at least `n` bytes.
    fn take_exact(
        &mut self,
        n: usize,
        deadline: Option<Instant>,
    ) -> std::result::Result<(), Short> {
        while self.buf.len() < n {
            self.fill(deadline)?;
        }
        Ok(())
    }

    /// One read, appended to `buf`.
    fn fill(&mut self, deadline: Option<Instant>) -> std::result::Result<(), Short> {
        let Some(stream) = self.stream.clone() else {
            return Err(Short::Eof);
        };
        if self.eof {
            return Err(Short::Eof);
        }
        loop {
            let wait = deadline.map_or(Deadline::Forever, Deadline::At);
            if wait.passed() {
                return Err(Short::Timeout);
            }
            if !self.control.begin_io() {
                return Err(Short::Aborted);
            }
            let read = stream.read(&mut self.chunk, wait, Duration::ZERO);
            self.control.end_io();
            match read {
                Ok(0) if self.control.aborted() => return Err(Short::Aborted),
                Ok(0) => {
                    self.eof = true;
                    return Err(Short::Eof);
                }
                Ok(k) => {
                    self.buf.extend_from_slice(&self.chunk[..k]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) if self.control.aborted() => return Err(Short::Aborted),
                Err(e) => return Err(Short::Failed(e)),
            }
        }
    }

    /// Takes in, without waiting, whatever has arrived.
    fn drain(&mut self) {
        let Some(stream) = self.stream.clone() else {
            return;
        };
        while let Ok(Peek::Data) = stream.peek_now() {
            match stream.read(&mut self.chunk, Deadline::Now, Duration::ZERO) {
                Ok(k) if k > 0 => self.buf.extend_from_slice(&self.chunk[..k]),
                _ => break,
            }
        }
    }
}

/// `within` from now; None if that is past an `Instant`'s range.
fn deadline_after(within: Duration) -> Option<Instant> {
    Instant::now().checked_add(within)
}
