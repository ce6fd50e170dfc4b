//! The faults of one direction of a proxy connection, and the decisions
//! they make: when the chunk at the head of the queue is due, how much of
//! it goes in the next write, and when a count ends the connection. Pure
//! state, no sockets: the pipe's threads ask it under its lock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The faults of one direction, as a test set them.
#[derive(Debug, Clone, Default)]
pub(super) struct FaultSet {
    latency: Duration,
    jitter: Duration,
    /// Bytes per second; 0 is no limit.
    bandwidth: u64,
    /// Segment size (0 is no slicing) and the pause between segments.
    slice: (usize, Duration),
    hold: bool,
    slow_close: Duration,
    reset_after: Option<u64>,
    close_after: Option<u64>,
    limit: Option<u64>,
}

/// One setter's change.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Latency(Duration),
    Jitter(Duration),
    Bandwidth(u64),
    Slice(usize, Duration),
    Hold(bool),
    SlowClose(Duration),
    ResetAfter(u64),
    CloseAfter(u64),
    Limit(u64),
    Clear,
}

impl FaultSet {
    pub(super) fn apply(&mut self, change: Change) {
        match change {
            Change::Latency(d) => self.latency = d,
            Change::Jitter(d) => self.jitter = d,
            Change::Bandwidth(b) => self.bandwidth = b,
            Change::Slice(n, pause) => self.slice = (n, pause),
            Change::Hold(hold) => self.hold = hold,
            Change::SlowClose(d) => self.slow_close = d,
            Change::ResetAfter(n) => self.reset_after = Some(n),
            Change::CloseAfter(n) => self.close_after = Some(n),
            Change::Limit(n) => self.limit = Some(n),
            Change::Clear => *self = FaultSet::default(),
        }
    }
}

/// How a connection ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Both legs closed (FIN): the proxy closed, or `close_after`.
    Close,
    /// Both legs reset (RST: SO_LINGER 0, then close): `reset_after`, or
    /// one side failed.
    Reset,
}

/// A chunk as one read took it in; `data` None is the end of file.
pub(super) struct Chunk {
    arrival: Instant,
    /// This chunk's share of the jitter, in [-1, 1).
    jitter: f64,
    data: Option<Vec<u8>>,
    /// Bytes of `data` already written.
    sent: usize,
}

/// What the writer does next.
pub(super) enum Next {
    /// Nothing until then (None: until something changes).
    Wait(Option<Instant>),
    Write(Vec<u8>),
    Eof,
    End(Ending),
}

pub(super) struct PipeState {
    pub(super) faults: FaultSet,
    /// The counts of the faults that act after N bytes, as totals of
    /// `forwarded` (set when the fault is).
    pub(super) reset_at: Option<u64>,
    pub(super) close_at: Option<u64>,
    pub(super) limit_at: Option<u64>,
    pub(super) queue: VecDeque<Chunk>,
    /// Bytes in `queue` not yet written.
    pub(super) queued: usize,
    /// A write to the destination is under way (by either thread).
    pub(super) busy: bool,
    /// The end of file has gone through: the writer leaves.
    pub(super) done: bool,
    /// Bytes handed to the destination (counted as a write starts).
    pub(super) forwarded: u64,
    /// No write before this (a slice's pause, the bandwidth's pace).
    pub(super) next_write: Option<Instant>,
    rng: u64,
}

impl PipeState {
    /// The state of a new connection's direction: its counts start from
    /// its first byte.
    pub(super) fn new(faults: FaultSet) -> PipeState {
        PipeState {
            reset_at: faults.reset_after,
            close_at: faults.close_after,
            limit_at: faults.limit,
            faults,
            queue: VecDeque::new(),
            queued: 0,
            busy: false,
            done: false,
            forwarded: 0,
            next_write: None,
            rng: seed(),
        }
    }

