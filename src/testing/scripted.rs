//! The scripted peer: the handle a test holds, and the thread that plays
//! the script against the program under test.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::capture::{Capture, Timing};
use super::runner::Runner;
use super::script::{Plan, Role, Script};
use super::verdict::{Mismatch, ScriptFailure};
use crate::error::Result;
use crate::link::socket::Stream;

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
/// test process. A peer whose script ran to its end cleanly drops quietly;
/// the steps that only say how a script ends (`stop_reading()`,
/// `go_silent()`, `expect_nothing_more()`, judged on what has arrived by
/// the drop) count as run even if the drop came first.
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
        let runner = Runner::new(display_name(&name), Arc::clone(&control), plan.codec);
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
pub(super) struct Outcome {
    pub(super) mismatches: Vec<Mismatch>,
    pub(super) not_run: Vec<String>,
}

/// What the handle tells the thread: the test has finished (end the
/// waits that last until then), or dropped the peer (end everything).
#[derive(Debug, Default)]
pub(super) struct Control {
    state: Mutex<ControlState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    finish: bool,
    abort: bool,
    /// The thread is in (or about to start) a blocking read or write.
    in_io: bool,
    /// The thread reads until the test finishes (`expect_nothing_more()`):
    /// its reads have no deadline, so `finish()` shuts the socket to end
    /// them.
    reading_to_end: bool,
    /// The connection, to shut down on abort; the thread owns it, so that
    /// a reset closes it at once.
    stream: Weak<Stream>,
}

impl Control {
    fn finish(&self) {
        let stream = {
            let mut state = self.state.lock();
            state.finish = true;
            let reading = state.in_io && state.reading_to_end;
            reading.then(|| state.stream.upgrade()).flatten()
        };
        self.changed.notify_all();
        if let Some(stream) = stream {
            stream.shutdown();
        }
    }

    /// From here on the thread reads until the test finishes or drops
    /// the peer.
    pub(super) fn read_to_end(&self) {
        self.state.lock().reading_to_end = true;
    }

    /// True once the test has finished or dropped the peer.
    pub(super) fn ended(&self) -> bool {
        let state = self.state.lock();
        state.finish || state.abort
    }

    fn abort(&self) {
        let stream = {
            let mut state = self.state.lock();
            state.abort = true;
            // Only a read or write needs the socket shut to end: a thread
            // waiting here is woken by the notify and leaves the socket as
            // it is, with what has arrived still readable (Windows drops
            // it on a shutdown) for the end's judgement.
            state.in_io.then(|| state.stream.upgrade()).flatten()
        };
        self.changed.notify_all();
        if let Some(stream) = stream {
            stream.shutdown();
        }
    }

    /// Marks the start of a blocking read or write; false if the peer was
    /// dropped (then it must not start). Until [`end_io`](Self::end_io), a
    /// drop shuts the socket down to end it.
    pub(super) fn begin_io(&self) -> bool {
        let mut state = self.state.lock();
        // After a drop nothing starts; after finish() no read to the end.
        let over = state.abort || (state.finish && state.reading_to_end);
        state.in_io = !over;
        state.in_io
    }

    pub(super) fn end_io(&self) {
        self.state.lock().in_io = false;
    }

    pub(super) fn aborted(&self) -> bool {
        self.state.lock().abort
    }

    /// Makes `stream` the one an abort shuts down.
    pub(super) fn attach(&self, stream: &Arc<Stream>) {
        self.state.lock().stream = Arc::downgrade(stream);
    }

    /// Waits `pause`; false if an abort cut it short.
    pub(super) fn sleep(&self, pause: Duration) -> bool {
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
    pub(super) fn wait_end(&self) {
        let mut state = self.state.lock();
        while !state.finish && !state.abort {
            self.changed.wait(&mut state);
        }
    }
}
