//! A call on another thread that is known to be blocked inside before the
//! test goes on: for the tests of what releases a blocked call (`close()`
//! releasing a read or a `wait_connected`), which prove nothing if the
//! call only began after the release.
//!
//! A handshake alone (the thread says it is about to call) leaves a gap:
//! the test may act before the call has started waiting. On Linux the
//! thread's kernel state closes it: [`spawn`] returns only once /proc
//! shows the thread asleep ('S') in the system call that the call waits
//! in, a read, a receive, a send or a write on a socket, or a poll of one
//! ([`In::Socket`]), or a futex ([`In::Futex`]: a condition variable),
//! and not woken for a moment (a lock taken on the way in, or a send
//! that waits a moment for room, is not the wait under test). A thread
//! asleep in such a call after the handshake is inside the call under
//! test, and cannot have returned. Elsewhere only the handshake and
//! a window of `QUIET` in which the call must not return are available:
//! weaker, but still a failure when the call returns at once.

use std::fmt::Debug;
use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::WAIT;

/// What a blocked thread must be found waiting in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    /// A read, receive, send or write on a socket, or a poll of one.
    Socket,
    /// A futex: a condition variable or a lock.
    Futex,
}

/// A call running on a thread of its own, blocked when it was handed over.
pub struct Blocked<'scope, T> {
    what: &'static str,
    handle: ScopedJoinHandle<'scope, T>,
    returned: Receiver<()>,
}

/// Runs `call` on a new thread of `scope` and returns once it is blocked
/// in `wait` inside the call (see the module's note); panics if the call
/// returns first, or is not seen blocked within [`WAIT`]. `what` names the
/// call in failures.
#[track_caller]
pub fn spawn<'scope, T: Send + Debug + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    what: &'static str,
    wait: In,
    call: impl FnOnce() -> T + Send + 'scope,
) -> Blocked<'scope, T> {
    let (entering_tx, entering) = crossbeam_channel::bounded(1);
    let (returned_tx, returned) = crossbeam_channel::bounded(1);
    let handle = scope.spawn(move || {
        let _ = entering_tx.send(this_thread());
        let out = call();
        let _ = returned_tx.send(());
        out
    });
    let tid = entering
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: its thread never started"));
    Blocked {
        what,
        handle,
        returned,
    }
    .when_blocked(tid, wait)
}