    pub(super) fn apply(&mut self, change: Change) {
        self.faults.apply(change);
        let from_now = |n: u64| Some(self.forwarded.saturating_add(n));
        match change {
            Change::ResetAfter(n) => self.reset_at = from_now(n),
            Change::CloseAfter(n) => self.close_at = from_now(n),
            Change::Limit(n) => self.limit_at = from_now(n),
            Change::Clear => (self.reset_at, self.close_at, self.limit_at) = (None, None, None),
            _ => {}
        }
    }

    /// True when nothing needs the queue: bytes may go straight through.
    pub(super) fn transparent(&self) -> bool {
        let f = &self.faults;
        f.latency.is_zero()
            && f.jitter.is_zero()
            && f.bandwidth == 0
            && f.slice.0 == 0
            && !f.hold
            && f.slow_close.is_zero()
            && self.reset_at.is_none()
            && self.close_at.is_none()
            && self.limit_at.is_none()
    }

    pub(super) fn push(&mut self, arrival: Instant, data: Option<Vec<u8>>) {
        self.queued += data.as_ref().map_or(0, Vec::len);
        let jitter = self.unit();
        self.queue.push_back(Chunk {
            arrival,
            jitter,
            data,
            sent: 0,
        });
    }

    /// What the writer does at `now`, taking a piece off the head if it
    /// is one to write.
    pub(super) fn next(&mut self, now: Instant) -> Next {
        loop {
            if self.busy || self.faults.hold {
                return Next::Wait(None);
            }
            let Some(head) = self.queue.front() else {
                return Next::Wait(None);
            };
            // Only the head is looked at: a chunk whose jitter made it due
            // sooner waits for the ones before it, so bytes keep their order.
            let delay =
                self.faults.latency.as_secs_f64() + self.faults.jitter.as_secs_f64() * head.jitter;
            let due = head.arrival + Duration::from_secs_f64(delay.max(0.0));
            if now < due {
                return Next::Wait(Some(due));
            }
            let Some(data) = &head.data else {
                let close_at = due + self.faults.slow_close;
                if now < close_at {
                    return Next::Wait(Some(close_at));
                }
                self.queue.pop_front();
                return Next::Eof;
            };
            if let Some(at) = self.next_write.filter(|at| now < *at) {
                return Next::Wait(Some(at));
            }
            let left = (data.len() - head.sent) as u64;
            if self.limit_at.is_some_and(|at| self.forwarded >= at) {
                // Past the limit: swallowed.
                self.queued -= left as usize;
                self.queue.pop_front();
                continue;
            }
            if self.reset_at.is_some_and(|at| self.forwarded >= at) {
                return Next::End(Ending::Reset);
            }
            if self.close_at.is_some_and(|at| self.forwarded >= at) {
                return Next::End(Ending::Close);
            }
            let mut take = left;
            for at in [self.limit_at, self.reset_at, self.close_at]
                .into_iter()
                .flatten()
            {
                take = take.min(at - self.forwarded);
            }
            let (size, _) = self.faults.slice;
            if size > 0 {
                take = take.min(size as u64);
            }
            if self.faults.bandwidth > 0 {
                // Pieces of 10 ms at the rate, so the pace is even.
                take = take.min((self.faults.bandwidth / 100).max(1));
            }
            let take = take as usize;
            let head = self.queue.front_mut().expect("the head was just seen");
            let data = head.data.as_ref().expect("a data chunk");
            let piece = data[head.sent..head.sent + take].to_vec();
            head.sent += take;
            if head.sent == data.len() {
                self.queue.pop_front();
            }
            self.queued -= take;
            self.forwarded += take as u64;
            return Next::Write(piece);
        }
    }

