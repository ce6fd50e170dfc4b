//! Struct layout against the Python reference's vectors, and the
//! macro's edge cases.

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
        Err(Error::InvalidStruct(e)) => {
            assert_eq!((e.type_name, &e.bytes), ("Telemetry", &wire));
            assert_eq!(e.reason, "field `flag`: bool byte 0x02 is neither 0 nor 1");
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
            Err(Error::InvalidStruct(e)) => {
                assert_eq!(e.reason, format!("expected 22 bytes, got {len}"));
                assert_eq!(e.bytes.len(), len);
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
        bytes!(0xfe_u8, -2_i8, 0x0102_u16, -3_i16, e, -4_i32, g, -5_i64, 1.5_f32, -0.0_f64, 1_u8)
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
