//! Text encodings of `read_str`/`write_str`: pure, strict, byte-exact with
//! Python's codecs of the same names.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A text encoding, named as Python names it.
///
/// Decoding is strict: an invalid sequence is an [`Error::Decode`] carrying
/// the bytes, never a replacement character. [`Encoding::Utf16`] and
/// [`Encoding::Utf32`] write a little-endian byte order mark on every
/// write, as Python does, and read either mark (no mark: native order, as
/// Python reads it).
///
/// ```
/// use ts_tcpip::Encoding;
/// let enc: Encoding = "ISO8859-1".parse()?;
/// assert_eq!(enc, Encoding::Latin1);
/// assert_eq!(enc.to_string(), "latin-1");
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum Encoding {
    /// `"utf-8"`, the default.
    #[default]
    Utf8,
    /// `"utf-16"`: BOM then little-endian on write; either BOM on read.
    Utf16,
    /// `"utf-16-le"`: no BOM.
    Utf16Le,
    /// `"utf-16-be"`: no BOM.
    Utf16Be,
    /// `"utf-32"`: BOM then little-endian on write; either BOM on read.
    Utf32,
    /// `"utf-32-le"`: no BOM.
    Utf32Le,
    /// `"utf-32-be"`: no BOM.
    Utf32Be,
    /// `"latin-1"` (ISO 8859-1): one byte per character up to U+00FF.
    Latin1,
    /// `"ascii"`: one byte per character up to U+007F.
    Ascii,
}

/// Byte order of a multi-byte code unit.
#[derive(Copy, Clone)]
enum Order {
    Little,
    Big,
}

const NATIVE: Order = if cfg!(target_endian = "big") {
    Order::Big
} else {
    Order::Little
};

impl Encoding {
    /// Every encoding, in declaration order.
    pub const ALL: [Encoding; 9] = [
        Encoding::Utf8,
        Encoding::Utf16,
        Encoding::Utf16Le,
        Encoding::Utf16Be,
        Encoding::Utf32,
        Encoding::Utf32Le,
        Encoding::Utf32Be,
        Encoding::Latin1,
        Encoding::Ascii,
    ];

    /// The Python name: `"utf-8"`, `"utf-16-le"`, `"latin-1"`, ...
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf16Le => "utf-16-le",
            Encoding::Utf16Be => "utf-16-be",
            Encoding::Utf32 => "utf-32",
            Encoding::Utf32Le => "utf-32-le",
            Encoding::Utf32Be => "utf-32-be",
            Encoding::Latin1 => "latin-1",
            Encoding::Ascii => "ascii",
        }
    }

    /// Appends the encoded `text` to `out`. On error `out` is left as it
    /// was and the error names the first character that does not fit.
    ///
    /// ```
    /// use ts_tcpip::Encoding;
    /// let mut out = Vec::new();
    /// Encoding::Utf16.encode_into("hi", &mut out)?;
    /// assert_eq!(out, b"\xff\xfeh\0i\0");
    /// assert!(Encoding::Ascii.encode_into("café", &mut out).is_err());
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    #[inline]
    pub fn encode_into(self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        // UTF-8 is a copy: inlined, it costs no more than the caller's own.
        if self == Encoding::Utf8 {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        self.encode_other(text, out)
    }

    fn encode_other(self, text: &str, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Encoding::Utf8 => out.extend_from_slice(text.as_bytes()),
            Encoding::Utf16 => {
                out.extend_from_slice(&[0xFF, 0xFE]);
                encode_utf16(text, Order::Little, out);
            }
            Encoding::Utf16Le => encode_utf16(text, Order::Little, out),
            Encoding::Utf16Be => encode_utf16(text, Order::Big, out),
            Encoding::Utf32 => {
                out.extend_from_slice(&[0xFF, 0xFE, 0, 0]);
                encode_utf32(text, Order::Little, out);
            }
            Encoding::Utf32Le => encode_utf32(text, Order::Little, out),
            Encoding::Utf32Be => encode_utf32(text, Order::Big, out),
            Encoding::Latin1 => encode_narrow(self, text, 0xFF, out)?,
            Encoding::Ascii => encode_narrow(self, text, 0x7F, out)?,
        }
        Ok(())
    }

    /// Decodes `bytes` strictly.
    ///
    /// ```
    /// use ts_tcpip::{Encoding, Error};
    /// assert_eq!(Encoding::Latin1.decode(b"caf\xe9")?, "café");
    /// let err = Encoding::Utf8.decode(b"caf\xe9").unwrap_err();
    /// assert!(matches!(err, Error::Decode { position: 3, .. }));
    /// # Ok::<(), ts_tcpip::Error>(())
    /// ```
    // Inlined whole: a `Result<String>` handed back through memory costs
    // more than decoding a short line (see `benches/link.rs`).
    #[inline(always)]
    pub fn decode(self, bytes: &[u8]) -> Result<String> {
        match self {
            // The common case, without the general path's detour through
            // Cow; validating the copy rather than the buffer measured 25
            // fewer instructions per 40-byte line (callgrind).
            Encoding::Utf8 => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Ok(text),
                Err(e) => Err(utf8_decode_error(e)),
            },
            _ => self.decode_cow(bytes).map(Cow::into_owned),
        }
    }

    /// Decodes, borrowing when the bytes are already UTF-8 text.
    pub(crate) fn decode_cow(self, bytes: &[u8]) -> Result<Cow<'_, str>> {
        let decoded = match self {
            Encoding::Utf8 => decode_utf8(bytes).map(Cow::Borrowed),
            Encoding::Utf16 => {
                let (order, skip) = match bytes {
                    [0xFF, 0xFE, ..] => (Order::Little, 2),
                    [0xFE, 0xFF, ..] => (Order::Big, 2),
                    _ => (NATIVE, 0),
                };
                decode_utf16(&bytes[skip..], order).map_err(|(p, r)| (p + skip, r))
            }
            Encoding::Utf16Le => decode_utf16(bytes, Order::Little),
            Encoding::Utf16Be => decode_utf16(bytes, Order::Big),
            Encoding::Utf32 => {
                let (order, skip) = match bytes {
                    [0xFF, 0xFE, 0, 0, ..] => (Order::Little, 4),
                    [0, 0, 0xFE, 0xFF, ..] => (Order::Big, 4),
                    _ => (NATIVE, 0),
                };
                decode_utf32(&bytes[skip..], order).map_err(|(p, r)| (p + skip, r))
            }
            Encoding::Utf32Le => decode_utf32(bytes, Order::Little),
            Encoding::Utf32Be => decode_utf32(bytes, Order::Big),
            Encoding::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Encoding::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
                Some(p) => Err((p, "ordinal not in range(128)")),
                None => decode_utf8(bytes).map(Cow::Borrowed),
            },
        };
        decoded.map_err(|(position, reason)| Error::Decode {
            bytes: bytes.to_vec(),
            encoding: self,
            position,
            reason,
        })
    }
}

