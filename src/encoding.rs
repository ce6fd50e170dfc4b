//! The names of the text encodings: a small value type every layer uses
//! (the errors name the encoding that failed). Encoding and decoding text
//! is the wire's work (`wire/text.rs`).

use std::fmt;

/// A text encoding, named as Python names it.
///
/// Decoding is strict: an invalid sequence is an [`Error::Decode`](crate::Error::Decode) carrying
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
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
