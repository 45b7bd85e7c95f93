//! A topic's temporal configuration: `temporal.fields`, `temporal.format`, `temporal.patch`
//! and `temporal.target.topic`, parsed and checked together (a patch must name a listed field).

use super::patch::FirePatches;
use super::selector::{FieldSelector, parse_fields};
use super::time_format::TemporalFormat;

/// The parsed `temporal.*` configs of a topic that has temporal fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalConfig {
    /// `temporal.fields`, in order; a field's index is its position.
    pub fields: Vec<FieldSelector>,
    /// `temporal.format`.
    pub format: TemporalFormat,
    /// `temporal.patch`.
    pub patches: FirePatches,
    /// `temporal.target.topic`; `None` fires into the topic itself.
    pub target_topic: Option<String>,
}

impl TemporalConfig {
    /// Parses the four configs. Returns `Ok(None)` when `temporal.fields` is empty or unset: the
    /// topic is not indexed.
    ///
    /// # Errors
    /// A message for INVALID_CONFIG naming the offending config.
    pub fn parse(
        fields: Option<&str>,
        format: Option<&str>,
        patch: Option<&str>,
        target_topic: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let fields = parse_fields(fields.unwrap_or_default())
            .map_err(|e| format!("temporal.fields: {e}"))?;
        let format: TemporalFormat = format.unwrap_or("auto").parse()?;
        let patches = FirePatches::parse(patch.unwrap_or_default(), &fields)?;
        let target_topic = target_topic.filter(|t| !t.is_empty()).map(str::to_owned);
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            fields,
            format,
            patches,
            target_topic,
        }))
    }

    /// The topic that `topic`'s fires go to when it is another one; `None` fires into `topic`
    /// itself (naming the topic itself is the same as leaving the config unset).
    #[must_use]
    pub fn target_of(&self, topic: &str) -> Option<&str> {
        self.target_topic.as_deref().filter(|t| *t != topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_readme_example_and_rejects_inconsistent_configs() {
        let config = TemporalConfig::parse(
            Some("/valid_from,/expiration_date"),
            None,
            Some(r#"{"/expiration_date":{"status":"inactive"}}"#),
            Some(""),
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.fields.len(), 2);
        assert_eq!(config.format, TemporalFormat::Auto);
        assert!(config.target_topic.is_none());
        assert!(
            TemporalConfig::parse(Some(""), None, None, None)
                .unwrap()
                .is_none()
        );
        assert!(TemporalConfig::parse(Some("/a"), Some("iso"), None, None).is_err());
        assert!(TemporalConfig::parse(Some("/a"), None, Some(r#"{"/b":{}}"#), None).is_err());
        assert!(TemporalConfig::parse(Some("a,b"), None, None, None).is_err());
    }
}