/// A decoded text, or where and why decoding stopped.
type Decoded<'a> = std::result::Result<Cow<'a, str>, (usize, &'static str)>;

fn decode_utf8(bytes: &[u8]) -> std::result::Result<&str, (usize, &'static str)> {
    std::str::from_utf8(bytes).map_err(utf8_failure)
}

#[cold]
fn utf8_decode_error(e: std::string::FromUtf8Error) -> Error {
    let (position, reason) = utf8_failure(e.utf8_error());
    Error::Decode {
        bytes: e.into_bytes(),
        encoding: Encoding::Utf8,
        position,
        reason,
    }
}

/// Where and why UTF-8 decoding stopped, in Python's words.
fn utf8_failure(e: std::str::Utf8Error) -> (usize, &'static str) {
    let reason = match e.error_len() {
        None => "unexpected end of data",
        Some(_) => "invalid byte sequence",
    };
    (e.valid_up_to(), reason)
}

fn encode_narrow(enc: Encoding, text: &str, max: u32, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.reserve(text.len());
    for (position, character) in text.chars().enumerate() {
        match u8::try_from(u32::from(character)) {
            Ok(b) if u32::from(b) <= max => out.push(b),
            _ => {
                out.truncate(start);
                return Err(Error::Encode {
                    encoding: enc,
                    character,
                    position,
                });
            }
        }
    }
    Ok(())
}

fn put_u16(unit: u16, order: Order, out: &mut Vec<u8>) {
    out.extend_from_slice(&match order {
        Order::Little => unit.to_le_bytes(),
        Order::Big => unit.to_be_bytes(),
    });
}

fn encode_utf16(text: &str, order: Order, out: &mut Vec<u8>) {
    out.reserve(text.len() * 2);
    for unit in text.encode_utf16() {
        put_u16(unit, order, out);
    }
}

fn encode_utf32(text: &str, order: Order, out: &mut Vec<u8>) {
    out.reserve(text.len() * 4);
    for c in text.chars() {
        let c = u32::from(c);
        out.extend_from_slice(&match order {
            Order::Little => c.to_le_bytes(),
            Order::Big => c.to_be_bytes(),
        });
    }
}

fn unit16(pair: [u8; 2], order: Order) -> u16 {
    match order {
        Order::Little => u16::from_le_bytes(pair),
        Order::Big => u16::from_be_bytes(pair),
    }
}

fn decode_utf16(bytes: &[u8], order: Order) -> Decoded<'static> {
    let unit = |i: usize| unit16([bytes[i], bytes[i + 1]], order);
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut i = 0;
    while i + 1 < bytes.len() {
        let high = u32::from(unit(i));
        let (code, width) = match high {
            0xD800..=0xDBFF if i + 3 >= bytes.len() => return Err((i, "unexpected end of data")),
            0xD800..=0xDBFF => match u32::from(unit(i + 2)) {
                low @ 0xDC00..=0xDFFF => (0x10000 + ((high - 0xD800) << 10 | (low - 0xDC00)), 4),
                _ => return Err((i, "illegal UTF-16 surrogate")),
            },
            _ => (high, 2),
        };
        text.push(char::from_u32(code).ok_or((i, "illegal encoding"))?);
        i += width;
    }
    if i < bytes.len() {
        return Err((i, "truncated data"));
    }
    Ok(Cow::Owned(text))
}

