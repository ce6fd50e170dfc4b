//! Captures: both directions of a session, as a [`FaultProxy`] that
//! records saw them, in a line-based text format; and the script that
//! replays one side of one.
//!
//! [`FaultProxy`]: super::FaultProxy

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::script::Script;
use super::show;
use crate::error::{Error, Result};

/// The first line of a capture file.
const HEADER: &str = "# ts-tcpip capture 1";

/// Which way bytes go: through a [`FaultProxy`](super::FaultProxy), and in
/// a [`Capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the program that connected to the proxy) to the
    /// server it forwards to: `>` in a capture.
    ToServer,
    /// From the server to the client: `<` in a capture.
    ToClient,
}

impl Direction {
    /// `>` or `<`.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ToServer => ">",
            Direction::ToClient => "<",
        }
    }

    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A client connected and the proxy connected it to the server
    /// (`open CLIENT SERVER`).
    Open {
        /// The client's address.
        client: SocketAddr,
        /// The server's address.
        server: SocketAddr,
    },
    /// Bytes one side sent, as one read of the proxy took them in
    /// (`>` or `<`).
    Data(Direction, Vec<u8>),
    /// The side that sends this way closed its sending side: end of file
    /// (`>eof` or `<eof`).
    Eof(Direction),
    /// The connection failed while reading from that side: a reset, or
    /// another error (`>reset` or `<reset`).
    Reset(Direction),
}

/// One line of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Since the capture began (the proxy started); a file keeps whole
    /// microseconds.
    pub time: Duration,
    /// The connection, numbered from 1 in the order the proxy accepted
    /// them.
    pub connection: u32,
    /// What happened.
    pub event: Event,
}

impl Record {
    /// A record.
    pub fn new(time: Duration, connection: u32, event: Event) -> Record {
        Record {
            time,
            connection,
            event,
        }
    }
}

/// How a replay times what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// Each send waits as long after the record before it (either way) as
    /// it did in the capture: a server that took 200 ms to answer takes
    /// 200 ms again, counted from when the answer's request has arrived.
    #[default]
    Kept,
    /// No waits: each send follows the step before it at once.
    Compressed,
}

/// Both directions of a session with their times: what a recording
/// [`FaultProxy`](super::FaultProxy) saw
/// ([`FaultProxy::capture`](super::FaultProxy::capture)), or
/// read back from a file ([`Capture::load`]).
///
/// # The file format
///
/// Text, ASCII, one record a line; lines that start with `#` are comments
/// and blank lines are skipped. A record is three or four fields, each
/// separated by one space:
///
/// ```text
/// TIME CONNECTION KIND [PAYLOAD]
/// ```
///
/// - `TIME`: seconds since the capture began, with six decimals (`0.000412`).
/// - `CONNECTION`: the connection's number, from 1, in the order the proxy
///   accepted them.
/// - `KIND` and `PAYLOAD`:
///   - `open CLIENT SERVER`: a client connected from `CLIENT` and the proxy
///     connected it to `SERVER` (addresses as Rust and Python print them).
///   - `> BYTES`: bytes the client sent toward the server, as one read of
///     the proxy took them in (a chunk); `< BYTES` the same from the
///     server toward the client. `BYTES` is everything after the space
///     to the end of the line, escaped: printable ASCII as it is except
///     `\` (written `\\`), `\r`, `\n` and `\t` written so, every other
///     byte `\xNN` (two lowercase hex digits), and a space at the very
///     end written `\x20` so that an editor that trims lines cannot change
///     it. Python's `unicode_escape` codec reads it back.
///   - `>eof` / `<eof`: the client / the server closed its sending side.
///   - `>reset` / `<reset`: reading from the client / the server failed
///     (a reset, usually).
///
/// Records are in the order the proxy saw them; a chunk's time is when
/// the proxy read it, before any fault delayed it.
///
/// ```text
/// # ts-tcpip capture 1
/// 0.000000 1 open 127.0.0.1:43512 127.0.0.1:5000
/// 0.000412 1 > move 1.5\r\n
/// 0.000530 1 < {"ok": true}\r\n
/// 0.250000 1 >eof
/// 0.250310 1 <eof
/// ```
///
/// A few lines of Python read it:
///
/// ```python
/// def records(path):
///     """(seconds, connection, kind, payload); data payloads as bytes."""
///     with open(path, encoding="ascii") as f:
///         for line in f:
///             line = line.rstrip("\n")
///             if not line or line.startswith("#"):
///                 continue
///             time, conn, kind, payload = (line.split(" ", 3) + [""])[:4]
///             if kind in (">", "<"):
///                 payload = payload.encode().decode("unicode_escape").encode("latin-1")
///             yield float(time), int(conn), kind, payload
/// ```
///
/// # Replay
///
/// [`ScriptedPeer::replay_server`](super::ScriptedPeer::replay_server) and
/// [`replay_client`](super::ScriptedPeer::replay_client) turn the first
/// connection of a capture ([`Capture::connection`] picks another) into a
/// script: the side the peer plays is sent chunk by chunk
/// (`send_bytes`), with the captured pauses or none ([`Timing`]); the
/// other side's bytes are expected (`expect_bytes`), consecutive chunks
/// as one, since how a stream is cut into reads differs from run to run.
/// The played side's `eof` becomes `close()` and its `reset` `reset()`;
/// the other side's `eof` becomes `expect_close()`, and its `reset` ends
/// the script there. The script can be extended (`expect_nothing_more()`)
/// before it is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    records: Vec<Record>,
}

