//! The one integration test binary (one link step). Each module says what belongs in it.

mod support;
mod wire;

mod admin;
mod cli;
mod clients_python;
mod compaction;
mod durability;
mod embedding;
mod group_offsets;
mod groups;
mod produce_fetch;
mod protocol_bytes;
mod protocol_props;
mod regression;
mod temporal;
mod temporal_crash;
mod temporal_state;
mod temporal_target;
mod transactions;
