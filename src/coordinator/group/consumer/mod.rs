//! KIP-848 consumer groups ("the next generation consumer rebalance protocol").

pub mod assignor;
pub mod member;
pub mod reconcile;
pub mod record;
