//! The one rule for which outcomes of a read or a write end a connection,
//! and the reason each gives.

use std::io;
use std::sync::Arc;

use super::connection::Broken;
use super::events::DisconnectReason;
use crate::error::Error;

/// The reason a read's outcome ends the connection for, if it does.
/// `drained`: the stream is at its end and every byte has been read;
/// `cause`: how the connection broke, if a thread heard.
///
/// A broken connection ends it with its error (a peer that stopped
/// answering with a reason of its own); the other connection errors (end
/// of file mid-frame, nothing connected) and a stream read to its end
/// end it as closed by the peer, unless another thread heard that it
/// broke. Anything else (a timeout, an overrun, undecodable text) leaves
/// it open: the stream is still good.
#[inline]
pub(crate) fn after_read(
    error: Option<&Error>,
    drained: bool,
    cause: impl FnOnce() -> Option<Broken>,
) -> Option<DisconnectReason> {
    match error {
        None if !drained => None,
        Some(Error::ConnectionLost(io)) => Some(first(cause(), io)),
        Some(e) if e.is_connection_error() => Some(at_end(cause())),
        _ if drained => Some(at_end(cause())),
        _ => None,
    }
}

/// The reason for a stream that ended: closed by the peer, unless a thread
/// heard that it broke.
pub(crate) fn at_end(cause: Option<Broken>) -> DisconnectReason {
    match cause {
        Some(cause) => broken(&cause.io()),
        None => DisconnectReason::PeerClosed,
    }
}

/// The reason a failed write ends the connection for, if it does: only a
/// broken connection. A timeout with nothing sent, text the encoding
/// cannot hold, a value that is not JSON: nothing went out, the stream is
/// still good.
pub(crate) fn after_write(
    error: &Error,
    cause: impl FnOnce() -> Option<Broken>,
) -> Option<DisconnectReason> {
    match error {
        Error::ConnectionLost(io) => Some(first(cause(), io)),
        _ => None,
    }
}

/// The reason for a connection this thread saw break with `io`: the cause
/// the first thread to hear of the break kept, if there is one (the system
/// tells its error once; a second thread sees its fallout, a broken pipe
/// say), else `io`.
fn first(cause: Option<Broken>, io: &io::Error) -> DisconnectReason {
    match cause {
        Some(cause) => broken(&cause.io()),
        None => broken(io),
    }
}

/// The reason for a connection broken by `io`: a peer that stopped
/// answering (the system gave up on it: `ETIMEDOUT` from the system; the
/// socket's own timeouts never get here, and a write cut short by one is
/// this crate's error, with no system code), or the error itself, a copy
/// of it (the original goes to the caller).
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

    #[test]
    fn a_broken_connection_ends_with_its_error() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let reset = io::Error::from_raw_os_error(reset.raw_os_error().unwrap_or(104));
        let reason = after_read(Some(&Error::ConnectionLost(reset)), false, || None);
        let Some(DisconnectReason::Error(e)) = reason else {
            panic!("{reason:?}")
        };
        let Error::ConnectionLost(io) = &*e else {
            panic!("{e:?}")
        };
        assert!(io.raw_os_error().is_some());
        assert!(after_write(
            &Error::ConnectionLost(io::ErrorKind::BrokenPipe.into()),
            || None
        )
        .is_some());
    }

    #[test]
    fn end_of_file_ends_as_closed_by_the_peer() {
        let eof = Error::incomplete(b"par".to_vec(), None);
        let closed = Some(DisconnectReason::PeerClosed);
        assert_eq!(after_read(Some(&eof), true, || None), closed);
        assert_eq!(after_read(None, true, || None), closed);
        assert_eq!(
            after_read(Some(&Error::NotConnected), false, || None),
            closed
        );
    }

    /// The system tells one thread that it gave up on the peer; the others
    /// see an end of file, and the cause the first one kept.
    #[test]
    fn a_peer_that_stopped_answering_has_a_reason_of_its_own_for_every_thread() {
        // ETIMEDOUT, as the system reports it.
        let timed_out = io::Error::from_raw_os_error(if cfg!(windows) { 10060 } else { 110 });
        assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
        let heard = Some(Broken {
            kind: timed_out.kind(),
            os_code: timed_out.raw_os_error(),
        });
        let unresponsive = Some(DisconnectReason::PeerUnresponsive);
        let lost = Error::ConnectionLost(timed_out);
        assert_eq!(after_read(Some(&lost), false, || None), unresponsive);
        let eof = Error::incomplete(Vec::new(), None);
        assert_eq!(after_read(Some(&eof), true, || heard), unresponsive);
        assert_eq!(after_read(None, true, || heard), unresponsive);
        assert_eq!(after_write(&lost, || None), unresponsive);
        // A writer that met the fallout (a broken pipe) after another
        // thread heard the system's ETIMEDOUT: the cause kept wins.
        let fallout = Error::ConnectionLost(io::ErrorKind::BrokenPipe.into());
        assert_eq!(after_write(&fallout, || heard), unresponsive);
        assert_eq!(after_read(Some(&fallout), false, || heard), unresponsive);
        // A write cut short by the socket's own timeout is not the peer's
        // silence: the crate's error, with no system code.
        let cut = io::Error::new(
            io::ErrorKind::TimedOut,
            "write timed out after 3 of 9 bytes",
        );
        assert!(matches!(
            after_write(&Error::ConnectionLost(cut), || None),
            Some(DisconnectReason::Error(_))
        ));
    }

    #[test]
    fn errors_that_leave_the_stream_good_keep_the_connection() {
        for kept in [
            Error::Timeout,
            Error::overrun(10, 11),
            Error::decode(vec![0xff], crate::encoding::Encoding::Utf8, 0, "invalid"),
        ] {
            assert_eq!(after_read(Some(&kept), false, || None), None, "{kept}");
            assert_eq!(after_write(&kept, || None), None, "{kept}");
        }
        assert_eq!(after_read(None, false, || None), None);
        // Undecodable text read just before the peer's end of file: the
        // frame is consumed and nothing is left, so the link ends.
        let undecodable = Error::decode(vec![0xff], crate::encoding::Encoding::Utf8, 0, "invalid");
        assert_eq!(
            after_read(Some(&undecodable), true, || None),
            Some(DisconnectReason::PeerClosed)
        );
    }
}
