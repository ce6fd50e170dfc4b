//! Packed binary records, the counterpart of Python's `ctypes.Structure`
//! with `_pack_ = 1`: fields in declaration order, no padding, native byte
//! order unless little or big endian is asked for. Pure code over byte
//! slices; the link reads and writes them with `read_into`/`write_from`.

use byteorder::ByteOrder;

use crate::{Error, Result};

/// A fixed-size binary record that can be written to and read from a link
/// (Python's `ctypes.Structure`). Object safe, so
/// [`write_from`](crate::Link::write_from) can mix types. Declare one with
/// [`binary_struct!`](crate::binary_struct).
pub trait BinaryStruct {
    /// Size in bytes on the wire (`ctypes.sizeof`).
    fn size(&self) -> usize;

    /// Appends exactly [`size`](Self::size) bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Sets every field from exactly [`size`](Self::size) bytes. A value a
    /// field cannot take (a bool byte other than 0 or 1) or a wrong length
    /// is [`Error::InvalidStruct`], and `self` is left unchanged.
    fn decode(&mut self, bytes: &[u8]) -> Result<()>;
}

/// One field type of a binary struct. Implemented for the integers, the
/// floats, `bool` and arrays of them; the macro needs nothing else.
#[doc(hidden)]
pub trait Field: Sized {
    /// Bytes on the wire.
    const SIZE: usize;
    /// Appends the field in byte order `B`.
    fn put<B: ByteOrder>(&self, out: &mut Vec<u8>);
    /// Why `bytes` (exactly `SIZE` long) is not a valid value, if it is
    /// not: `": reason"`, or `"[index]: reason"` for an array item.
    fn check(bytes: &[u8]) -> std::result::Result<(), String>;
    /// Reads a value from `bytes`, exactly `SIZE` long and checked.
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self;
}

macro_rules! multi_byte_fields {
    ($($ty:ty => $read:ident, $write:ident;)*) => {$(
        impl Field for $ty {
            const SIZE: usize = std::mem::size_of::<$ty>();
            fn put<B: ByteOrder>(&self, out: &mut Vec<u8>) {
                let mut bytes = [0u8; std::mem::size_of::<$ty>()];
                B::$write(&mut bytes, *self);
                out.extend_from_slice(&bytes);
            }
            fn check(_: &[u8]) -> std::result::Result<(), String> {
                Ok(())
            }
            fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
                B::$read(bytes)
            }
        }
    )*};
}

multi_byte_fields! {
    u16 => read_u16, write_u16;
    u32 => read_u32, write_u32;
    u64 => read_u64, write_u64;
    i16 => read_i16, write_i16;
    i32 => read_i32, write_i32;
    i64 => read_i64, write_i64;
    f32 => read_f32, write_f32;
    f64 => read_f64, write_f64;
}

