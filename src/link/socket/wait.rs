//! The waits of the socket layer, the same on every platform: `poll` for
//! a socket's readiness within a call's deadline (and a wake), the spin of
//! a read, and what a look at a socket finds.

use std::io;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::AsFd;

use crate::deadline::Deadline;

/// What a look at the receive queue found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Bytes are waiting.
    Data,
    /// The peer closed its side and everything it sent has been read.
    Eof,
    /// Nothing yet (from `Stream::peek_now`, or from
    /// `Stream::wait_hangup` when the wait ended for no reason).
    Empty,
}

/// True where `Stream::wait_hangup` sleeps through data and wakes only
/// for the peer's close, an error or a local shutdown; elsewhere it wakes
/// for data too, and the monitor paces its looks by its interval.
pub(crate) const WAITS_FOR_HANGUP_ONLY: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// What ends a wait early: a platform's wake (a close, a kick).
pub(crate) trait Waker {
    fn is_set(&self) -> bool;
    fn poll_fd(&self) -> PollFd<'_>;
}

/// Waits until `socket` is ready for `events` (or has an error or a
/// hang-up to tell), `wake` is set, or `deadline` passes: `Ok` means "try
/// the call again"; a passed deadline is `WouldBlock`, a set `wake`
/// `ConnectionAborted`.
pub(crate) fn wait_ready(
    socket: &impl AsFd,
    events: PollFlags,
    wake: Option<&impl Waker>,
    deadline: Deadline,
) -> io::Result<()> {
    if wake.is_some_and(|w| w.is_set()) {
        return Err(cancelled());
    }
    let left = match deadline.left() {
        Some(left) if left.is_zero() => return Err(io::ErrorKind::WouldBlock.into()),
        left => left,
    };
    let timespec = left.map(timespec);
    let ready = match wake {
        Some(wake) => {
            let mut fds = [PollFd::new(socket, events), wake.poll_fd()];
            poll(&mut fds, timespec.as_ref())
        }
        None => poll(&mut [PollFd::new(socket, events)], timespec.as_ref()),
    };
    match ready {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    if wake.is_some_and(|w| w.is_set()) {
        return Err(cancelled());
    }
    Ok(())
}

/// What a wait that a wake ended returns.
pub(super) fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "cancelled: closing")
}

/// A wait's time left as `poll` takes it. WSAPoll takes whole
/// milliseconds, at most `i32::MAX` of them (rustix rounds up, so a short
/// wait is not a busy one); the cap does no harm elsewhere.
pub(super) fn timespec(left: Duration) -> Timespec {
    let left = left.min(Duration::from_millis(i32::MAX as u64));
    Timespec {
        tv_sec: left.as_secs() as _,
        tv_nsec: left.subsec_nanos() as _,
    }
}

/// How many times a read that spun in vain yields the CPU before it sleeps.
const YIELDS: u32 = 3;

/// The spin of a read (see `Builder::spin`): `try_now`, a read that never
/// waits (`Ok(None)` when nothing is there), tried over and over for up
/// to `spin`, no later than `deadline`, then after each of a few yields.
/// `Some` with what a try got, `None` if nothing came: the caller then
/// sleeps as usual.
///
/// The CPU is yielded between tries, not only at the end: the thread
/// that will answer is often woken on this very CPU (the kernel puts a
/// wakee beside its waker), and a spin that kept the CPU would make it
/// wait for the spin to end. Measured on two cores at 1 kHz, a spin that
/// held the CPU made the round trip four times slower than no spin; a
/// yield is a system call, as each try is, and returns at once when
/// nothing else wants the CPU.
pub(super) fn spin_then(
    mut try_now: impl FnMut() -> io::Result<Option<usize>>,
    deadline: Deadline,
    spin: Duration,
) -> Option<io::Result<usize>> {
    let started = std::time::Instant::now();
    loop {
        match try_now() {
            Ok(None) => {}
            done => return done.transpose(),
        }
        if started.elapsed() >= spin || deadline.passed() {
            break;
        }
        std::thread::yield_now();
    }
    for _ in 0..YIELDS {
        std::thread::yield_now();
        match try_now() {
            Ok(None) => {}
            done => return done.transpose(),
        }
    }
    None
}
