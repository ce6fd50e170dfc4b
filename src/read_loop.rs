//! `OneClientReadLoopServer`: a server whose connection is served by a
//! read loop calling the user's handler, with optional heartbeat
//! monitoring.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::link_setters;
use crate::endpoint::Endpoint;
use crate::events::DisconnectReason;
use crate::{Error, OneClientServer, Result, ServerBuilder};

/// What the read loop calls, over and over, while a client is connected
/// (Python's `read_and_dispatch`). Read one message, act on it, return.
/// An error is logged and closes the client; the next client is served
/// by the same handler.
///
/// Closures `FnMut(&OneClientReadLoopServer) -> Result<()>` are handlers.
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

/// Configures and starts a [`OneClientReadLoopServer`]: every
/// [`ServerBuilder`] option, plus heartbeat monitoring.
#[must_use = "a builder does nothing until start()"]
pub struct ReadLoopServerBuilder {
    server: ServerBuilder,
    heartbeat: Option<Duration>,
}

impl ReadLoopServerBuilder {
    /// See [`ServerBuilder::host`].
    pub fn host(mut self, host: &str) -> Self {
        self.server = self.server.host(host);
        self
    }

    /// See [`ServerBuilder::any_host`].
    pub fn any_host(mut self) -> Self {
        self.server = self.server.any_host();
        self
    }

    /// See [`ServerBuilder::port`].
    pub fn port(mut self, port: u16) -> Self {
        self.server = self.server.port(port);
        self
    }

    /// See [`ServerBuilder::backlog`].
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.server = self.server.backlog(backlog);
        self
    }

    /// See [`ServerBuilder::connect_callback`].
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&OneClientServer, bool) + Send + 'static,
    {
        self.server = self.server.connect_callback(callback);
        self
    }

    /// With `Some(max)`, a client that sends no heartbeat (reported by the
    /// handler through
    /// [`handle_received_heartbeat`](OneClientReadLoopServer::handle_received_heartbeat))
    /// for `max` after connecting or after its last one is closed, with
    /// [`DisconnectReason::HeartbeatMissed`]. Python's default `max` is
    /// [`DEFAULT_MAX_HEARTBEAT_INTERVAL`](crate::DEFAULT_MAX_HEARTBEAT_INTERVAL) (10 s). Default: `None`, off.
    pub fn heartbeat_monitor(mut self, max: Option<Duration>) -> Self {
        self.heartbeat = max;
        self
    }

    link_setters!(server.config);

    /// Starts listening; each client is served by a read-loop thread that
    /// calls `handler` until an error or the client goes.
    pub fn start(self, handler: impl ReadLoopHandler) -> Result<OneClientReadLoopServer> {
        if self.heartbeat.is_some_and(|max| max.is_zero()) {
            return Err(Error::InvalidArgument(
                "the heartbeat interval must be above zero".into(),
            ));
        }
        // The read loop notices a dropped client itself, as in Python.
        let server = self
            .server
            .monitor_connection_interval(Duration::ZERO)
            .start()?;
        let shared = Arc::new(Shared {
            server,
            heartbeat: self.heartbeat,
            last_heartbeat: Mutex::new(None),
        });
        let rl = OneClientReadLoopServer {
            shared,
            owner: true,
        };
        rl.spawn_threads(handler)?;
        Ok(rl)
    }
}

/// A [`OneClientServer`] whose client is served by a read loop: a named
/// thread calls the [`ReadLoopHandler`] until it fails or the client
/// goes (Python's `OneClientReadLoopServer`). Derefs to the server, so
/// every server and [`Link`](crate::Link) method is at hand.
///
/// ```
/// use ts_tcpip::*;
/// // An echo server.
/// let server = OneClientReadLoopServer::builder()
///     .start(|server: &OneClientReadLoopServer| {
///         let line = server.read_str()?;
///         server.write_str(&line)
///     })?;
/// let client = Client::builder().port(server.port()).connect()?;
/// client.write_str("echo me")?;
/// assert_eq!(client.read_str()?, "echo me");
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
pub struct OneClientReadLoopServer {
    shared: Arc<Shared>,
    /// False for the view handed to the handler.
    owner: bool,
}

