//! What a group subscribes to: topic names and regular expressions, resolved against the
//! broker's topics.
//!
//! Kafka compiles subscription regexes with RE2J and resolves them asynchronously; here they
//! are compiled with the `regex` crate and resolved synchronously, on the heartbeat that brings
//! a new regex and whenever topics change. Both engines are linear-time RE2 dialects without
//! backreferences or lookaround. Known differences: RE2J accepts Java's `\Q…\E` quoting, which
//! the `regex` crate rejects (INVALID_REGULAR_EXPRESSION); the `regex` crate's `\d`, `\w`, `\s`
//! and `\b` are Unicode-aware where RE2J's are ASCII, which only matters for non-ASCII topic
//! names. A regex must match the whole topic name (RE2J's `matches()`), and Kafka's internal
//! topics never match.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use regex::Regex;

use super::record::SubscribedTopic;
use crate::metadata::TopicMetadata;

/// Kafka's internal topics (`Topic.isInternal`), never resolved from a regex.
const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Compiles a subscription regex so that it must match the whole name.
///
/// # Errors
/// The regex is not valid.
pub fn compile(regex: &str) -> Result<Regex, regex::Error> {
    // Compile it alone first: a valid regex has balanced groups, so wrapping it cannot change
    // what it means (an invalid one such as `a)|(b` would otherwise become valid).
    let _ = Regex::new(regex)?;
    Regex::new(&format!("^(?:{regex})$"))
}

/// The names of `topics` that `regex` matches.
#[must_use]
pub fn resolve(regex: &Regex, topics: &[Arc<TopicMetadata>]) -> BTreeSet<String> {
    topics
        .iter()
        .filter(|t| !INTERNAL_TOPICS.contains(&t.name.as_str()) && regex.is_match(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// The metadata of the subscribed topics that exist.
#[must_use]
pub fn subscription_metadata(
    names: &BTreeSet<String>,
    topics: &[Arc<TopicMetadata>],
) -> BTreeMap<String, SubscribedTopic> {
    let by_name: HashMap<&str, &TopicMetadata> = topics
        .iter()
        .map(|t| (t.name.as_str(), t.as_ref()))
        .collect();
    names
        .iter()
        .filter_map(|name| {
            by_name.get(name.as_str()).map(|t| {
                (
                    name.clone(),
                    SubscribedTopic {
                        topic_id: t.topic_id,
                        partitions: t.partitions,
                    },
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_match_whole_names_and_skip_internal_topics() {
        let topics: Vec<Arc<TopicMetadata>> = ["orders", "orders-eu", "__consumer_offsets"]
            .iter()
            .map(|name| {
                Arc::new(TopicMetadata {
                    name: (*name).to_string(),
                    topic_id: uuid::Uuid::new_v4(),
                    partitions: 1,
                    leader_epoch: 0,
                    configs: crate::topic_config::TopicOverrides::new(),
                })
            })
            .collect();
        let names = |r: &str| resolve(&compile(r).unwrap(), &topics);
        assert_eq!(names("orders"), BTreeSet::from(["orders".to_string()]));
        assert_eq!(names("orders.*").len(), 2);
        assert!(names(".*").iter().all(|n| !n.starts_with("__")));
        assert!(compile("a)|(b").is_err());
        assert!(compile("[").is_err());
    }
}
