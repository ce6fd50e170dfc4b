//! The one rule for which outcomes of a read or a write end a connection,
//! and the reason each gives.

use std::io;
use std::sync::Arc;

use super::events::DisconnectReason;
use crate::error::Error;

/// The reason a read's outcome ends the connection for, if it does.
/// `drained`: the peer has closed and every byte it sent has been read.
///
/// A broken connection ends it with its error; the other connection
/// errors (end of file mid-frame, nothing connected) and a peer whose
/// every byte has been read end it as closed by the peer. Anything else
/// (a timeout, an overrun, undecodable text) leaves it open: the stream
/// is still good.
pub(crate) fn after_read(error: Option<&Error>, drained: bool) -> Option<DisconnectReason> {
    match error {
        Some(Error::ConnectionLost(io)) => Some(broken(io)),
        Some(e) if e.is_connection_error() => Some(DisconnectReason::PeerClosed),
        _ if drained => Some(DisconnectReason::PeerClosed),
        _ => None,
    }
}

/// The reason a failed write ends the connection for, if it does: only a
/// broken connection. A timeout with nothing sent, text the encoding
/// cannot hold, a value that is not JSON: nothing went out, the stream is
/// still good.
pub(crate) fn after_write(error: &Error) -> Option<DisconnectReason> {
    match error {
        Error::ConnectionLost(io) => Some(broken(io)),
        _ => None,
    }
}

/// The reason for a connection broken by `io`, holding a copy of it (the
/// original goes to the caller).
fn broken(io: &io::Error) -> DisconnectReason {
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
        let reset = io::Error::from_raw_os_error(104);
        let reason = after_read(Some(&Error::ConnectionLost(reset)), false);
        let Some(DisconnectReason::Error(e)) = reason else {
            panic!("{reason:?}")
        };
        let Error::ConnectionLost(io) = &*e else {
            panic!("{e:?}")
        };
        assert_eq!(io.raw_os_error(), Some(104));
        assert!(after_write(&Error::ConnectionLost(io::ErrorKind::BrokenPipe.into())).is_some());
    }

    #[test]
    fn end_of_file_ends_as_closed_by_the_peer() {
        let eof = Error::incomplete(b"par".to_vec(), None);
        assert_eq!(
            after_read(Some(&eof), true),
            Some(DisconnectReason::PeerClosed)
        );
        assert_eq!(after_read(None, true), Some(DisconnectReason::PeerClosed));
        assert_eq!(
            after_read(Some(&Error::NotConnected), false),
            Some(DisconnectReason::PeerClosed)
        );
    }

    #[test]
    fn errors_that_leave_the_stream_good_keep_the_connection() {
        for kept in [
            Error::Timeout,
            Error::overrun(10, 11),
            Error::decode(vec![0xff], crate::encoding::Encoding::Utf8, 0, "invalid"),
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
