//! The script a [`ScriptedPeer`] plays: a builder of steps, checked and
//! turned into bytes by [`Script::start`].

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use super::show;
use crate::config::{DEFAULT_ENCODING, DEFAULT_TERMINATOR};
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::wire::codec::Codec;
use crate::wire::BinaryStruct;

/// How long an expectation waits for its bytes unless the script says
/// otherwise ([`Script::within`], [`Script::default_deadline`]): 5 s. Also
/// the bound on accepting or making the connection and on each send. Long
/// enough for a loaded test machine, short enough that a failing test
/// fails in seconds.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Which end of the connection the peer plays.
#[derive(Debug, Clone, Copy)]
pub(super) enum Role {
    /// Listens on loopback, port 0, and accepts one connection.
    Server,
    /// Connects to this address.
    Client(SocketAddr),
}

/// One step, as the script holds it until [`Script::start`] encodes it.
#[derive(Debug, Clone)]
pub(super) enum Step {
    ExpectLine(String),
    ExpectBytes(Vec<u8>),
    ExpectJson(serde_json::Value),
    ExpectStruct(Vec<u8>),
    ExpectClose,
    ExpectNothingFor(Duration),
    ExpectNothingMore,
    SendLine(String),
    SendJson(serde_json::Value),
    SendBytes(Vec<u8>),
    Pause(Duration),
    StopReading,
    GoSilent,
    Close,
    CloseMidFrame(Vec<u8>),
    Reset,
}

impl Step {
    fn is_expectation(&self) -> bool {
        matches!(
            self,
            Step::ExpectLine(_)
                | Step::ExpectBytes(_)
                | Step::ExpectJson(_)
                | Step::ExpectStruct(_)
                | Step::ExpectClose
        )
    }

    /// Reads what the program sends.
    fn reads(&self) -> bool {
        self.is_expectation() || matches!(self, Step::ExpectNothingFor(_) | Step::ExpectNothingMore)
    }

    fn sends(&self) -> bool {
        matches!(
            self,
            Step::SendLine(_) | Step::SendJson(_) | Step::SendBytes(_) | Step::CloseMidFrame(_)
        )
    }

    /// The step as a script writes it, for messages.
    fn describe(&self) -> String {
        match self {
            Step::ExpectLine(text) => format!("expect_line({text:?})"),
            Step::ExpectBytes(bytes) => format!("expect_bytes({})", show::quoted(bytes)),
            Step::ExpectJson(value) => format!("expect_json({value})"),
            Step::ExpectStruct(bytes) => format!("expect_struct({} bytes)", bytes.len()),
            Step::ExpectClose => "expect_close()".into(),
            Step::ExpectNothingFor(d) => format!("expect_nothing_for({d:?})"),
            Step::ExpectNothingMore => "expect_nothing_more()".into(),
            Step::SendLine(text) => format!("send_line({text:?})"),
            Step::SendJson(value) => format!("send_json({value})"),
            Step::SendBytes(bytes) => format!("send_bytes({})", show::quoted(bytes)),
            Step::Pause(d) => format!("pause({d:?})"),
            Step::StopReading => "stop_reading()".into(),
            Step::GoSilent => "go_silent()".into(),
            Step::Close => "close()".into(),
            Step::CloseMidFrame(bytes) => format!("close_mid_frame({})", show::quoted(bytes)),
            Step::Reset => "reset()".into(),
        }
    }
}

/// A step ready to run: what it does on the wire, and how it reads in a
/// message.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) action: Action,
    /// The step as the script wrote it: `expect_line("pong") within 50ms`.
    pub(super) text: String,
    /// How long an expectation waits; a send's bound.
    pub(super) deadline: Duration,
}

/// A step as the runner does it: lines and JSON already encoded.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// These bytes through the terminator (the terminator included).
    ExpectLine(Vec<u8>),
    ExpectBytes(Vec<u8>),
    ExpectJson(serde_json::Value),
    ExpectClose,
    ExpectNothingFor(Duration),
    ExpectNothingMore,
    Send(Vec<u8>),
    Pause(Duration),
    /// Nothing to do on the wire: a marker that later steps do not read.
    StopReading,
    GoSilent,
    Close,
    CloseMidFrame(Vec<u8>),
    Reset,
}

