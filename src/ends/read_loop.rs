//! `OneClientReadLoopServer`: a server whose connection is served by a
//! read loop calling the user's handler, with optional heartbeat
//! monitoring.

use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::builder::{sealed, Builder, ReadLoopServerBuilder};
use super::server::OneClientServer;
use super::server_options::{ServerSide, ServesOne};
use crate::error::{Chain, Error, Result};
use crate::link::api::{self, LinkRef};
use crate::link::endpoint::{Endpoint, Intent};
use crate::link::{DisconnectReason, Link};

/// What the read loop calls, over and over, while a client is connected
/// (Python's `read_and_dispatch`). Read one message, act on it, return.
/// An error closes the client (a timeout excepted: the loop calls again);
/// the next client is served by the same handler.
///
/// Closures `FnMut(&OneClientReadLoopServer) -> Result<()>` are handlers;
/// pass one to [`start_fn`](Builder::start_fn), which names the argument's
/// type for you.
pub trait ReadLoopHandler: Send + 'static {
    /// Reads and handles one message.
    fn read_and_dispatch(&mut self, server: &OneClientReadLoopServer) -> Result<()>;
}

impl<F> ReadLoopHandler for F
where
    F: FnMut(&OneClientReadLoopServer) -> Result<()> + Send + 'static,
{
    fn read_and_dispatch(&mut self, server: &OneClientReadLoopServer) -> Result<()> {
        self(server)
    }
}

/// What a [`ReadLoopServerBuilder`] holds beside the link's settings.
#[derive(Default)]
pub struct ReadLoopSide {
    server: ServerSide,
    heartbeat: Option<Duration>,
}

impl sealed::Sealed for ReadLoopSide {}

impl ServesOne for ReadLoopSide {
    fn server_side(&mut self) -> &mut ServerSide {
        &mut self.server
    }
}

impl ReadLoopServerBuilder {
    /// With `Some(max)`, a client that sends no heartbeat (reported by the
    /// handler through
    /// [`handle_received_heartbeat`](OneClientReadLoopServer::handle_received_heartbeat))
    /// for `max` after connecting (once the connect callback has returned
    /// for it) or after its last one is closed, with
    /// [`DisconnectReason::HeartbeatMissed`]. Python's default `max` is
    /// [`DEFAULT_MAX_HEARTBEAT_INTERVAL`](crate::DEFAULT_MAX_HEARTBEAT_INTERVAL)
    /// (10 s). Default: `None`, off.
    pub fn heartbeat_monitor(mut self, max: Option<Duration>) -> Self {
        self.side.heartbeat = max;
        self
    }

    /// Starts listening; each client is served by a read-loop thread that
    /// calls `handler` until an error or the client goes, from when the
    /// connect callback has returned for it (see
    /// [`OneClientReadLoopServer`]).
    pub fn start(self, handler: impl ReadLoopHandler) -> Result<OneClientReadLoopServer> {
        let Builder { mut link, side } = self;
        if side.heartbeat.is_some_and(|max| max.is_zero()) {
            return Err(Error::invalid_argument(
                "the heartbeat interval must be above zero",
            ));
        }
        // The read loop notices a dropped client itself, as in Python.
        link.monitor_interval = Duration::ZERO;
        let server = Builder {
            link,
            side: side.server,
        }
        .start()?;
        let rl = OneClientReadLoopServer {
            state: Arc::new(LoopState {
                server,
                heartbeat: side.heartbeat,
                last_heartbeat: Mutex::new(None),
            }),
            owner: true,
        };
        rl.spawn_threads(handler)?;
        Ok(rl)
    }

    /// [`start`](Self::start) with a closure, whose argument type is
    /// inferred here (a closure given to `start` needs it written out).
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// // An echo server.
    /// let server = OneClientReadLoopServer::builder().start_fn(|server| {
    ///     let line = server.read_str()?;
    ///     server.write_str(&line)
    /// })?;
    /// let client = Client::builder().port(server.port()).connect()?;
    /// client.write_str("echo me")?;
    /// assert_eq!(client.read_str()?, "echo me");
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn start_fn<F>(self, handler: F) -> Result<OneClientReadLoopServer>
    where
        F: FnMut(&OneClientReadLoopServer) -> Result<()> + Send + 'static,
    {
        self.start(handler)
    }
}

/// A [`OneClientServer`] whose client is served by a read loop: a named
/// thread calls the [`ReadLoopHandler`] until it fails or the client
/// goes (Python's `OneClientReadLoopServer`). Derefs to the server, so
/// every server and [`Link`](crate::Link) method is at hand.
///
/// For each connection the handler is first called once the connect
/// callback's `true` call for it has returned (as in Python, whose read
/// loop starts after the callback), so the callback can set up what the
/// handler needs; the heartbeat monitor's clock starts then too. A
/// callback that never returns (or waits for the handler) holds that
/// connection's read loop for as long: its messages wait unread until the
/// callback returns or the connection ends.
///
/// A handler error closes the client with
/// [`DisconnectReason::HandlerFailed`] (a panic with
/// [`DisconnectReason::HandlerPanicked`]); [`Error::Timeout`] does not: an
/// idle client is no fault (use [`heartbeat_monitor`](Builder::heartbeat_monitor)
/// to close a silent one), so the loop calls the handler again.
pub struct OneClientReadLoopServer {
    state: Arc<LoopState>,
    /// False for the view handed to the handler.
    owner: bool,
}

