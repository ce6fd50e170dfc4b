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
///
/// `decode` runs with no lock of the link held. `encode` runs while the
/// link's write lock is held (so that the frame is written without a copy):
/// a hand-written `encode` must not write to the same link.
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

/// One field type of a binary struct: the integers, the floats, `bool` and
/// arrays of them (nested too). Because arrays are generic over it, the
/// macro needs no per-type rules.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a `binary_struct!` field",
    note = "fields are integers, f32, f64, bool, or fixed arrays of them"
)]
pub trait WireField: Sized {
    /// Bytes on the wire.
    const SIZE: usize;
    /// Writes the value in byte order `B` into `buf`, exactly `SIZE` long.
    fn write<B: ByteOrder>(&self, buf: &mut [u8]);
    /// Why `bytes` (exactly `SIZE` long) is no valid value, as a suffix to
    /// the field name: `": reason"`, or `"[index]: reason"` in an array.
    fn check(_bytes: &[u8]) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Reads a value from `bytes`, exactly `SIZE` long and already checked.
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self;
}

/// Multi-byte numbers: every bit pattern is a value, only the order matters.
macro_rules! wire_numbers {
    ($($ty:ty => $read:ident, $write:ident;)*) => {$(
        impl WireField for $ty {
            const SIZE: usize = std::mem::size_of::<$ty>();
            fn write<B: ByteOrder>(&self, buf: &mut [u8]) {
                B::$write(buf, *self);
            }
            fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
                B::$read(bytes)
            }
        }
    )*};
}

wire_numbers! {
    u16 => read_u16, write_u16;
    u32 => read_u32, write_u32;
    u64 => read_u64, write_u64;
    i16 => read_i16, write_i16;
    i32 => read_i32, write_i32;
    i64 => read_i64, write_i64;
    f32 => read_f32, write_f32;
    f64 => read_f64, write_f64;
}

// Single bytes have no byte order (and `ByteOrder` has no u8 methods).
impl WireField for u8 {
    const SIZE: usize = 1;
    fn write<B: ByteOrder>(&self, buf: &mut [u8]) {
        buf[0] = *self;
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        bytes[0]
    }
}

impl WireField for i8 {
    const SIZE: usize = 1;
    fn write<B: ByteOrder>(&self, buf: &mut [u8]) {
        buf[0] = self.to_ne_bytes()[0];
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        i8::from_ne_bytes([bytes[0]])
    }
}

impl WireField for bool {
    const SIZE: usize = 1;
    fn write<B: ByteOrder>(&self, buf: &mut [u8]) {
        buf[0] = u8::from(*self);
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

impl<T: WireField, const N: usize> WireField for [T; N] {
    const SIZE: usize = T::SIZE * N;
    fn write<B: ByteOrder>(&self, buf: &mut [u8]) {
        for (i, item) in self.iter().enumerate() {
            item.write::<B>(&mut buf[i * T::SIZE..(i + 1) * T::SIZE]);
        }
    }
    fn check(bytes: &[u8]) -> std::result::Result<(), String> {
        // Index ranges rather than `chunks_exact`, which panics when an
        // item is zero-sized (`[[u8; 0]; 2]`).
        (0..N).try_for_each(|i| T::check(item::<T>(bytes, i)).map_err(|e| format!("[{i}]{e}")))
    }
    fn get<B: ByteOrder>(bytes: &[u8]) -> Self {
        std::array::from_fn(|i| T::get::<B>(item::<T>(bytes, i)))
    }
}

/// The bytes of item `i` of an array of `T`.
fn item<T: WireField>(bytes: &[u8], i: usize) -> &[u8] {
    &bytes[i * T::SIZE..(i + 1) * T::SIZE]
}

/// Walks a record's bytes field by field for the macro's `decode`: once
/// to check every field (only `bool` can fail), then, with
/// [`values`](Reader::values), to read them, which can no longer fail.
#[doc(hidden)]
pub struct Reader<'a> {
    type_name: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Starts on a record of `size` bytes; any other length is an error.
    #[inline]
    pub fn new(type_name: &'static str, bytes: &'a [u8], size: usize) -> Result<Self> {
        let reader = Reader {
            type_name,
            bytes,
            at: 0,
        };
        if bytes.len() != size {
            let got = bytes.len();
            return Err(reader.invalid(format!("expected {size} bytes, got {got}")));
        }
        Ok(reader)
    }

    /// Checks the next field, named `name` in errors.
    #[inline]
    pub fn check<T: WireField>(&mut self, name: &str) -> Result<()> {
        // `get` rather than indexing: a record shorter than its fields is
        // an error, never a panic, even if the caller got `size` wrong.
        let chunk = self
            .bytes
            .get(self.at..)
            .and_then(|rest| rest.get(..T::SIZE));
        let chunk = chunk.ok_or_else(|| self.invalid(format!("field `{name}`: too few bytes")))?;
        T::check(chunk).map_err(|why| self.invalid(format!("field `{name}`{why}")))?;
        self.at += T::SIZE;
        Ok(())
    }

    /// The fields' values, once every field has been checked.
    #[inline]
    pub fn values(self) -> Values<'a> {
        Values {
            bytes: &self.bytes[..self.at],
            at: 0,
        }
    }