/// Everything [`ScriptedPeer::start`](Script::start) needs, checked.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) role: Role,
    pub(super) name: String,
    pub(super) codec: Codec,
    pub(super) connect_deadline: Duration,
    pub(super) steps: Vec<Planned>,
}

/// What a [`ScriptedPeer`](super::ScriptedPeer) will do, step by step: built with
/// [`ScriptedPeer::server`](super::ScriptedPeer::server) or
/// [`ScriptedPeer::client`](super::ScriptedPeer::client), then
/// [`start`](Script::start)ed.
///
/// Expectations (`expect_*`) read what the program under test sends and
/// compare it; each waits at most its deadline ([`DEFAULT_DEADLINE`], or
/// [`within`](Script::within) right after it), so no step hangs. Sends
/// (`send_*`) write; the other steps pause, stop reading, go silent, close
/// or reset. Lines and JSON use the script's terminator and encoding (the
/// crate's defaults, `\r\n` and UTF-8, unless set), as a link would.
///
/// A script that cannot run (a step after `reset()`, an expectation after
/// `stop_reading()`, text the encoding cannot hold) is
/// [`Error::InvalidArgument`] from `start()`, naming the step.
#[derive(Debug, Clone)]
#[must_use = "a script does nothing until start() is called"]
pub struct Script {
    role: Role,
    name: String,
    encoding: Encoding,
    terminator: Vec<u8>,
    deadline: Duration,
    steps: Vec<(Step, Option<Duration>)>,
    error: Option<String>,
}

impl Script {
    pub(super) fn new(role: Role) -> Script {
        Script {
            role,
            name: String::new(),
            encoding: DEFAULT_ENCODING,
            terminator: DEFAULT_TERMINATOR.to_vec(),
            deadline: DEFAULT_DEADLINE,
            steps: Vec::new(),
            error: None,
        }
    }

    /// True for the server form.
    pub(super) fn plays_server(&self) -> bool {
        matches!(self.role, Role::Server)
    }

    fn push(mut self, step: Step) -> Script {
        self.steps.push((step, None));
        self
    }

    /// Keeps the first thing wrong with the script, for `start()`.
    fn refuse(mut self, why: String) -> Script {
        self.error.get_or_insert(why);
        self
    }

    /// Names the peer in messages, logs and its thread (`tcpip-peer NAME`).
    pub fn name(mut self, name: impl Into<String>) -> Script {
        self.name = name.into();
        self
    }

    /// The encoding of lines and JSON, for the whole script (default
    /// UTF-8).
    pub fn encoding(mut self, encoding: Encoding) -> Script {
        self.encoding = encoding;
        self
    }

    /// The terminator of lines and JSON, for the whole script (default
    /// `\r\n`). An empty one is refused by `start()`.
    pub fn terminator(mut self, terminator: impl Into<Vec<u8>>) -> Script {
        self.terminator = terminator.into();
        self
    }

    /// The deadline of every expectation not given one with
    /// [`within`](Script::within), of accepting or making the connection,
    /// and of each send, for the whole script (default
    /// [`DEFAULT_DEADLINE`]).
    pub fn default_deadline(mut self, deadline: Duration) -> Script {
        self.deadline = deadline;
        self
    }

    /// Gives the expectation just added its own deadline: the bytes must
    /// have arrived within `deadline` of the step's start (the end of the
    /// step before it). Anywhere else it is refused by `start()`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ts_tcpip::testing::ScriptedPeer;
    /// let script = ScriptedPeer::server()
    ///     .send_line("ping")
    ///     .expect_line("pong").within(Duration::from_millis(50));
    /// ```
    pub fn within(mut self, deadline: Duration) -> Script {
        match self.steps.last_mut() {
            Some((step, bound)) if step.is_expectation() => {
                *bound = Some(deadline);
                self
            }
            other => {
                let after = other.map_or("the start".to_owned(), |(s, _)| s.describe());
                self.refuse(format!(
                    "within({deadline:?}) follows {after}, not an expectation"
                ))
            }
        }
    }

