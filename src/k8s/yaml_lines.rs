//! A YAML document as a tree of keys, items and scalars, each with the line it starts on,
//! so that a manifest problem can name the line of the field it is about.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node and the line it starts on (1-based within its document; 0 if unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    pub(crate) value: NodeValue,
}

/// What a [`Node`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeValue {
    /// A scalar's text; `None` for null.
    Scalar(Option<String>),
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<Entry>),
}

/// One key of a mapping: its text, the line of the key, and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) line: usize,
    pub(crate) value: Node,
}

impl Node {
    /// Parses one YAML document.
    pub(crate) fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }

    /// The entry under `key`, when this node is a mapping that has it.
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The value under `key`, when this node is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The scalar text, when this node is a non-null scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar(s) => s.as_deref(),
            _ => None,
        }
    }

    /// The line of the field at `path`, a dotted path with optional indices such as
    /// `spec.rateLimit.burst` or `spec.methods[1]`: the line of its key (or item), or of
    /// the closest parent present when the field itself is not written. 0 when not even
    /// the first segment is present.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut node = self;
        let mut line = 0;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let (key, indices) = match segment.find('[') {
                Some(i) => (&segment[..i], &segment[i..]),
                None => (segment, ""),
            };
            let Some(entry) = node.entry(key) else {
                return line;
            };
            line = entry.line;
            node = &entry.value;
            for index in indices
                .split(['[', ']'])
                .filter_map(|i| i.parse::<usize>().ok())
            {
                let NodeValue::Seq(items) = &node.value else {
                    return line;
                };
                let Some(item) = items.get(index) else {
                    return line;
                };
                line = item.line;
                node = item;
            }
        }
        line
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: line_number(spanned.referenced.line()),
            value: spanned.value.0,
        })
    }
}

fn line_number(line: u64) -> usize {
    usize::try_from(line).unwrap_or(0)
}

/// A node's value without its position (the position comes from the `Spanned` around it).
struct Value(NodeValue);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl ValueVisitor {
    fn scalar<E>(text: impl fmt::Display) -> Result<Value, E> {
        Ok(Value(NodeValue::Scalar(Some(text.to_string()))))
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Self::scalar(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Self::scalar(String::from_utf8_lossy(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value(NodeValue::Scalar(None)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value(NodeValue::Scalar(None)))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value(NodeValue::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.value.0,
                line: line_number(key.referenced.line()),
                value,
            });
        }
        Ok(Value(NodeValue::Map(entries)))
    }
}

/// A mapping key as written (YAML allows numbers and booleans as keys; read as text, `y`
/// stays `y` rather than becoming a YAML 1.1 boolean).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_str(ValueVisitor)?.0 {
            NodeValue::Scalar(text) => Ok(Key(text.unwrap_or_else(|| "null".into()))),
            NodeValue::Seq(_) | NodeValue::Map(_) => {
                Err(de::Error::custom("a mapping key must be a scalar"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_carry_their_lines() {
        let text = "apiVersion: v1\nkind: X\nspec:\n  rateLimit:\n    burst: 3\n  methods:\n  - read\n  - write\n  flow: {a: 1, b: [x, y]}\n";
        let node = Node::parse(text).expect("parses");
        assert_eq!(node.get("kind").and_then(Node::as_str), Some("X"));
        assert_eq!(node.line_of("spec"), 3);
        assert_eq!(node.line_of("spec.rateLimit.burst"), 5);
        assert_eq!(node.line_of("spec.methods"), 6);
        assert_eq!(node.line_of("spec.methods[1]"), 8);
        assert_eq!(node.line_of("spec.flow.b"), 9);
        // Not written: the closest parent that is.
        assert_eq!(node.line_of("spec.rateLimit.requestsPerMinute"), 4);
        assert_eq!(node.line_of("spec.methods[7]"), 6);
        assert_eq!(node.line_of("status.url"), 0);
        let burst = node
            .get("spec")
            .and_then(|s| s.get("rateLimit"))
            .and_then(|r| r.get("burst"))
            .and_then(Node::as_str);
        assert_eq!(burst, Some("3"));
    }

    #[test]
    fn scalars_of_every_kind_and_keys_as_written() {
        let node = Node::parse("1: true\nz: 2.5\nx: null\ny:\n").expect("parses");
        let NodeValue::Map(entries) = &node.value else {
            panic!("a map: {node:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["1", "z", "x", "y"]);
        assert_eq!(node.get("1").and_then(Node::as_str), Some("true"));
        assert_eq!(
            node.get("x").map(|n| &n.value),
            Some(&NodeValue::Scalar(None))
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = Node::parse("a: [1, 2\nb: c\n").expect_err("not YAML");
        assert_eq!(e.location().map(|l| l.line()), Some(2));
    }
}
