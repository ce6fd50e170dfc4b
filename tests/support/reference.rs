//! A reference decoder for `Encoding::decode`: the standard library's
//! strict decoders and Python's byte-order-mark rules. Shared by the
//! property tests (tests/properties.rs) and the `decode` fuzz target
//! (fuzz/fuzz_targets/decode.rs, which includes this file by path).

use ts_tcpip::Encoding;

/// The standard library's strict decoders, as the reference.
pub fn decode(enc: Encoding, bytes: &[u8]) -> Option<String> {
    let utf16 = |bytes: &[u8], big: bool| -> Option<String> {
        if bytes.len() % 2 != 0 {
            return None;
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| {
                if big {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16(&units).ok()
    };
    let utf32 = |bytes: &[u8], big: bool| -> Option<String> {
        if bytes.len() % 4 != 0 {
            return None;
        }
        bytes
            .chunks_exact(4)
            .map(|q| {
                let q = [q[0], q[1], q[2], q[3]];
                char::from_u32(if big {
                    u32::from_be_bytes(q)
                } else {
                    u32::from_le_bytes(q)
                })
            })
            .collect()
    };
    let native_big = cfg!(target_endian = "big");
    match enc {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Encoding::Utf16 => match bytes {
            [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
            [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
            _ => utf16(bytes, native_big),
        },
        Encoding::Utf16Le => utf16(bytes, false),
        Encoding::Utf16Be => utf16(bytes, true),
        Encoding::Utf32 => match bytes {
            [0xFF, 0xFE, 0, 0, rest @ ..] => utf32(rest, false),
            [0, 0, 0xFE, 0xFF, rest @ ..] => utf32(rest, true),
            _ => utf32(bytes, native_big),
        },
        Encoding::Utf32Le => utf32(bytes, false),
        Encoding::Utf32Be => utf32(bytes, true),
        Encoding::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Encoding::Ascii => bytes
            .is_ascii()
            .then(|| String::from_utf8(bytes.to_vec()).expect("ASCII")),
    }
}
