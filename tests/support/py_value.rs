//! A JSON value as Python holds it: order of keys kept, every float (NaN,
//! -0.0) and integers of any width, with serde impls, rebuilt from the
//! typed descriptions of tests/data/python_json.json (made by
//! scripts/make-json-vectors.py). Shared by tests/python_json.rs and the
//! unit tests of src/wire/json/.
#![allow(dead_code)]

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum Py {
    Null,
    Bool(bool),
    /// Decimal digits, any width.
    Int(String),
    Float(f64),
    Str(String),
    List(Vec<Py>),
    /// Key-value pairs in order; keys of any scalar kind.
    Dict(Vec<(Py, Py)>),
}

/// Equal as Python's values are, except that NaN equals NaN and -0.0 is
/// not 0.0: the bits say what was sent.
impl PartialEq for Py {
    fn eq(&self, other: &Py) -> bool {
        match (self, other) {
            (Py::Float(a), Py::Float(b)) => {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            }
            (Py::Null, Py::Null) => true,
            (Py::Bool(a), Py::Bool(b)) => a == b,
            (Py::Int(a), Py::Int(b)) => a == b,
            (Py::Str(a), Py::Str(b)) => a == b,
            (Py::List(a), Py::List(b)) => a == b,
            (Py::Dict(a), Py::Dict(b)) => a == b,
            _ => false,
        }
    }
}

/// A double from the hex of its bits.
pub fn float_from_hex(hex: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{hex}: {e}")))
}

impl Py {
    /// The value a typed description stands for.
    pub fn from_description(d: &Value) -> Py {
        let (kind, inner) = d
            .as_object()
            .and_then(|o| o.iter().next())
            .unwrap_or_else(|| panic!("not a description: {d}"));
        let text = || inner.as_str().unwrap_or_else(|| panic!("{d}")).to_owned();
        let items = || inner.as_array().unwrap_or_else(|| panic!("{d}"));
        match kind.as_str() {
            "null" => Py::Null,
            "bool" => Py::Bool(inner.as_bool().expect("bool")),
            "int" => Py::Int(text()),
            "float" => Py::Float(float_from_hex(&text())),
            "str" => Py::Str(text()),
            "list" => Py::List(items().iter().map(Py::from_description).collect()),
            "dict" => Py::Dict(
                items()
                    .iter()
                    .map(|pair| {
                        (
                            Py::from_description(&pair[0]),
                            Py::from_description(&pair[1]),
                        )
                    })
                    .collect(),
            ),
            other => panic!("unknown kind {other} in {d}"),
        }
    }

    /// Holds an integer beyond 64 bits, which a self-describing read
    /// (`deserialize_any`) gets as a float, as serde_json gives it.
    pub fn has_wide_int(&self) -> bool {
        match self {
            Py::Int(s) => s.parse::<u64>().is_err() && s.parse::<i64>().is_err(),
            Py::List(items) => items.iter().any(Py::has_wide_int),
            Py::Dict(pairs) => pairs
                .iter()
                .any(|(k, v)| k.has_wide_int() || v.has_wide_int()),
            _ => false,
        }
    }

    /// Holds a NaN or an infinite float (outside keys).
    pub fn has_non_finite(&self) -> bool {
        match self {
            Py::Float(f) => !f.is_finite(),
            Py::List(items) => items.iter().any(Py::has_non_finite),
            Py::Dict(pairs) => pairs.iter().any(|(_, v)| v.has_non_finite()),
            _ => false,
        }
    }
}

impl Serialize for Py {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Py::Null => s.serialize_unit(),
            Py::Bool(b) => s.serialize_bool(*b),
            Py::Int(text) => {
                if let Ok(n) = text.parse::<u64>() {
                    s.serialize_u64(n)
                } else if let Ok(n) = text.parse::<i64>() {
                    s.serialize_i64(n)
                } else if let Ok(n) = text.parse::<i128>() {
                    s.serialize_i128(n)
                } else {
                    s.serialize_u128(text.parse().expect("an integer within u128"))
                }
            }
            Py::Float(f) => s.serialize_f64(*f),
            Py::Str(text) => s.serialize_str(text),
            Py::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Py::Dict(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Py {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Py, D::Error> {
        d.deserialize_any(PyVisitor)
    }
}

struct PyVisitor;

impl<'de> Visitor<'de> for PyVisitor {
    type Value = Py;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Py, E> {
        Ok(Py::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Py, E> {
        Ok(Py::Int(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Py, E> {
        Ok(Py::Int(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Py, E> {
        Ok(Py::Int(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Py, E> {
        Ok(Py::Int(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Py, E> {
        Ok(Py::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Py, E> {
        Ok(Py::Str(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Py, E> {
        Ok(Py::Null)
    }
    fn visit_none<E>(self) -> Result<Py, E> {
        Ok(Py::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Py, D::Error> {
        Py::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Py, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Py::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Py, A::Error> {
        let mut pairs = Vec::new();
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(Py::Dict(pairs))
    }
}