fn decode_utf32(bytes: &[u8], order: Order) -> Decoded<'static> {
    let mut text = String::with_capacity(bytes.len() / 4);
    for (i, quad) in bytes.chunks_exact(4).enumerate() {
        let quad = [quad[0], quad[1], quad[2], quad[3]];
        let code = match order {
            Order::Little => u32::from_le_bytes(quad),
            Order::Big => u32::from_be_bytes(quad),
        };
        match char::from_u32(code) {
            Some(c) => text.push(c),
            None if code > 0x10FFFF => return Err((4 * i, "code point not in range(0x110000)")),
            None => return Err((4 * i, "code point in surrogate code point range")),
        }
    }
    if bytes.len() % 4 != 0 {
        return Err((bytes.len() - bytes.len() % 4, "truncated data"));
    }
    Ok(Cow::Owned(text))
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = Error;

    /// Accepts every spelling Python's `codecs.lookup` accepts for these
    /// nine codecs: case, `-`/`_`/space variants and the aliases
    /// (`"U8"`, `"latin1"`, `"iso-8859-1"`, `"us-ascii"`, `"utf_16le"`, ...).
    fn from_str(name: &str) -> Result<Encoding> {
        let norm = normalize(name);
        // As in Python, the `.` to `_` retry applies to aliases only, so
        // "utf.8" stays unknown while "iso8859.1" finds latin-1.
        let alias = || {
            let alt = norm.replace('.', "_");
            let canonical = Encoding::ALL
                .iter()
                .any(|e| e.name().replace('-', "_") == alt);
            lookup(&alt).filter(|_| !canonical)
        };
        lookup(&norm)
            .or_else(alias)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown encoding: {name:?}")))
    }
}

/// Python's name normalisation: lowercased, and every run of characters
/// other than ASCII letters, digits and `.` becomes one `_` (leading and
/// trailing runs dropped). As in CPython, only ASCII counts as a letter.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut punct = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            if punct && !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            punct = false;
        } else {
            punct = true;
        }
    }
    out
}

