//! `jsonb`: a JSON document as PostgreSQL 15 keeps it, parsed by its grammar (22P02 on
//! anything else, 22P05 for `\u0000`), normalised as `jsonb` is (an object's keys sorted
//! by length then bytes, the last of duplicate keys kept, numbers as `numeric`), printed
//! as `jsonb_out` (`{"a": 1, "b": [1, 2]}`), compared as `compareJsonbContainers`
//! (`Object > Array > Boolean > Number > String > Null`), with the operators `->`, `->>`,
//! `#>`, `#>>`, `@>`, `<@` and `?`.

use std::cmp::Ordering;
use std::fmt;

use super::numeric::Numeric;
use crate::sql::error::SqlError;

#[derive(Clone, Debug)]
pub enum Jsonb {
    Null,
    Bool(bool),
    Number(Numeric),
    String(String),
    Array(Vec<Jsonb>),
    /// Keys unique, in jsonb's order (shorter first, then bytewise).
    Object(Vec<(String, Jsonb)>),
}

/// jsonb's key order: length first, then bytes.
fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn invalid(&self) -> SqlError {
        SqlError::InvalidTextRepresentation {
            detail: format!("type json: \"{}\"", self.s),
        }
    }

    fn blanks(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Jsonb, SqlError> {
        if depth > 6400 {
            return Err(self.invalid());
        }
        self.blanks();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut pairs: Vec<(String, Jsonb)> = Vec::new();
                self.blanks();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Jsonb::Object(pairs));
                }
                loop {
                    self.blanks();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.invalid());
                    }
                    let key = self.string()?;
                    self.blanks();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.invalid());
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    pairs.push((key, v));
                    self.blanks();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.invalid()),
                    }
                }
                // The last of duplicate keys wins: a stable sort keeps their order, and
                // the last of each run is kept.
                pairs.sort_by(|a, b| key_order(&a.0, &b.0));
                let mut out: Vec<(String, Jsonb)> = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    match out.last_mut() {
                        Some(last) if last.0 == k => last.1 = v,
                        _ => out.push((k, v)),
                    }
                }
                Ok(Jsonb::Object(out))
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.blanks();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Jsonb::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.blanks();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.invalid()),
                    }
                }
                Ok(Jsonb::Array(items))
            }
            Some(b'"') => Ok(Jsonb::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    "true" => Ok(Jsonb::Bool(true)),
                    "false" => Ok(Jsonb::Bool(false)),
                    "null" => Ok(Jsonb::Null),
                    _ => Err(self.invalid()),
                }
            }
            _ => Err(self.invalid()),
        }
    }

    fn number(&mut self) -> Result<Jsonb, SqlError> {
        let start = self.i;
        let digits = |p: &mut Parser<'_>| {
            let from = p.i;
            while p.b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - from
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.invalid()),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.invalid());
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.invalid());
            }
        }
        // A number runs into no letter or digit (`1x`, `01`).
        if self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return Err(self.invalid());
        }
        Ok(Jsonb::Number(Numeric::parse(&self.s[start..self.i])?))
    }

    fn hex4(&mut self) -> Result<u32, SqlError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| self.invalid())?;
        self.i += 4;
        Ok(u32::from_str_radix(h, 16).expect("hex digits"))
    }

    fn string(&mut self) -> Result<String, SqlError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self
                .b
                .get(self.i)
                .is_some_and(|c| *c != b'"' && *c != b'\\' && *c >= 0x20)
            {
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = *self.b.get(self.i).ok_or_else(|| self.invalid())?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                // A high surrogate must be followed by a low one.
                                if self.s.get(self.i..self.i + 2) != Some("\\u") {
                                    return Err(self.invalid());
                                }
                                self.i += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.invalid());
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            } else if (0xDC00..0xE000).contains(&code) {
                                return Err(self.invalid());
                            }
                            if code == 0 {
                                return Err(SqlError::UntranslatableCharacter {
                                    detail: "unsupported Unicode escape sequence: \\u0000 \
                                             cannot be converted to text"
                                        .into(),
                                });
                            }
                            out.push(char::from_u32(code).ok_or_else(|| self.invalid())?);
                        }
                        _ => return Err(self.invalid()),
                    }
                }
                // The end of the text, or a control character.
                _ => return Err(self.invalid()),
            }
        }
    }
}

