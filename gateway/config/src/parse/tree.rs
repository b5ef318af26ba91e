//! The YAML document as a tree of nodes that each know their line and column.
//!
//! The text is parsed once; components are then deserialised independently
//! from their own subtree (see [`super::de`]), so one broken component does not
//! hide the problems of the others, and validation issues reported against a
//! path (`["window", "every"]`) can be mapped back to a position.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Pos {
    /// A position.
    pub const fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    /// The start of the file.
    pub const START: Self = Self::new(1, 1);
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What the node holds.
    pub kind: Kind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A mapping, in document order.
    Map(Vec<Entry>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A scalar.
    Scalar(Scalar),
}

/// One `key: value` pair of a mapping. Keys are scalars.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key node (always a scalar).
    pub key: Node,
    /// The value node.
    pub value: Node,
}

/// A scalar with the type YAML resolved for it and the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The resolved value.
    pub value: Value,
    /// The source text of a plain non-string scalar (`007`, `1.50`, `true`),
    /// so that a field asking for a string gets what was written. For strings
    /// this is the string itself.
    pub text: String,
}

/// The resolved value of a scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string (plain, quoted or block).
    Str(String),
}

impl Node {
    /// The entries when this node is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items when this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a scalar node (the string itself, or what was written).
    pub fn as_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) if s.value != Value::Null => Some(&s.text),
            _ => None,
        }
    }

    /// Whether this is a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Scalar(Scalar {
                value: Value::Null,
                ..
            })
        )
    }

    /// The entry whose key text is `key`, when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key.as_text() == Some(key))
    }

    /// The value under `key`, when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The node at `path` below this one (map keys, or sequence indexes as
    /// decimal strings), or the deepest node on the way when the path leaves
    /// the tree.
    pub fn find<S: AsRef<str>>(&self, path: &[S]) -> &Node {
        let mut node = self;
        for seg in path {
            let seg = seg.as_ref();
            let next = match &node.kind {
                Kind::Map(_) => node.get(seg),
                Kind::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                Kind::Scalar(_) => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// A short description of the node's shape for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Map(_) => "a map",
            Kind::Seq(_) => "a list",
            Kind::Scalar(Scalar {
                value: Value::Null, ..
            }) => "nothing",
            Kind::Scalar(Scalar {
                value: Value::Str(_),
                ..
            }) => "a string",
            Kind::Scalar(Scalar {
                value: Value::Bool(_),
                ..
            }) => "a boolean",
            Kind::Scalar(_) => "a number",
        }
    }
}

/// A YAML syntax or structure error with its position, when known.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Option<Pos>,
    /// The parser's message.
    pub message: String,
}

/// Parses a whole document. An empty document (or one with only comments)
/// is a null scalar.
///
/// YAML 1.2 booleans: only `true` and `false` are booleans, so `on`, `no` and
/// `y` stay strings (and valid keys).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    let raw: Spanned<Raw> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| SyntaxError {
            pos: e.location().map(|l| Pos::new(l.line(), l.column())),
            message: syntax_message(&e),
        })?;
    Ok(convert(raw, text))
}

/// The parser's message in user wording, without the position (the
/// diagnostic states it) and on one line.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let msg = UserMessageFormatter.format_message(e.without_snippet());
    msg.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn pos_of(l: Location) -> Pos {
    Pos::new(l.line(), l.column())
}

/// Text of the source between the span's byte offsets, when known.
fn source_text(l: Location, text: &str) -> Option<&str> {
    let span = l.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(len)?)
}

fn convert(raw: Spanned<Raw>, text: &str) -> Node {
    let pos = pos_of(raw.referenced);
    let kind = match raw.value {
        Raw::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .map(|(k, v)| Entry {
                    key: convert(k, text),
                    value: convert(v, text),
                })
                .collect(),
        ),
        Raw::Seq(items) => Kind::Seq(items.into_iter().map(|n| convert(n, text)).collect()),
        Raw::Scalar(value) => {
            let text = match &value {
                Value::Str(s) => s.clone(),
                Value::Null => String::new(),
                other => source_text(raw.referenced, text)
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| display_value(other)),
            };
            Kind::Scalar(Scalar { value, text })
        }
    };
    Node { pos, kind }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
    }
}