impl Field for u8 {
    const SIZE: usize = 1;
    fn put<B: ByteOrder>(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    fn check(_: &[u8]) -> std::result::Result<(), String> {
        Ok(())
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        bytes[0]
    }
}

impl Field for i8 {
    const SIZE: usize = 1;
    fn put<B: ByteOrder>(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
    }
    fn check(_: &[u8]) -> std::result::Result<(), String> {
        Ok(())
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        i8::from_ne_bytes([bytes[0]])
    }
}

impl Field for bool {
    const SIZE: usize = 1;
    fn put<B: ByteOrder>(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    /// ctypes writes 0 or 1; anything else is a corrupt record, not `true`.
    fn check(bytes: &[u8]) -> std::result::Result<(), String> {
        match bytes[0] {
            0 | 1 => Ok(()),
            b => Err(format!(": bool byte {b:#04x} is neither 0 nor 1")),
        }
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        bytes[0] == 1
    }
}

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn put<B: ByteOrder>(&self, out: &mut Vec<u8>) {
        self.iter().for_each(|item| item.put::<B>(out));
    }
    fn check(bytes: &[u8]) -> std::result::Result<(), String> {
        bytes
            .chunks_exact(T::SIZE)
            .enumerate()
            .try_for_each(|(i, item)| T::check(item).map_err(|e| format!("[{i}]{e}")))
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        std::array::from_fn(|i| T::get::<B>(&bytes[i * T::SIZE..(i + 1) * T::SIZE]))
    }
}

/// Checks a whole record's length before its fields are read.
#[doc(hidden)]
pub fn check_len(type_name: &'static str, bytes: &[u8], size: usize) -> Result<()> {
    if bytes.len() == size {
        return Ok(());
    }
    Err(invalid(
        type_name,
        bytes,
        format!("expected {size} bytes, got {}", bytes.len()),
    ))
}

/// The error for a record whose bytes are not a valid value.
#[doc(hidden)]
pub fn invalid(type_name: &'static str, bytes: &[u8], reason: String) -> Error {
    Error::InvalidStruct {
        type_name,
        bytes: bytes.to_vec(),
        reason,
    }
}

/// What the macro's expansion needs, reached through `$crate`.
#[doc(hidden)]
pub mod __private {
    pub use super::{check_len, invalid, Field};
    pub use byteorder::{BigEndian, LittleEndian, NativeEndian};
}

/// Declares a plain Rust struct that is also a [`BinaryStruct`], packed
/// like a C struct with `_pack_ = 1` (Python `ctypes`): fields in order,
/// no padding. Field types: `u8`..`u64`, `i8`..`i64`, `f32`, `f64`, `bool`
/// and fixed arrays of them (nested too). Doc comments and attributes pass
/// through (write your own derives); `#[byte_order(little)]` or
/// `#[byte_order(big)]` picks the byte order, native if omitted. Each
/// struct also gets a `SIZE` constant.
///
/// ```
/// use ts_tcpip::{binary_struct, BinaryStruct};
///
/// binary_struct! {
///     /// What the mount controller reports, big-endian.
///     #[derive(Debug, Clone, Copy, Default, PartialEq)]
///     #[byte_order(big)]
///     pub struct Telemetry {
///         pub flag: bool,
///         pub counter: u32,
///         pub position: [f64; 3],
///     }
/// }
///
/// let sent = Telemetry { flag: true, counter: 7, position: [1.5, -2.0, 0.0] };
/// let mut wire = Vec::new();
/// sent.encode(&mut wire);
/// assert_eq!(wire.len(), Telemetry::SIZE);
/// assert_eq!(&wire[..5], &[1, 0, 0, 0, 7]);
///
/// let mut got = Telemetry::default();
/// got.decode(&wire)?;
/// assert_eq!(got, sent);
/// # Ok::<(), ts_tcpip::Error>(())
/// ```
///
/// Over a link, `server.write_from(&[&sent])` writes it and
/// `client.read_into(&mut got)` reads it.
#[macro_export]
macro_rules! binary_struct {
    // Sort the attributes: `byte_order` is ours, the rest pass through.
    (@attrs [$($kept:tt)*] $order:ident #[byte_order(little)] $($rest:tt)*) => {
        $crate::binary_struct!(@attrs [$($kept)*] LittleEndian $($rest)*);
    };
    (@attrs [$($kept:tt)*] $order:ident #[byte_order(big)] $($rest:tt)*) => {
        $crate::binary_struct!(@attrs [$($kept)*] BigEndian $($rest)*);
    };
    (@attrs [$($kept:tt)*] $order:ident #[byte_order(native)] $($rest:tt)*) => {
        $crate::binary_struct!(@attrs [$($kept)*] NativeEndian $($rest)*);
    };
    (@attrs [$($kept:tt)*] $order:ident #[$meta:meta] $($rest:tt)*) => {
        $crate::binary_struct!(@attrs [$($kept)* #[$meta]] $order $($rest)*);
    };
    (@attrs [$($kept:tt)*] $order:ident
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)?
        }
        $($more:tt)*
    ) => {
        $($kept)*
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty,)*
        }