/// A path element of `#>` (`{a,b,0}`), from a `text[]` literal.
pub fn parse_path(s: &str) -> Result<Vec<String>, SqlError> {
    let invalid = || SqlError::InvalidTextRepresentation {
        detail: format!("array literal: \"{s}\""),
    };
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(invalid)?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in inner.split(',') {
        let p = part.trim();
        if p.is_empty() || p.contains(['"', '\\', '{', '}']) {
            // Quoted and nested elements: rarely in a path, and easy to misread.
            if p.is_empty() {
                return Err(invalid());
            }
            return Err(SqlError::FeatureNotSupported {
                feature: format!("the array literal {s} (quoted or nested elements)"),
            });
        }
        if p.eq_ignore_ascii_case("null") {
            return Err(SqlError::FeatureNotSupported {
                feature: format!("the path {s} with a NULL element"),
            });
        }
        out.push(p.to_owned());
    }
    Ok(out)
}

impl Jsonb {
    /// `jsonb_in`.
    pub fn parse(s: &str) -> Result<Jsonb, SqlError> {
        let mut p = Parser {
            s,
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.blanks();
        if p.i != p.b.len() {
            return Err(p.invalid());
        }
        Ok(v)
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Jsonb::Array(_) | Jsonb::Object(_))
    }

    /// `->` with a key: the value of an object's key.
    pub fn field(&self, key: &str) -> Option<&Jsonb> {
        match self {
            Jsonb::Object(pairs) => pairs
                .binary_search_by(|(k, _)| key_order(k, key))
                .ok()
                .map(|i| &pairs[i].1),
            _ => None,
        }
    }

    /// `->` with an index: an array's element, from the end when negative (a scalar is
    /// an array of itself, as jsonb stores it).
    pub fn element(&self, index: i64) -> Option<&Jsonb> {
        let items: &[Jsonb] = match self {
            Jsonb::Array(items) => items,
            Jsonb::Object(_) => return None,
            scalar => std::slice::from_ref(scalar),
        };
        let len = items.len() as i64;
        let i = if index < 0 { len + index } else { index };
        if (0..len).contains(&i) {
            items.get(i as usize)
        } else {
            None
        }
    }

