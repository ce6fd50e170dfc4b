//! Finding a frame's separator (the link's terminator, or the one given to
//! `read_until`) in the receive buffer.
//!
//! Terminators are short ("\r\n", "\n"), and a line usually ends within a
//! few dozen bytes: for those, `memchr` on the separator's last byte and a
//! look at the bytes before it beats a general substring search, whose
//! set-up costs more than the scan. Longer separators use `memchr::memmem`,
//! which stays linear whatever the peer sends.

use memchr::memmem::Finder;

/// Longest separator found by its last byte. The scan costs at most this
/// many compares per candidate byte, so a peer cannot make it quadratic.
const SHORT: usize = 4;

/// A separator, ready to be searched for.
#[derive(Debug, Clone)]
pub(crate) enum Separator {
    Short {
        bytes: [u8; SHORT],
        len: usize,
        last: ByteFinder,
    },
    // Boxed: far bigger than the short form, and rare.
    Long(Box<Finder<'static>>),
}

impl Separator {
    /// `sep` must not be empty (terminators are checked when set).
    pub(crate) fn new(sep: &[u8]) -> Separator {
        match sep.len() {
            1..=SHORT => {
                let mut bytes = [0; SHORT];
                bytes[..sep.len()].copy_from_slice(sep);
                Separator::Short {
                    bytes,
                    len: sep.len(),
                    last: ByteFinder::new(sep[sep.len() - 1]),
                }
            }
            _ => Separator::Long(Box::new(Finder::new(sep).into_owned())),
        }
    }

    /// The separator itself.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Separator::Short { bytes, len, .. } => &bytes[..*len],
            Separator::Long(finder) => finder.needle(),
        }
    }

    /// Where the separator first starts in `hay`.
    #[inline]
    pub(crate) fn find(&self, hay: &[u8]) -> Option<usize> {
        match self {
            Separator::Short { last, .. } => find_short(self.bytes(), last, hay),
            Separator::Long(finder) => finder.find(hay),
        }
    }
}

/// A separator's last byte, found with SSE2 (every x86_64 has it) through
/// a searcher built once: `memchr::memchr` would pick a searcher on every
/// call, and AVX2 costs more to set up than it saves on a short line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteFinder {
    byte: u8,
    #[cfg(target_arch = "x86_64")]
    sse2: Option<memchr::arch::x86_64::sse2::memchr::One>,
}

impl ByteFinder {
    fn new(byte: u8) -> ByteFinder {
        ByteFinder {
            byte,
            #[cfg(target_arch = "x86_64")]
            sse2: memchr::arch::x86_64::sse2::memchr::One::new(byte),
        }
    }

    #[inline]
    fn find(&self, hay: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse2) = &self.sse2 {
            return sse2.find(hay);
        }
        memchr::memchr(self.byte, hay)
    }
}

#[inline]
fn find_short(sep: &[u8], last: &ByteFinder, hay: &[u8]) -> Option<usize> {
    let (_, head) = sep.split_last()?;
    // Each candidate is an occurrence of the last byte far enough in for
    // the head to fit before it.
    let mut from = head.len();
    loop {
        let end = from + last.find(hay.get(from..)?)?;
        let start = end - head.len();
        // A byte loop: a call to memcmp costs more than three compares.
        if hay[start..end].iter().zip(head).all(|(a, b)| a == b) {
            return Some(start);
        }
        from = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(sep: &[u8], hay: &[u8]) -> Option<usize> {
        hay.windows(sep.len()).position(|w| w == sep)
    }

    #[test]
    fn finds_the_first_occurrence_of_short_and_long_separators() {
        let cases: &[(&[u8], &[u8], Option<usize>)] = &[
            (b"\n", b"abc\ndef\n", Some(3)),
            (b"\r\n", b"a\nb\rc\r\nd\r\n", Some(5)),
            (b"\r\n", b"\r\n", Some(0)),
            (b"\r\n", b"\n\r", None),
            (b"\r\n", b"", None),
            (b"XYZZY", b"XYZZXYZZY", Some(4)),
            (b"aaaa", b"aaabaaaa", Some(4)),
        ];
        for &(sep, hay, want) in cases {
            assert_eq!(Separator::new(sep).find(hay), want, "{sep:?} in {hay:?}");
        }
    }

    proptest! {
        /// Small alphabets make near misses (a last byte without its head)
        /// common.
        #[test]
        fn agrees_with_a_naive_search(
            sep in proptest::collection::vec(0u8..3, 1..8),
            hay in proptest::collection::vec(0u8..3, 0..200),
        ) {
            let separator = Separator::new(&sep);
            prop_assert_eq!(separator.bytes(), &sep[..]);
            prop_assert_eq!(separator.find(&hay), naive(&sep, &hay));
        }
    }
}