impl Capture {
    /// A capture of these records.
    pub fn from_records(records: Vec<Record>) -> Capture {
        Capture { records }
    }

    /// Every record, in order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The records of connection `n` alone.
    pub fn connection(&self, n: u32) -> Capture {
        let records = self.records.iter().filter(|r| r.connection == n);
        Capture::from_records(records.cloned().collect())
    }

    /// Every byte sent `direction`, in order, chunks joined.
    pub fn sent(&self, direction: Direction) -> Vec<u8> {
        let mut bytes = Vec::new();
        for record in &self.records {
            if let Event::Data(d, data) = &record.event {
                if *d == direction {
                    bytes.extend_from_slice(data);
                }
            }
        }
        bytes
    }

    /// Parses a capture's text (see the format above). A line that is not
    /// a record is [`Error::InvalidArgument`] naming its number.
    pub fn parse(text: &str) -> Result<Capture> {
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let record = parse_record(line)
                .map_err(|why| Error::invalid_argument(format!("capture line {}: {why}", i + 1)))?;
            records.push(record);
        }
        Ok(Capture { records })
    }

    /// Reads a capture file.
    pub fn load(path: impl AsRef<Path>) -> Result<Capture> {
        Capture::parse(&std::fs::read_to_string(path)?)
    }

    /// Writes the capture to a file, in the format above.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(std::fs::write(path, self.to_string())?)
    }

    /// `script` with the steps that replay the first connection: the side
    /// `script`'s role plays is sent, the other expected.
    pub(super) fn script(&self, mut script: Script, timing: Timing) -> Script {
        let Some(first) = self.records.iter().map(|r| r.connection).min() else {
            return script;
        };
        let played = match script.plays_server() {
            true => Direction::ToClient,
            false => Direction::ToServer,
        };
        let mut expected = Vec::new();
        let mut last = None;
        for record in self.records.iter().filter(|r| r.connection == first) {
            let gap = last.map_or(Duration::ZERO, |t| record.time.saturating_sub(t));
            last = Some(record.time);
            let wait = timing == Timing::Kept && !gap.is_zero();
            // Bytes expected so far are one expectation, due before
            // anything else happens.
            if !matches!(&record.event, Event::Data(d, _) if *d != played) && !expected.is_empty() {
                script = script.expect_bytes(std::mem::take(&mut expected));
            }
            match &record.event {
                Event::Open { .. } => {}
                Event::Data(d, bytes) if *d != played => expected.extend_from_slice(bytes),
                Event::Data(_, bytes) => {
                    script = if wait { script.pause(gap) } else { script };
                    script = script.send_bytes(bytes);
                }
                Event::Eof(d) if *d != played => script = script.expect_close(),
                Event::Eof(_) => {
                    script = if wait { script.pause(gap) } else { script };
                    script = script.close();
                }
                Event::Reset(d) if *d != played => break,
                Event::Reset(_) => {
                    script = if wait { script.pause(gap) } else { script };
                    script = script.reset();
                    break;
                }
            }
        }
        if !expected.is_empty() {
            script = script.expect_bytes(expected);
        }
        script
    }
}

