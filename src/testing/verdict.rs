//! What a scripted peer reports: each way the program strayed from the
//! script ([`Mismatch`]), and all of them together ([`ScriptFailure`]),
//! the error [`ScriptedPeer::finish`](super::ScriptedPeer::finish) returns.

use std::fmt;

/// One way the program under test did not follow the script: which step,
/// what it expected, what arrived instead.
///
/// Its `Display` is one line: `step 2, expect_line("pong") within 50ms:
/// expected "pong\r\n"; got "pomg\r\n" at offset 6 (first difference at
/// offset 8)`. Bytes are shown escaped (`\r`, `\n`, `\t`, `\\`, `\xNN`) and
/// offsets count the bytes the program sent on the connection, from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// The step's number in the script, from 1; 0 is the connection
    /// itself (accepting it or connecting).
    pub step: usize,
    /// The step as the script wrote it: `expect_line("pong") within 50ms`.
    pub action: String,
    /// What the step expected.
    pub expected: String,
    /// What arrived instead (or that nothing did).
    pub got: String,
    /// Where in the program's byte stream it happened, when that is known.
    pub offset: Option<u64>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            0 => write!(f, "{}: ", self.action)?,
            n => write!(f, "step {n}, {}: ", self.action)?,
        }
        write!(f, "expected {}; got {}", self.expected, self.got)
    }
}

impl std::error::Error for Mismatch {}

/// The verdict of a scripted peer whose program did not follow its script:
/// every [`Mismatch`], in the order they happened, and the steps that did
/// not run (after a mismatch that ends the script, or because the peer was
/// dropped first).
///
/// Its `Display` lists them, one a line, under a line naming the peer:
///
/// ```text
/// scripted peer `controller`: 2 mismatches
///   step 2, expect_line("pong"): expected "pong\r\n"; got "pomg\r\n" at offset 6 (first difference at offset 8)
///   step 4, expect_nothing_more(): expected nothing more; got "extra\r\n" at offset 20
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScriptFailure {
    /// The peer's name (its `name(..)`, or `peer`).
    pub peer: String,
    /// Every mismatch, in order; never empty.
    pub mismatches: Vec<Mismatch>,
    /// The steps that did not run, numbered and written as the script
    /// wrote them.
    pub not_run: Vec<String>,
}

impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.mismatches.len();
        let s = if n == 1 { "" } else { "es" };
        write!(f, "scripted peer `{}`: {n} mismatch{s}", self.peer)?;
        for mismatch in &self.mismatches {
            write!(f, "\n  {mismatch}")?;
        }
        if !self.not_run.is_empty() {
            write!(f, "\n  not run: {}", self.not_run.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ScriptFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.mismatches
            .first()
            .map(|m| m as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_a_list() {
        let failure = ScriptFailure {
            peer: "controller".into(),
            mismatches: vec![Mismatch {
                step: 2,
                action: "expect_line(\"pong\")".into(),
                expected: "\"pong\\r\\n\"".into(),
                got: "\"pomg\\r\\n\" at offset 6".into(),
                offset: Some(6),
            }],
            not_run: vec!["3 send_line(\"bye\")".into()],
        };
        assert_eq!(
            failure.to_string(),
            "scripted peer `controller`: 1 mismatch\n  step 2, expect_line(\"pong\"): \
             expected \"pong\\r\\n\"; got \"pomg\\r\\n\" at offset 6\n  not run: 3 send_line(\"bye\")"
        );
    }
}
