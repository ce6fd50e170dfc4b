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
//!
//! Lock order: `receiving` or `sending`, then `session` (a reader that
//! holds `receiving` only tries `sending`); `session` is never held across
//! a socket call.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::socket::{self, Peek};
use super::transport::Transport;

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
    /// Held by whoever sends records to the socket, with the buffer the
    /// records are made in.
    sending: Mutex<Vec<u8>>,
    /// A reader made records (an alert, a key update) while a writer was
    /// sending: whoever holds `sending` next sends them.
    answers: AtomicBool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("tcp", &self.tcp).finish()
    }
}

/// Runs the handshake of `session` on `tcp`, within `timeout`. On failure
/// the stream comes back with the error, so that the caller decides when
/// the peer sees it close (after counting it, say).
pub(crate) fn handshake(
    tcp: TcpStream,
    session: rustls::Connection,
    timeout: Duration,
) -> Result<Tls, (io::Error, TcpStream)> {
    let mut session = session;
    if let Err(e) = shake(&tcp, &mut session, timeout) {
        return Err((e, tcp));
    }
    // The handshake ran on the blocking socket; from here every call goes
    // through the socket layer's stream (non-blocking on Windows).
    Ok(Tls {
        tcp: socket::Stream::new(tcp)?,
        session: Mutex::new(session),
        receiving: Mutex::new(Received {
            buf: vec![0; RECORD],
            start: 0,
            end: 0,
        }),
        sending: Mutex::new(Vec::new()),
        answers: AtomicBool::new(false),
    })
}

fn shake(tcp: &TcpStream, session: &mut rustls::Connection, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let (read, write) = (tcp.read_timeout()?, tcp.write_timeout()?);
    let mut stream = tcp;
    while session.is_handshaking() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?;
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        match session.complete_io(&mut stream) {
            Ok((0, 0)) if session.is_handshaking() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed during the TLS handshake",
                ))
            }
            Ok(_) => {}
            Err(e) if socket::is_socket_timeout(e.kind()) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
            Err(e) => return Err(e),
        }
    }
    tcp.set_read_timeout(read)?;
    tcp.set_write_timeout(write)
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
    /// now by a reader (`buf`) if no writer is busy, else by the next
    /// writer after its own; a peek (no `buf`: the monitor, or a check
    /// made under the slot lock) never sends, since a peer that does not
    /// read would block it. The link's close sends what is left.
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

    /// Records wait in the session: the flag tells the next writer, and
    /// `now` sends them at once unless a writer is sending.
    fn answer(&self, now: bool) {
        self.answers.store(true, Ordering::Release);
        if now {
            self.flush_if_idle();
        }
    }

    /// Sends the records the session holds if the flag is up, unless a
    /// writer is sending: a writer looks at the flag again once it has
    /// let go of `sending`, so the records go out either way.
    fn flush_if_idle(&self) {
        if let Some(mut records) = self.sending.try_lock() {
            // Cut short, a record would be half on the wire and the next
            // one unreadable: the stream ends instead.
            if self.answers.swap(false, Ordering::AcqRel)
                && self.send_pending(&mut records).is_err()
            {
                self.tcp.shutdown();
            }
        }
    }

    /// Sends every record the session holds. Called with `sending` held:
    /// `records` is its buffer.
    fn send_pending(&self, records: &mut Vec<u8>) -> io::Result<()> {
        loop {
            records.clear();
            {
                let mut session = self.session.lock();
                while session.wants_write() {
                    session.write_tls(records)?;
                }
            }
            if records.is_empty() {
                return Ok(());
            }
            self.send_records(records)?;
        }
    }

    /// Writes records whole. A timeout part-way leaves the TLS stream
    /// broken (the peer has part of a record, and rustls has moved on), so
    /// every timeout here is a broken connection, never "nothing sent".
    fn send_records(&self, mut records: &[u8]) -> io::Result<()> {
        while !records.is_empty() {
            match self.tcp.write(records) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => records = &records[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS write timed out: the encrypted stream cannot go on",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Transport for Tls {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // One reader at a time, which also keeps a peek from taking the
        // ciphertext this read waits for.
        let mut rx = self.receiving.lock();
        if let Some(read) = Self::plaintext(&mut self.session.lock(), buf) {
            return read;
        }
        if rx.pending().is_empty() {
            rx.fill(|b| self.tcp.read(b))?;
        }
        match self.absorb(&mut rx, Some(buf))? {
            Some(read) => Ok(read),
            // No whole record yet: back to the caller, which reads again
            // once it has looked at its deadline (the frame reader retries
            // an interrupted read), so a peer that trickles a record out
            // cannot hold a call past its deadline.
            None => Err(io::ErrorKind::Interrupted.into()),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut records = self.sending.lock();
        records.clear();
        let taken = {
            let mut session = self.session.lock();
            let taken = session.writer().write(buf)?;
            while session.wants_write() {
                session.write_tls(&mut *records)?;
            }
            taken
        };
        let mut sent = self.send_records(&records);
        if sent.is_ok() && self.answers.swap(false, Ordering::AcqRel) {
            sent = self.send_pending(&mut records);
        }
        // A huge write should not pin its records for the link's lifetime.
        if records.capacity() > 4 * RECORD {
            *records = Vec::new();
        }
        drop(records);
        // Answers a reader made while this writer held `sending`.
        if sent.is_ok() && self.answers.load(Ordering::Acquire) {
            self.flush_if_idle();
        }
        // A timeout here is `TimedOut` (see `send_records`): the plaintext
        // was taken and its records not all sent.
        sent?;
        Ok(taken)
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
                match rx.fill(|b| self.tcp.recv_now(b)) {
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

    fn wait_hangup(&self) -> io::Result<Peek> {
        match self.tcp.wait_hangup()? {
            // What is left to read is ciphertext: ask the session.
            Peek::Data | Peek::Eof => self.peek_now(),
            Peek::Empty => Ok(Peek::Empty),
        }
    }

    fn shutdown(&self) {
        // A close_notify first, when it can go without waiting for a
        // writer (which may be blocked on a peer that does not read).
        if let Some(mut records) = self.sending.try_lock() {
            records.clear();
            {
                let mut session = self.session.lock();
                session.send_close_notify();
                while session.wants_write() {
                    if session.write_tls(&mut *records).is_err() {
                        break;
                    }
                }
            }
            let _ = self.tcp.send_now(&records);
        }
        self.tcp.shutdown();
    }

    fn socket(&self) -> &TcpStream {
        self.tcp.socket()
    }
}
