//! Traffic counters: relaxed atomics, no lock of their own.
//!
//! The per-frame counters (bytes and frames, read and written) are each
//! written by one thread at a time, the one holding the read or the write
//! half, so they are bumped with a plain load and store: no locked
//! instruction on the hot path, and no update lost. Readers of a snapshot
//! see each counter as some value it really had.

use std::sync::atomic::Ordering::Relaxed;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::events::DisconnectReason;
use crate::sync::AtomicU64;

/// A snapshot of a link's counters since it was started.
///
/// Serializable (`serde::Serialize`, always on): a flat object of the
/// counters by name, for a status report or a metrics exporter.
///
/// ```
/// # use ts_tcpip::*;
/// let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
/// let stats = server.stats();
/// assert_eq!(stats.connections_accepted, 0);
/// let json = ts_tcpip::serde_json::to_value(stats).expect("plain numbers");
/// assert_eq!(json["disconnects"], 0);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes received from the socket (read or still buffered).
    pub bytes_read: u64,
    /// Bytes handed to the socket by successful writes.
    pub bytes_written: u64,
    /// Frames returned by the frame reads (`read_str`, `read_json`,
    /// `read_into`, `read_until`, `read_line`, `read_exact` and the `try_`
    /// forms).
    pub frames_read: u64,
    /// Successful write calls (each call is one frame on the wire).
    pub frames_written: u64,
    /// Connections taken as the peer (a client's successful connects).
    pub connections_accepted: u64,
    /// Connections turned away because a peer was already connected
    /// (the server's default [`SlotPolicy::RejectNew`](crate::SlotPolicy::RejectNew)),
    /// or, with TLS, whose handshake failed.
    pub connections_rejected: u64,
    /// Connections a server closed at once because the peer is not
    /// allowed to connect (see
    /// [`Builder::allow`](crate::builder::Builder::allow) and
    /// [`Builder::allow_peer`](crate::builder::Builder::allow_peer)). They
    /// never took the slot and are not in `connections_rejected`.
    pub connections_refused: u64,
    /// Times a connected peer went away, for whatever reason: the sum of
    /// the eight counters below, one per
    /// [`DisconnectReason`](crate::DisconnectReason).
    pub disconnects: u64,
    /// Of `disconnects`, the peer closed the connection
    /// ([`DisconnectReason::PeerClosed`](crate::DisconnectReason::PeerClosed)).
    pub peers_closed: u64,
    /// Of `disconnects`, this side closed it: `close()`, `close_client()`
    /// and kin ([`DisconnectReason::ClosedLocally`](crate::DisconnectReason::ClosedLocally)).
    pub closed_locally: u64,
    /// Of `disconnects`, a read-loop server's heartbeat monitor heard
    /// nothing in time
    /// ([`DisconnectReason::HeartbeatMissed`](crate::DisconnectReason::HeartbeatMissed)).
    pub heartbeats_missed: u64,
    /// Of `disconnects`, the peers that stopped answering
    /// ([`DisconnectReason::PeerUnresponsive`](crate::DisconnectReason::PeerUnresponsive)).
    pub peers_unresponsive: u64,
    /// Of `disconnects`, the connection broke: a reset, a broken pipe
    /// ([`DisconnectReason::Error`](crate::DisconnectReason::Error)).
    pub connection_errors: u64,
    /// Of `disconnects`, a read-loop handler returned an error
    /// ([`DisconnectReason::HandlerFailed`](crate::DisconnectReason::HandlerFailed)).
    pub handler_failures: u64,
    /// Of `disconnects`, a read-loop handler panicked
    /// ([`DisconnectReason::HandlerPanicked`](crate::DisconnectReason::HandlerPanicked)).
    pub handler_panics: u64,
    /// Of `disconnects`, a new client took the slot
    /// ([`DisconnectReason::Replaced`](crate::DisconnectReason::Replaced)).
    pub replaced: u64,
}

/// By hand rather than with serde's derive: the derive would make
/// serde_derive (and syn) a build dependency of every user for this one
/// flat struct. A test checks that every field is here.
impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields: [(&'static str, u64); 16] = [
            ("bytes_read", self.bytes_read),
            ("bytes_written", self.bytes_written),
            ("frames_read", self.frames_read),
            ("frames_written", self.frames_written),
            ("connections_accepted", self.connections_accepted),
            ("connections_rejected", self.connections_rejected),
            ("connections_refused", self.connections_refused),
            ("disconnects", self.disconnects),
            ("peers_closed", self.peers_closed),
            ("closed_locally", self.closed_locally),
            ("heartbeats_missed", self.heartbeats_missed),
            ("peers_unresponsive", self.peers_unresponsive),
            ("connection_errors", self.connection_errors),
            ("handler_failures", self.handler_failures),
            ("handler_panics", self.handler_panics),
            ("replaced", self.replaced),
        ];
        let mut state = serializer.serialize_struct("Stats", fields.len())?;
        for (name, value) in &fields {
            state.serialize_field(name, value)?;
        }
        state.end()
    }
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) frames_read: AtomicU64,
    pub(crate) frames_written: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) peers_closed: AtomicU64,
    pub(crate) closed_locally: AtomicU64,
    pub(crate) heartbeats_missed: AtomicU64,
    pub(crate) peers_unresponsive: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) replaced: AtomicU64,
}

impl Counters {
    /// For counters any thread may bump (connections, disconnects).
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// For a counter only ever written with one lock held (a half's).
    #[inline]
    pub(crate) fn add_exclusive(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// A connection ended: counted in `disconnects` and under its reason.
    pub(crate) fn count_disconnect(&self, reason: &DisconnectReason) {
        Counters::add(&self.disconnects, 1);
        let by_reason = match reason {
            DisconnectReason::PeerClosed => &self.peers_closed,
            DisconnectReason::ClosedLocally => &self.closed_locally,
            DisconnectReason::HeartbeatMissed => &self.heartbeats_missed,
            DisconnectReason::PeerUnresponsive => &self.peers_unresponsive,
            DisconnectReason::Error(_) => &self.connection_errors,
            DisconnectReason::HandlerFailed(_) => &self.handler_failures,
            DisconnectReason::HandlerPanicked => &self.handler_panics,
            DisconnectReason::Replaced => &self.replaced,
        };
        Counters::add(by_reason, 1);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            frames_read: self.frames_read.load(Relaxed),
            frames_written: self.frames_written.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_rejected: self.connections_rejected.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            peers_closed: self.peers_closed.load(Relaxed),
            closed_locally: self.closed_locally.load(Relaxed),
            heartbeats_missed: self.heartbeats_missed.load(Relaxed),
            peers_unresponsive: self.peers_unresponsive.load(Relaxed),
            connection_errors: self.connection_errors.load(Relaxed),
            handler_failures: self.handler_failures.load(Relaxed),
            handler_panics: self.handler_panics.load(Relaxed),
            replaced: self.replaced.load(Relaxed),
        }
    }
}
