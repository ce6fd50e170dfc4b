//! What the link's unit tests share: a connection and its peer's end on
//! loopback, and a watchdog that turns a hang into a failure.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::connection::Connection;
use super::transport::Tcp;
use crate::sync::Arc;

/// A generous bound on what must not hang.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A connection and its peer's end, the peer's reads bounded by [`WAIT`].
pub(crate) fn connection() -> (Arc<Connection>, TcpStream) {
    connection_with_send_buffer(0)
}

/// [`connection`] with the connection's SO_SNDBUF set to `bytes` (0: the
/// system's), so that a peer that does not read fills it soon.
pub(crate) fn connection_with_send_buffer(bytes: usize) -> (Arc<Connection>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    peer.set_read_timeout(Some(WAIT)).expect("timeout");
    let (stream, addr) = listener.accept().expect("accept");
    if bytes > 0 {
        socket2::SockRef::from(&stream)
            .set_send_buffer_size(bytes)
            .expect("SO_SNDBUF");
    }
    (
        Arc::new(Connection::new(Tcp::new(stream).expect("transport"), addr)),
        peer,
    )
}

/// Aborts the test process unless dropped within `limit`.
#[must_use = "the watchdog is disarmed when this guard is dropped"]
pub(crate) struct Watchdog(Option<crossbeam_channel::Sender<()>>);

pub(crate) fn watchdog(limit: Duration) -> Watchdog {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name(format!("watchdog {test}"))
        .spawn(move || {
            if let Err(crossbeam_channel::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: test `{test}` still running after {limit:?}: aborting");
                std::process::abort();
            }
        })
        .expect("spawn the watchdog");
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}