impl fmt::Display for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(
            f,
            "# TIME CONNECTION KIND [PAYLOAD]: seconds since the start; \
             > client to server, < server to client; bytes escaped (\\\\ \\r \\n \\t \\xNN)"
        )?;
        let mut line = String::new();
        for record in &self.records {
            line.clear();
            write_record(record, &mut line);
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl FromStr for Capture {
    type Err = Error;

    fn from_str(text: &str) -> Result<Capture> {
        Capture::parse(text)
    }
}

/// One record as a line of the file, without the newline.
fn write_record(record: &Record, out: &mut String) {
    let (secs, micros) = (record.time.as_secs(), record.time.subsec_micros());
    let _ = write!(out, "{secs}.{micros:06} {} ", record.connection);
    match &record.event {
        Event::Open { client, server } => {
            let _ = write!(out, "open {client} {server}");
        }
        Event::Data(direction, bytes) => {
            out.push_str(direction.arrow());
            out.push(' ');
            show::escape_into(bytes, out);
            if out.ends_with(' ') {
                out.pop();
                out.push_str("\\x20");
            }
        }
        Event::Eof(direction) => {
            let _ = write!(out, "{}eof", direction.arrow());
        }
        Event::Reset(direction) => {
            let _ = write!(out, "{}reset", direction.arrow());
        }
    }
}

fn parse_record(line: &str) -> std::result::Result<Record, String> {
    let mut fields = line.splitn(4, ' ');
    let (time, connection, kind) = match (fields.next(), fields.next(), fields.next()) {
        (Some(time), Some(connection), Some(kind)) => (time, connection, kind),
        _ => return Err("expected TIME CONNECTION KIND [PAYLOAD]".into()),
    };
    let payload = fields.next();
    let time = parse_seconds(time).ok_or_else(|| format!("bad time {time:?}"))?;
    let connection = connection
        .parse::<u32>()
        .map_err(|_| format!("bad connection number {connection:?}"))?;
    let direction = |arrow: &str| match arrow {
        ">" => Ok(Direction::ToServer),
        "<" => Ok(Direction::ToClient),
        _ => Err(format!("unknown kind {kind:?}")),
    };
    let no_payload = |event: Event| match payload {
        None => Ok(event),
        Some(p) => Err(format!("{kind} takes no payload, found {p:?}")),
    };
    let event = match kind {
        "open" => {
            let addrs = payload.unwrap_or_default();
            let (client, server) = addrs
                .split_once(' ')
                .ok_or_else(|| format!("open needs CLIENT SERVER, found {addrs:?}"))?;
            let addr = |a: &str| {
                a.parse::<SocketAddr>()
                    .map_err(|_| format!("bad address {a:?}"))
            };
            Event::Open {
                client: addr(client)?,
                server: addr(server)?,
            }
        }
        ">" | "<" => {
            let bytes = show::unescape(payload.unwrap_or_default())?;
            if bytes.is_empty() {
                return Err("a data record with no bytes".into());
            }
            Event::Data(direction(kind)?, bytes)
        }
        _ => match kind.split_at(1.min(kind.len())) {
            (arrow, "eof") => no_payload(Event::Eof(direction(arrow)?))?,
            (arrow, "reset") => no_payload(Event::Reset(direction(arrow)?))?,
            _ => return Err(format!("unknown kind {kind:?}")),
        },
    };
    Ok(Record::new(time, connection, event))
}

/// `SECONDS[.FRACTION]`, exactly (no float rounding).
fn parse_seconds(text: &str) -> Option<Duration> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{fraction:0<9}").parse::<u32>().ok()?;
    Some(Duration::new(secs.parse().ok()?, nanos))
}