    /// Expects a line: `text`, encoded, then the terminator.
    pub fn expect_line(self, text: impl Into<String>) -> Script {
        self.push(Step::ExpectLine(text.into()))
    }

    /// Expects exactly these bytes.
    pub fn expect_bytes(self, bytes: impl AsRef<[u8]>) -> Script {
        self.push(Step::ExpectBytes(bytes.as_ref().to_vec()))
    }

    /// Expects a line holding JSON equal to `value` (compared as JSON
    /// values: spacing and key order do not matter).
    pub fn expect_json<T: Serialize + ?Sized>(self, value: &T) -> Script {
        match serde_json::to_value(value) {
            Ok(value) => self.push(Step::ExpectJson(value)),
            Err(e) => self.refuse(format!("expect_json: the value is not JSON: {e}")),
        }
    }

    /// Expects exactly the bytes of `value` (as `write_from` sends them).
    pub fn expect_struct(self, value: &dyn BinaryStruct) -> Script {
        let mut bytes = Vec::with_capacity(value.size());
        value.encode(&mut bytes);
        self.push(Step::ExpectStruct(bytes))
    }

    /// Expects the program to close the connection (end of file), with
    /// nothing before it.
    pub fn expect_close(self) -> Script {
        self.push(Step::ExpectClose)
    }

    /// Expects nothing to arrive for `quiet`: a byte that does is a
    /// mismatch (and is consumed). The program closing is not a byte.
    pub fn expect_nothing_for(self, quiet: Duration) -> Script {
        self.push(Step::ExpectNothingFor(quiet))
    }

    /// Expects nothing more: the last step. The peer reads until the test
    /// calls [`finish`](super::ScriptedPeer::finish) (or drops the peer); a byte
    /// that arrives by then, or was left over by the expectations before,
    /// is a mismatch, and the first one ends the script at once (the
    /// program hears the close). This is how a test says "and nothing
    /// else arrived"; without it, bytes after the last expectation are
    /// left unread and not judged. The program closing is not a byte.
    pub fn expect_nothing_more(self) -> Script {
        self.push(Step::ExpectNothingMore)
    }

    /// Sends `text`, encoded, then the terminator.
    pub fn send_line(self, text: impl Into<String>) -> Script {
        self.push(Step::SendLine(text.into()))
    }

    /// Sends these bytes as they are, in one write.
    pub fn send_bytes(self, bytes: impl AsRef<[u8]>) -> Script {
        self.push(Step::SendBytes(bytes.as_ref().to_vec()))
    }

    /// Sends `value` as compact JSON and the terminator, as `write_json`
    /// does.
    pub fn send_json<T: Serialize + ?Sized>(self, value: &T) -> Script {
        match serde_json::to_value(value) {
            Ok(value) => self.push(Step::SendJson(value)),
            Err(e) => self.refuse(format!("send_json: the value is not JSON: {e}")),
        }
    }

    /// Sends the bytes of `value`, as `write_from` does.
    pub fn send_struct(self, value: &dyn BinaryStruct) -> Script {
        let mut bytes = Vec::with_capacity(value.size());
        value.encode(&mut bytes);
        self.push(Step::SendBytes(bytes))
    }

    /// Does nothing for `pause` (a controller that takes its time).
    pub fn pause(self, pause: Duration) -> Script {
        self.push(Step::Pause(pause))
    }

    /// Reads nothing from here on: what the program sends piles up in the
    /// socket buffers until its writes block (a peer that stopped
    /// reading). Sends may follow; expectations may not.
    pub fn stop_reading(self) -> Script {
        self.push(Step::StopReading)
    }

    /// Neither reads nor sends nor closes from here on, holding the
    /// connection open until [`finish`](super::ScriptedPeer::finish) or drop (a
    /// peer that froze). The last step.
    pub fn go_silent(self) -> Script {
        self.push(Step::GoSilent)
    }

