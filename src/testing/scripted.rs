//! The scripted peer: the handle a test holds, and the thread that plays
//! the script against the program under test.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::capture::{Capture, Timing};
use super::control::{Control, Outcome};
use super::runner::Runner;
use super::script::{Plan, Role, Script};
use super::verdict::{Mismatch, ScriptFailure};
use crate::error::Result;

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

impl Script {
    /// Checks the script and starts the peer on a thread of its own
    /// (`tcpip-peer NAME`). The server form is listening when this
    /// returns ([`ScriptedPeer::addr`]); the client form connects on that
    /// thread.
    pub fn start(self) -> Result<ScriptedPeer> {
        ScriptedPeer::start(self.plan()?)
    }
}