impl<T: Debug> Blocked<'_, T> {
    /// The call's result, once it has returned; panics if that takes more
    /// than [`WAIT`] (the release did not release it).
    #[track_caller]
    pub fn join(self) -> T {
        match self.returned.recv_timeout(WAIT) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: still blocked {WAIT:?} after its release", self.what)
            }
        }
        match self.handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Panics if the call has returned.
    #[track_caller]
    pub fn assert_not_returned(&self) {
        if self.returned.try_recv().is_ok() || self.handle.is_finished() {
            panic!("{}: returned while it should be blocked", self.what);
        }
    }

    #[track_caller]
    fn returned_early(self) -> ! {
        let what = self.what;
        match self.handle.join() {
            Ok(out) => panic!("{what}: returned before the test went on, with {out:?}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    #[cfg(target_os = "linux")]
    #[track_caller]
    fn when_blocked(self, tid: Option<u32>, wait: In) -> Self {
        let tid = tid.expect("the thread's id, from /proc/thread-self");
        use std::time::{Duration, Instant};
        // A futex may be a lock taken for a moment on the way into the
        // call, a send may wait a moment for room: the call's own wait is
        // the one the thread stays in, not woken.
        const STEADY: Duration = Duration::from_millis(20);
        let deadline = Instant::now() + WAIT;
        let mut asleep: Option<(Instant, u64)> = None;
        loop {
            if self.handle.is_finished() {
                self.returned_early();
            }
            let seen = match linux::blocked_in(tid, wait) {
                Ok(switches) => match asleep {
                    Some((since, before)) if before == switches => {
                        if since.elapsed() >= STEADY {
                            break;
                        }
                        format!("asleep for less than {STEADY:?}")
                    }
                    _ => {
                        asleep = Some((Instant::now(), switches));
                        "asleep".to_owned()
                    }
                },
                Err(seen) => {
                    asleep = None;
                    seen
                }
            };
            assert!(
                Instant::now() < deadline,
                "{}: not seen blocked in {wait:?} within {WAIT:?}; last seen: {seen}",
                self.what
            );
            // Polling /proc: nothing can say when a thread falls asleep.
            std::thread::sleep(Duration::from_millis(1));
        }
        self.assert_not_returned();
        self
    }

    #[cfg(not(target_os = "linux"))]
    #[track_caller]
    fn when_blocked(self, _tid: Option<u32>, _wait: In) -> Self {
        // No /proc: the call must at least not return within QUIET of its
        // thread starting it.
        if self.returned.recv_timeout(super::QUIET).is_ok() {
            self.returned_early();
        }
        self.assert_not_returned();
        self
    }
}

/// This thread's id as /proc names it, where there is a /proc.
fn this_thread() -> Option<u32> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    // "<pid>/task/<tid>"
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Seek, SeekFrom};

    use super::In;

    /// System call numbers of this architecture: (reads, writes and
    /// receives, sends on a descriptor), polls, futex.
    #[cfg(target_arch = "x86_64")]
    const ON_FD: &[i64] = &[0, 1, 44, 45, 46, 47];
    #[cfg(target_arch = "x86_64")]
    const POLLS: &[i64] = &[7, 271];
    #[cfg(target_arch = "x86_64")]
    const FUTEX: i64 = 202;
    #[cfg(target_arch = "aarch64")]
    const ON_FD: &[i64] = &[63, 64, 206, 207, 211, 212];
    #[cfg(target_arch = "aarch64")]
    const POLLS: &[i64] = &[73];
    #[cfg(target_arch = "aarch64")]
    const FUTEX: i64 = 98;
    /// Elsewhere the numbers are not written down here: asleep is all that
    /// is checked.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const ON_FD: &[i64] = &[];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const POLLS: &[i64] = &[];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const FUTEX: i64 = -1;

    /// If thread `tid` of this process is asleep in `wait`, its context
    /// switches so far (they tell whether it woke between two looks); else
    /// what it is doing instead.
    pub fn blocked_in(tid: u32, wait: In) -> Result<u64, String> {
        let task = format!("/proc/self/task/{tid}");
        let stat =
            std::fs::read_to_string(format!("{task}/stat")).map_err(|e| format!("no stat: {e}"))?;
        // The state follows the name, which is in parentheses and may hold
        // anything.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        // "running", or the call's number, its six arguments, sp and pc.
        let syscall = std::fs::read_to_string(format!("{task}/syscall"))
            .map_err(|e| format!("state {state}, no syscall: {e}"))?;
        let seen = || format!("state {state}, syscall {}", syscall.trim_end());
        if state != "S" {
            return Err(seen());
        }
        let switches = || -> Result<u64, String> {
            let status = std::fs::read_to_string(format!("{task}/status"))
                .map_err(|e| format!("no status: {e}"))?;
            Ok(status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum())
        };
        if ON_FD.is_empty() {
            return switches();
        }
        let fields: Vec<&str> = syscall.split_whitespace().collect();
        let number: i64 = fields
            .first()
            .and_then(|n| n.parse().ok())
            .ok_or_else(seen)?;
        let arg = |i: usize| -> Option<u64> {
            u64::from_str_radix(fields.get(1 + i)?.trim_start_matches("0x"), 16).ok()
        };
        let found = match wait {
            In::Futex => number == FUTEX,
            In::Socket if ON_FD.contains(&number) => arg(0).is_some_and(is_socket),
            In::Socket if POLLS.contains(&number) => match (arg(0), arg(1)) {
                (Some(fds), Some(n)) => polled_fds(fds, n).into_iter().any(is_socket),
                _ => false,
            },
            In::Socket => false,
        };
        if found {
            switches()
        } else {
            Err(seen())
        }
    }

    fn is_socket(fd: u64) -> bool {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
    }

    /// The descriptors of the `n` `struct pollfd`s (an int, two shorts)
    /// at `addr` in this process.
    fn polled_fds(addr: u64, n: u64) -> Vec<u64> {
        let mut bytes = vec![0u8; 8 * n.min(64) as usize];
        let read = std::fs::File::open("/proc/self/mem").and_then(|mut mem| {
            mem.seek(SeekFrom::Start(addr))?;
            mem.read_exact(&mut bytes)
        });
        if read.is_err() {
            return Vec::new();
        }
        bytes
            .chunks_exact(8)
            .filter_map(|pollfd| {
                let fd = i32::from_ne_bytes(pollfd[..4].try_into().expect("4 bytes"));
                u64::try_from(fd).ok()
            })
            .collect()
    }
}
