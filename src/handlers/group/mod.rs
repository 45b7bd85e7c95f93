//! The group APIs. Each handler converts its request to the coordinator's terms, makes one
//! call on the `GroupCoordinator` (on the blocking pool: the coordinator appends to
//! `__consumer_offsets`), and builds the response.

pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod delete_groups;
pub mod describe_groups;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;

use std::sync::Arc;

use crate::broker::BrokerState;
use crate::coordinator::group::GroupCoordinator;

/// Runs `work` on the coordinator off the reactor; a panic there becomes `fallback`.
pub(crate) async fn on_coordinator<T: Send + 'static>(
    state: &Arc<BrokerState>,
    fallback: T,
    work: impl FnOnce(&GroupCoordinator) -> T + Send + 'static,
) -> T {
    let coordinator = Arc::clone(&state.groups);
    super::blocking(fallback, move || work(&coordinator)).await
}
