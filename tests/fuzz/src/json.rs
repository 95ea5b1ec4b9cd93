//! JSON values for fuzzing parsers of JSON records.
//!
//! Values are made with the parser's own field names as object keys, so a generated record
//! gets past "unknown field" and "missing field" to the checks behind them, and with the
//! numbers and characters that break hand-written code: integers at the edges of i32, i64 and
//! u64, fractions, and strings full of brackets, quotes, escapes and line breaks.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

/// Integers at the edges of the widths parsers convert to, and timestamps near the limits
/// the plugins check.
const EDGE_INTEGERS: &[i64] = &[
    0,
    -1,
    1,
    i32::MAX as i64,
    i32::MAX as i64 + 1,
    i32::MIN as i64,
    i32::MIN as i64 - 1,
    i64::MAX,
    i64::MIN,
    1_644_527_391,
    253_402_300_799,
    253_402_300_800,
];

/// Characters that JSON splitters and string handling treat specially.
const EDGE_CHARS: &[char] = &[
    '{', '}', '[', ']', ',', ':', '"', '\\', '\n', '\r', '\t', ' ', '\u{feff}', '\u{0}', 'é', '😀', 'a', '0',
];

/// A JSON number: an edge integer, any i64 or u64, or a fraction whose exact decimal form has
/// at most 13 digits. serde_json reads such a fraction back exactly (without its
/// `float_roundtrip` feature, longer ones may come back one unit in the last place off), so a
/// test can compare what a parser read with what was generated.
pub fn json_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        select(EDGE_INTEGERS).prop_map(Number::from),
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (any::<i16>(), 1u32..9).prop_map(|(mantissa, shift)| {
            let fraction = f64::from(mantissa) / f64::from(1u32 << shift);
            Number::from_f64(fraction).unwrap_or_else(|| Number::from(mantissa))
        }),
    ]
}

/// A string of up to a dozen characters, half of them from [`EDGE_CHARS`].
pub fn json_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![select(EDGE_CHARS), any::<char>()], 0..12)
        .prop_map(String::from_iter)
}

/// Any JSON value up to four levels deep, objects keyed mostly by `keys`.
pub fn json_value(keys: &'static [&'static str]) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(Value::Number),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            json_object(keys, inner),
        ]
    })
    .boxed()
}

/// An object of up to five members with values from `values`, keyed mostly by `keys`.
pub fn json_object(
    keys: &'static [&'static str],
    values: impl Strategy<Value = Value> + 'static,
) -> BoxedStrategy<Value> {
    let key = if keys.is_empty() {
        json_string().boxed()
    } else {
        prop_oneof![3 => select(keys).prop_map(str::to_owned), 1 => json_string()].boxed()
    };
    proptest::collection::vec((key, values), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>()))
        .boxed()
}

/// `value` with one of its nodes (itself included) replaced by a generated value or removed;
/// a removed root becomes `null`.
pub fn with_node_replaced(value: Value, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let nodes = node_count(&value);
    (0..nodes, proptest::option::weighted(0.8, json_value(keys))).prop_map(move |(target, replacement)| {
        let mut edited = value.clone();
        edit_node(&mut edited, target, replacement);
        edited
    })
}

fn node_count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(node_count).sum(),
        Value::Object(members) => members.values().map(node_count).sum(),
        _ => 0,
    }
}

/// Replaces node `target` (numbered in pre-order, the root 0) with `replacement`, or removes it
/// when `replacement` is `None`.
fn edit_node(root: &mut Value, target: usize, replacement: Option<Value>) {
    if target == 0 {
        *root = replacement.unwrap_or(Value::Null);
        return;
    }
    let mut edit = Some(replacement);
    edit_below(root, target, &mut 0, &mut edit);
}

/// Walks the children of `parent` in pre-order, counting nodes in `seen`, and applies `edit`
/// to node `target` once it is reached.
fn edit_below(parent: &mut Value, target: usize, seen: &mut usize, edit: &mut Option<Option<Value>>) {
    match parent {
        Value::Array(items) => {
            for position in 0..items.len() {
                *seen += 1;
                if *seen == target {
                    match edit.take().flatten() {
                        Some(replacement) => items[position] = replacement,
                        None => {
                            items.remove(position);
                        }
                    }
                    return;
                }
                edit_below(&mut items[position], target, seen, edit);
                if edit.is_none() {
                    return;
                }
            }
        }
        Value::Object(members) => {
            let keys: Vec<String> = members.keys().cloned().collect();
            for key in keys {
                *seen += 1;
                if *seen == target {
                    match edit.take().flatten() {
                        Some(replacement) => {
                            members.insert(key, replacement);
                        }
                        None => {
                            members.remove(&key);
                        }
                    }
                    return;
                }
                if let Some(child) = members.get_mut(&key) {
                    edit_below(child, target, seen, edit);
                }
                if edit.is_none() {
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nodes_are_numbered_in_pre_order_from_the_root() {
        let value = json!({"a": [1, {"b": 2}], "c": 3});
        assert_eq!(node_count(&value), 6);
        let edited = |target, replacement| {
            let mut edited = value.clone();
            edit_node(&mut edited, target, replacement);
            edited
        };
        assert_eq!(edited(0, None), Value::Null);
        assert_eq!(edited(2, Some(json!("x"))), json!({"a": ["x", {"b": 2}], "c": 3}));
        assert_eq!(edited(4, None), json!({"a": [1, {}], "c": 3}));
        assert_eq!(edited(5, None), json!({"a": [1, {"b": 2}]}));
        assert_eq!(edited(1, Some(json!(null))), json!({"a": null, "c": 3}));
    }
}
