//! Text in an [`Encoding`]: strict, byte-exact with Python's codecs of the
//! same names, and the names Python accepts for them. Pure code.

use std::borrow::Cow;
use std::str::FromStr;

use crate::encoding::Encoding;
use crate::error::{Error, Result};

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
    /// assert!(matches!(&err, Error::Decode(d) if d.position == 3));
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
        decoded.map_err(|(position, reason)| Error::decode(bytes.to_vec(), self, position, reason))
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
    Error::decode(e.into_bytes(), Encoding::Utf8, position, reason)
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
                return Err(Error::encode(enc, character, position));
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
            .ok_or_else(|| Error::invalid_argument(format!("unknown encoding: {name:?}")))
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
mod tests;
