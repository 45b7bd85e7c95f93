//! `temporal.patch`: per selector, an RFC 7396 JSON merge patch applied to the value a fire
//! carries, e.g. `{"/expiration_date":{"status":"inactive"}}`.
//!
//! RFC 7396 applies exactly: object members merge recursively, `null` removes a member, and a
//! patch that is not an object, or a target that is not an object, replaces the target. A value
//! that is not JSON at all is treated as `null`, so an object patch replaces it.

mod top_level;

use std::collections::BTreeMap;

use serde_json::Value;

use self::top_level::TopLevelPatch;

/// Parsed `temporal.patch`: selector text → merge patch, with its fast form where it has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirePatches {
    patches: BTreeMap<String, (Value, Option<TopLevelPatch>)>,
}

impl FirePatches {
    /// Parses the config value: a JSON object whose keys are selectors listed in
    /// `temporal.fields`. An empty string means no patches.
    ///
    /// # Errors
    /// A message for INVALID_CONFIG: not a JSON object, or a key that is not one of `fields`.
    pub fn parse(text: &str, fields: &[super::selector::FieldSelector]) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("temporal.patch is not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("temporal.patch must be a JSON object mapping selectors to patches".into());
        };
        let mut patches = BTreeMap::new();
        for (selector, patch) in map {
            if !fields.iter().any(|f| f.as_str() == selector) {
                return Err(format!(
                    "temporal.patch names {selector:?}, which is not in temporal.fields"
                ));
            }
            let fast = TopLevelPatch::of(&patch);
            let _ = patches.insert(selector, (patch, fast));
        }
        Ok(Self { patches })
    }

    /// The patch for a selector, if any.
    #[must_use]
    pub fn for_field(&self, selector: &str) -> Option<&Value> {
        self.patches.get(selector).map(|(patch, _)| patch)
    }

    /// Applies the selector's patch to `value` and returns the new value bytes, or `None` when
    /// the selector has no patch (the fire carries the value unchanged).
    #[must_use]
    pub fn apply(&self, selector: &str, value: Option<&[u8]>) -> Option<Vec<u8>> {
        let (patch, fast) = self.patches.get(selector)?;
        if let Some(patched) = fast.as_ref().zip(value).and_then(|(f, v)| f.apply(v)) {
            return Some(patched);
        }
        let mut target = value
            .and_then(|v| serde_json::from_slice::<Value>(v).ok())
            .unwrap_or(Value::Null);
        json_patch::merge(&mut target, patch);
        serde_json::to_vec(&target).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temporal::selector::parse_fields;

    #[test]
    fn applies_rfc7396_per_field() {
        let fields = parse_fields("/valid_from,/expiration_date").unwrap();
        let patches = FirePatches::parse(
            r#"{"/valid_from":{"status":"active"},"/expiration_date":{"status":"inactive","promo":null}}"#,
            &fields,
        )
        .unwrap();
        let value = br#"{"id":1,"status":"pending","promo":"x"}"#;
        let fired: Value =
            serde_json::from_slice(&patches.apply("/expiration_date", Some(value)).unwrap())
                .unwrap();
        assert_eq!(fired, serde_json::json!({"id":1,"status":"inactive"}));
        let fired: Value =
            serde_json::from_slice(&patches.apply("/valid_from", Some(value)).unwrap()).unwrap();
        assert_eq!(fired["status"], "active");
    }

    #[test]
    fn non_object_patches_and_targets_replace() {
        let fields = parse_fields("/a").unwrap();
        let patches = FirePatches::parse(r#"{"/a":"gone"}"#, &fields).unwrap();
        assert_eq!(
            patches.apply("/a", Some(br#"{"x":1}"#)).unwrap(),
            br#""gone""#
        );
        let patches = FirePatches::parse(r#"{"/a":{"s":1}}"#, &fields).unwrap();
        assert_eq!(patches.apply("/a", Some(b"[1,2]")).unwrap(), br#"{"s":1}"#);
        assert_eq!(
            patches.apply("/a", Some(b"not json")).unwrap(),
            br#"{"s":1}"#
        );
    }

    #[test]
    fn refuses_unknown_selectors_and_non_objects() {
        let fields = parse_fields("/a").unwrap();
        assert!(FirePatches::parse(r#"{"/b":{}}"#, &fields).is_err());
        assert!(FirePatches::parse("[1]", &fields).is_err());
        assert!(FirePatches::parse("{", &fields).is_err());
        assert!(
            FirePatches::parse("", &fields)
                .unwrap()
                .for_field("/a")
                .is_none()
        );
    }
}
