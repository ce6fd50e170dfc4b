//! Helpers for tests of code that uses this crate (Python's
//! `BaseOneClientServerTestCase`), and a kit for testing a program that
//! talks to a peer without the peer.
//!
//! - [`ScriptedPeer`] plays the other end from a [`Script`] built in Rust:
//!   expect a line, bytes, JSON or a struct (each within a deadline), send
//!   them, pause, stop reading, go silent, close, reset. Every step that
//!   does not match is a [`Mismatch`] showing what was expected and what
//!   arrived, and [`ScriptedPeer::finish`] returns them all as a
//!   [`ScriptFailure`].
//! - [`FaultProxy`] sits between the program and a real peer and injects
//!   faults each way ([`Faults`]): latency with jitter, a bandwidth limit,
//!   slicing, holding, a reset, a close or a limit after N bytes, a slow
//!   close.
//! - A recording proxy's [`Capture`] holds both directions with their
//!   times, in a text format a person and a few lines of Python can read;
//!   [`ScriptedPeer::replay_server`] and
//!   [`replay_client`](ScriptedPeer::replay_client) play one side of it
//!   back and check the other.
//!
//! Everything listens on and connects to loopback only, each piece runs
//! on threads named `tcpip-peer ...` or `tcpip-proxy...`, joined when it
//! finishes or is dropped, and nothing waits without a bound.
//!
//! The helpers: a server on a free loopback port, a client connected to
//! it, and a recorder of connect-callback calls.
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

mod capture;
mod control;
mod faults;
mod pipe;
mod proxy;
mod runner;
mod script;
mod scripted;
mod show;
mod verdict;

pub use capture::{Capture, Direction, Event, Record, Timing};
pub use proxy::{FaultProxy, FaultProxyBuilder, Faults};
pub use script::{Script, DEFAULT_DEADLINE};
pub use scripted::ScriptedPeer;
pub use verdict::{Mismatch, ScriptFailure};

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