    /// Sets the pace after a piece of `n` bytes written from `started`,
    /// and says whether a count ends the connection now.
    pub(super) fn wrote(&mut self, n: usize, started: Instant) -> Option<Ending> {
        let (size, pause) = self.faults.slice;
        let mut next = (size > 0).then(|| started + pause);
        if self.faults.bandwidth > 0 {
            let takes = Duration::from_secs_f64(n as f64 / self.faults.bandwidth as f64);
            next = next.max(Some(started + takes));
        }
        self.next_write = next;
        if self.reset_at == Some(self.forwarded) {
            return Some(Ending::Reset);
        }
        if self.close_at == Some(self.forwarded) {
            return Some(Ending::Close);
        }
        None
    }

    /// A number in [-1, 1) (xorshift64*: jitter needs no better).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A seed that differs from pipe to pipe and run to run.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(changes: &[Change]) -> PipeState {
        let mut state = PipeState::new(FaultSet::default());
        changes.iter().for_each(|c| state.apply(*c));
        state
    }

    /// Every piece `next` hands out at `now`, pretending each write is
    /// instant, until it says to wait or end.
    fn drain(state: &mut PipeState, now: Instant) -> (Vec<usize>, Next) {
        let mut pieces = Vec::new();
        loop {
            match state.next(now) {
                Next::Write(piece) => {
                    pieces.push(piece.len());
                    if let Some(how) = state.wrote(piece.len(), now) {
                        return (pieces, Next::End(how));
                    }
                    // Pretend the pace has passed.
                    state.next_write = None;
                }
                other => return (pieces, other),
            }
        }
    }

    #[test]
    fn a_piece_is_no_larger_than_the_slice_the_pace_or_the_bytes_left_before_a_count() {
        let now = Instant::now();
        let mut sliced = state(&[Change::Slice(4, Duration::ZERO)]);
        sliced.push(now, Some(vec![0; 10]));
        assert_eq!(drain(&mut sliced, now).0, [4, 4, 2]);

        let mut paced = state(&[Change::Bandwidth(300)]);
        paced.push(now, Some(vec![0; 7]));
        assert_eq!(drain(&mut paced, now).0, [3, 3, 1], "10 ms at 300 B/s");

        let mut counted = state(&[Change::Slice(4, Duration::ZERO), Change::CloseAfter(6)]);
        counted.push(now, Some(vec![0; 10]));
        let (pieces, end) = drain(&mut counted, now);
        assert_eq!(pieces, [4, 2]);
        assert!(matches!(end, Next::End(Ending::Close)));
    }

    #[test]
    fn past_a_limit_chunks_are_swallowed_and_the_end_of_file_still_goes() {
        let now = Instant::now();
        let mut state = state(&[Change::Limit(3)]);
        state.push(now, Some(vec![0; 2]));
        state.push(now, Some(vec![0; 2]));
        state.push(now, Some(vec![0; 5]));
        state.push(now, None);
        let (pieces, next) = drain(&mut state, now);
        assert_eq!(pieces, [2, 1]);
        assert!(matches!(next, Next::Eof));
        assert_eq!(state.queued, 0);
    }

    #[test]
    fn a_chunk_is_due_its_latency_after_it_arrived_and_a_count_starts_when_set() {
        let now = Instant::now();
        let mut state = state(&[Change::Latency(Duration::from_millis(50))]);
        state.forwarded = 100;
        state.apply(Change::ResetAfter(1));
        state.push(now, Some(vec![0; 2]));
        assert!(
            matches!(state.next(now), Next::Wait(Some(at)) if at == now + Duration::from_millis(50))
        );
        let later = now + Duration::from_millis(50);
        assert!(matches!(state.next(later), Next::Write(piece) if piece.len() == 1));
        assert_eq!(state.wrote(1, later), Some(Ending::Reset));
    }

    #[test]
    fn held_bytes_wait_for_release() {
        let now = Instant::now();
        let mut state = state(&[Change::Hold(true)]);
        state.push(now, Some(vec![1]));
        assert!(matches!(state.next(now), Next::Wait(None)));
        state.apply(Change::Hold(false));
        assert!(matches!(state.next(now), Next::Write(_)));
    }
}
