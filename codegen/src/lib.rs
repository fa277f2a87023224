//! partita codegen: the plan language, its validation, the passes, the architecture layer, the
//! emitters and the analyses.
//!
//! Data flows one way: [`plan::load`] → [`design::build`] (weights, then the passes in
//! [`passes`]: `bbs-prune`, `quantize`, `act-table`, `partition`) → [`arch`] (geometry and
//! widths, with the `schedule` pass for multi-device plans) → [`emit`] (Verilog, memory images,
//! register maps) and [`analysis`] (resources, link traffic, cycles).

pub mod analysis;
pub mod arch;
pub mod boards;
pub mod design;
pub mod diag;
pub mod emit;
pub mod fixed;
pub mod limits;
pub mod passes;
pub mod plan;
pub mod weights;

pub use design::Design;
pub use diag::Error;

/// Generator version written into generated files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
