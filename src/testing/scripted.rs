//! The scripted peer: the handle a test holds, and the thread that plays
//! the script against the program under test.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::capture::{Capture, Timing};
use super::script::{Action, Plan, Planned, Role, Script};
use super::show::{first_difference, quoted};
use super::verdict::{Mismatch, ScriptFailure};
use crate::config::DEFAULT_READ_LIMIT;
use crate::error::Result;
use crate::link::socket::{Peek, Stream};
use crate::wire::codec::Codec;

/// How often the server form looks for the program's connection: the
/// listener is non-blocking so that a drop is never kept waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(1);

/// Plays the other end of a connection for a program under test, from a
/// [`Script`]: as a server (listening on loopback, port 0, accepting one
/// connection) or as a client (connecting to the program).
///
/// ```
/// use std::time::Duration;
/// use ts_tcpip::prelude::*;
/// use ts_tcpip::testing::ScriptedPeer;
///
/// // A controller that answers "ping" with "pong", then expects nothing more.
/// let controller = ScriptedPeer::server()
///     .name("controller")
///     .expect_line("ping")
///     .send_line("pong")
///     .expect_nothing_more()
///     .start()?;
///
/// // The program under test: here, a few lines with the crate's client.
/// let client = Client::builder().port(controller.port()).connect()?;
/// client.write_str("ping")?;
/// assert_eq!(client.within(Duration::from_secs(5)).read_str()?, "pong");
///
/// controller.finish()?; // Err(ScriptFailure) lists every mismatch
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The script runs on a thread of its own, `tcpip-peer NAME`, which the
/// peer joins in [`finish`](ScriptedPeer::finish) or on drop. A step that
/// does not match records a [`Mismatch`]: a line or value that differs is
/// consumed and the script goes on (so one run lists every wrong line); a
/// deadline missed, or the connection closed or broken before an
/// expectation is met, ends the script there, and the peer closes its
/// connection at once so that the program is not left waiting on it.
///
/// # Finishing and dropping
///
/// `finish()` lets the script run to its end (each step is bounded by its
/// deadline), judges `expect_nothing_more()`, closes the connection, joins
/// the thread and returns the verdict. Until then the peer holds the
/// connection open after its last step, so the program sees no close it
/// was not scripted to see.
///
/// Dropping a peer without `finish()` stops it at once: a step under way
/// ends, the steps not yet run count as not run, and if the verdict is a
/// failure (a mismatch, or a step the drop kept from running) the drop
/// panics with it, so a test that forgets `finish()` still fails (as
/// tokio-test's mock panics when actions remain). While the thread is
/// already panicking (a failed assertion earlier in the test) the drop
/// logs the verdict at ERROR instead: a second panic would abort the
/// test process. A peer whose script ran to its end cleanly drops quietly.
#[derive(Debug)]
pub struct ScriptedPeer {
    name: String,
    addr: SocketAddr,
    control: Arc<Control>,
    thread: Option<JoinHandle<Outcome>>,
}

impl ScriptedPeer {
    /// A script for a peer that plays the server: it listens on
    /// 127.0.0.1, port 0, from [`start`](Script::start) on, and accepts
    /// one connection (later ones are refused) within the default
    /// deadline.
    pub fn server() -> Script {
        Script::new(Role::Server)
    }

    /// A script for a peer that plays the client: it connects to `addr`
    /// (within the default deadline) on its thread once started.
    pub fn client(addr: SocketAddr) -> Script {
        Script::new(Role::Client(addr))
    }

    /// A server script that replays the server's side of the first
    /// connection in `capture` and expects the client's side of it: see
    /// [the replay rules](Capture#replay).
    pub fn replay_server(capture: &Capture, timing: Timing) -> Script {
        capture.script(Script::new(Role::Server), timing)
    }

    /// A client script, connecting to `addr`, that replays the client's
    /// side of the first connection in `capture` and expects the server's
    /// side of it: see [the replay rules](Capture#replay).
    pub fn replay_client(addr: SocketAddr, capture: &Capture, timing: Timing) -> Script {
        capture.script(Script::new(Role::Client(addr)), timing)
    }

