//! The passes, one per file, named like their command words: `quantize`, `bbs-prune`,
//! `act-table`, `partition` (run by [`crate::design::build`]), `calibrate` (formats from observed
//! ranges, run by the `calibrate` verb) and `schedule` (the multi-device
//! schedule, run by the architecture layer for multi-device plans).

pub mod act_table;
pub mod bbs_prune;
pub mod calibrate;
pub mod fold;
pub mod partition;
pub mod quantize;
pub mod schedule;
