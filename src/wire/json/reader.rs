//! A serde `Deserializer` over a line of Python's JSON, read as serde_json
//! reads JSON (its number types, its rounding, its keys and enums), with
//! `NaN`, `Infinity` and `-Infinity` handed to the visitor as floats.
//!
//! It reads only lines whose syntax serde_json has checked (see
//! `non_finite.rs`), yet refuses anything else with an error of its own:
//! no input makes it panic or recurse without bound.

use std::borrow::Cow;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

pub(crate) type Error = serde_json::Error;
type Result<T> = std::result::Result<T, Error>;

/// serde_json's nesting limit.
const MAX_DEPTH: usize = 128;

fn error(message: &str) -> Error {
    de::Error::custom(message)
}

/// A number as serde_json reads it: an integer that fits as `u64` or
/// `i64`, else a float (correctly rounded; `-0` is a float).
enum Number {
    U(u64),
    I(i64),
    F(f64),
}

/// One line, read once from the start.
pub(crate) struct Reader<'de> {
    text: &'de str,
    pos: usize,
    depth: usize,
}

impl<'de> Reader<'de> {
    pub(crate) fn new(text: &'de str) -> Reader<'de> {
        Reader {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// Nothing but whitespace is left.
    pub(crate) fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(error("trailing characters")),
        }
    }

    fn rest(&self) -> &'de [u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    /// The next byte after any whitespace.
    fn peek(&mut self) -> Option<u8> {
        let skip = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.pos += skip;
        self.rest().first().copied()
    }

    fn eat(&mut self, literal: &str) -> Result<()> {
        if self.rest().starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(error("expected value"))
        }
    }

    /// Runs `read` one level deeper, past the opening bracket, and expects
    /// `close` after it.
    fn nested<T>(&mut self, close: u8, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(error("recursion limit exceeded"));
        }
        self.depth += 1;
        self.pos += 1;
        let value = read(self)?;
        self.depth -= 1;
        match self.peek() {
            Some(b) if b == close => {
                self.pos += 1;
                Ok(value)
            }
            _ => Err(error("trailing characters")),
        }
    }

    /// A string, at its opening quote: borrowed from the line unless it
    /// holds escapes.
    fn string(&mut self) -> Result<Cow<'de, str>> {
        let text = self.text;
        self.pos += 1;
        let mut from = self.pos;
        let mut owned: Option<String> = None;
        loop {
            let Some(&b) = text.as_bytes().get(self.pos) else {
                return Err(error("EOF while parsing a string"));
            };
            match b {
                // `pos` is at an ASCII byte here, never inside a character.
                b'"' => {
                    let run = text.get(from..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(run),
                        Some(mut s) => {
                            s.push_str(run);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(text.get(from..self.pos).unwrap_or_default());
                    self.pos += 1;
                    s.push(self.escape()?);
                    from = self.pos;
                }
                0x00..=0x1f => return Err(error("control character while parsing a string")),
                _ => self.pos += 1,
            }
        }
    }

    /// The character an escape names, after its backslash.
    fn escape(&mut self) -> Result<char> {
        let Some(&b) = self.rest().first() else {
            return Err(error("EOF while parsing a string"));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xd800..=0xdbff => {
                        let lone = || error("lone leading surrogate in hex escape");
                        self.eat("\\u").map_err(|_| lone())?;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(lone());
                        }
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(error("lone trailing surrogate in hex escape")),
                    _ => unit,
                };
                char::from_u32(code).ok_or_else(|| error("invalid unicode code point"))?
            }
            _ => return Err(error("invalid escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.rest().get(..4).unwrap_or_default();
        if digits.len() < 4 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(error("invalid escape"));
        }
        let unit = digits
            .iter()
            .fold(0, |n, &d| n * 16 + (d as char).to_digit(16).unwrap_or(0));
        self.pos += 4;
        Ok(unit)
    }

    /// The number that starts here, in JSON's grammar
    /// (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`): its text, and
    /// whether it is an integer (no fraction, no exponent).
    fn number_text(&mut self) -> Result<(&'de str, bool)> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut pos = start;
        let digits = |pos: &mut usize| {
            let from = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos - from
        };
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        let whole = pos;
        let n = digits(&mut pos);
        if n == 0 || (n > 1 && bytes.get(whole) == Some(&b'0')) {
            return Err(error("invalid number"));
        }
        let mut integer = true;
        if bytes.get(pos) == Some(&b'.') {
            integer = false;
            pos += 1;
            if digits(&mut pos) == 0 {
                return Err(error("invalid number"));
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            integer = false;
            pos += 1;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if digits(&mut pos) == 0 {
                return Err(error("invalid number"));
            }
        }
        self.pos = pos;
        Ok((self.text.get(start..pos).unwrap_or_default(), integer))
    }

    /// The number that starts here; a float is parsed as an `f32` first
    /// when `single`, as serde_json does for an `f32` target.
    fn number(&mut self, single: bool) -> Result<Number> {
        let (text, integer) = self.number_text()?;
        if integer {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, text),
            };
            if let Ok(magnitude) = digits.parse::<u64>() {
                if !negative {
                    return Ok(Number::U(magnitude));
                }
                let negated = (magnitude as i64).wrapping_neg();
                // As serde_json: `-0`, and below i64::MIN, are floats.
                return Ok(if negated >= 0 {
                    Number::F(-(magnitude as f64))
                } else {
                    Number::I(negated)
                });
            }
        }
        let parsed = if single {
            text.parse::<f32>().map(f64::from)
        } else {
            text.parse::<f64>()
        };
        match parsed {
            Ok(f) if f.is_finite() => Ok(Number::F(f)),
            Ok(_) => Err(error("number out of range")),
            Err(_) => Err(error("invalid number")),
        }
    }

    fn any<V: Visitor<'de>>(&mut self, visitor: V, single: bool) -> Result<V::Value> {
        match self.peek() {
            None => Err(error("EOF while parsing a value")),
            Some(b'n') => self.eat("null").and_then(|()| visitor.visit_unit()),
            Some(b't') => self.eat("true").and_then(|()| visitor.visit_bool(true)),
            Some(b'f') => self.eat("false").and_then(|()| visitor.visit_bool(false)),
            Some(b'N') => self.eat("NaN").and_then(|()| visitor.visit_f64(f64::NAN)),
            Some(b'I') => self
                .eat("Infinity")
                .and_then(|()| visitor.visit_f64(f64::INFINITY)),
            Some(b'-') if self.rest().starts_with(b"-I") => self
                .eat("-Infinity")
                .and_then(|()| visitor.visit_f64(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => match self.number(single)? {
                Number::U(n) => visitor.visit_u64(n),
                Number::I(n) => visitor.visit_i64(n),
                Number::F(f) => visitor.visit_f64(f),
            },
            Some(b'"') => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
                Cow::Owned(s) => visitor.visit_string(s),
            },
            Some(b'[') => self.nested(b']', |me| {
                visitor.visit_seq(Items {
                    reader: me,
                    first: true,
                })
            }),
            Some(b'{') => self.nested(b'}', |me| {
                visitor.visit_map(Items {
                    reader: me,
                    first: true,
                })
            }),
            Some(_) => Err(error("expected value")),
        }
    }

    /// At an integer that parses as `T` (the 128-bit integers, which
    /// serde_json reads exactly): it, consumed. Else nothing is consumed.
    fn integer<T: std::str::FromStr>(&mut self) -> Option<T> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            if let Ok((text, true)) = self.number_text() {
                if let Ok(n) = text.parse() {
                    return Some(n);
                }
            }
        }
        self.pos = start;
        None
    }
}