        impl $name {
            /// Size in bytes on the wire.
            pub const SIZE: usize = 0 $(+ <$ty as $crate::__private::Field>::SIZE)*;
        }

        impl $crate::BinaryStruct for $name {
            fn size(&self) -> usize {
                Self::SIZE
            }

            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                use $crate::__private::Field as _;
                out.reserve(Self::SIZE);
                $(self.$field.put::<$crate::__private::$order>(out);)*
            }

            #[allow(unused_assignments)]
            fn decode(&mut self, bytes: &[u8]) -> $crate::Result<()> {
                use $crate::__private::Field;
                let name = stringify!($name);
                $crate::__private::check_len(name, bytes, Self::SIZE)?;
                // Check every field before setting any: on error the
                // struct is left as it was.
                let mut at = 0;
                $(
                    let end = at + <$ty as Field>::SIZE;
                    <$ty as Field>::check(&bytes[at..end]).map_err(|e| {
                        let field = stringify!($field);
                        $crate::__private::invalid(name, bytes, format!("field `{field}`{e}"))
                    })?;
                    at = end;
                )*
                at = 0;
                $(
                    let end = at + <$ty as Field>::SIZE;
                    self.$field = <$ty as Field>::get::<$crate::__private::$order>(&bytes[at..end]);
                    at = end;
                )*
                Ok(())
            }
        }

        $crate::binary_struct!($($more)*);
    };
    () => {};
    ($($input:tt)+) => {
        $crate::binary_struct!(@attrs [] NativeEndian $($input)+);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    crate::binary_struct! {
        #[derive(Debug, Default, PartialEq, Clone, Copy)]
        pub struct ShortStruct { pub ushort_0: u16, pub int64_0: i64, pub double_0: f64, pub float_0: f32 }

        #[derive(Debug, Default, PartialEq)]
        #[byte_order(big)]
        pub struct BigEndianShort { pub ushort_0: u16, pub int64_0: i64, pub double_0: f64, pub float_0: f32 }

        /// Doc comments pass through.
        #[derive(Debug, Default, PartialEq)]
        pub(crate) struct Telemetry {
            flag: bool,
            counter: u32,
            position: [f64; 3],
            status: i8,
            code: u64,
        }
    }

    crate::binary_struct! {
        #[byte_order(little)]
        #[derive(Debug, Default, PartialEq)]
        struct Nested { grid: [[u16; 2]; 2], flags: [bool; 3] }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn float(v: &Value) -> f64 {
        v.as_str().expect("repr string").parse().expect("float")
    }

    /// The value a case describes, as the struct its type names.
    fn expected(case: &Value) -> Box<dyn BinaryStruct> {
        let f = &case["fields"];
        match case["type"].as_str().expect("type") {
            "Telemetry" => {
                let p = f["position"].as_array().expect("position");
                Box::new(Telemetry {
                    flag: f["flag"].as_bool().expect("flag"),
                    counter: f["counter"].as_u64().expect("counter") as u32,
                    position: [float(&p[0]), float(&p[1]), float(&p[2])],
                    status: f["status"].as_i64().expect("status") as i8,
                    code: f["code"].as_u64().expect("code"),
                })
            }
            kind => {
                let short = ShortStruct {
                    ushort_0: f["ushort_0"].as_u64().expect("u16") as u16,
                    int64_0: f["int64_0"].as_i64().expect("i64"),
                    double_0: float(&f["double_0"]),
                    float_0: float(&f["float_0"]) as f32,
                };
                match kind {
                    "ShortStruct" => Box::new(short),
                    _ => Box::new(BigEndianShort {
                        ushort_0: short.ushort_0,
                        int64_0: short.int64_0,
                        double_0: short.double_0,
                        float_0: short.float_0,
                    }),
                }
            }
        }
    }

    fn cases() -> Vec<Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/structs.json"
        );
        let text = std::fs::read_to_string(path).expect("shared/vectors/structs.json");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        doc["structs"].as_array().expect("structs").clone()
    }

    #[test]
    fn b16_every_vector_encodes_to_its_bytes_and_decodes_back() {
        for case in cases() {
            let wire = hex(case["wire_hex"].as_str().expect("hex"));
            let value = expected(&case);
            assert_eq!(
                value.size() as u64,
                case["size"].as_u64().expect("size"),
                "{case}"
            );
            let mut out = Vec::new();
            value.encode(&mut out);
            assert_eq!(out, wire, "encode {case}");
            // Decode into a zeroed value of the same type, then re-encode:
            // equal bytes mean equal fields, bit for bit (-0.0 included).
            let mut decoded: Box<dyn BinaryStruct> = match case["type"].as_str() {
                Some("Telemetry") => Box::new(Telemetry::default()),
                Some("ShortStruct") => Box::new(ShortStruct::default()),
                _ => Box::new(BigEndianShort::default()),
            };
            decoded.decode(&wire).expect("decodes");
            let mut again = Vec::new();
            decoded.encode(&mut again);
            assert_eq!(again, wire, "decode {case}");
        }
    }

    #[test]
    fn b16_decoded_fields_are_the_vector_values() {
        let mut t = Telemetry::default();
        let case = cases()
            .into_iter()
            .find(|c| c["type"] == "Telemetry")
            .expect("case");
        t.decode(&hex(case["wire_hex"].as_str().expect("hex")))
            .expect("decodes");
        assert_eq!(
            (t.flag, t.counter, t.status, t.code),
            (true, 4_000_000_000, -7, 9_223_372_036_854_775_813)
        );
        assert_eq!(t.position, [1.5, -2.25, 1e300]);
    }

    #[test]
    fn a_bool_byte_other_than_0_or_1_is_an_error_and_changes_nothing() {
        let mut t = Telemetry {
            counter: 5,
            ..Telemetry::default()
        };
        let mut wire = vec![0u8; Telemetry::SIZE];
        wire[0] = 2;
        match t.decode(&wire) {
            Err(Error::InvalidStruct {
                type_name,
                bytes,
                reason,
            }) => {
                assert_eq!((type_name, bytes), ("Telemetry", wire));
                assert_eq!(reason, "field `flag`: bool byte 0x02 is neither 0 nor 1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.counter, 5, "unchanged");
        let mut n = Nested::default();
        let mut wire = vec![0u8; Nested::SIZE];
        wire[9] = 7;
        let err = n.decode(&wire).expect_err("bad bool in an array");
        assert!(
            err.to_string().contains("field `flags`[1]: bool byte 0x07"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_length_is_an_error() {
        let mut s = ShortStruct::default();
        assert!(matches!(
            s.decode(&[0; 21]),
            Err(Error::InvalidStruct { .. })
        ));
        assert!(matches!(
            s.decode(&[0; 23]),
            Err(Error::InvalidStruct { .. })
        ));
    }

    #[test]
    fn nested_arrays_pack_in_order_and_types_mix_as_trait_objects() {
        let n = Nested {
            grid: [[1, 2], [3, 4]],
            flags: [true, false, true],
        };
        let s = ShortStruct {
            ushort_0: 9,
            ..ShortStruct::default()
        };
        let records: [&dyn BinaryStruct; 2] = [&n, &s];
        let mut out = Vec::new();
        records.iter().for_each(|r| r.encode(&mut out));
        assert_eq!(&out[..11], &[1, 0, 2, 0, 3, 0, 4, 0, 1, 0, 1]);
        assert_eq!(out.len(), Nested::SIZE + ShortStruct::SIZE);
        let mut back = Nested::default();
        back.decode(&out[..Nested::SIZE]).expect("decodes");
        assert_eq!(back, n);
    }
}
