//! The codec step of the data path: a frame's bytes to text or JSON, and
//! text or JSON to a frame, in the link's encoding and terminator. Pure
//! code: the link hands it frames and scratch buffers.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::separator::Separator;
use crate::encoding::Encoding;
use crate::error::{Error, Result};

/// Encoding and terminator, with the terminator's search built once.
/// Small and cloned into each half of a link, so a call finds it beside
/// the half's other state (a short terminator is held inline).
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) encoding: Encoding,
    pub(crate) separator: Separator,
}

impl Codec {
    pub(crate) fn new(encoding: Encoding, terminator: &[u8]) -> Codec {
        Codec {
            encoding,
            separator: Separator::new(terminator),
        }
    }

    #[inline]
    pub(crate) fn terminator(&self) -> &[u8] {
        self.separator.bytes()
    }

    /// A frame read through the terminator, stripped and decoded strictly.
    #[inline]
    pub(crate) fn decode_line(&self, frame: &[u8]) -> Result<String> {
        self.encoding.decode(self.strip(frame))
    }

    /// A frame read through the terminator, parsed as JSON. An invalid
    /// line is consumed and handed back whole in the error.
    pub(crate) fn parse_json<T: DeserializeOwned>(&self, frame: &[u8]) -> Result<T> {
        let text = self.encoding.decode_cow(self.strip(frame))?;
        serde_json::from_str(&text).map_err(|source| Error::json(text.into_owned(), source))
    }

    /// Appends `line`, encoded strictly, and the terminator to `out`. Text
    /// the encoding cannot hold leaves `out` as it was.
    #[inline]
    pub(crate) fn encode_line(&self, line: &str, out: &mut Vec<u8>) -> Result<()> {
        self.encoding.encode_into(line, out)?;
        out.extend_from_slice(self.terminator());
        Ok(())
    }

    /// Appends `value` as compact JSON and the terminator to `out`. With the
    /// ascii and latin-1 encodings non-ASCII characters are escaped, as
    /// Python's `json.dumps` does, so any value can be sent.
    pub(crate) fn encode_json<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if self.encoding == Encoding::Utf8 {
            serde_json::to_writer(&mut *out, value).map_err(Error::Serialize)?;
        } else {
            let mut text = serde_json::to_string(value).map_err(Error::Serialize)?;
            if matches!(self.encoding, Encoding::Ascii | Encoding::Latin1) {
                text = escape_non_ascii(&text);
            }
            self.encoding.encode_into(&text, out)?;
        }
        out.extend_from_slice(self.terminator());
        Ok(())
    }

    #[inline]
    fn strip<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[..frame.len() - self.terminator().len()]
    }
}

/// JSON text with every non-ASCII character as a `\uXXXX` escape (a
/// surrogate pair above U+FFFF). Such characters only occur inside JSON
/// strings, where the escape means the same character.
fn escape_non_ascii(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_through_every_encoding() {
        for encoding in Encoding::ALL {
            let codec = Codec::new(encoding, b"\r\n");
            let mut frame = Vec::new();
            codec.encode_line("plain text", &mut frame).expect("encode");
            assert!(frame.ends_with(b"\r\n"));
            assert_eq!(codec.decode_line(&frame).expect("decode"), "plain text");
        }
    }

    #[test]
    fn json_for_narrow_encodings_escapes_what_they_cannot_hold() {
        let codec = Codec::new(Encoding::Ascii, b"\n");
        let mut frame = Vec::new();
        codec.encode_json("café 𝄞", &mut frame).expect("encode");
        assert_eq!(frame, b"\"caf\\u00e9 \\ud834\\udd1e\"\n");
        let back: String = codec.parse_json(&frame).expect("parse");
        assert_eq!(back, "café 𝄞");
    }

    #[test]
    fn invalid_json_hands_back_the_line() {
        let codec = Codec::new(Encoding::Utf8, b"\n");
        match codec.parse_json::<serde_json::Value>(b"{oops\n") {
            Err(Error::Json(e)) => assert_eq!(e.line, "{oops"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_the_encoding_cannot_hold_leaves_the_frame_untouched() {
        let codec = Codec::new(Encoding::Latin1, b"\n");
        let mut frame = b"kept".to_vec();
        assert!(matches!(
            codec.encode_line("€", &mut frame),
            Err(Error::Encode(_))
        ));
        assert_eq!(frame, b"kept");
    }
}
