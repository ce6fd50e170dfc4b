//! A read-loop server's settings and its start:
//! [`ReadLoopServerBuilder`]. The server's settings are shared with
//! [`ServerBuilder`](crate::ServerBuilder) through [`ServesOne`].

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{LoopState, OneClientReadLoopServer, ReadLoopHandler};
use crate::ends::builder::{sealed, Builder};
use crate::ends::server::builder::{ServerSide, ServesOne};
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
    /// for `max` after connecting or after its last one is closed, with
    /// [`DisconnectReason::HeartbeatMissed`](crate::DisconnectReason::HeartbeatMissed). Python's default `max` is
    /// [`DEFAULT_MAX_HEARTBEAT_INTERVAL`](crate::DEFAULT_MAX_HEARTBEAT_INTERVAL)
    /// (10 s). Default: `None`, off.
    pub fn heartbeat_monitor(mut self, max: Option<Duration>) -> Self {
        self.side.heartbeat = max;
        self
    }

    /// Starts listening; each client is served by a read-loop thread that
    /// calls `handler` until an error or the client goes.
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
