//! `Encoding::decode` on arbitrary bytes, for every encoding: never
//! panics; an error holds exactly the input bytes; it accepts exactly what
//! the standard library's strict decoders accept, with the same text; and
//! decode -> encode -> decode is stable (byte for byte where no byte order
//! mark is chosen on the way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ts_tcpip::{Encoding, Error};

fn reference(enc: Encoding, bytes: &[u8]) -> Option<String> {
    let utf16 = |bytes: &[u8], big: bool| -> Option<String> {
        if !bytes.len().is_multiple_of(2) {
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
        if !bytes.len().is_multiple_of(4) {
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
            .then(|| String::from_utf8(bytes.to_vec()).expect("ascii")),
    }
}

fuzz_target!(|data: &[u8]| {
    for enc in Encoding::ALL {
        let decoded = enc.decode(data);
        match (&decoded, reference(enc, data)) {
            (Ok(text), Some(want)) => assert_eq!(text, &want, "{enc}"),
            (
                Err(Error::Decode {
                    bytes,
                    encoding,
                    position,
                    ..
                }),
                None,
            ) => {
                assert_eq!(bytes, data, "{enc}: the error must hold the bytes");
                assert_eq!(*encoding, enc);
                assert!(
                    *position <= data.len(),
                    "{enc}: position {position} past {}",
                    data.len()
                );
            }
            (got, want) => panic!("{enc} {data:02x?}: got {got:?}, reference {want:?}"),
        }
        let Ok(text) = decoded else { continue };
        let mut wire = Vec::new();
        enc.encode_into(&text, &mut wire)
            .expect("decoded text encodes again");
        assert_eq!(
            enc.decode(&wire).expect("re-decodes"),
            text,
            "{enc}: decode-encode-decode"
        );
        if !matches!(enc, Encoding::Utf16 | Encoding::Utf32) {
            assert_eq!(wire, data, "{enc}: encode(decode(b)) == b");
        }
    }
});
