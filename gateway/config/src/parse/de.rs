//! A `serde::Deserializer` over one subtree of the document, so each component
//! is deserialised on its own and every error carries the position of the node
//! it came from.
//!
//! Where an error is attributed:
//! - errors raised while a key is read (`unknown field`) point at the key;
//! - errors raised by a value's own `Deserialize` (wrong type, a bad duration,
//!   an unset `${VAR}`) point at the value;
//! - errors a map visitor raises after reading the whole map (`missing field`)
//!   point at the map; errors it raises part-way (an unknown `type`, `type` not
//!   first) point at the key or value it read last.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::tree::{Entry, Kind, Node, Pos, Scalar, Value};

/// A deserialisation error with the position it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Where the problem is; `None` until the node that raised it is known.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
    /// Set when the error is serde's `unknown_variant`, so callers can phrase
    /// an unknown component `type` in their own words.
    pub unknown_variant: Option<UnknownVariant>,
}

/// The details of an unknown enum variant.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownVariant {
    /// What was written.
    pub found: String,
    /// What is accepted.
    pub expected: &'static [&'static str],
}

impl Error {
    /// Sets the position unless an inner node set it already.
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            pos: None,
            message: msg.to_string(),
            unknown_variant: None,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::custom(format_args!(
            "unknown variant `{variant}`, {}",
            one_of(expected)
        ));
        e.unknown_variant = Some(UnknownVariant {
            found: variant.to_owned(),
            expected,
        });
        e
    }
}

/// `expected one of `a`, `b``, in serde's wording.
pub(crate) fn one_of(expected: &[&str]) -> String {
    match expected {
        [] => "there are none".to_owned(),
        [one] => format!("expected `{one}`"),
        many => format!(
            "expected one of {}",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Deserialises `T` from `node`; the error always has a position.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, Error> {
    T::deserialize(NodeDe(node)).map_err(|e| e.at(node.pos))
}

/// Deserializer over one node.
#[derive(Debug, Clone, Copy)]
pub struct NodeDe<'a>(pub &'a Node);

impl<'de> NodeDe<'de> {
    fn visit_scalar<V: Visitor<'de>>(s: &'de Scalar, visitor: V) -> Result<V::Value, Error> {
        match &s.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
        }
    }

    fn visit_map<V: Visitor<'de>>(
        entries: &'de [Entry],
        pos: Pos,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let last = Cell::new(None);
        let done = Cell::new(false);
        let access = MapDe {
            entries: entries.iter(),
            value: None,
            last: &last,
            done: &done,
        };
        visitor.visit_map(access).map_err(|e| {
            let at = if done.get() {
                pos
            } else {
                last.get().unwrap_or(pos)
            };
            e.at(at)
        })
    }
}

macro_rules! forward_to_any {
    ($($name:ident)*) => {
        $(fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.0;
        match &node.kind {
            Kind::Map(entries) => Self::visit_map(entries, node.pos, visitor),
            Kind::Seq(items) => {
                let access = SeqDe {
                    items: items.iter(),
                };
                visitor.visit_seq(access).map_err(|e| e.at(node.pos))
            }
            Kind::Scalar(s) => Self::visit_scalar(s, visitor).map_err(|e| e.at(node.pos)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.0;
        match &node.kind {
            Kind::Scalar(s) if s.value != Value::Null => visitor
                .visit_borrowed_str::<Error>(&s.text)
                .map_err(|e| e.at(node.pos)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let node = self.0;
        if node.is_null() {
            visitor.visit_none::<Error>().map_err(|e| e.at(node.pos))
        } else {
            visitor.visit_some(self).map_err(|e| e.at(node.pos))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let pos = self.0.pos;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(pos))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    /// Externally tagged: `mode` (unit variant) or `{ variant: content }`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.0;
        let access = match &node.kind {
            Kind::Scalar(s) if s.value != Value::Null => EnumDe {
                tag: node,
                content: None,
            },
            Kind::Map(entries) if entries.len() == 1 => EnumDe {
                tag: &entries[0].key,
                content: Some(&entries[0].value),
            },
            _ => {
                return Err(<Error as de::Error>::custom(format_args!(
                    "expected a name or a map with a single key, found {}",
                    node.describe()
                ))
                .at(node.pos));
            }
        };
        visitor.visit_enum(access).map_err(|e| e.at(node.pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_bytes deserialize_byte_buf
        deserialize_seq deserialize_map
    }
}

/// Entries of a mapping; records which node was read last so that errors a
/// visitor raises part-way through the map can point at it.
struct MapDe<'a, 'de> {
    entries: std::slice::Iter<'de, Entry>,
    value: Option<&'de Node>,
    last: &'a Cell<Option<Pos>>,
    done: &'a Cell<bool>,
}

impl<'de> MapAccess<'de> for MapDe<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            self.done.set(true);
            return Ok(None);
        };
        self.last.set(Some(entry.key.pos));
        self.value = Some(&entry.value);
        seed.deserialize(NodeDe(&entry.key))
            .map(Some)
            .map_err(|e| e.at(entry.key.pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self.value.take().ok_or_else(|| {
            <Error as de::Error>::custom("a map value was requested before its key")
        })?;
        self.last.set(Some(value.pos));
        seed.deserialize(NodeDe(value)).map_err(|e| e.at(value.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct SeqDe<'de> {
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(NodeDe(item))
                .map(Some)
                .map_err(|e| e.at(item.pos)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An externally tagged enum: `tag` names the variant, `content` (for map
/// form) holds its data.
struct EnumDe<'de> {
    tag: &'de Node,
    content: Option<&'de Node>,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = Error;
    type Variant = VariantDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let tag = self.tag;
        let text = tag.as_text().unwrap_or_default();
        let value = seed
            .deserialize(IntoDeserializer::<Error>::into_deserializer(text))
            .map_err(|e| e.at(tag.pos))?;
        Ok((
            value,
            VariantDe {
                tag,
                content: self.content,
            },
        ))
    }
}

struct VariantDe<'de> {
    tag: &'de Node,
    content: Option<&'de Node>,
}

impl VariantDe<'_> {
    fn name(&self) -> &str {
        self.tag.as_text().unwrap_or_default()
    }
}

impl<'de> VariantAccess<'de> for VariantDe<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(c) if c.is_null() => Ok(()),
            Some(c) => Err(<Error as de::Error>::custom(format_args!(
                "`{}` takes no value, found {}",
                self.name(),
                c.describe()
            ))
            .at(c.pos)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let content = self.content_or_err()?;
        seed.deserialize(NodeDe(content))
            .map_err(|e| e.at(content.pos))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let content = self.content_or_err()?;
        NodeDe(content).deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let content = self.content_or_err()?;
        NodeDe(content).deserialize_any(visitor)
    }
}

impl<'de> VariantDe<'de> {
    fn content_or_err(&self) -> Result<&'de Node, Error> {
        self.content.ok_or_else(|| {
            <Error as de::Error>::custom(format_args!(
                "`{}` needs a value: write `{}: <value>`",
                self.name(),
                self.name()
            ))
            .at(self.tag.pos)
        })
    }
}

#[cfg(test)]
mod tests;
