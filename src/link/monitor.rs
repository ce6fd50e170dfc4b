//! The monitor thread: notices a peer that went away while nobody reads.
//!
//! On an idle link it waits on the socket itself for the peer's hang-up
//! only ([`Connection::wait_hangup`]: `poll` for `POLLRDHUP` on Linux), so
//! data arriving leaves it asleep, and the peer's FIN, a reset or a local
//! shutdown wakes it at once. It then looks without waiting: closed with
//! nothing unread, the link is ended (`Endpoint::detach_if_dead`); closed
//! with bytes still unread, the link stays up until they are read, and the
//! monitor looks again after a short pause that doubles up to
//! `monitor_connection_interval`, so a reader that takes the last bytes
//! soon after the close has the drop reported soon after too. A break is
//! ended with the cause the first thread to hear of it kept.
//!
//! Waiting on the socket is not free: the kernel calls the wait's entry
//! for every packet that arrives, data included (about 150 ns of a busy
//! round trip on loopback), and no other push from the kernel tells of a
//! hang-up without it. So a link read often (`BUSY_READS` calls in an
//! interval: 10,000 a second by default) has no monitor on the socket: a
//! read takes it off (a "kick", `Endpoint::count_read_call`), and while
//! reads go on at that rate (each read sees a hang-up itself) the monitor
//! looks once per interval instead; an interval with fewer reads puts it
//! back on the socket. A peer that hangs up on such a link is noticed by
//! the next read at once, or within the interval if no read comes. A link
//! read less often than that, a control loop's at 1 kHz say, keeps the
//! monitor on the socket and has every hang-up noticed at once.
//!
//! Where the wait cannot leave data out (no `POLLRDHUP`: a `WSAPoll` on
//! Windows, a blocking peek elsewhere), bytes wake it as well and nobody
//! kicks it; the monitor then looks once per interval while bytes wait,
//! which bounds how late a drop is noticed on a busy link.

use std::io::ErrorKind;
use std::time::Duration;

use super::connection::{self, Connection, Ended};
use super::ending;
use super::endpoint::{Endpoint, Intent, BUSY_READS};
use super::socket::{Peek, Wake, WAITS_FOR_HANGUP_ONLY};
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
    if WAITS_FOR_HANGUP_ONLY {
        // Made here, not on the monitor's thread: its descriptor is the
        // end's from the start.
        ep.monitor_kick();
    }
    let watched = ep.clone();
    ep.spawn("monitor", move || run(&watched, interval))
}

/// Watches each connection of `ep` in turn until `ep` is closed.
fn run(ep: &Endpoint, interval: Duration) {
    let kick = if WAITS_FOR_HANGUP_ONLY {
        ep.monitor_kick()
    } else {
        None
    };
    let mut seen = 0;
    while let Some((conn, epoch)) = ep.next_connection(seen) {
        seen = epoch;
        watch(ep, &conn, interval, kick);
        ep.set_monitor_watching(false);
    }
}

/// Returns once `conn` is no longer the endpoint's connection.
fn watch(ep: &Endpoint, conn: &Arc<Connection>, interval: Duration, kick: Option<&Wake>) {
    let mut pause = if WAITS_FOR_HANGUP_ONLY {
        FIRST_LOOK.min(interval)
    } else {
        interval
    };
    loop {
        if let Some(kick) = kick {
            kick.clear();
            ep.set_monitor_watching(true);
        }
        let looked = conn.wait_hangup(kick);
        if conn.is_closing() {
            return;
        }
        if let Some(kick) = kick.filter(|k| k.is_set()) {
            kick.clear();
            if !while_read(ep, conn, interval) {
                return;
            }
            continue;
        }
        ep.set_monitor_watching(false);
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

/// While reads go on at the busy rate, off the socket: a look once per
/// interval, until an interval has fewer reads (true: back to the socket),
/// the peer is found gone (true: the wait on the socket returns at once
/// and tells), or `conn` ends (false).
fn while_read(ep: &Endpoint, conn: &Arc<Connection>, interval: Duration) -> bool {
    let mut reads = ep.read_calls();
    loop {
        if !ep.wait_while_current(conn, interval) {
            return false;
        }
        if !matches!(conn.peek_now(), Ok(Peek::Data | Peek::Empty)) {
            return true;
        }
        let now = ep.read_calls();
        if now.wrapping_sub(reads) < BUSY_READS {
            return true;
        }
        reads = now;
    }
}