    #[cold]
    fn invalid(&self, reason: String) -> Error {
        Error::InvalidStruct {
            type_name: self.type_name,
            bytes: self.bytes.to_vec(),
            reason,
        }
    }
}

/// The checked fields of a record, read in order.
#[doc(hidden)]
pub struct Values<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Values<'_> {
    /// The next field's value. Only fields [`Reader::check`] passed are
    /// read, in the same order, so the bytes are there and valid.
    #[inline]
    pub fn take<T: WireField, B: ByteOrder>(&mut self) -> T {
        let value = T::get::<B>(&self.bytes[self.at..self.at + T::SIZE]);
        self.at += T::SIZE;
        value
    }
}

/// Writes a record's fields in order into a buffer of its size, for the
/// macro's `encode`.
#[doc(hidden)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    /// Appends `size` zero bytes to `out`, to be filled field by field.
    #[inline]
    pub fn new(out: &'a mut Vec<u8>, size: usize) -> Self {
        let start = out.len();
        out.resize(start + size, 0);
        Writer {
            buf: &mut out[start..],
            at: 0,
        }
    }

    /// Writes the next field. The fields' sizes add up to the record's,
    /// which is what `new` made room for.
    #[inline]
    pub fn field<T: WireField, B: ByteOrder>(&mut self, value: &T) {
        value.write::<B>(&mut self.buf[self.at..self.at + T::SIZE]);
        self.at += T::SIZE;
    }
}

/// What the macro's expansion needs, reached through `$crate`.
#[doc(hidden)]
pub mod __private {
    pub use super::{Reader, Values, WireField, Writer};
    pub use ::byteorder;
}

