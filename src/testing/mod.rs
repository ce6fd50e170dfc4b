//! Helpers for tests of code that uses this crate (Python's
//! `BaseOneClientServerTestCase`): a server on a free loopback port, a
//! client connected to it, and a recorder of connect-callback calls.
//!
//! ```
//! use std::time::Duration;
//! use ts_tcpip::testing::{self, CallbackRecorder};
//! use ts_tcpip::prelude::*;
//!
//! let calls = CallbackRecorder::new();
//! let server = testing::start_server(OneClientServer::builder().connect_callback(calls.callback()))?;
//! let client = testing::connect_client(&server, true)?;
//! calls.assert_next_connected(true, Duration::from_secs(5));
//! client.close();
//! calls.assert_next_connected(false, Duration::from_secs(5));
//! # Ok::<(), ts_tcpip::Error>(())
//! ```

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::{Client, ClientBuilder, OneClientServer, Result, ServerBuilder, LOCALHOST_IPV4};

/// How long [`connect_client`] waits for the server to see the client.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Records every call of a connect callback, for assertions in order.
#[derive(Clone, Debug)]
pub struct CallbackRecorder {
    tx: Sender<bool>,
    rx: Receiver<bool>,
}

impl Default for CallbackRecorder {
    fn default() -> Self {
        CallbackRecorder::new()
    }
}

impl CallbackRecorder {
    /// An empty recorder.
    pub fn new() -> CallbackRecorder {
        let (tx, rx) = crossbeam_channel::unbounded();
        CallbackRecorder { tx, rx }
    }

    /// A connect callback for any builder (`OneClientServer` or `Client`)
    /// that records each call's `bool`.
    pub fn callback<T>(&self) -> impl FnMut(&T, bool) + Send + 'static {
        let tx = self.tx.clone();
        move |_: &T, connected| {
            let _ = tx.send(connected);
        }
    }

    /// The next recorded call, waiting up to `timeout`.
    pub fn next_connected(&self, timeout: Duration) -> Option<bool> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Panics unless the next call, within `timeout`, received `expected`.
    #[track_caller]
    pub fn assert_next_connected(&self, expected: bool, timeout: Duration) {
        match self.next_connected(timeout) {
            Some(got) => assert_eq!(
                got, expected,
                "connect callback got {got}, expected {expected}"
            ),
            None => panic!("no connect callback ({expected}) within {timeout:?}"),
        }
    }

    /// Panics if a call is recorded within `within`.
    #[track_caller]
    pub fn assert_no_more(&self, within: Duration) {
        if let Some(got) = self.next_connected(within) {
            panic!("unexpected connect callback ({got})");
        }
    }

    /// Calls recorded and not yet taken, without waiting.
    pub fn drain(&self) -> Vec<bool> {
        self.rx.try_iter().collect()
    }
}

/// Starts `builder` on IPv4 loopback, port 0.
pub fn start_server(builder: ServerBuilder) -> Result<OneClientServer> {
    builder.host(LOCALHOST_IPV4).port(0).start()
}

/// A client builder aimed at `server` (its first listening address, as
/// loopback when it listens on every interface).
pub fn client_for(server: &OneClientServer) -> ClientBuilder {
    let addr = server.local_addrs()[0];
    let host = if addr.ip().is_unspecified() {
        if addr.is_ipv4() {
            crate::config::LOCALHOST_IPV4
        } else {
            crate::config::LOCALHOST_IPV6
        }
        .to_owned()
    } else {
        addr.ip().to_string()
    };
    Client::builder().host(&host).port(addr.port())
}

/// Connects a default client to `server`; with `wait`, returns only once
/// the server has taken it (so the server's reads and writes work).
pub fn connect_client(server: &OneClientServer, wait: bool) -> Result<Client> {
    let client = client_for(server).connect()?;
    if wait {
        server.wait_connected(CONNECT_WAIT)?;
    }
    Ok(client)
}
