//! The monitor thread: notices a peer that went away while nobody reads.
//!
//! It waits on the socket itself for the peer's hang-up only
//! ([`Connection::wait_hangup`]: `poll` for `POLLRDHUP` on Linux), so
//! neither an idle link nor a busy one wakes it: data arriving leaves it
//! asleep, and the peer's FIN, a reset or a local shutdown wakes it at
//! once. It then looks without waiting: closed with nothing unread, the
//! link is ended (`Endpoint::detach_if_dead`); closed with bytes still
//! unread, the link stays up until they are read, and the monitor looks
//! again after a short pause that doubles up to
//! `monitor_connection_interval`, so a reader that takes the last bytes
//! soon after the close has the drop reported soon after too. A break is
//! ended with the cause the first thread to hear of it kept (the
//! connection waits for that thread to tell it).
//!
//! Where the wait cannot leave data out (no `POLLRDHUP`: a `WSAPoll` on
//! Windows, a blocking peek elsewhere), bytes wake it as well; the monitor
//! then looks once per interval while bytes wait, which bounds how late a
//! drop is noticed on a busy link.

use std::io::ErrorKind;
use std::time::Duration;

use super::connection::{self, Connection, Ended};
use super::ending;
use super::endpoint::{Endpoint, Intent};
use super::socket::{Peek, WAITS_FOR_HANGUP_ONLY};
use crate::error::Result;
use crate::sync::Arc;

/// The first pause after a hang-up found bytes unread.
const FIRST_LOOK: Duration = Duration::from_millis(1);

/// Starts the monitor thread of `ep`, unless its interval is zero.
pub(crate) fn spawn(ep: &Arc<Endpoint>) -> Result<()> {
    let interval = ep.config().monitor_interval;
    if interval.is_zero() {
        return Ok(());
    }
    let watched = ep.clone();
    ep.spawn("monitor", move || run(&watched, interval))
}

/// Watches each connection of `ep` in turn until `ep` is closed.
fn run(ep: &Endpoint, interval: Duration) {
    let mut seen = 0;
    while let Some((conn, epoch)) = ep.next_connection(seen) {
        seen = epoch;
        watch(ep, &conn, interval);
    }
}

/// Returns once `conn` is no longer the endpoint's connection.
fn watch(ep: &Endpoint, conn: &Arc<Connection>, interval: Duration) {
    let mut pause = if WAITS_FOR_HANGUP_ONLY {
        FIRST_LOOK.min(interval)
    } else {
        interval
    };
    loop {
        let looked = conn.wait_hangup();
        if conn.is_closing() {
            return;
        }
        match looked {
            Ok(Peek::Eof) if ep.detach_if_dead(conn) => return,
            // The wait ended for nothing: wait again.
            Ok(Peek::Empty) => continue,
            // Unread bytes, or a reader that will meet the end of file
            // itself: look again later.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if connection::ended(&e) == Ended::Broke {
                    ep.detach(conn, ending::broken(&e), Intent::Keep);
                    return;
                }
            }
        }
        if !ep.wait_while_current(conn, pause) {
            return;
        }
        pause = (pause * 2).min(interval);
    }
}