impl<'de> Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.any(visitor, false)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.any(visitor, true)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'n') => self.eat("null").and_then(|()| visitor.visit_none()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.peek() {
            Some(b'"') => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
                Cow::Owned(s) => {
                    visitor.visit_enum::<StringDeserializer<Error>>(s.into_deserializer())
                }
            },
            Some(b'{') => self.nested(b'}', |me| visitor.visit_enum(me)),
            _ => Err(error("expected a string or an object for an enum")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(b'"') => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
                Cow::Owned(s) => visitor.visit_byte_buf(s.into_bytes()),
            },
            _ => self.any(visitor, false),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.integer::<i128>() {
            Some(n) => visitor.visit_i128(n),
            None => self.any(visitor, false),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.integer::<u128>() {
            Some(n) => visitor.visit_u128(n),
            None => self.any(visitor, false),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f64 char str string unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The items of an array, or the entries of an object.
struct Items<'a, 'de> {
    reader: &'a mut Reader<'de>,
    first: bool,
}

impl Items<'_, '_> {
    /// Past the comma before the next item; false at `close`.
    fn next(&mut self, close: u8) -> Result<bool> {
        match self.reader.peek() {
            Some(b) if b == close => return Ok(false),
            Some(b',') if !self.first => self.reader.pos += 1,
            _ if self.first => {}
            _ => return Err(error("expected `,` or the end of the array or object")),
        }
        self.first = false;
        Ok(true)
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.next(b'}')? {
            return Ok(None);
        }
        key(self.reader, seed).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        colon(self.reader)?;
        seed.deserialize(&mut *self.reader)
    }
}

fn key<'de, K: DeserializeSeed<'de>>(reader: &mut Reader<'de>, seed: K) -> Result<K::Value> {
    match reader.peek() {
        Some(b'"') => seed.deserialize(Key(reader.string()?)),
        _ => Err(error("key must be a string")),
    }
}

fn colon(reader: &mut Reader<'_>) -> Result<()> {
    match reader.peek() {
        Some(b':') => {
            reader.pos += 1;
            Ok(())
        }
        _ => Err(error("expected `:`")),
    }
}

/// An enum written as `{"variant": content}`, past the brace.
impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = key(self, seed)?;
        colon(self)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.any(visitor, false)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.any(visitor, false)
    }
}

/// An object's key: a string; for a key type of numbers or bools, the
/// number or bool written between its quotes, as serde_json reads keys
/// (no escapes, no spaces, JSON's number grammar).
struct Key<'de>(Cow<'de, str>);

impl<'de> Key<'de> {
    fn numeric<T>(self, read: impl FnOnce(&mut Reader<'de>) -> Result<T>) -> Result<T> {
        let Cow::Borrowed(text) = self.0 else {
            return Err(error("expected numeric key"));
        };
        if !matches!(text.as_bytes().first(), Some(b'0'..=b'9' | b'-')) || text.starts_with("-I") {
            return Err(error("expected numeric key"));
        }
        let mut reader = Reader::new(text);
        let value = read(&mut reader)?;
        if reader.pos != text.len() {
            return Err(error("expected numeric key"));
        }
        Ok(value)
    }
}

macro_rules! numeric_key {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.numeric(|reader| reader.$method(visitor))
        })*
    };
}

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    numeric_key! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Cow::Borrowed("true") => visitor.visit_bool(true),
            Cow::Borrowed("false") => visitor.visit_bool(false),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Cow::Owned(s) => visitor.visit_enum::<StringDeserializer<Error>>(s.into_deserializer()),
        }
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
