//! TLS under the link (feature `tls`): a [`Transport`] over rustls, so
//! that every read and write method works unchanged over an encrypted
//! stream.
//!
//! One thread reads while another writes, as on plain TCP: the rustls
//! session is locked only to move bytes in and out of it, never while the
//! socket blocks. The reader receives ciphertext with the session
//! unlocked (one reader at a time: `receiving`); a writer encrypts under
//! the lock, then sends the records unlocked (one writer at a time:
//! `sending`, which keeps records in the order rustls made them). So a
//! writer blocked on a peer that does not read never stops the reader.
//! Records the socket had no room for by a write's deadline stay in
//! `sending`, and go out first, before any record made later: a deadline
//! never leaves half a record on the wire.
//!
//! Lock order: `receiving` or `sending`, then `session` (a reader that
//! holds `receiving` only tries `sending`); `session` is never held across
//! a socket call.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::socket::{self, Handshaking, Peek, Wake};
use super::transport::Transport;
use crate::deadline::Deadline;
use crate::sync::Mutex;

/// Ciphertext asked of the socket at a time.
const RECORD: usize = 16 * 1024;

/// Ciphertext received from the socket and not yet handed to the session:
/// the session takes it only while it holds no plaintext (rustls refuses
/// more once its plaintext buffer is full, and one socket read can hold
/// the end of a record begun in the last one and many records after it).
struct Received {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Received {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Receives into the whole buffer (nothing may be pending): how many
    /// bytes came, 0 at end of file.
    fn fill(&mut self, recv: impl FnOnce(&mut [u8]) -> io::Result<usize>) -> io::Result<usize> {
        debug_assert!(self.pending().is_empty());
        let n = recv(&mut self.buf)?;
        (self.start, self.end) = (0, n);
        Ok(n)
    }
}

/// TLS over a connected TCP socket, after the handshake.
pub(crate) struct Tls {
    tcp: socket::Stream,
    session: Mutex<rustls::Connection>,
    /// Held by whoever receives ciphertext from the socket, with what it
    /// received and the session has not taken yet.
    receiving: Mutex<Received>,
    /// Held by whoever sends records to the socket, with the records made
    /// and not yet sent.
    sending: Mutex<Outgoing>,
    /// A reader made records (an alert, a key update) while a writer was
    /// sending: whoever holds `sending` next sends them.
    answers: AtomicBool,
}

/// Records made and not yet sent: `buf[sent..]`.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
}

impl Outgoing {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("tcp", &self.tcp).finish()
    }
}

/// Runs the handshake of `session` on `tcp` until `deadline`, each wait
/// ended at once by `wake` (a close, or a server making room); `received`
/// goes up when the peer first sends a byte. On failure the stream comes
/// back with the error, so that the caller decides when the peer sees it
/// close (after counting it, say).
pub(crate) fn handshake(
    tcp: TcpStream,
    mut session: rustls::Connection,
    deadline: Deadline,
    wake: Option<&Wake>,
    received: Option<&AtomicBool>,
) -> Result<Tls, (io::Error, TcpStream)> {
    if let Err(e) = shake(&tcp, &mut session, deadline, wake, received) {
        return Err((e, tcp));
    }
    Ok(Tls {
        tcp: socket::Stream::new(tcp)?,
        session: Mutex::new(session),
        receiving: Mutex::new(Received {
            buf: vec![0; RECORD],
            start: 0,
            end: 0,
        }),
        sending: Mutex::new(Outgoing::default()),
        answers: AtomicBool::new(false),
    })
}

fn shake(
    tcp: &TcpStream,
    session: &mut rustls::Connection,
    deadline: Deadline,
    wake: Option<&Wake>,
    received: Option<&AtomicBool>,
) -> io::Result<()> {
    // Non-blocking, each wait a poll that the deadline and `wake` bound.
    tcp.set_nonblocking(true)?;
    let mut io = Handshaking {
        socket: tcp,
        wake,
        deadline,
        received,
    };
    while session.is_handshaking() {
        if let (0, 0) = session.complete_io(&mut io)? {
            if session.is_handshaking() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed during the TLS handshake",
                ));
            }
        }
    }
    // What the handshake's last flight left (a server's session tickets).
    while session.wants_write() {
        session.write_tls(&mut io)?;
    }
    Ok(())
}

