//! The monitor thread: notices a peer that went away while nobody reads.
//!
//! It waits on the socket itself (a blocking peek, which consumes nothing
//! and does not disturb a reader on another thread), so an idle link costs
//! nothing and a closed one is noticed as soon as the end of file arrives.
//! While bytes are waiting unread, or a reader is busy, there is nothing to
//! notice yet: the monitor looks again after `monitor_connection_interval`,
//! which therefore bounds how late a disconnect is noticed on a busy link.
//! The peek obeys the link's read timeout (a socket has one); a timeout
//! shorter than the interval would wake the monitor at its own pace, so
//! then the monitor, too, looks once per interval.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::Connection;
use super::endpoint::{Endpoint, Intent};
use super::events::DisconnectReason;
use super::socket::{is_socket_timeout, Peek};
use crate::error::Error;

/// Watches each connection of `ep` in turn until `ep` is closed.
pub(crate) fn run(ep: &Endpoint, interval: Duration) {
    let mut seen = 0;
    while let Some((conn, epoch)) = ep.slot.next_connection(seen) {
        seen = epoch;
        watch(ep, &conn, interval);
    }
}

/// Returns once `conn` is no longer the endpoint's connection.
fn watch(ep: &Endpoint, conn: &Arc<Connection>, interval: Duration) {
    loop {
        let started = Instant::now();
        let peeked = conn.transport().peek_wait();
        if conn.is_closing() {
            return;
        }
        match peeked {
            Ok(Peek::Eof) if ep.detach_if_dead(conn) => return,
            // Unread bytes, or a reader that will meet the end of file
            // itself: look again later.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // The link's read timeout cut the wait short. Waiting again at
            // once is right if it is no shorter than the interval; a
            // shorter one is paced to the interval (module doc).
            Err(e) if is_socket_timeout(e.kind()) && started.elapsed() >= interval => continue,
            Err(e) if is_socket_timeout(e.kind()) => {}
            Err(e) => {
                let reason = DisconnectReason::Error(Arc::new(Error::ConnectionLost(e)));
                ep.detach(conn, reason, Intent::Keep);
                return;
            }
        }
        if !ep.slot.wait_while_current(conn, interval) {
            return;
        }
    }
}
