//! The codec step of the data path: a frame's bytes to text or JSON, and
//! text or JSON to a frame, in the link's encoding and terminator. Pure
//! code: the link hands it frames and scratch buffers.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::json;
use super::separator::Separator;
use crate::encoding::Encoding;
use crate::error::{Error, Result};
use crate::json_style::JsonStyle;

/// Encoding and terminator, with the terminator's search built once, and
/// how JSON is written and read. Small and cloned into each half of a
/// link, so a call finds it beside the half's other state (a short
/// terminator is held inline).
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) encoding: Encoding,
    pub(crate) separator: Separator,
    pub(crate) json_style: JsonStyle,
    /// `read_json` takes Python's `NaN`, `Infinity` and `-Infinity`.
    pub(crate) json_non_finite: bool,
}

impl Codec {
    /// Compact JSON written, `NaN` and `Infinity` read: the defaults.
    pub(crate) fn new(encoding: Encoding, terminator: &[u8]) -> Codec {
        Codec {
            encoding,
            separator: Separator::new(terminator),
            json_style: crate::config::DEFAULT_JSON_STYLE,
            json_non_finite: crate::config::DEFAULT_JSON_NON_FINITE,
        }
    }

    /// The same codec, writing JSON in `style` and reading `NaN` and
    /// `Infinity` if `non_finite`.
    pub(crate) fn with_json(self, style: JsonStyle, non_finite: bool) -> Codec {
        Codec {
            json_style: style,
            json_non_finite: non_finite,
            ..self
        }
    }

    /// The same codec with another encoding.
    pub(crate) fn with_encoding(&self, encoding: Encoding) -> Codec {
        Codec {
            encoding,
            ..self.clone()
        }
    }

    /// The same codec with another terminator.
    pub(crate) fn with_terminator(&self, terminator: &[u8]) -> Codec {
        Codec {
            separator: Separator::new(terminator),
            ..self.clone()
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

    /// A frame read through the terminator, parsed as JSON (with Python's
    /// `NaN`, `Infinity` and `-Infinity` unless refused). An invalid line
    /// is consumed and handed back whole in the error.
    pub(crate) fn parse_json<T: DeserializeOwned>(&self, frame: &[u8]) -> Result<T> {
        let text = self.encoding.decode_cow(self.strip(frame))?;
        json::parse(&text, self.json_non_finite)
            .map_err(|source| Error::json_read(text.into_owned(), source, self.json_non_finite))
    }

    /// Appends `line`, encoded strictly, and the terminator to `out`. Text
    /// the encoding cannot hold leaves `out` as it was.
    #[inline]
    pub(crate) fn encode_line(&self, line: &str, out: &mut Vec<u8>) -> Result<()> {
        self.encoding.encode_into(line, out)?;
        out.extend_from_slice(self.terminator());
        Ok(())
    }

    /// Appends `value` as JSON in the codec's style and the terminator to
    /// `out`. In the compact style with the ascii and latin-1 encodings,
    /// non-ASCII characters are escaped, as Python's `json.dumps` does, so
    /// any value can be sent; the Python style is ASCII already.
    pub(crate) fn encode_json<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let style = self.json_style;
        let ascii_or_utf8 = matches!(
            self.encoding,
            Encoding::Utf8 | Encoding::Ascii | Encoding::Latin1
        );
        if self.encoding == Encoding::Utf8 || (style == JsonStyle::Python && ascii_or_utf8) {
            // These encodings are UTF-8 on the ASCII the Python style writes.
            json::write(out, value, style).map_err(Error::Serialize)?;
        } else {
            let mut text = Vec::new();
            json::write(&mut text, value, style).map_err(Error::Serialize)?;
            let mut text = String::from_utf8(text)
                .map_err(|e| Error::Serialize(serde::ser::Error::custom(e)))?;
            if style == JsonStyle::Compact
                && matches!(self.encoding, Encoding::Ascii | Encoding::Latin1)
            {
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
    fn python_style_json_is_ascii_the_same_bytes_in_utf8_ascii_and_latin1() {
        let value = serde_json::json!({"text": "café 😀", "v": [1.0, 2.5e-8]});
        let want = b"{\"text\": \"caf\\u00e9 \\ud83d\\ude00\", \"v\": [1.0, 2.5e-08]}\n";
        for encoding in [Encoding::Utf8, Encoding::Ascii, Encoding::Latin1] {
            let codec = Codec::new(encoding, b"\n").with_json(JsonStyle::Python, true);
            let mut frame = Vec::new();
            codec.encode_json(&value, &mut frame).expect("encode");
            assert_eq!(frame, want, "{encoding}");
        }
    }

    #[test]
    fn python_style_json_in_a_wide_encoding_is_the_same_text_encoded() {
        let python = Codec::new(Encoding::Utf16, b"\n").with_json(JsonStyle::Python, true);
        let mut frame = Vec::new();
        python
            .encode_json(&[f64::NAN, 1e16], &mut frame)
            .expect("encode");
        assert_eq!(python.decode_line(&frame).expect("decode"), "[NaN, 1e+16]");
        let back: Vec<f64> = python.parse_json(&frame).expect("parse");
        assert!(back[0].is_nan() && back[1] == 1e16);
    }

    #[test]
    fn changing_the_encoding_or_terminator_keeps_the_json_settings() {
        let codec = Codec::new(Encoding::Utf8, b"\n").with_json(JsonStyle::Python, false);
        let changed = codec
            .with_encoding(Encoding::Ascii)
            .with_terminator(b"\r\n");
        assert_eq!(changed.json_style, JsonStyle::Python);
        assert!(!changed.json_non_finite);
    }

    #[test]
    fn nan_is_read_by_default_and_refused_with_the_line_when_told() {
        let default = Codec::new(Encoding::Utf8, b"\n");
        let value: Vec<f64> = default.parse_json(b"[NaN, -Infinity]\n").expect("read");
        assert!(value[0].is_nan() && value[1] == f64::NEG_INFINITY);
        let strict = default.clone().with_json(JsonStyle::Compact, false);
        match strict.parse_json::<Vec<f64>>(b"[NaN, -Infinity]\n") {
            Err(e @ Error::Json(_)) => {
                assert_eq!(
                    e.to_string(),
                    "invalid JSON: NaN is not a JSON number in line: [NaN, -Infinity]"
                );
            }
            other => panic!("{other:?}"),
        }
        // Read by default, NaN is not what is wrong with a bad line.
        match default.parse_json::<Vec<f64>>(b"[NaN, 1,]\n") {
            Err(e @ Error::Json(_)) => {
                assert_eq!(e.to_string(), "invalid JSON in line: [NaN, 1,]");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compact_json_in_a_wide_encoding_keeps_non_ascii_text_as_it_is() {
        // Only the narrow encodings (ascii, latin-1) need escapes: UTF-16
        // holds any character, so serde_json's text goes out unchanged.
        let codec = Codec::new(Encoding::Utf16, b"\n");
        let mut frame = Vec::new();
        codec.encode_json("café 😀", &mut frame).expect("encode");
        assert_eq!(codec.decode_line(&frame).expect("decode"), "\"café 😀\"");
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
