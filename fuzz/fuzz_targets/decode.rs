//! `Encoding::decode` on arbitrary bytes, for every encoding: never
//! panics; an error holds exactly the input bytes; it accepts exactly what
//! the standard library's strict decoders accept, with the same text; and
//! decode -> encode -> decode is stable (byte for byte where no byte order
//! mark is chosen on the way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ts_tcpip::{Encoding, Error};

#[path = "../../tests/support/reference.rs"]
mod reference;

fuzz_target!(|data: &[u8]| {
    for enc in Encoding::ALL {
        let decoded = enc.decode(data);
        match (&decoded, reference::decode(enc, data)) {
            (Ok(text), Some(want)) => assert_eq!(text, &want, "{enc}"),
            (Err(Error::Decode(e)), None) => {
                assert_eq!(e.bytes, data, "{enc}: the error must hold the bytes");
                assert_eq!(e.encoding, enc);
                assert!(
                    e.position <= data.len(),
                    "{enc}: position {} past {}",
                    e.position,
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
