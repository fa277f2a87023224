//! partita-host: drives partita devices, and the `partita` command-line tool.
//!
//! - [`driver`]: the device trait, its backends (simulated; a lockstep multi-device
//!   cosimulation; PCIe cards through XDMA), the run sequences and the system driver (N
//!   devices, with the host relay). It needs only `partita-hdl` (and the cosimulation for the simulated backend),
//!   so a board host can depend on this crate with `default-features = false`.
//! - [`remote`]: remote boards over gRPC: `partita serve`'s server and the remote device
//!   (feature `remote`, part of `cli`).
//! - [`cosim`]: cosimulation runs of generated RTL through the driver, compared word for word
//!   with the golden model (feature `cli`).
//! - [`cli`]: the `partita` verbs, one file each (feature `cli`), as a library so tests drive
//!   it in process.
//!
//! Exit codes: 0 success; 1 a cosimulation mismatch; 2 bad input (plan, weights, arrays,
//! arguments) or a verb that is not built yet.

pub mod driver;
#[cfg(feature = "remote")]
pub mod remote;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod cosim;
#[cfg(feature = "cli")]
pub mod synth;

#[cfg(feature = "cli")]
pub use cli::{render, run, run_parsed, Cli};