/// What a recording proxy writes to: the capture so far and its start.
#[derive(Debug)]
pub(super) struct Recorder {
    started: Instant,
    capture: Mutex<Capture>,
}

impl Recorder {
    pub(super) fn new(started: Instant) -> Recorder {
        Recorder {
            started,
            capture: Mutex::new(Capture::default()),
        }
    }

    /// Records `event` of `connection`, stamped `at` (in whole
    /// microseconds, as the file keeps it).
    pub(super) fn record(&self, at: Instant, connection: u32, event: Event) {
        let since = at.saturating_duration_since(self.started);
        let time = Duration::from_micros(since.as_micros() as u64);
        let record = Record::new(time, connection, event);
        self.capture.lock().records.push(record);
    }

    pub(super) fn snapshot(&self) -> Capture {
        self.capture.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the format's documentation, exactly.
    const EXAMPLE: &str = "# ts-tcpip capture 1
0.000000 1 open 127.0.0.1:43512 127.0.0.1:5000
0.000412 1 > move 1.5\\r\\n
0.000530 1 < {\"ok\": true}\\r\\n
0.250000 1 >eof
0.250310 1 <eof
";

    #[test]
    fn the_documented_example_reads_as_documented() {
        let capture = Capture::parse(EXAMPLE).unwrap();
        let records = capture.records();
        assert_eq!(records.len(), 5);
        assert_eq!(
            records[1],
            Record::new(
                Duration::from_micros(412),
                1,
                Event::Data(Direction::ToServer, b"move 1.5\r\n".to_vec())
            )
        );
        assert_eq!(
            records[2].event,
            Event::Data(Direction::ToClient, b"{\"ok\": true}\r\n".to_vec())
        );
        assert_eq!(records[3].event, Event::Eof(Direction::ToServer));
        assert_eq!(records[4].time, Duration::from_micros(250_310));
        // Written back, it is the same text under the header comments.
        let text = capture.to_string();
        let records_only: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let example: Vec<&str> = EXAMPLE.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(records_only, example);
    }

    #[test]
    fn every_event_and_byte_survives_a_write_and_a_read() {
        let all: Vec<u8> = (0..=255).collect();
        let capture = Capture::from_records(vec![
            Record::new(
                Duration::ZERO,
                1,
                Event::Open {
                    client: "[::1]:5".parse().unwrap(),
                    server: "127.0.0.1:6".parse().unwrap(),
                },
            ),
            Record::new(
                Duration::from_micros(1),
                1,
                Event::Data(Direction::ToServer, all),
            ),
            Record::new(
                Duration::from_micros(2),
                1,
                Event::Data(Direction::ToClient, b" trailing space ".to_vec()),
            ),
            Record::new(
                Duration::from_secs(3600),
                2,
                Event::Reset(Direction::ToClient),
            ),
            Record::new(
                Duration::from_secs(3601),
                2,
                Event::Eof(Direction::ToServer),
            ),
        ]);
        let text = capture.to_string();
        assert!(text.is_ascii());
        assert!(
            !text.lines().any(|l| l.ends_with(' ')),
            "no line ends in a space:\n{text}"
        );
        assert_eq!(Capture::parse(&text).unwrap(), capture);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        for (bad, why) in [
            ("x 1 > a", "bad time"),
            ("0.1 one > a", "bad connection"),
            ("0.1 1 ? a", "unknown kind"),
            ("0.1 1 > \\q", "unknown escape"),
            ("0.1 1 >eof extra", "no payload"),
            ("0.1 1 open 1.2.3.4", "CLIENT SERVER"),
            ("0.1", "expected TIME"),
        ] {
            let err = Capture::parse(&format!("# ok\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 2") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
    }
}
