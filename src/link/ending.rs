//! The one rule for which outcomes of a read or a write end a connection,
//! and the reason each gives. The outcome was judged where the transport
//! reported it (`connection.rs`): a connection error here already says
//! why the connection ended, so this is a plain mapping.

use std::io;
use std::sync::Arc;

use super::connection::{self, Ended};
use super::events::DisconnectReason;
use crate::error::Error;

/// The reason a read's outcome ends the connection for, if it does.
/// `drained`: the peer closed and every byte it sent has been read.
///
/// A broken connection ends with its error (a peer that stopped
/// answering with a reason of its own); the peer's end of file, mid-frame
/// or once everything was read, ends it as closed by the peer. A local
/// close was ended by whoever closed, and a break whose cause another
/// thread heard is ended by that thread. Anything else (a timeout, an
/// overrun, undecodable text) leaves it open: the stream is still good.
#[inline]
pub(crate) fn after_read(error: Option<&Error>, drained: bool) -> Option<DisconnectReason> {
    match error {
        None if !drained => None,
        Some(Error::ConnectionLost(io)) => after_break(io),
        Some(Error::IncompleteRead(_)) => Some(DisconnectReason::PeerClosed),
        _ if drained => Some(DisconnectReason::PeerClosed),
        _ => None,
    }
}

/// The reason a failed write ends the connection for, if it does: only a
/// broken connection. A timeout, text the encoding cannot hold, a value
/// that is not JSON, a frame held back by a deadline: the stream is still
/// good.
pub(crate) fn after_write(error: &Error) -> Option<DisconnectReason> {
    match error {
        Error::ConnectionLost(io) => after_break(io),
        _ => None,
    }
}

/// A connection error's reason, unless someone else ends the connection.
fn after_break(io: &io::Error) -> Option<DisconnectReason> {
    match connection::ended(io) {
        Ended::Broke => Some(broken(io)),
        Ended::Locally | Ended::CausePending => None,
    }
}

/// The reason for a connection broken by `io`: a peer that stopped
/// answering (the system gave up on it: `ETIMEDOUT` from the system; a
/// deadline never gets here), or the error itself, a copy of it (the
/// original goes to the caller).
pub(crate) fn broken(io: &io::Error) -> DisconnectReason {
    if io.kind() == io::ErrorKind::TimedOut && io.raw_os_error().is_some() {
        return DisconnectReason::PeerUnresponsive;
    }
    let copy = match io.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(io.kind(), io.to_string()),
    };
    DisconnectReason::Error(Arc::new(Error::ConnectionLost(copy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(kind: io::ErrorKind, linux: i32, windows: i32) -> io::Error {
        let e = io::Error::from_raw_os_error(if cfg!(windows) { windows } else { linux });
        assert_eq!(e.kind(), kind);
        e
    }

    #[test]
    fn a_broken_connection_ends_with_its_error() {
        let reset = os(io::ErrorKind::ConnectionReset, 104, 10054);
        let reason = after_read(Some(&Error::ConnectionLost(reset)), false);
        let Some(DisconnectReason::Error(e)) = reason else {
            panic!("{reason:?}")
        };
        let Error::ConnectionLost(io) = &*e else {
            panic!("{e:?}")
        };
        assert!(io.raw_os_error().is_some());
        let pipe = Error::ConnectionLost(io::ErrorKind::BrokenPipe.into());
        assert!(after_write(&pipe).is_some());
    }

    #[test]
    fn end_of_file_ends_as_closed_by_the_peer() {
        let eof = Error::incomplete(b"par".to_vec(), None);
        let closed = Some(DisconnectReason::PeerClosed);
        assert_eq!(after_read(Some(&eof), true), closed);
        assert_eq!(after_read(Some(&eof), false), closed);
        assert_eq!(after_read(None, true), closed);
    }

    #[test]
    fn a_peer_that_stopped_answering_has_a_reason_of_its_own() {
        let timed_out = os(io::ErrorKind::TimedOut, 110, 10060);
        let lost = Error::ConnectionLost(timed_out);
        let unresponsive = Some(DisconnectReason::PeerUnresponsive);
        assert_eq!(after_read(Some(&lost), false), unresponsive);
        assert_eq!(after_write(&lost), unresponsive);
        // The crate's own timed-out errors have no system code.
        let ours = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
        assert!(matches!(
            after_write(&Error::ConnectionLost(ours)),
            Some(DisconnectReason::Error(_))
        ));
    }

    /// A local close is ended by whoever closed; a break whose cause is
    /// still untold is ended by the thread that heard it, with that cause.
    #[test]
    fn a_local_close_and_an_untold_cause_are_ended_elsewhere() {
        for elsewhere in [connection::closed_locally(), connection::pending()] {
            let error = Error::ConnectionLost(elsewhere);
            assert_eq!(after_read(Some(&error), false), None, "{error}");
            assert_eq!(after_write(&error), None, "{error}");
        }
    }

    #[test]
    fn errors_that_leave_the_stream_good_keep_the_connection() {
        for kept in [
            Error::Timeout,
            Error::overrun(10, 11),
            Error::decode(vec![0xff], crate::encoding::Encoding::Utf8, 0, "invalid"),
            Error::write_pending(40),
            Error::NotConnected,
        ] {
            assert_eq!(after_read(Some(&kept), false), None, "{kept}");
            assert_eq!(after_write(&kept), None, "{kept}");
        }
        assert_eq!(after_read(None, false), None);
        // Undecodable text read just before the peer's end of file: the
        // frame is consumed and nothing is left, so the link ends.
        let undecodable = Error::decode(vec![0xff], crate::encoding::Encoding::Utf8, 0, "invalid");
        assert_eq!(
            after_read(Some(&undecodable), true),
            Some(DisconnectReason::PeerClosed)
        );
    }
}
