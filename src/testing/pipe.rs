//! One connection through a [`FaultProxy`](super::FaultProxy): its two
//! sockets and, each way, a pipe. A pipe has a reader thread, blocked in
//! `read` on the side bytes come from, and a writer thread that lets
//! queued bytes out when the faults allow.
//!
//! With no fault on and nothing queued, the reader writes what it read
//! itself, at once (`write_all`): the only cost a transparent proxy adds
//! is one thread's wake-up each way. Otherwise it stamps each chunk with
//! the time it arrived and queues it, and the writer applies the faults
//! from the pipe's small state as each chunk comes due, so a fault set
//! while the proxy runs applies to every byte not yet forwarded.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::capture::{Direction, Event, Recorder};
use super::faults::{Change, Ending, FaultSet, Next, PipeState};
use crate::deadline::Deadline;
use crate::link::socket::Stream;

/// Bytes a pipe holds before its reader stops reading, so that a held or
/// slowed direction pushes back on the sender as a slow peer would (its
/// writes block once this and the sockets' buffers are full).
const MAX_QUEUED: usize = 256 * 1024;

/// A blocked write wakes this often to see whether the connection ended
/// (a reset does not wake a blocked writer on every platform).
const WRITE_POLL: Duration = Duration::from_millis(50);

/// What one read takes in at most.
const CHUNK: usize = 64 * 1024;

/// A connection: the client's socket, the server's, and a pipe each way.
/// The pipes' threads own it; the proxy keeps a weak reference, so the
/// sockets close when the last of its threads ends (with a reset, if one
/// was set up).
pub(super) struct Conn {
    id: u32,
    label: String,
    client: Stream,
    upstream: Stream,
    pipes: [Pipe; 2],
    ending: AtomicBool,
    recorder: Option<Arc<Recorder>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("ending", &self.ending())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// The connection of `client` and `upstream`, each way with `faults`.
    pub(super) fn new(
        id: u32,
        label: String,
        client: TcpStream,
        upstream: TcpStream,
        faults: &[FaultSet; 2],
        recorder: Option<Arc<Recorder>>,
    ) -> io::Result<Arc<Conn>> {
        let stream = |socket: TcpStream| -> io::Result<Stream> {
            socket.set_nodelay(true)?;
            Stream::new(socket).map_err(|(e, _)| e)
        };
        Ok(Arc::new(Conn {
            id,
            label,
            client: stream(client)?,
            upstream: stream(upstream)?,
            pipes: [Pipe::new(&faults[0]), Pipe::new(&faults[1])],
            ending: AtomicBool::new(false),
            recorder,
        }))
    }