    /// Closes the peer's side (the program reads end of file). The peer
    /// still reads: expectations may follow (`expect_close()`: the
    /// program closes too); sends may not.
    pub fn close(self) -> Script {
        self.push(Step::Close)
    }

    /// Sends `partial` (the start of a frame) and closes at once, so the
    /// program reads end of file in the middle of a frame.
    pub fn close_mid_frame(self, partial: impl AsRef<[u8]>) -> Script {
        self.push(Step::CloseMidFrame(partial.as_ref().to_vec()))
    }

    /// Resets the connection (RST, by closing with SO_LINGER 0): the
    /// program's next read or write fails with "connection reset". The
    /// last step.
    pub fn reset(self) -> Script {
        self.push(Step::Reset)
    }

    /// The script checked and encoded, or what is wrong with it.
    pub(super) fn plan(self) -> Result<Plan> {
        if let Some(why) = self.error {
            return Err(Error::invalid_argument(format!("script: {why}")));
        }
        crate::config::check_separator("terminator", &self.terminator)?;
        let codec = Codec::new(self.encoding, &self.terminator);
        let (mut reading, mut sending, mut ended) = (true, true, None);
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, (step, bound)) in self.steps.into_iter().enumerate() {
            let text = match bound {
                Some(bound) => format!("{} within {bound:?}", step.describe()),
                None => step.describe(),
            };
            let refuse = |why: &str| {
                Err(Error::invalid_argument(format!(
                    "script: step {}, {text}: {why}",
                    i + 1
                )))
            };
            if let Some(last) = ended {
                return refuse(&format!("nothing may follow {last}"));
            }
            if step.reads() && !reading {
                return refuse("an expectation after stop_reading()");
            }
            if (step.sends() || matches!(step, Step::Close | Step::Reset)) && !sending {
                return refuse("the peer has closed its side");
            }
            match &step {
                Step::StopReading => reading = false,
                Step::Close | Step::CloseMidFrame(_) => sending = false,
                Step::GoSilent => ended = Some("go_silent()"),
                Step::Reset => ended = Some("reset()"),
                Step::ExpectNothingMore => ended = Some("expect_nothing_more()"),
                _ => {}
            }
            let deadline = bound.unwrap_or(self.deadline);
            let action = match step {
                Step::ExpectLine(line) => {
                    let mut bytes = Vec::new();
                    match codec.encode_line(&line, &mut bytes) {
                        Ok(()) => Action::ExpectLine(bytes),
                        Err(e) => return refuse(&e.to_string()),
                    }
                }
                Step::ExpectBytes(bytes) | Step::ExpectStruct(bytes) => Action::ExpectBytes(bytes),
                Step::ExpectJson(value) => Action::ExpectJson(value),
                Step::ExpectClose => Action::ExpectClose,
                Step::ExpectNothingFor(quiet) => Action::ExpectNothingFor(quiet),
                Step::ExpectNothingMore => Action::ExpectNothingMore,
                Step::SendLine(line) => {
                    let mut bytes = Vec::new();
                    match codec.encode_line(&line, &mut bytes) {
                        Ok(()) => Action::Send(bytes),
                        Err(e) => return refuse(&e.to_string()),
                    }
                }
                Step::SendJson(value) => {
                    let mut bytes = Vec::new();
                    match codec.encode_json(&value, &mut bytes) {
                        Ok(()) => Action::Send(bytes),
                        Err(e) => return refuse(&e.to_string()),
                    }
                }
                Step::SendBytes(bytes) => Action::Send(bytes),
                Step::Pause(pause) => Action::Pause(pause),
                Step::StopReading => Action::StopReading,
                Step::GoSilent => Action::GoSilent,
                Step::Close => Action::Close,
                Step::CloseMidFrame(bytes) => Action::CloseMidFrame(bytes),
                Step::Reset => Action::Reset,
            };
            steps.push(Planned {
                action,
                text,
                deadline,
            });
        }
        Ok(Plan {
            role: self.role,
            name: self.name,
            codec,
            connect_deadline: self.deadline,
            steps,
        })
    }
}