/// The canonical names and `encodings.aliases` entries of the nine codecs.
fn lookup(norm: &str) -> Option<Encoding> {
    Some(match norm {
        "utf_8" | "u8" | "utf" | "utf8" | "utf8_ucs2" | "utf8_ucs4" | "cp65001" => Encoding::Utf8,
        "utf_16" | "u16" | "utf16" => Encoding::Utf16,
        "utf_16_le" | "utf_16le" | "unicodelittleunmarked" => Encoding::Utf16Le,
        "utf_16_be" | "utf_16be" | "unicodebigunmarked" => Encoding::Utf16Be,
        "utf_32" | "u32" | "utf32" => Encoding::Utf32,
        "utf_32_le" | "utf_32le" => Encoding::Utf32Le,
        "utf_32_be" | "utf_32be" => Encoding::Utf32Be,
        "latin_1" | "latin1" | "latin" | "l1" | "8859" | "cp819" | "csisolatin1" | "ibm819"
        | "iso8859" | "iso8859_1" | "iso_8859_1" | "iso_8859_1_1987" | "iso_ir_100" => {
            Encoding::Latin1
        }
        "ascii" | "646" | "ansi_x3.4_1968" | "ansi_x3_4_1968" | "ansi_x3.4_1986" | "cp367"
        | "csascii" | "ibm367" | "iso646_us" | "iso_646.irv_1991" | "iso_ir_6" | "us"
        | "us_ascii" => Encoding::Ascii,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/encodings.json");
        let text = std::fs::read_to_string(path).expect("tests/data/encodings.json");
        serde_json::from_str(&text).expect("valid JSON")
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn cases() -> Vec<Value> {
        vectors()["cases"].as_array().expect("cases").clone()
    }

    fn enc(case: &Value) -> Encoding {
        case["encoding"]
            .as_str()
            .expect("name")
            .parse()
            .expect("known")
    }

    #[test]
    fn every_accepted_name_parses_to_its_codec() {
        for (canonical, names) in vectors()["accepted_names"].as_object().expect("map") {
            let expected: Encoding = canonical.parse().expect("canonical");
            assert_eq!(expected.name(), canonical.as_str());
            for name in names.as_array().expect("list") {
                let name = name.as_str().expect("str");
                assert_eq!(name.parse::<Encoding>().expect(name), expected, "{name}");
            }
        }
        for name in [
            " utf-8",
            "utf--8",
            "UTF_16-LE",
            "ANSI_X3.4-1968",
            "Latin 1",
            "iso8859.1",
        ] {
            assert!(name.parse::<Encoding>().is_ok(), "{name}");
        }
        for bad in ["", "utf-7", "utf.8", "latin-2", "ebcdic"] {
            assert!(
                matches!(bad.parse::<Encoding>(), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn b14_vectors_encode_byte_for_byte() {
        for case in cases().iter().filter(|c| c.get("wire_hex").is_some()) {
            let text = case["text"].as_str().expect("text");
            let mut wire = Vec::new();
            enc(case).encode_into(text, &mut wire).expect("encodes");
            wire.extend(hex(case["terminator_hex"].as_str().expect("term")));
            assert_eq!(
                wire,
                hex(case["wire_hex"].as_str().expect("wire")),
                "{case}"
            );
        }
    }

    #[test]
    fn b14_vectors_decode_text_exactly() {
        for case in cases().iter().filter(|c| c.get("wire_hex").is_some()) {
            let wire = hex(case["wire_hex"].as_str().expect("wire"));
            let term = hex(case["terminator_hex"].as_str().expect("term"));
            let body = &wire[..wire.len() - term.len()];
            assert_eq!(
                enc(case).decode(body).expect("decodes"),
                case["text"],
                "{case}"
            );
        }
    }

    #[test]
    fn b14_unencodable_text_is_an_error_naming_the_character() {
        for case in cases().iter().filter(|c| c.get("encode_error").is_some()) {
            let mut out = b"kept".to_vec();
            let err = enc(case)
                .encode_into(case["text"].as_str().expect("text"), &mut out)
                .expect_err("must not encode");
            assert!(matches!(err, Error::Encode { .. }), "{err}");
            assert_eq!(out, b"kept", "nothing appended on error");
            let python = case["encode_error"].as_str().expect("msg");
            let Error::Encode { position, .. } = err else {
                unreachable!()
            };
            assert!(python.contains(&format!("position {position}")), "{python}");
        }
    }

    #[test]
    fn b14_undecodable_bytes_are_an_error_with_the_bytes() {
        for case in cases()
            .iter()
            .filter(|c| c.get("undecodable_hex").is_some())
        {
            let bytes = hex(case["undecodable_hex"].as_str().expect("hex"));
            match enc(case).decode(&bytes) {
                Err(Error::Decode { bytes: got, .. }) => assert_eq!(got, bytes),
                other => panic!("{case}: {other:?}"),
            }
        }
    }

    #[test]
    fn bom_encodings_read_either_mark_and_default_to_native() {
        assert_eq!(Encoding::Utf16.decode(b"\xfe\xff\0h").expect("BE"), "h");
        assert_eq!(
            Encoding::Utf32.decode(b"\0\0\xfe\xff\0\0\0h").expect("BE"),
            "h"
        );
        assert_eq!(
            Encoding::Utf16.decode(b"h\0").expect("no BOM, LE host"),
            "h"
        );
    }

    #[test]
    fn truncated_and_surrogate_input_is_rejected_with_positions() {
        let check = |e: Encoding, b: &[u8], pos: usize| match e.decode(b) {
            Err(Error::Decode { position, .. }) => assert_eq!(position, pos, "{e} {b:?}"),
            other => panic!("{e} {b:?}: {other:?}"),
        };
        check(Encoding::Utf16Le, b"a\0b", 2);
        check(Encoding::Utf16Le, b"a\0\x00\xdc", 2);
        check(Encoding::Utf16Le, b"\x00\xd8a\0", 0);
        check(Encoding::Utf32Le, b"a\0\0\0\0\xd8\0\0", 4);
        check(Encoding::Utf32Be, b"\0\0\0a\0\0", 4);
        check(Encoding::Utf16, b"\xff\xfea", 2);
    }

    #[test]
    fn round_trip_every_encoding_on_representable_text() {
        for e in Encoding::ALL {
            let text = match e {
                Encoding::Ascii => "plain\ttext",
                Encoding::Latin1 => "café µ",
                _ => "café → 😀 Ω",
            };
            let mut out = Vec::new();
            e.encode_into(text, &mut out).expect("encodes");
            assert_eq!(e.decode(&out).expect("decodes"), text, "{e}");
            assert_eq!(e.to_string().parse::<Encoding>().expect("name"), e);
        }
    }
}
