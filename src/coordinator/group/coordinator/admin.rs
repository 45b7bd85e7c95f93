//! ListGroups, DescribeGroups (through [`GroupCoordinator::with_group`]), DeleteGroups.

use kafka_protocol::error::ResponseError;

use super::{Group, GroupCoordinator, GroupKind, code, group_tombstones};
use crate::coordinator::group::classic::ClassicGroupState;

/// A listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`, or empty for offset-only groups).
    pub protocol_type: String,
    /// State name.
    pub state: String,
    /// `classic` or `consumer`.
    pub group_type: String,
}

impl GroupCoordinator {
    /// ListGroups with Kafka's filters (case-insensitive states; types `classic`/`consumer`).
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn list_groups(
        &self,
        states: &[String],
        types: &[String],
    ) -> Result<Vec<ListedGroup>, ResponseError> {
        if self.is_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let groups = self.groups.lock();
        let mut listed: Vec<ListedGroup> = groups
            .iter()
            .map(|(id, group)| listed_group(id, group))
            .filter(|g| {
                states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state))
            })
            .filter(|g| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&g.group_type))
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listed)
    }

    /// Runs `describe` on a group under the lock (the describe APIs build their answers there).
    ///
    /// # Errors
    /// INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS.
    pub fn with_group<T>(
        &self,
        group_id: &str,
        describe: impl FnOnce(Option<&Group>) -> T,
    ) -> Result<T, ResponseError> {
        self.check(group_id)?;
        let groups = self.groups.lock();
        Ok(describe(groups.get(group_id)))
    }

    /// DeleteGroups: per group an error code. Only groups without members can be deleted.
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<i16> {
        let now_ms = self.clock.now_ms();
        let mut codes = Vec::with_capacity(group_ids.len());
        let mut writes = Vec::new();
        {
            let mut groups = self.groups.lock();
            for group_id in group_ids {
                let result = self.check(group_id).and_then(|()| {
                    let group = groups
                        .get_mut(group_id)
                        .ok_or(ResponseError::GroupIdNotFound)?;
                    match &group.kind {
                        GroupKind::Classic(classic) => match classic.state() {
                            ClassicGroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                            ClassicGroupState::Empty => {}
                            _ => return Err(ResponseError::NonEmptyGroup),
                        },
                        GroupKind::Consumer(consumer) if !consumer.is_empty() => {
                            return Err(ResponseError::NonEmptyGroup);
                        }
                        GroupKind::Consumer(_) => {}
                    }
                    let records = group_tombstones(group_id, group);
                    let write = self
                        .topic
                        .append(group_id, &records, None)
                        .map_err(|e| e.code)?;
                    if let GroupKind::Classic(classic) = &mut group.kind {
                        classic.mark_dead(now_ms);
                    }
                    Ok(write)
                });
                match result {
                    Ok(write) => {
                        let _ = groups.remove(group_id);
                        writes.push((codes.len(), write));
                        codes.push(0);
                    }
                    Err(error) => codes.push(code(error)),
                }
            }
        }
        for (index, write) in writes {
            if let Err(error) = self.topic.make_durable(write) {
                codes[index] = error.code();
            }
        }
        codes
    }
}

fn listed_group(group_id: &str, group: &Group) -> ListedGroup {
    match &group.kind {
        GroupKind::Classic(classic) => ListedGroup {
            group_id: group_id.to_owned(),
            protocol_type: classic.protocol_type().unwrap_or_default().to_owned(),
            state: classic.state().as_str().to_owned(),
            group_type: "classic".to_owned(),
        },
        GroupKind::Consumer(consumer) => ListedGroup {
            group_id: group_id.to_owned(),
            protocol_type: "consumer".to_owned(),
            state: consumer.state().as_str().to_owned(),
            group_type: "consumer".to_owned(),
        },
    }
}
