//! KIP-848 consumer groups ("the next generation consumer rebalance protocol").

pub mod member;
pub mod record;
