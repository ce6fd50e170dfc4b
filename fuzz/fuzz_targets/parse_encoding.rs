//! `str::parse::<Encoding>` on arbitrary text: never panics, refuses with
//! `InvalidArgument` only, and whatever it accepts displays as a name that
//! parses back to the same encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ts_tcpip::{Encoding, Error};

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    match name.parse::<Encoding>() {
        Ok(enc) => {
            let canonical = enc.to_string();
            assert_eq!(
                canonical.parse::<Encoding>().ok(),
                Some(enc),
                "{name:?} -> {canonical}"
            );
            assert!(Encoding::ALL.contains(&enc));
        }
        Err(Error::InvalidArgument(msg)) => assert!(!msg.is_empty()),
        Err(other) => panic!("{name:?}: {other:?}"),
    }
});
