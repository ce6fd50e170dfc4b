//! Bytes as text a person can read and a program can read back: the form
//! of bytes in mismatch messages and in capture files.
//!
//! Printable ASCII stays as it is, except the backslash (`\\`); `\r`, `\n`
//! and `\t` are written so; every other byte is `\xNN` (two lowercase hex
//! digits). The result is pure ASCII, and Python's `unicode_escape` codec
//! reads it back (`s.encode().decode("unicode_escape").encode("latin-1")`).

use std::fmt::Write as _;

/// Most bytes a message shows; longer runs show their start and end.
const SHOWN: usize = 256;

/// `bytes` escaped (see the module doc), whole.
#[cfg(test)]
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    escape_into(bytes, &mut out);
    out
}

/// Appends `bytes`, escaped, to `out`.
pub(crate) fn escape_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// `bytes` escaped and quoted for a message, with `"` escaped too (`\"`)
/// so the quotes stay unambiguous; a long run keeps its first and last
/// bytes and says how many it left out.
pub(crate) fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let quote = |bytes: &[u8], out: &mut String| {
        for part in bytes.split_inclusive(|&b| b == b'"') {
            match part.split_last() {
                Some((b'"', before)) => {
                    escape_into(before, out);
                    out.push_str("\\\"");
                }
                _ => escape_into(part, out),
            }
        }
    };
    if bytes.len() <= SHOWN {
        quote(bytes, &mut out);
    } else {
        let tail = SHOWN / 4;
        quote(&bytes[..SHOWN - tail], &mut out);
        let left_out = bytes.len() - SHOWN;
        let _ = write!(out, "\" ... ({left_out} bytes not shown) ... \"");
        quote(&bytes[bytes.len() - tail..], &mut out);
    }
    out.push('"');
    out
}

/// The bytes an escaped text stands for: the inverse of [`escape`]. A
/// backslash followed by anything but `\\`, `r`, `n`, `t` or `xNN` is an
/// error naming the character position; so is a character outside ASCII.
pub(crate) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes().enumerate();
    while let Some((at, b)) = bytes.next() {
        if !b.is_ascii() {
            return Err(format!(
                "byte {at}: not ASCII (bytes outside it are written \\xNN)"
            ));
        }
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next().map(|(_, b)| b) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = |d: Option<(usize, u8)>| d.and_then(|(_, d)| (d as char).to_digit(16));
                match (hex(bytes.next()), hex(bytes.next())) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(format!("byte {at}: \\x needs two hex digits")),
                }
            }
            Some(other) => {
                return Err(format!(
                    "byte {at}: unknown escape \\{}",
                    (other as char).escape_default()
                ))
            }
            None => return Err(format!("byte {at}: a lone backslash at the end")),
        }
    }
    Ok(out)
}

/// Where `got` first differs from `expected` (the shorter one's length if
/// one is a prefix of the other), or None if they are equal.
pub(crate) fn first_difference(expected: &[u8], got: &[u8]) -> Option<usize> {
    if expected == got {
        return None;
    }
    let same = expected.iter().zip(got).take_while(|(a, b)| a == b).count();
    Some(same)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_survives_escape_and_unescape() {
        let all: Vec<u8> = (0..=255).collect();
        let text = escape(&all);
        assert!(text.is_ascii());
        assert!(!text.contains('\n'), "one record per line");
        assert_eq!(unescape(&text).unwrap(), all);
    }

    #[test]
    fn readable_bytes_stay_readable() {
        assert_eq!(escape(b"move 1.5\r\n"), "move 1.5\\r\\n");
        assert_eq!(escape(b"a\\b\t\x00\xff"), "a\\\\b\\t\\x00\\xff");
    }

    #[test]
    fn a_bad_escape_is_an_error_not_a_panic() {
        for bad in ["\\", "\\q", "\\x4", "\\xzz", "caf\u{e9}"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_quoted_run_escapes_its_quotes() {
        assert_eq!(quoted(b"{\"id\":1}\r\n"), "\"{\\\"id\\\":1}\\r\\n\"");
    }

    #[test]
    fn a_long_run_is_shortened_with_a_count() {
        let long = vec![b'a'; 1000];
        let shown = quoted(&long);
        assert!(shown.contains("(744 bytes not shown)"), "{shown}");
        assert!(shown.len() < 300);
    }

    #[test]
    fn the_first_difference_is_found() {
        assert_eq!(first_difference(b"pong", b"pomg"), Some(2));
        assert_eq!(first_difference(b"pong", b"po"), Some(2));
        assert_eq!(first_difference(b"pong", b"pong"), None);
    }
}