struct Shared {
    server: OneClientServer,
    heartbeat: Option<Duration>,
    last_heartbeat: Mutex<Option<Instant>>,
}

impl OneClientReadLoopServer {
    /// A builder with every default: loopback IPv4, port 0, no heartbeat
    /// monitoring.
    pub fn builder() -> ReadLoopServerBuilder {
        ReadLoopServerBuilder {
            server: OneClientServer::builder(),
            heartbeat: None,
        }
    }

    /// Records a heartbeat from the client. An error when heartbeat
    /// monitoring is off, as in Python.
    pub fn handle_received_heartbeat(&self) -> Result<()> {
        if self.shared.heartbeat.is_none() {
            return Err(Error::InvalidArgument(
                "received a heartbeat, but heartbeat monitoring is off".into(),
            ));
        }
        *self.shared.last_heartbeat.lock() = Some(Instant::now());
        Ok(())
    }

    fn endpoint(&self) -> Arc<Endpoint> {
        self.shared.server.endpoint_arc()
    }

    fn view(&self) -> OneClientReadLoopServer {
        OneClientReadLoopServer {
            shared: self.shared.clone(),
            owner: false,
        }
    }

    fn spawn_threads(&self, mut handler: impl ReadLoopHandler) -> Result<()> {
        let ep = self.endpoint();
        let view = self.view();
        ep.spawn("read-loop", move || view.read_loop(&mut handler))?;
        if let Some(max) = self.shared.heartbeat {
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
            // One load per message: the epoch moves when `conn` ends.
            while ep.is_current(epoch) {
                if let Err(e) = self.dispatch(handler) {
                    if ep.detach(&conn, DisconnectReason::Error(e.clone())) {
                        ep.set_should_be_connected(false);
                        log::error!("{}: read loop failed, client closed: {e}", ep.log_name);
                    } else {
                        log::info!("{}: read loop ended: {e}", ep.log_name);
                    }
                    break;
                }
            }
        }
    }

    /// One call of the handler, its error as text; a panic in it counts as
    /// an error, so the client is closed and the next one served, as after
    /// a callback panic.
    fn dispatch(&self, handler: &mut impl ReadLoopHandler) -> std::result::Result<(), String> {
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler.read_and_dispatch(self)
        }));
        match call {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("the read-loop handler panicked".to_owned()),
        }
    }

    /// Closes each client that falls silent for longer than `max`.
    fn monitor_heartbeats(&self, max: Duration) {
        let ep = self.endpoint();
        let mut seen = 0;
        while let Some((conn, epoch)) = ep.next_connection(seen) {
            seen = epoch;
            let connected_at = Instant::now();
            loop {
                let last = self
                    .shared
                    .last_heartbeat
                    .lock()
                    .filter(|t| *t >= connected_at);
                let due = last.unwrap_or(connected_at) + max;
                let now = Instant::now();
                if now >= due {
                    if ep.detach(&conn, DisconnectReason::HeartbeatMissed) {
                        ep.set_should_be_connected(false);
                        log::warn!("{}: no heartbeat for {max:?}; client closed", ep.log_name);
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

impl Deref for OneClientReadLoopServer {
    type Target = OneClientServer;

    fn deref(&self) -> &OneClientServer {
        &self.shared.server
    }
}

impl Drop for OneClientReadLoopServer {
    fn drop(&mut self) {
        if self.owner {
            self.shared.server.close();
        }
    }
}

impl std::fmt::Debug for OneClientReadLoopServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OneClientReadLoopServer")
            .field(&self.shared.server)
            .finish()
    }
}