    pub(super) fn start(plan: Plan) -> Result<ScriptedPeer> {
        let (listener, addr) = match plan.role {
            Role::Server => {
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
                listener.set_nonblocking(true)?;
                let addr = listener.local_addr()?;
                (Some(listener), addr)
            }
            Role::Client(addr) => (None, addr),
        };
        let control = Arc::new(Control::default());
        let name = plan.name.clone();
        let thread_name = match name.as_str() {
            "" => "tcpip-peer".to_owned(),
            name => format!("tcpip-peer {name}"),
        };
        let runner = Runner {
            name: display_name(&name),
            control: Arc::clone(&control),
            codec: plan.codec,
            stream: None,
            buf: Vec::new(),
            chunk: vec![0; 16 * 1024],
            offset: 0,
            eof: false,
            mismatches: Vec::new(),
        };
        let (steps, connect_deadline) = (plan.steps, plan.connect_deadline);
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || runner.run(listener, addr, connect_deadline, steps))?;
        Ok(ScriptedPeer {
            name,
            addr,
            control,
            thread: Some(thread),
        })
    }

    /// Where the program under test connects (the server form: the
    /// listening address), or where the peer connects (the client form).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port of [`addr`](ScriptedPeer::addr).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The name given to the script (empty if none).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lets the script run to its end (each remaining step within its
    /// deadline), judges `expect_nothing_more()` on what has arrived by
    /// now, closes the connection, joins the peer's thread and returns
    /// the verdict: every mismatch, in order, or `Ok`.
    pub fn finish(mut self) -> std::result::Result<(), ScriptFailure> {
        self.control.finish();
        self.verdict()
    }

    /// Joins the thread and judges what it reports.
    fn verdict(&mut self) -> std::result::Result<(), ScriptFailure> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let outcome = thread.join().unwrap_or_else(|_| Outcome {
            mismatches: vec![Mismatch {
                step: 0,
                action: "the peer's thread".into(),
                expected: "to run the script".into(),
                got: "a panic (see its message above)".into(),
                offset: None,
            }],
            not_run: Vec::new(),
        });
        if outcome.mismatches.is_empty() {
            return Ok(());
        }
        Err(ScriptFailure {
            peer: display_name(&self.name),
            mismatches: outcome.mismatches,
            not_run: outcome.not_run,
        })
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        if self.thread.is_none() {
            return;
        }
        self.control.abort();
        if let Err(failure) = self.verdict() {
            if std::thread::panicking() {
                log::error!("dropped while panicking: {failure}");
            } else {
                panic!(
                    "{failure}\n(dropped without finish(): call finish() to get this as an error)"
                );
            }
        }
    }
}

fn display_name(name: &str) -> String {
    match name {
        "" => "peer".to_owned(),
        name => name.to_owned(),
    }
}

/// What the thread reports.
#[derive(Debug)]
struct Outcome {
    mismatches: Vec<Mismatch>,
    not_run: Vec<String>,
}

/// What the handle tells the thread: the test has finished (end the
/// waits that last until then), or dropped the peer (end everything).
#[derive(Debug, Default)]
struct Control {
    state: Mutex<ControlState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    finish: bool,
    abort: bool,
    /// The connection, to shut down on abort; the thread owns it, so that
    /// a reset closes it at once.
    stream: Weak<Stream>,
}

impl Control {
    fn finish(&self) {
        self.state.lock().finish = true;
        self.changed.notify_all();
    }

    fn abort(&self) {
        let stream = {
            let mut state = self.state.lock();
            state.abort = true;
            state.stream.upgrade()
        };
        self.changed.notify_all();
        // Wakes a read or write under way; the thread sees `abort`.
        if let Some(stream) = stream {
            stream.shutdown();
        }
    }

    fn aborted(&self) -> bool {
        self.state.lock().abort
    }

    /// Makes `stream` the one an abort shuts down.
    fn attach(&self, stream: &Arc<Stream>) {
        self.state.lock().stream = Arc::downgrade(stream);
    }

    /// Waits `pause`; false if an abort cut it short.
    fn sleep(&self, pause: Duration) -> bool {
        let deadline = Instant::now().checked_add(pause);
        let mut state = self.state.lock();
        while !state.abort {
            match deadline {
                Some(deadline) => {
                    if self.changed.wait_until(&mut state, deadline).timed_out() {
                        break;
                    }
                }
                None => self.changed.wait(&mut state),
            }
        }
        !state.abort
    }

    /// Waits until the test finishes or drops the peer.
    fn wait_end(&self) {
        let mut state = self.state.lock();
        while !state.finish && !state.abort {
            self.changed.wait(&mut state);
        }
    }
}

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
struct Runner {
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
    fn run(
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
            if self.control.aborted() {
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
            Action::ExpectNothingMore => {
                self.control.wait_end();
                self.drain();
                if !self.buf.is_empty() {
                    let got = self.here(&self.buf.clone());
                    self.mismatch(n, step, "nothing more".into(), got);
                }
                Flow::Next
            }
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
                    let _ =
                        socket2::SockRef::from(stream.socket()).set_linger(Some(Duration::ZERO));
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

    fn send(&mut self, n: usize, step: &Planned, bytes: &[u8], within: Duration) -> Flow {
        let Some(stream) = self.stream.clone() else {
            return Flow::Next;
        };
        let deadline = deadline_after(within);
        let mut sent = 0;
        while sent < bytes.len() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                let got = format!(
                    "{sent} of {} bytes sent by the deadline: the program is not reading",
                    bytes.len()
                );
                return self.fail(n, step, format!("to send within {within:?}"), got);
            }
            let _ = stream
                .socket()
                .set_write_timeout(left.map(|l| l.max(Duration::from_millis(1))));
            match stream.write(&bytes[sent..]) {
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
            let _ = stream.socket().shutdown(std::net::Shutdown::Write);
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
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Short::Timeout);
            }
            let _ = stream
                .socket()
                .set_read_timeout(left.map(|l| l.max(Duration::from_millis(1))));
            match stream.read(&mut self.chunk) {
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
        let _ = stream
            .socket()
            .set_read_timeout(Some(Duration::from_millis(10)));
        while let Ok(Peek::Data) = stream.peek_now() {
            match stream.read(&mut self.chunk) {
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
