//! partita codegen: the plan language, its validation, and the passes that turn a plan into a
//! per-device design.
//!
//! Data flows one way: [`plan::load`] → [`design::build`] (weights, [`bbs_prune`],
//! [`quantize`], [`act_table`], [`partition`]) → golden model / emitters.

pub mod act_table;
pub mod bbs_prune;
pub mod cost;
pub mod design;
pub mod diag;
pub mod emit;
pub mod fixed;
pub mod node;
pub mod partition;
pub mod plan;
pub mod quantize;
pub mod summary;
pub mod weights;

pub use design::Design;
pub use diag::Error;

/// Generator version written into generated files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
