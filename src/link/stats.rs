//! Traffic counters: relaxed atomics, no lock of their own.
//!
//! The per-frame counters (bytes and frames, read and written) are each
//! written by one thread at a time, the one holding the read or the write
//! half, so they are bumped with a plain load and store: no locked
//! instruction on the hot path, and no update lost. Readers of a snapshot
//! see each counter as some value it really had.

use std::sync::atomic::Ordering::Relaxed;

use crate::sync::AtomicU64;

/// A snapshot of a link's counters since it was started.
///
/// ```
/// # use ts_tcpip::*;
/// let server = OneClientServer::builder().host(LOCALHOST_IPV4).start()?;
/// assert_eq!(server.stats().connections_accepted, 0);
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
    /// Times a connected peer went away, for whatever reason.
    pub disconnects: u64,
    /// Of those, the peers that stopped answering (see
    /// [`DisconnectReason::PeerUnresponsive`](crate::DisconnectReason::PeerUnresponsive)).
    pub peers_unresponsive: u64,
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
    pub(crate) peers_unresponsive: AtomicU64,
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
            peers_unresponsive: self.peers_unresponsive.load(Relaxed),
        }
    }
}