    /// `#>`: the value at a path of keys and array indexes.
    pub fn at_path(&self, path: &[String]) -> Option<&Jsonb> {
        let mut v = self;
        for p in path {
            v = match v {
                Jsonb::Object(_) => v.field(p)?,
                Jsonb::Array(_) => v.element(p.trim().parse::<i64>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// `->>`: a string's own text, another value's JSON text, NULL for JSON null.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Jsonb::Null => None,
            Jsonb::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `?`: whether `key` is a key of the object, or a string element of the array (or
    /// the string itself).
    pub fn exists(&self, key: &str) -> bool {
        match self {
            Jsonb::Object(_) => self.field(key).is_some(),
            Jsonb::Array(items) => items
                .iter()
                .any(|v| matches!(v, Jsonb::String(s) if s == key)),
            Jsonb::String(s) => s == key,
            _ => false,
        }
    }

    /// `@>` (`JsonbDeepContains` at the top): objects contain objects, arrays (and
    /// scalars, jsonb's one-element arrays) contain arrays and scalars, a scalar never
    /// contains an array.
    pub fn contains(&self, other: &Jsonb) -> bool {
        match (self, other) {
            (Jsonb::Object(_), Jsonb::Object(_)) => object_contains(self, other),
            (Jsonb::Object(_), _) | (_, Jsonb::Object(_)) => false,
            (Jsonb::Array(a), Jsonb::Array(b)) => array_contains(a, b),
            (Jsonb::Array(a), scalar) => array_contains(a, std::slice::from_ref(scalar)),
            (_, Jsonb::Array(_)) => false,
            (a, b) => scalar_cmp(a, b) == Some(Ordering::Equal),
        }
    }

    fn type_rank(&self) -> u8 {
        // jbvNull < jbvString < jbvNumeric < jbvBool < jbvArray < jbvObject
        match self {
            Jsonb::Null => 0,
            Jsonb::String(_) => 1,
            Jsonb::Number(_) => 2,
            Jsonb::Bool(_) => 3,
            Jsonb::Array(_) => 4,
            Jsonb::Object(_) => 5,
        }
    }
}

fn object_contains(a: &Jsonb, b: &Jsonb) -> bool {
    let Jsonb::Object(want) = b else { return false };
    want.iter().all(|(k, v)| match a.field(k) {
        None => false,
        Some(have) => match (have, v) {
            (Jsonb::Object(_), Jsonb::Object(_)) => object_contains(have, v),
            (Jsonb::Array(x), Jsonb::Array(y)) => array_contains(x, y),
            (x, y) if x.is_scalar() && y.is_scalar() => scalar_cmp(x, y) == Some(Ordering::Equal),
            _ => false,
        },
    })
}

fn array_contains(have: &[Jsonb], want: &[Jsonb]) -> bool {
    want.iter().all(|w| match w {
        Jsonb::Object(_) => have
            .iter()
            .any(|h| matches!(h, Jsonb::Object(_)) && object_contains(h, w)),
        Jsonb::Array(y) => have
            .iter()
            .any(|h| matches!(h, Jsonb::Array(x) if array_contains(x, y))),
        scalar => have
            .iter()
            .any(|h| h.is_scalar() && scalar_cmp(h, scalar) == Some(Ordering::Equal)),
    })
}

/// `compareJsonbScalarValue`, for two scalars of one type (`None` across types).
fn scalar_cmp(a: &Jsonb, b: &Jsonb) -> Option<Ordering> {
    Some(match (a, b) {
        (Jsonb::Null, Jsonb::Null) => Ordering::Equal,
        // The database's collation is C: bytes.
        (Jsonb::String(x), Jsonb::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Jsonb::Number(x), Jsonb::Number(y)) => x.cmp(y),
        (Jsonb::Bool(x), Jsonb::Bool(y)) => x.cmp(y),
        _ => return None,
    })
}

/// One step of a jsonb iterator (`JsonbIteratorNext` without skipping nested values).
enum Tok<'a> {
    BeginArray { raw_scalar: bool, len: usize },
    BeginObject { len: usize },
    Key(&'a str),
    Value(&'a Jsonb),
    Elem(&'a Jsonb),
    EndArray,
    EndObject,
}

impl Tok<'_> {
    fn kind(&self) -> u8 {
        match self {
            Tok::BeginArray { .. } => 0,
            Tok::BeginObject { .. } => 1,
            Tok::Key(_) => 2,
            Tok::Value(_) => 3,
            Tok::Elem(_) => 4,
            Tok::EndArray => 5,
            Tok::EndObject => 6,
        }
    }

    /// The type of the value the token stands for, in jbv order.
    fn type_rank(&self) -> u8 {
        match self {
            Tok::BeginArray { .. } | Tok::EndArray => 4,
            Tok::BeginObject { .. } | Tok::EndObject => 5,
            Tok::Key(_) => 1,
            Tok::Value(v) | Tok::Elem(v) => v.type_rank(),
        }
    }
}

fn tokens<'a>(v: &'a Jsonb, top: bool, out: &mut Vec<Tok<'a>>) {
    match v {
        Jsonb::Array(items) => {
            out.push(Tok::BeginArray {
                raw_scalar: false,
                len: items.len(),
            });
            for item in items {
                if item.is_scalar() {
                    out.push(Tok::Elem(item));
                } else {
                    tokens(item, false, out);
                }
            }
            out.push(Tok::EndArray);
        }
        Jsonb::Object(pairs) => {
            out.push(Tok::BeginObject { len: pairs.len() });
            for (k, val) in pairs {
                out.push(Tok::Key(k));
                if val.is_scalar() {
                    out.push(Tok::Value(val));
                } else {
                    tokens(val, false, out);
                }
            }
            out.push(Tok::EndObject);
        }
        scalar => {
            debug_assert!(top, "nested scalars are elements or values");
            out.push(Tok::BeginArray {
                raw_scalar: true,
                len: 1,
            });
            out.push(Tok::Elem(scalar));
            out.push(Tok::EndArray);
        }
    }
}

/// `compareJsonbContainers`: the iterators of both walked side by side.
fn compare(a: &Jsonb, b: &Jsonb) -> Ordering {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    tokens(a, true, &mut ta);
    tokens(b, true, &mut tb);
    for (x, y) in ta.iter().zip(&tb) {
        let res = if x.kind() == y.kind() {
            match (x, y) {
                (Tok::EndArray, _) | (Tok::EndObject, _) => Ordering::Equal,
                (
                    Tok::BeginArray {
                        raw_scalar: ra,
                        len: la,
                    },
                    Tok::BeginArray {
                        raw_scalar: rb,
                        len: lb,
                    },
                ) => {
                    // The element count decides over the raw-scalar flag, as the
                    // second test overwrites the first in PostgreSQL.
                    if la != lb {
                        la.cmp(lb)
                    } else if ra != rb {
                        if *ra {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    } else {
                        Ordering::Equal
                    }
                }
                (Tok::BeginObject { len: la }, Tok::BeginObject { len: lb }) => la.cmp(lb),
                (Tok::Key(ka), Tok::Key(kb)) => ka.as_bytes().cmp(kb.as_bytes()),
                (Tok::Value(va) | Tok::Elem(va), Tok::Value(vb) | Tok::Elem(vb)) => {
                    scalar_cmp(va, vb).unwrap_or_else(|| va.type_rank().cmp(&vb.type_rank()))
                }
                _ => Ordering::Equal,
            }
        } else {
            x.type_rank().cmp(&y.type_rank())
        };
        if res != Ordering::Equal {
            return res;
        }
    }
    Ordering::Equal
}

impl PartialEq for Jsonb {
    fn eq(&self, other: &Self) -> bool {
        compare(self, other) == Ordering::Equal
    }
}

impl Eq for Jsonb {}

impl PartialOrd for Jsonb {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Jsonb {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(self, other)
    }
}

/// Consistent with equality: numbers by value, whatever their scale.
impl std::hash::Hash for Jsonb {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u8(self.type_rank());
        match self {
            Jsonb::Null => {}
            Jsonb::Bool(b) => b.hash(state),
            Jsonb::Number(n) => n.hash(state),
            Jsonb::String(s) => s.hash(state),
            Jsonb::Array(items) => {
                items.len().hash(state);
                for i in items {
                    i.hash(state);
                }
            }
            Jsonb::Object(pairs) => {
                pairs.len().hash(state);
                for (k, v) in pairs {
                    k.hash(state);
                    v.hash(state);
                }
            }
        }
    }
}

/// `escape_json`.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// `jsonb_out`.
impl fmt::Display for Jsonb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jsonb::Null => f.write_str("null"),
            Jsonb::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Jsonb::Number(n) => n.fmt(f),
            Jsonb::String(s) => write_string(f, s),
            Jsonb::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    v.fmt(f)?;
                }
                f.write_str("]")
            }
            Jsonb::Object(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_string(f, k)?;
                    f.write_str(": ")?;
                    v.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

impl serde::Serialize for Jsonb {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Jsonb {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Jsonb::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jsonb {
        Jsonb::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalised_as_jsonb() {
        assert_eq!(
            j(r#"{"b":1,"aa":[1,2],"a":null, "b":2}"#).to_string(),
            r#"{"a": null, "b": 2, "aa": [1, 2]}"#
        );
        assert_eq!(j("1e2").to_string(), "100");
        assert_eq!(j("1.0e1").to_string(), "10");
        assert_eq!(j("-0").to_string(), "0");
        assert_eq!(
            j(r#" [1.50, "x", true] "#).to_string(),
            r#"[1.50, "x", true]"#
        );
        assert_eq!(
            j(r#"{"a":"x\u0001y\n\/"}"#).to_string(),
            r#"{"a": "x\u0001y\n/"}"#
        );
        assert_eq!(j(r#""\ud83d\ude00""#).to_string(), "\"\u{1f600}\"");
        assert_eq!(j("{}").to_string(), "{}");
        for bad in [
            "",
            "{",
            "{\"a\":1",
            "[1,]",
            "01",
            "1.",
            "-",
            "tru",
            "nul",
            "\"a",
            "'a'",
            "{a:1}",
            "[1] 2",
            "\"\\ud83d\"",
            "\"\\x\"",
            "\"\t\"",
        ] {
            let e = Jsonb::parse(bad).unwrap_err();
            assert_eq!(e.sqlstate(), Some("22P02"), "{bad:?}: {e}");
        }
        assert_eq!(
            Jsonb::parse(r#""\u0000""#).unwrap_err().sqlstate(),
            Some("22P05")
        );
    }

    #[test]
    fn operators() {
        let doc = j(r#"{"a": {"b": [1, 2]}, "s": "x", "n": null}"#);
        assert_eq!(doc.field("s").unwrap().to_string(), "\"x\"");
        assert_eq!(doc.field("s").unwrap().as_text().unwrap(), "x");
        assert_eq!(doc.field("n").unwrap().as_text(), None);
        assert!(doc.field("zz").is_none());
        let path = parse_path("{a,b,1}").unwrap();
        assert_eq!(doc.at_path(&path).unwrap().to_string(), "2");
        assert_eq!(j("[1,2]").element(-1).unwrap().to_string(), "2");
        assert_eq!(j("1").element(0).unwrap().to_string(), "1");
        assert!(doc.exists("s") && !doc.exists("x"));
        assert!(j(r#"["a", 1]"#).exists("a"));
        assert!(doc.contains(&j(r#"{"a": {"b": [2]}}"#)));
        assert!(!doc.contains(&j(r#"{"a": {"b": 2}}"#)));
        assert!(j("[1, [2, 3]]").contains(&j("[[3]]")));
        assert!(j("[1]").contains(&j("1")));
        assert!(!j("1").contains(&j("[1]")));
        assert!(j(r#"{"a": 1}"#).contains(&j(r#"{"a": 1.0}"#)));
    }

    #[test]
    fn order_as_postgres() {
        let sorted = [
            "[]",
            "null",
            "\"a\"",
            "\"b\"",
            "1",
            "2.5",
            "false",
            "true",
            "[[1]]",
            "[1, 2]",
            "{\"a\": 1}",
            "{\"b\": 1}",
            "{\"a\": 1, \"b\": 1}",
        ];
        for w in sorted.windows(2) {
            assert!(j(w[0]) < j(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(j(r#"{"a": 1}"#), j(r#"{"a": 1.00}"#));
    }
}