/// What serde-saphyr produces; [`convert`] turns it into a [`Node`].
enum Raw {
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
    Seq(Vec<Spanned<Raw>>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Scalar(match u64::try_from(v) {
            Ok(u) => Value::UInt(u),
            Err(_) => Value::Int(v),
        }))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::UInt(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        if let Ok(u) = u64::try_from(v) {
            Ok(Raw::Scalar(Value::UInt(u)))
        } else if let Ok(i) = i64::try_from(v) {
            Ok(Raw::Scalar(Value::Int(i)))
        } else {
            Err(E::custom(format!("integer {v} is out of range")))
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        u64::try_from(v)
            .map(|u| Raw::Scalar(Value::UInt(u)))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Str(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Str(v)))
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Raw>>()? {
            if !matches!(key.value, Raw::Scalar(_)) {
                return Err(de::Error::custom(
                    "mapping keys must be plain values, not maps or lists",
                ));
            }
            let value = map.next_value::<Spanned<Raw>>()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> (&Value, &str) {
        match &node.kind {
            Kind::Scalar(s) => (&s.value, s.text.as_str()),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn records_positions_of_keys_and_values() {
        let doc = parse("sources:\n  telemetry:\n    type: mqtt\n    qos: 1\n").unwrap();
        let src = doc.get("sources").unwrap();
        let entry = src.entry("telemetry").unwrap();
        assert_eq!(entry.key.pos, Pos::new(2, 3));
        let qos = entry.value.entry("qos").unwrap();
        assert_eq!(qos.key.pos, Pos::new(4, 5));
        assert_eq!(qos.value.pos, Pos::new(4, 10));
    }

    #[test]
    fn keeps_the_written_text_of_plain_numbers_and_booleans() {
        let doc = parse("a: 007\nb: 1.50\nc: true\nd: \"12\"\ne: -3\n").unwrap();
        assert_eq!(scalar(doc.get("a").unwrap()).1, "007");
        assert_eq!(scalar(doc.get("b").unwrap()), (&Value::Float(1.5), "1.50"));
        assert_eq!(scalar(doc.get("c").unwrap()), (&Value::Bool(true), "true"));
        assert_eq!(
            scalar(doc.get("d").unwrap()),
            (&Value::Str("12".into()), "12")
        );
        assert_eq!(scalar(doc.get("e").unwrap()), (&Value::Int(-3), "-3"));
    }

    #[test]
    fn find_falls_back_to_the_deepest_existing_node() {
        let doc = parse("w:\n  every: 5s\nl: [a, b]\n").unwrap();
        assert_eq!(doc.find(&["w", "every"]).pos, Pos::new(2, 10));
        assert_eq!(
            doc.find(&["w", "nope", "deeper"]).pos,
            doc.get("w").unwrap().pos
        );
        assert_eq!(doc.find(&["l", "1"]).as_text(), Some("b"));
        assert_eq!(doc.find::<&str>(&[]).pos, doc.pos);
    }

    #[test]
    fn reports_syntax_errors_with_their_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.is_some(), "{e:?}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn rejects_duplicate_keys_at_the_second_key() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos::new(3, 1)), "{e:?}");
        assert_eq!(e.message, "duplicate mapping key: a not allowed here");
    }

    #[test]
    fn empty_and_comment_only_documents_are_null() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# nothing here\n\n").unwrap().is_null());
    }

    #[test]
    fn only_true_and_false_are_booleans() {
        let doc = parse(
            "n: no
on: yes
",
        )
        .unwrap();
        assert_eq!(
            scalar(doc.get("n").unwrap()),
            (&Value::Str("no".into()), "no")
        );
        assert_eq!(doc.get("on").unwrap().as_text(), Some("yes"));
    }
}
