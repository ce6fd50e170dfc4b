//! A read-loop server's settings and its start:
//! [`ReadLoopServerBuilder`]. The server's settings are shared with
//! [`ServerBuilder`](crate::ServerBuilder) through [`ServesOne`].

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{LoopState, OneClientReadLoopServer, ReadLoopHandler};
use crate::ends::builder::{sealed, Builder};
use crate::ends::server::builder::{listen, ServerSide, ServesOne};
use crate::error::{Error, Result};

/// Configures a [`OneClientReadLoopServer`]: every server setting, plus
/// heartbeat monitoring. It has no `monitor_connection_interval`: the read
/// loop is always reading, so it notices a dropped client itself (as in
/// Python, which runs no monitor for it).
pub type ReadLoopServerBuilder = Builder<ReadLoopSide>;

impl OneClientReadLoopServer {
    /// A builder with every default: loopback IPv4, port 0, no heartbeat
    /// monitoring.
    pub fn builder() -> ReadLoopServerBuilder {
        ReadLoopServerBuilder::default()
    }
}

/// The connect callback as the builder keeps it.
type ReadLoopCallback = Box<dyn FnMut(&OneClientReadLoopServer, bool) + Send>;

/// What a [`ReadLoopServerBuilder`] holds beside the link's settings.
#[derive(Default)]
pub struct ReadLoopSide {
    server: ServerSide,
    heartbeat: Option<Duration>,
    callback: Option<ReadLoopCallback>,
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
    /// [`DisconnectReason::HeartbeatMissed`](crate::DisconnectReason::HeartbeatMissed). Python's default `max` is
    /// [`DEFAULT_MAX_HEARTBEAT_INTERVAL`](crate::DEFAULT_MAX_HEARTBEAT_INTERVAL)
    /// (10 s). Default: `None`, off.
    pub fn heartbeat_monitor(mut self, max: Option<Duration>) -> Self {
        self.side.heartbeat = max;
        self
    }

    /// Called on its own thread with `true` when a client connects and
    /// `false` when it goes, once per change, in order, with the
    /// read-loop server itself, as the handler gets it: code written for
    /// the handler's argument works here too, and the callback reaches
    /// what only the read-loop server has, such as
    /// [`handle_received_heartbeat`](OneClientReadLoopServer::handle_received_heartbeat)
    /// (and, through `Deref`, every [`OneClientServer`](crate::OneClientServer)
    /// method). A panic in it is logged and changes nothing else; it may
    /// call `close()` or `close_client()`. Default: none.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// /// What a client is told on arrival and when it asks.
    /// fn send_state(server: &OneClientReadLoopServer) -> ts_tcpip::Result<()> {
    ///     server.write_str("state idle")
    /// }
    /// let server = OneClientReadLoopServer::builder()
    ///     .connect_callback(|server, connected| {
    ///         if connected {
    ///             let _ = send_state(server);
    ///         }
    ///     })
    ///     .start_fn(|server| match server.read_str()?.as_str() {
    ///         "state?" => send_state(server),
    ///         _ => Ok(()),
    ///     })?;
    /// let client = Client::connect(("127.0.0.1", server.port()))?;
    /// assert_eq!(client.read_str()?, "state idle");
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn connect_callback<F>(mut self, callback: F) -> Self
    where
        F: FnMut(&OneClientReadLoopServer, bool) + Send + 'static,
    {
        self.side.callback = Some(Box::new(callback));
        self
    }

    /// Starts listening; each client is served by a read-loop thread that
    /// calls `handler` until an error or the client goes, from when the
    /// connect callback has returned for it (see
    /// [`OneClientReadLoopServer`]).
    ///
    /// `handler` is any [`ReadLoopHandler`]: a type of your own, or a
    /// closure whose argument's type is written out
    /// (`|server: &OneClientReadLoopServer| ..`). A closure whose argument
    /// is left to inference goes to [`start_fn`](Self::start_fn): Rust
    /// infers a closure's argument types only from an `Fn` bound on the
    /// parameter, and `start` takes any handler, not only closures.
    ///
    /// ```
    /// use ts_tcpip::prelude::*;
    /// struct Echo;
    /// impl ReadLoopHandler for Echo {
    ///     fn read_and_dispatch(&mut self, server: &OneClientReadLoopServer) -> ts_tcpip::Result<()> {
    ///         let line = server.read_str()?;
    ///         server.write_str(&line)
    ///     }
    /// }
    /// let server = OneClientReadLoopServer::builder().start(Echo)?;
    /// let typed = OneClientReadLoopServer::builder()
    ///     .start(|server: &OneClientReadLoopServer| server.read_str().map(drop))?;
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    pub fn start(self, handler: impl ReadLoopHandler) -> Result<OneClientReadLoopServer> {
        let Builder { mut link, side } = self;
        if side.heartbeat.is_some_and(|max| max.is_zero()) {
            return Err(Error::invalid_argument(
                "the heartbeat interval must be above zero",
            ));
        }
        // The read loop notices a dropped client itself, as in Python.
        link.monitor_interval = Duration::ZERO;
        let server = listen(link, side.server)?;
        let rl = OneClientReadLoopServer {
            state: Arc::new(LoopState {
                server,
                heartbeat: side.heartbeat,
                last_heartbeat: Mutex::new(None),
            }),
            owner: true,
        };
        let callback = side.callback.map(|mut callback| {
            let view = rl.view();
            Box::new(move |connected| callback(&view, connected)) as _
        });
        // On error, dropping `rl` closes what was started.
        rl.state.server.spawn_threads(callback)?;
        rl.spawn_threads(handler)?;
        Ok(rl)
    }

    /// [`start`](Self::start) with a closure, whose argument's type is
    /// inferred here (a closure given to `start` needs it written out: see
    /// there why).
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