/// Declares a plain Rust struct that is also a [`BinaryStruct`], packed
/// like a C struct with `_pack_ = 1` (Python `ctypes`): fields in order,
/// no padding. Field types: `u8`..`u64`, `i8`..`i64`, `f32`, `f64`, `bool`
/// and fixed arrays of them (nested too). Doc comments, attributes and
/// visibilities pass through (write your own derives);
/// `#[byte_order(little)]` or `#[byte_order(big)]`, anywhere among the
/// attributes, picks the byte order, native if omitted. Each struct also
/// gets an inherent `SIZE` constant. One invocation may declare several.
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
    (@attrs [$($kept:tt)*] $order:ident #[byte_order $($bad:tt)*] $($rest:tt)*) => {
        ::core::compile_error!("byte_order takes `little`, `big` or `native`");
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
            /// Size in bytes on the wire (`ctypes.sizeof`).
            pub const SIZE: usize = 0 $(+ <$ty as $crate::__private::WireField>::SIZE)*;
        }

        impl $crate::BinaryStruct for $name {
            fn size(&self) -> usize {
                Self::SIZE
            }

            // A struct without fields never uses the writer.
            #[allow(unused_mut, unused_variables)]
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                let mut writer = $crate::__private::Writer::new(out, Self::SIZE);
                $(writer.field::<$ty, $crate::__private::byteorder::$order>(&self.$field);)*
            }

            // A struct without fields never uses the reader.
            #[allow(unused_mut, unused_variables)]
            fn decode(&mut self, bytes: &[u8]) -> $crate::Result<()> {
                let mut reader =
                    $crate::__private::Reader::new(::core::stringify!($name), bytes, Self::SIZE)?;
                // Every field is checked before any is set, so an error
                // leaves `self` as it was. Hygiene keeps `reader` and
                // `values` apart from fields of those names.
                $(reader.check::<$ty>(::core::stringify!($field))?;)*
                let mut values = reader.values();
                $(self.$field = values.take::<$ty, $crate::__private::byteorder::$order>();)*
                ::core::result::Result::Ok(())
            }
        }

        $crate::binary_struct!($($more)*);
    };
    (@attrs $($bad:tt)*) => {
        ::core::compile_error!(
            "binary_struct! expects `#[attrs] vis struct Name { vis field: Type, ... }`"
        );
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
        #[derive(Debug, Default)]
        pub struct ShortStruct {
            pub ushort_0: u16, pub int64_0: i64, pub double_0: f64, pub float_0: f32,
        }

        #[derive(Debug, Default)]
        #[byte_order(big)]
        pub(crate) struct BigEndianShort {
            ushort_0: u16, pub(crate) int64_0: i64, double_0: f64, float_0: f32,
        }

        /// Private fields; a doc comment passes through.
        #[derive(Debug, Default, PartialEq, Clone)]
        struct Telemetry { flag: bool, counter: u32, position: [f64; 3], status: i8, code: u64 }
    }

    crate::binary_struct! {
        #[byte_order(little)]
        #[derive(Debug, Default, PartialEq)]
        struct Nested { grid: [[u16; 2]; 2], flags: [bool; 3], none: [[u8; 0]; 2] }

        // Field names the expansion also uses for its own locals.
        #[derive(Debug, Default, PartialEq)]
        struct Shadows { reader: u8, bytes: u8, out: u8, field: u8 }

        struct Empty {}
    }

    macro_rules! all_types {
        ($($name:ident $order:ident),*) => {$(
            crate::binary_struct! {
                #[byte_order($order)]
                struct $name {
                    a: u8, b: i8, c: u16, d: i16, e: u32, f: i32,
                    g: u64, h: i64, i: f32, j: f64, k: bool,
                }
            }
            impl $name {
                fn sample() -> Self {
                    let (a, c, e, g) = (0xfe, 0x0102, 0x0304_0506, 7 << 56);
                    $name { a, b: -2, c, d: -3, e, f: -4, g, h: -5, i: 1.5, j: -0.0, k: true }
                }
            }
        )*};
    }
    all_types!(AllLittle little, AllBig big);

    fn wire(value: &dyn BinaryStruct) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        let digit = |i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex");
        (0..s.len()).step_by(2).map(digit).collect()
    }

    /// A float written as Python's repr ("-0.0", "inf", "1e+300").
    fn float(v: &Value) -> f64 {
        v.as_str().expect("repr string").parse().expect("float")
    }

    fn int<T: TryFrom<i128>>(v: &Value) -> T {
        let n = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
        T::try_from(n.expect("integer")).ok().expect("in range")
    }

    /// Encodes `value` and decodes the case's bytes into a blank `S`. Fields
    /// are compared through `Debug`, which prints the shortest repr that
    /// reads back to the same bits (and `-0.0` as such); no vector is NaN.
    fn both_ways<S: BinaryStruct + Default + std::fmt::Debug>(case: &Value, value: S) {
        let wire = hex(case["wire_hex"].as_str().expect("wire_hex"));
        assert_eq!(Some(value.size() as u64), case["size"].as_u64(), "{case}");
        assert_eq!(self::wire(&value), wire, "encode {case}");
        let mut got = S::default();
        got.decode(&wire).expect("decodes");
        assert_eq!(format!("{got:?}"), format!("{value:?}"), "decode {case}");
    }

    fn check_case(case: &Value) {
        let f = &case["fields"];
        macro_rules! short {
            ($ty:ident) => {
                $ty {
                    ushort_0: int(&f["ushort_0"]),
                    int64_0: int(&f["int64_0"]),
                    double_0: float(&f["double_0"]),
                    float_0: float(&f["float_0"]) as f32,
                }
            };
        }
        match case["type"].as_str().expect("type") {
            "ShortStruct" => both_ways(case, short!(ShortStruct)),
            "BigEndianShort" => both_ways(case, short!(BigEndianShort)),
            "Telemetry" => {
                let p = f["position"].as_array().expect("position");
                let value = Telemetry {
                    flag: f["flag"].as_bool().expect("flag"),
                    counter: int(&f["counter"]),
                    position: [float(&p[0]), float(&p[1]), float(&p[2])],
                    status: int(&f["status"]),
                    code: int(&f["code"]),
                };
                both_ways(case, value);
            }
            other => panic!("no struct for {other}"),
        }
    }

    #[test]
    fn every_vector_encodes_to_its_bytes_and_decodes_to_its_fields() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/structs.json");
        let text = std::fs::read_to_string(path).expect("tests/data/structs.json");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let cases = doc["structs"].as_array().expect("structs");
        assert!(cases.len() >= 7);
        for case in cases {
            // Native vectors were recorded on a little-endian machine.
            let native = case["layout"]
                .as_str()
                .is_some_and(|l| l.contains("native"));
            if !(native && cfg!(target_endian = "big")) {
                check_case(case);
            }
        }
    }

    #[test]
    fn a_bool_byte_other_than_0_or_1_is_an_error_and_changes_nothing() {
        let before = Telemetry {
            flag: true,
            counter: 5,
            position: [1.0; 3],
            status: -1,
            code: 9,
        };
        let mut t = before.clone();
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
        assert_eq!(t, before, "unchanged");
    }

    #[test]
    fn a_bad_bool_in_a_later_field_changes_no_earlier_field() {
        let mut n = Nested {
            grid: [[9; 2]; 2],
            ..Nested::default()
        };
        let mut wire = vec![0u8; Nested::SIZE];
        wire[9] = 7;
        let err = n.decode(&wire).expect_err("bad bool in an array");
        let want = "invalid Nested: field `flags`[1]: bool byte 0x07 is neither 0 nor 1";
        assert_eq!(err.to_string(), want);
        assert_eq!(n.grid, [[9; 2]; 2], "unchanged");
    }

    #[test]
    fn a_wrong_length_is_an_error_and_changes_nothing() {
        let mut s = ShortStruct {
            ushort_0: 3,
            ..ShortStruct::default()
        };
        for len in [0, 21, 23, 44] {
            match s.decode(&vec![0; len]) {
                Err(Error::InvalidStruct { reason, bytes, .. }) => {
                    assert_eq!(reason, format!("expected 22 bytes, got {len}"));
                    assert_eq!(bytes.len(), len);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(s.ushort_0, 3);
    }

    #[test]
    fn no_input_panics() {
        let mut t = Telemetry::default();
        for len in 0..=2 * Telemetry::SIZE {
            for byte in [0, 1, 2, 0x80, 0xff] {
                let _ = t.decode(&vec![byte; len]);
            }
        }
        // A reader told the wrong size refuses rather than panics.
        let mut r = Reader::new("X", &[1], 1).expect("length matches");
        assert!(r.check::<u64>("wide").is_err());
    }

    #[test]
    fn nested_arrays_pack_row_by_row() {
        let n = Nested {
            grid: [[1, 2], [3, 0x0405]],
            flags: [true, false, true],
            none: [[]; 2],
        };
        assert_eq!(Nested::SIZE, 11);
        let out = wire(&n);
        assert_eq!(out, [1, 0, 2, 0, 3, 0, 5, 4, 1, 0, 1]);
        let mut back = Nested::default();
        back.decode(&out).expect("decodes");
        assert_eq!(back, n);
    }

    #[test]
    fn every_field_type_takes_the_asked_byte_order() {
        fn want(le: bool) -> Vec<u8> {
            macro_rules! bytes {
                ($($v:expr),*) => {
                    [$(if le { $v.to_le_bytes().to_vec() } else { $v.to_be_bytes().to_vec() }),*]
                };
            }
            let (e, g) = (0x0304_0506_u32, 7_u64 << 56);
            bytes!(
                0xfe_u8, -2_i8, 0x0102_u16, -3_i16, e, -4_i32, g, -5_i64, 1.5_f32, -0.0_f64, 1_u8
            )
            .concat()
        }
        let (le, be) = (wire(&AllLittle::sample()), wire(&AllBig::sample()));
        assert_eq!((AllLittle::SIZE, AllBig::SIZE), (43, 43));
        assert_eq!((le, be), (want(true), want(false)));
        let mut back = AllBig {
            k: false,
            ..AllBig::sample()
        };
        back.decode(&want(false)).expect("decodes");
        assert!(back.k);
        assert_eq!(wire(&back), want(false));
    }

    #[test]
    fn structs_mix_as_trait_objects() {
        let s = ShortStruct {
            ushort_0: 9,
            ..ShortStruct::default()
        };
        let (n, e) = (Nested::default(), Empty {});
        let records: Vec<&dyn BinaryStruct> = vec![&s, &n, &e];
        let mut out = Vec::new();
        records.iter().for_each(|r| r.encode(&mut out));
        assert_eq!(out.len(), 22 + 11);
        assert_eq!(records.iter().map(|r| r.size()).sum::<usize>(), out.len());
        assert!(Empty {}.decode(&[]).is_ok());
    }

    #[test]
    fn field_names_do_not_clash_with_the_expansion() {
        let (reader, bytes, out, field) = (1, 2, 3, 4);
        let v = Shadows {
            reader,
            bytes,
            out,
            field,
        };
        let out = wire(&v);
        let mut back = Shadows::default();
        back.decode(&out).expect("decodes");
        assert_eq!((out, back), (vec![1, 2, 3, 4], v));
    }
}
