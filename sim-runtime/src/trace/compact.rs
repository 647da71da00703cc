//! The compact form of an event's fields: what the fingerprint hashes and the ring keeps.
//!
//! A typed event is serialised once, through serde, into a byte string of tagged values
//! (numbers as LEB128 varints, strings as a length and their bytes) plus the list of
//! `&'static str` names serde hands over (struct fields, enum variants). Nothing is
//! formatted, escaped or allocated once the buffers are warm; JSON is made from this form
//! only when something reads an event (`--trace`, a failure's tail, a determinism diff).
//!
//! The bytes alone identify the values: names are fixed by the type and the event's name,
//! enum variants are hashed by index, and a field skipped by `skip_serializing_if` leaves
//! a marker, so two different events of one type never share their bytes.

use serde::ser::{self, Serialize};

/// An event's fields in compact form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub(crate) bytes: Vec<u8>,
    pub(crate) names: Vec<&'static str>,
}

impl Fields {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.names.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Replaces the contents with `value`'s compact form.
    pub(crate) fn encode<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.clear();
        if let Err(e) = value.serialize(Encoder { out: self }) {
            // Only a hand-written `Serialize` that fails can get here: a bug in the
            // event's type. The event is kept with the error, so the trace shows it.
            self.clear();
            let message = e.0;
            let _ = ("serialize_error", message.as_str()).serialize(Encoder { out: self });
        }
    }

    /// The fields as JSON, shaped as serde_json would shape the typed value.
    pub fn to_json(&self) -> serde_json::Value {
        if self.bytes.is_empty() {
            return serde_json::Value::Null;
        }
        let mut reader = Reader {
            bytes: &self.bytes,
            pos: 0,
            names: self.names.iter(),
        };
        reader.value()
    }
}

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const UINT: u8 = 3;
    pub const INT: u8 = 4;
    pub const FLOAT: u8 = 5;
    pub const STR: u8 = 6;
    pub const BYTES: u8 = 7;
    pub const SEQ: u8 = 8;
    pub const MAP: u8 = 9;
    pub const STRUCT: u8 = 10;
    /// Followed by the variant index; its name is the next name.
    pub const VARIANT: u8 = 11;
    /// A struct field left out by `skip_serializing_if`.
    pub const SKIPPED: u8 = 12;
    /// Closes a SEQ, MAP or STRUCT.
    pub const END: u8 = 13;
}

#[inline(always)]
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// What a failing `Serialize` impl reports.
#[derive(Debug)]
pub(crate) struct EncodeError(String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

struct Encoder<'a> {
    out: &'a mut Fields,
}