impl Tls {
    /// Decrypted bytes into `buf`, if the session has any: `None` when it
    /// needs more ciphertext first.
    fn plaintext(session: &mut rustls::Connection, buf: &mut [u8]) -> Option<io::Result<usize>> {
        match session.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            // The peer closed the TCP stream without TLS's close_notify:
            // for a link, that is its end of file too.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
            other => Some(other),
        }
    }

    /// Hands the pending ciphertext to the session (none pending: the
    /// socket's end of file) until the session holds plaintext or takes
    /// it all, then reads what it decrypted into `buf` if there is a
    /// `buf`, all under one lock; the ciphertext not taken stays pending.
    /// Records the session made in answer (alerts, key updates) are sent
    /// now, without waiting, by a reader (`buf`) if no writer is busy,
    /// else by the next writer before its own; a peek (no `buf`: the
    /// monitor, or a check made under the slot lock) never sends.
    fn absorb(&self, rx: &mut Received, buf: Option<&mut [u8]>) -> io::Result<Option<usize>> {
        let reader = buf.is_some();
        let mut session = self.session.lock();
        loop {
            let mut cipher = rx.pending();
            let taken = session.read_tls(&mut cipher)?;
            rx.start += taken;
            let state = match session.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // The alert rustls made goes out before the link ends.
                    drop(session);
                    self.answer(reader);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            if rx.pending().is_empty() || state.plaintext_bytes_to_read() > 0 {
                break;
            }
            if taken == 0 {
                // The session takes nothing and decrypts nothing: a
                // record too large for it, which rustls reports itself.
                return Err(io::Error::other(
                    "TLS: received data the session has no room for",
                ));
            }
        }
        let read = buf
            .and_then(|buf| Self::plaintext(&mut session, buf))
            .transpose()?;
        let answer = session.wants_write();
        drop(session);
        if answer {
            self.answer(reader);
        }
        Ok(read)
    }

    /// Records wait in the session: the flag tells whoever sends next, and
    /// `now` sends them at once unless a writer is sending.
    fn answer(&self, now: bool) {
        self.answers.store(true, Ordering::Release);
        if now {
            if let Some(mut out) = self.sending.try_lock() {
                // What the socket does not take now waits for the next
                // writer; a broken stream is the reader's to hear.
                let _ = self.send_out(&mut out, Deadline::Now);
            }
        }
    }

    /// Moves the records the session holds behind those waiting. Called
    /// with `sending` held: `out` is its buffer.
    fn take_records(&self, out: &mut Outgoing) -> io::Result<()> {
        let mut session = self.session.lock();
        while session.wants_write() {
            session.write_tls(&mut out.buf)?;
        }
        Ok(())
    }

    /// Sends the records waiting, and any a reader made meanwhile, by
    /// `deadline`: `WouldBlock` if some still wait then. Called with
    /// `sending` held: `out` is its buffer.
    fn send_out(&self, out: &mut Outgoing, deadline: Deadline) -> io::Result<()> {
        loop {
            if out.pending().is_empty() {
                if !self.answers.swap(false, Ordering::AcqRel) {
                    break;
                }
                self.take_records(out)?;
                if out.pending().is_empty() {
                    break;
                }
            }
            match self.tcp.write(out.pending(), deadline) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.sent += n,
                Err(e) => return Err(e),
            }
        }
        out.buf.clear();
        out.sent = 0;
        // A huge write should not pin its records for the link's lifetime.
        if out.buf.capacity() > 4 * RECORD {
            out.buf = Vec::new();
        }
        Ok(())
    }
}

