//! The common merge patch, applied without building a document: a patch whose members are all
//! scalars, arrays or `null` (e.g. `{"status":"inactive"}`) only replaces or removes top-level
//! members of the target, so the target's other members are copied as they are, byte for byte
//! inside their values, instead of being parsed into a tree and serialized again. A fire of a
//! 300 B entity spent most of its time in that round trip.
//!
//! It gives the same JSON value as RFC 7396 (the full merge in `mod.rs`). Whenever the result
//! could differ it declines and the caller takes the full path: a target that is not a JSON
//! object, not valid UTF-8 or not valid JSON, or has a member name twice. The output is
//! compact and keeps the target's member order; new members follow in the patch's order.

use std::borrow::Cow;

use serde_json::Value;

/// A patch of top-level replacements and removals, its values serialized once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopLevelPatch {
    /// Member name → its new value as JSON text, or `None` to remove it.
    members: Vec<(String, Option<Vec<u8>>)>,
}

impl TopLevelPatch {
    /// The fast form of `patch`, or `None` if it is not an object or merges into a nested
    /// object (an object-valued member).
    #[must_use]
    pub(super) fn of(patch: &Value) -> Option<Self> {
        let Value::Object(map) = patch else {
            return None;
        };
        let mut members = Vec::with_capacity(map.len());
        for (name, value) in map {
            let text = match value {
                Value::Object(_) => return None,
                Value::Null => None,
                other => Some(serde_json::to_vec(other).ok()?),
            };
            members.push((name.clone(), text));
        }
        Some(Self { members })
    }

    /// The patched `target`, or `None` where the full merge must decide (see the module docs).
    #[must_use]
    pub(super) fn apply(&self, target: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(target).ok()?;
        let mut out = Vec::with_capacity(target.len() + 32);
        out.push(b'{');
        let mut seen: Vec<Cow<'_, str>> = Vec::new();
        let mut end = None;
        for entry in sonic_rs::to_object_iter(text) {
            let (name, value) = entry.ok()?;
            if seen.contains(&name) {
                return None;
            }
            let raw = value.as_raw_str();
            end = Some(offset_in(text, raw)? + raw.len());
            match self.members.iter().find(|(member, _)| *member == *name) {
                Some((_, None)) => {}
                Some((_, Some(replacement))) => member(&mut out, &name, replacement).ok()?,
                None => member(&mut out, &name, raw.as_bytes()).ok()?,
            }
            seen.push(name);
        }
        // The iterator stops at the closing brace; the text after it must be blank, as a full
        // parse requires. An empty object has no last value to measure from: full path.
        let rest = text.get(end?..)?.trim_start().strip_prefix('}')?;
        if !rest.trim().is_empty() {
            return None;
        }
        for (name, value) in &self.members {
            if let Some(value) = value
                && !seen.iter().any(|s| s == name)
            {
                member(&mut out, name, value).ok()?;
            }
        }
        out.push(b'}');
        Some(out)
    }
}

/// Where `part` (a slice of `whole`) starts in `whole`.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// Appends `"name":value`, with a comma unless it is the first member.
fn member(out: &mut Vec<u8>, name: &str, value: &[u8]) -> serde_json::Result<()> {
    if out.len() > 1 {
        out.push(b',');
    }
    serde_json::to_writer(&mut *out, name)?;
    out.push(b':');
    out.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn full(target: &[u8], patch: &Value) -> Value {
        let mut value = serde_json::from_slice(target).unwrap_or(Value::Null);
        json_patch::merge(&mut value, patch);
        value
    }

    #[test]
    fn replaces_removes_and_adds_members_in_place() {
        let patch =
            TopLevelPatch::of(&json!({"status":"inactive","promo":null,"tags":[1]})).unwrap();
        let out = patch
            .apply(br#" { "id" : 1, "status":"active", "promo":{"a":[1,2]}, "n":{"x":"y"} } "#)
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"id":1,"status":"inactive","n":{"x":"y"},"tags":[1]}"#
        );
    }

    #[test]
    fn declines_what_the_full_merge_must_decide() {
        let patch = TopLevelPatch::of(&json!({"s":1})).unwrap();
        for target in [
            &b"[1]"[..],
            b"\"text\"",
            b"{}",
            b"{\"a\":1} x",
            b"{\"a\":1",
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":tru}",
            b"\xff",
        ] {
            assert_eq!(
                patch.apply(target),
                None,
                "{:?}",
                String::from_utf8_lossy(target)
            );
        }
        assert!(TopLevelPatch::of(&json!({"nested":{"s":1}})).is_none());
        assert!(TopLevelPatch::of(&json!("replace")).is_none());
    }

    #[test]
    fn escaped_names_compare_unescaped() {
        let patch = TopLevelPatch::of(&json!({"a\"b":2, "é":3})).unwrap();
        let target = br#"{"a\"b":1,"\u00e9":1,"c\n":0}"#;
        let out = patch.apply(target).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            full(target, &json!({"a\"b":2, "é":3}))
        );
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-c\"\\\\é]{0,3}".prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Wherever the fast path answers, it answers what RFC 7396 does.
        #[test]
        fn agrees_with_the_full_merge(
            target in prop::collection::btree_map("[a-d]", value(), 0..5),
            patch in prop::collection::btree_map("[a-e]", scalar(), 0..4),
            pretty in any::<bool>(),
        ) {
            let target = Value::Object(target.into_iter().collect());
            let patch = Value::Object(patch.into_iter().collect());
            let bytes = if pretty {
                serde_json::to_vec_pretty(&target).unwrap()
            } else {
                serde_json::to_vec(&target).unwrap()
            };
            let fast = TopLevelPatch::of(&patch).unwrap();
            match fast.apply(&bytes) {
                Some(out) => prop_assert_eq!(
                    serde_json::from_slice::<Value>(&out).unwrap(),
                    full(&bytes, &patch)
                ),
                None => prop_assert_eq!(target, Value::Object(Default::default())),
            }
        }
    }
}