    /// Starts the four threads; each holds the connection until it ends.
    pub(super) fn spawn(self: &Arc<Conn>) -> io::Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::with_capacity(4);
        for direction in [Direction::ToServer, Direction::ToClient] {
            let arrow = direction.arrow();
            for (role, writer) in [("in", false), ("out", true)] {
                let conn = Arc::clone(self);
                let name = format!("tcpip-proxy-{role}{} {}{arrow}", self.label, self.id);
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || match writer {
                        false => conn.read_loop(direction),
                        true => conn.write_loop(direction),
                    });
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(e) => {
                        // The ones started end at once and are joined here.
                        self.end(Ending::Close);
                        threads.into_iter().for_each(|t: JoinHandle<()>| {
                            let _ = t.join();
                        });
                        return Err(e);
                    }
                }
            }
        }
        Ok(threads)
    }

    /// Applies a setter's change to one direction, now.
    pub(super) fn change(&self, direction: Direction, change: Change) {
        let pipe = &self.pipes[direction.index()];
        pipe.state.lock().apply(change);
        pipe.changed.notify_all();
    }

    fn ending(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// Ends the connection (the first call decides how) and wakes every
    /// thread of it.
    pub(super) fn end(&self, how: Ending) {
        if self.ending.swap(true, Ordering::AcqRel) {
            return;
        }
        log::debug!("proxy{} connection {}: {how:?}", self.label, self.id);
        for stream in [&self.client, &self.upstream] {
            match how {
                Ending::Close => stream.shutdown(),
                Ending::Reset => {
                    // A reset is SO_LINGER 0 on the last close; until then
                    // nothing may go out, not even a FIN: `interrupt`
                    // wakes the readers without one.
                    let _ = stream.reset_on_close();
                    stream.interrupt();
                }
            }
        }
        for pipe in &self.pipes {
            // Under the lock, so that a thread about to wait sees `ending`.
            let _state = pipe.state.lock();
            pipe.changed.notify_all();
        }
    }

    /// Where bytes going `direction` come from, and where they go.
    fn ends(&self, direction: Direction) -> (&Stream, &Stream) {
        match direction {
            Direction::ToServer => (&self.client, &self.upstream),
            Direction::ToClient => (&self.upstream, &self.client),
        }
    }

    fn record(&self, at: Instant, event: Event) {
        if let Some(recorder) = &self.recorder {
            recorder.record(at, self.id, event);
        }
    }

    fn read_loop(&self, direction: Direction) {
        let (src, dst) = self.ends(direction);
        let pipe = &self.pipes[direction.index()];
        let mut buf = vec![0u8; CHUNK];
        loop {
            let read = src.read(&mut buf, Deadline::Forever, Duration::ZERO);
            let now = Instant::now();
            if self.ending() {
                return;
            }
            let data = match read {
                Ok(0) => None,
                Ok(n) => Some(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    log::debug!(
                        "proxy{} connection {}: reading {}: {e}",
                        self.label,
                        self.id,
                        direction.arrow()
                    );
                    self.record(now, Event::Reset(direction));
                    self.end(Ending::Reset);
                    return;
                }
            };
            if self.recorder.is_some() {
                self.record(
                    now,
                    match data {
                        Some(bytes) => Event::Data(direction, bytes.to_vec()),
                        None => Event::Eof(direction),
                    },
                );
            }
            let mut state = pipe.state.lock();
            if state.transparent() && state.queue.is_empty() && !state.busy {
                // The fast path: forward it now, from this thread. Bytes
                // count as forwarded once handed over, so that a count set
                // meanwhile starts after them.
                state.busy = true;
                state.forwarded += data.map_or(0, |b| b.len() as u64);
                drop(state);
                let sent = match data {
                    Some(bytes) => self.write_all(dst, bytes),
                    None => dst.shutdown_write(),
                };
                let mut state = pipe.state.lock();
                state.busy = false;
                state.done = data.is_none();
                drop(state);
                // The writer has nothing to do (the queue was empty and
                // only this thread fills it) unless it is to leave; not
                // waking it each chunk keeps the fast path one wake-up.
                if data.is_none() {
                    pipe.changed.notify_all();
                }
                if sent.is_err() {
                    self.end(Ending::Reset);
                    return;
                }
            } else {
                while state.queued >= MAX_QUEUED && !self.ending() {
                    pipe.changed.wait(&mut state);
                }
                if self.ending() {
                    return;
                }
                state.push(now, data.map(<[u8]>::to_vec));
                drop(state);
                pipe.changed.notify_all();
            }
            if data.is_none() {
                return;
            }
        }
    }

    fn write_loop(&self, direction: Direction) {
        let (_, dst) = self.ends(direction);
        let pipe = &self.pipes[direction.index()];
        let mut state = pipe.state.lock();
        loop {
            if self.ending() || state.done {
                return;
            }
            let now = Instant::now();
            let queued = state.queued;
            let next = state.next(now);
            if state.queued < queued {
                // Bytes swallowed past a limit: room for a waiting reader.
                pipe.changed.notify_all();
            }
            match next {
                Next::Wait(None) => pipe.changed.wait(&mut state),
                Next::Wait(Some(until)) => {
                    let _ = pipe.changed.wait_until(&mut state, until);
                }
                Next::End(how) => {
                    drop(state);
                    self.end(how);
                    return;
                }
                Next::Eof => {
                    state.busy = true;
                    drop(state);
                    let sent = dst.shutdown_write();
                    state = pipe.state.lock();
                    state.busy = false;
                    state.done = true;
                    if sent.is_err() {
                        drop(state);
                        self.end(Ending::Reset);
                        return;
                    }
                }
                Next::Write(piece) => {
                    state.busy = true;
                    drop(state);
                    let started = Instant::now();
                    let sent = self.write_all(dst, &piece);
                    state = pipe.state.lock();
                    state.busy = false;
                    // Room in the queue for a reader that waits for it.
                    pipe.changed.notify_all();
                    if sent.is_err() {
                        drop(state);
                        self.end(Ending::Reset);
                        return;
                    }
                    if let Some(how) = state.wrote(piece.len(), started) {
                        drop(state);
                        self.end(how);
                        return;
                    }
                }
            }
        }
    }

    /// Writes all of `bytes`, unless the connection ends first.
    fn write_all(&self, dst: &Stream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match dst.write(bytes, Deadline::after(Some(WRITE_POLL))) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self.ending() {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One direction: its faults, what waits to go, and the pace.
struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

impl Pipe {
    fn new(faults: &FaultSet) -> Pipe {
        Pipe {
            state: Mutex::new(PipeState::new(faults.clone())),
            changed: Condvar::new(),
        }
    }
}