impl Transport for Tls {
    fn read(&self, buf: &mut [u8], deadline: Deadline, spin: Duration) -> io::Result<usize> {
        // One reader at a time (the read half sees to that), which also
        // keeps a peek from taking the ciphertext this read waits for; a
        // peek only tries this lock.
        let mut rx = deadline
            .lock(&self.receiving)
            .ok_or(io::ErrorKind::WouldBlock)?;
        loop {
            if let Some(read) = Self::plaintext(&mut self.session.lock(), buf) {
                return read;
            }
            let eof =
                rx.pending().is_empty() && rx.fill(|b| self.tcp.read(b, deadline, spin))? == 0;
            if let Some(read) = self.absorb(&mut rx, Some(buf))? {
                return Ok(read);
            }
            if eof {
                return Ok(0);
            }
            // No whole record yet: more ciphertext, by the same deadline,
            // so a peer that trickles a record out cannot hold the call
            // past it.
        }
    }

    fn write(&self, buf: &[u8], deadline: Deadline) -> io::Result<usize> {
        let mut out = deadline
            .lock(&self.sending)
            .ok_or(io::ErrorKind::WouldBlock)?;
        // Records an earlier write left go first, and are out before more
        // is taken, or the records waiting could grow without bound.
        self.send_out(&mut out, deadline)?;
        let taken = {
            let mut session = self.session.lock();
            let taken = session.writer().write(buf)?;
            while session.wants_write() {
                session.write_tls(&mut out.buf)?;
            }
            taken
        };
        // What the socket does not take by the deadline waits: the
        // plaintext is taken, its records go out before any later ones.
        match self.send_out(&mut out, deadline) {
            Ok(()) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    fn flush(&self, deadline: Deadline) -> io::Result<()> {
        let mut out = deadline
            .lock(&self.sending)
            .ok_or(io::ErrorKind::WouldBlock)?;
        self.send_out(&mut out, deadline)
    }

    fn peek_now(&self) -> io::Result<Peek> {
        {
            let mut session = self.session.lock();
            let state = session
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 {
                return Ok(Peek::Data);
            }
            if state.peer_has_closed() {
                return Ok(Peek::Eof);
            }
        }
        match self.tcp.peek_now()? {
            Peek::Data => {}
            other => return Ok(other),
        }
        // Ciphertext waits: take in what has arrived and look again, unless
        // a reader is receiving (then whatever came is its to read).
        let Some(mut rx) = self.receiving.try_lock() else {
            return Ok(Peek::Data);
        };
        loop {
            let mut eof = false;
            if rx.pending().is_empty() {
                match rx.fill(|b| self.tcp.read(b, Deadline::Now, Duration::ZERO)) {
                    Ok(n) => eof = n == 0,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Peek::Empty),
                    Err(e) => return Err(e),
                }
            }
            self.absorb(&mut rx, None)?;
            let state = self
                .session
                .lock()
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 {
                return Ok(Peek::Data);
            }
            if eof || state.peer_has_closed() {
                return Ok(Peek::Eof);
            }
        }
    }

    fn wait_hangup(&self, kick: Option<&Wake>) -> io::Result<Peek> {
        match self.tcp.wait_hangup(kick)? {
            // What is left to read is ciphertext: ask the session.
            Peek::Data | Peek::Eof => self.peek_now(),
            Peek::Empty => Ok(Peek::Empty),
        }
    }

    fn send_closed(&self) -> io::Result<bool> {
        self.tcp.send_closed()
    }

    fn shutdown(&self) {
        // A close_notify after the records waiting, when it can go without
        // waiting for a writer (which may be blocked on a peer that does
        // not read).
        if let Some(mut out) = self.sending.try_lock() {
            {
                let mut session = self.session.lock();
                session.send_close_notify();
            }
            self.answers.store(true, Ordering::Release);
            let _ = self.send_out(&mut out, Deadline::Now);
        }
        self.tcp.shutdown();
    }
}