impl Encoder<'_> {
    #[inline(always)]
    fn tag(&mut self, t: u8) {
        self.out.bytes.push(t);
    }

    #[inline(always)]
    fn uint(&mut self, n: u64) {
        self.out.bytes.push(tag::UINT);
        put_varint(&mut self.out.bytes, n);
    }

    #[inline(always)]
    fn int(&mut self, n: i64) {
        self.out.bytes.push(tag::INT);
        put_varint(&mut self.out.bytes, ((n << 1) ^ (n >> 63)) as u64);
    }

    #[inline(always)]
    fn str(&mut self, t: u8, s: &[u8]) {
        self.out.bytes.push(t);
        put_varint(&mut self.out.bytes, s.len() as u64);
        self.out.bytes.extend_from_slice(s);
    }

    #[inline(always)]
    fn variant(&mut self, index: u32, name: &'static str) {
        self.out.bytes.push(tag::VARIANT);
        put_varint(&mut self.out.bytes, u64::from(index));
        self.out.names.push(name);
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(mut self, v: bool) -> Result<(), EncodeError> {
        self.tag(if v { tag::TRUE } else { tag::FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(mut self, v: i64) -> Result<(), EncodeError> {
        self.int(v);
        Ok(())
    }
    fn serialize_i128(mut self, v: i128) -> Result<(), EncodeError> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => self.str(tag::STR, v.to_string().as_bytes()),
        }
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(mut self, v: u64) -> Result<(), EncodeError> {
        self.uint(v);
        Ok(())
    }
    fn serialize_u128(mut self, v: u128) -> Result<(), EncodeError> {
        match u64::try_from(v) {
            Ok(v) => self.uint(v),
            Err(_) => self.str(tag::STR, v.to_string().as_bytes()),
        }
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), EncodeError> {
        self.tag(tag::FLOAT);
        self.out.bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(mut self, v: char) -> Result<(), EncodeError> {
        let mut buf = [0u8; 4];
        self.str(tag::STR, v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }
    fn serialize_str(mut self, v: &str) -> Result<(), EncodeError> {
        self.str(tag::STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), EncodeError> {
        self.str(tag::BYTES, v);
        Ok(())
    }
    fn serialize_none(mut self) -> Result<(), EncodeError> {
        self.tag(tag::NULL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), EncodeError> {
        self.tag(tag::NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        mut self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.variant(index, variant);
        self.tag(tag::NULL);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.variant(index, variant);
        value.serialize(self)
    }
    fn serialize_seq(mut self, _len: Option<usize>) -> Result<Self, EncodeError> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodeError> {
        self.variant(index, variant);
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_map(mut self, _len: Option<usize>) -> Result<Self, EncodeError> {
        self.tag(tag::MAP);
        Ok(self)
    }
    fn serialize_struct(mut self, _name: &'static str, _len: usize) -> Result<Self, EncodeError> {
        self.tag(tag::STRUCT);
        Ok(self)
    }
    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodeError> {
        self.variant(index, variant);
        self.tag(tag::STRUCT);
        Ok(self)
    }
}

impl Encoder<'_> {
    fn reborrow(&mut self) -> Encoder<'_> {
        Encoder { out: self.out }
    }

    fn end(mut self) -> Result<(), EncodeError> {
        self.tag(tag::END);
        Ok(())
    }
}

/// The element-wise compound serializers all write their elements in order and close
/// with END; they differ only in the trait and the method's name.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Encoder<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
                value.serialize(self.reborrow())
            }
            fn end(self) -> Result<(), EncodeError> {
                Encoder::end(self)
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// Struct fields push their static name for the JSON reader; a skipped field leaves a
/// marker so that the bytes tell which fields are there.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Encoder<'_> {
            type Ok = ();
            type Error = EncodeError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), EncodeError> {
                self.out.names.push(key);
                value.serialize(self.reborrow())
            }
            fn skip_field(&mut self, _key: &'static str) -> Result<(), EncodeError> {
                self.tag(tag::SKIPPED);
                Ok(())
            }
            fn end(self) -> Result<(), EncodeError> {
                Encoder::end(self)
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        key.serialize(self.reborrow())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self.reborrow())
    }
    fn end(self) -> Result<(), EncodeError> {
        Encoder::end(self)
    }
}

/// Reads the compact form back as JSON. The input was written by [`Encoder`] in this
/// process, so a malformed byte is a bug: it reads as `null` rather than panicking in
/// the middle of a failure report.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    names: std::slice::Iter<'a, &'static str>,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(tag::END);
        self.pos += 1;
        b
    }

    fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(tag::END)
    }

    fn varint(&mut self) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte();
            n |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 || self.pos >= self.bytes.len() {
                return n;
            }
            shift += 7;
        }
    }

    fn raw(&mut self) -> &[u8] {
        let len = self.varint() as usize;
        let start = self.pos.min(self.bytes.len());
        let end = start.saturating_add(len).min(self.bytes.len());
        self.pos = end;
        &self.bytes[start..end]
    }

    fn name(&mut self) -> String {
        self.names
            .next()
            .map_or_else(String::new, |n| n.to_string())
    }

    fn value(&mut self) -> serde_json::Value {
        use serde_json::Value;
        match self.byte() {
            tag::NULL => Value::Null,
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::UINT => Value::from(self.varint()),
            tag::INT => {
                let z = self.varint();
                Value::from(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            tag::FLOAT => {
                let mut w = [0u8; 8];
                for b in &mut w {
                    *b = self.byte();
                }
                serde_json::Number::from_f64(f64::from_le_bytes(w))
                    .map_or(Value::Null, Value::Number)
            }
            tag::STR => Value::String(String::from_utf8_lossy(self.raw()).into_owned()),
            tag::BYTES => Value::Array(self.raw().iter().map(|&b| Value::from(b)).collect()),
            tag::SEQ => {
                let mut items = Vec::new();
                while !matches!(self.peek(), tag::END) {
                    items.push(self.value());
                }
                self.pos += 1;
                Value::Array(items)
            }
            tag::MAP => {
                let mut map = serde_json::Map::new();
                while !matches!(self.peek(), tag::END) {
                    let key = match self.value() {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let value = self.value();
                    map.insert(key, value);
                }
                self.pos += 1;
                Value::Object(map)
            }
            tag::STRUCT => {
                let mut map = serde_json::Map::new();
                loop {
                    match self.peek() {
                        tag::END => break,
                        tag::SKIPPED => self.pos += 1,
                        _ => {
                            let key = self.name();
                            let value = self.value();
                            map.insert(key, value);
                        }
                    }
                }
                self.pos += 1;
                Value::Object(map)
            }
            tag::VARIANT => {
                let _index = self.varint();
                let name = self.name();
                // A unit variant is its name; the others wrap their content in its name,
                // as serde_json's externally tagged enums do.
                if self.peek() == tag::NULL {
                    self.pos += 1;
                    return Value::String(name);
                }
                let inner = self.value();
                let mut map = serde_json::Map::new();
                map.insert(name, inner);
                Value::Object(map)
            }
            _ => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(u8, i64),
        Struct { a: String },
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        First { x: u32 },
        Second,
    }

    #[derive(Serialize)]
    struct Everything {
        unsigned: u64,
        signed: i32,
        float: f64,
        text: &'static str,
        escaped: String,
        flag: bool,
        missing: Option<u8>,
        present: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        list: Vec<u16>,
        tuple: (u8, &'static str),
        map: BTreeMap<u32, &'static str>,
        shapes: Vec<Shape>,
        tagged: Vec<Tagged>,
        bytes: serde_bytes_like::Bytes,
        unit: (),
    }

    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn everything() -> Everything {
        Everything {
            unsigned: u64::MAX,
            signed: -5,
            float: 0.1,
            text: "plain",
            escaped: "quote \" and \\ and \n and \u{1}".into(),
            flag: true,
            missing: None,
            present: Some(3),
            skipped: None,
            list: vec![1, 300, 65535],
            tuple: (7, "seven"),
            map: BTreeMap::from([(1, "one"), (2, "two")]),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(4),
                Shape::Tuple(1, i64::MIN),
                Shape::Struct { a: "é".into() },
            ],
            tagged: vec![Tagged::First { x: 9 }, Tagged::Second],
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            unit: (),
        }
    }

    #[test]
    fn json_from_the_compact_form_is_what_serde_json_writes() {
        let value = everything();
        let mut fields = Fields::default();
        fields.encode(&value);
        assert_eq!(fields.to_json(), serde_json::to_value(&value).unwrap());
    }

    #[test]
    fn numbers_past_64_bits_read_as_their_decimal_text() {
        // serde_json's `Value` cannot hold them; the text keeps every digit.
        let mut fields = Fields::default();
        fields.encode(&(u128::MAX, i128::MIN));
        let expected = serde_json::json!([u128::MAX.to_string(), i128::MIN.to_string()]);
        assert_eq!(fields.to_json(), expected);
    }

    #[test]
    fn different_values_of_one_type_never_share_their_bytes() {
        #[derive(Serialize)]
        struct TwoOptions {
            #[serde(skip_serializing_if = "Option::is_none")]
            a: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<u8>,
        }
        let encode = |v: &dyn Fn(&mut Fields)| {
            let mut f = Fields::default();
            v(&mut f);
            f.bytes
        };
        let a = encode(&|f| {
            f.encode(&TwoOptions {
                a: Some(1),
                b: None,
            })
        });
        let b = encode(&|f| {
            f.encode(&TwoOptions {
                a: None,
                b: Some(1),
            })
        });
        assert_ne!(a, b);
        let unit_a = encode(&|f| f.encode(&Shape::Unit));
        let newtype = encode(&|f| f.encode(&Shape::Newtype(0)));
        assert_ne!(unit_a, newtype);
        let s1 = encode(&|f| f.encode(&("ab", "")));
        let s2 = encode(&|f| f.encode(&("a", "b")));
        assert_ne!(s1, s2);
    }

    #[test]
    fn a_failing_serialize_is_kept_as_an_error_field() {
        struct Broken;
        impl Serialize for Broken {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut f = Fields::default();
        f.encode(&Broken);
        assert_eq!(f.to_json(), serde_json::json!(["serialize_error", "no"]));
    }
}