/// What the read loop, the heartbeat monitor and the owner share.
struct LoopState {
    server: OneClientServer,
    heartbeat: Option<Duration>,
    last_heartbeat: Mutex<Option<Instant>>,
}

impl OneClientReadLoopServer {
    /// A builder with every default: loopback IPv4, port 0, no heartbeat
    /// monitoring.
    pub fn builder() -> ReadLoopServerBuilder {
        ReadLoopServerBuilder::default()
    }

    /// Records a heartbeat from the client. An error when heartbeat
    /// monitoring is off, as in Python.
    pub fn handle_received_heartbeat(&self) -> Result<()> {
        if self.state.heartbeat.is_none() {
            return Err(Error::invalid_argument(
                "received a heartbeat, but heartbeat monitoring is off",
            ));
        }
        *self.state.last_heartbeat.lock() = Some(Instant::now());
        Ok(())
    }

    fn endpoint(&self) -> &Arc<Endpoint> {
        &self.state.server.ep
    }

    fn view(&self) -> OneClientReadLoopServer {
        OneClientReadLoopServer {
            state: self.state.clone(),
            owner: false,
        }
    }

    fn spawn_threads(&self, mut handler: impl ReadLoopHandler) -> Result<()> {
        let ep = self.endpoint();
        let view = self.view();
        ep.spawn("read-loop", move || view.read_loop(&mut handler))?;
        if let Some(max) = self.state.heartbeat {
            let view = self.view();
            // Not "heartbeat-…": Linux shows 15 bytes of a thread's name.
            ep.spawn("hb-monitor", move || view.monitor_heartbeats(max))?;
        }
        Ok(())
    }

    /// Serves each connection in turn until the server is closed.
    fn read_loop(&self, handler: &mut impl ReadLoopHandler) {
        let ep = self.endpoint();
        let mut seen = 0;
        while let Some((conn, epoch)) = ep.next_connection(seen) {
            seen = epoch;
            // As in Python, the first message waits for the callback to
            // have handled the connection, so that it can set up what the
            // handler needs.
            ep.wait_callback_returned(ep.connected_call(), Some(epoch));
            // One load per message: the epoch moves when `conn` ends.
            while ep.is_current(epoch) {
                let call = catch_unwind(AssertUnwindSafe(|| handler.read_and_dispatch(self)));
                let reason = match call {
                    Ok(Ok(())) => continue,
                    Ok(Err(Error::Timeout)) => {
                        log::debug!("{}: no message within the read timeout", ep.log_name());
                        continue;
                    }
                    // The read that failed has ended the connection already.
                    Ok(Err(e)) if e.is_connection_error() && !ep.is_current(epoch) => {
                        log::info!("{}: the client left ({})", ep.log_name(), left(&e));
                        break;
                    }
                    Ok(Err(e)) => DisconnectReason::HandlerFailed(Arc::new(e)),
                    Err(_) => DisconnectReason::HandlerPanicked,
                };
                log::error!("{}: closing the client: {reason}", ep.log_name());
                ep.detach(&conn, reason, Intent::Clear);
                break;
            }
        }
    }

    /// Closes each client that falls silent for longer than `max`.
    fn monitor_heartbeats(&self, max: Duration) {
        let ep = self.endpoint();
        let mut seen = 0;
        while let Some((conn, epoch)) = ep.next_connection(seen) {
            seen = epoch;
            // As in Python, the clock starts once the callback has handled
            // the connection: no message is read before (see `read_loop`).
            ep.wait_callback_returned(ep.connected_call(), Some(epoch));
            let connected_at = Instant::now();
            loop {
                let last = self
                    .state
                    .last_heartbeat
                    .lock()
                    .filter(|t| *t >= connected_at);
                let due = last.unwrap_or(connected_at) + max;
                let now = Instant::now();
                if now >= due {
                    if ep.detach(&conn, DisconnectReason::HeartbeatMissed, Intent::Clear) {
                        log::warn!("{}: no heartbeat for {max:?}; client closed", ep.log_name());
                    }
                    break;
                }
                if !ep.wait_while_current(&conn, due - now) {
                    break;
                }
            }
        }
    }
}

/// How a client left, for the log: a close between messages is the
/// normal way.
fn left(e: &Error) -> String {
    match e.partial() {
        Some([]) => "it closed the connection".to_owned(),
        Some(partial) => format!(
            "it closed the connection {} bytes into a message",
            partial.len()
        ),
        None => Chain(e).to_string(),
    }
}

impl api::sealed::Sealed for OneClientReadLoopServer {}

/// The server's own link: `server.read_str()` and the like, and
/// `&impl Link` code, work on the read-loop server as they do on a
/// [`OneClientServer`].
impl Link for OneClientReadLoopServer {
    #[inline]
    fn link(&self) -> LinkRef<'_> {
        LinkRef::new(self.endpoint())
    }
}

impl Deref for OneClientReadLoopServer {
    type Target = OneClientServer;

    fn deref(&self) -> &OneClientServer {
        &self.state.server
    }
}

impl Drop for OneClientReadLoopServer {
    fn drop(&mut self) {
        if self.owner {
            self.state.server.close();
        }
    }
}

impl std::fmt::Debug for OneClientReadLoopServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OneClientReadLoopServer")
            .field(&self.state.server)
            .finish()
    }
}
