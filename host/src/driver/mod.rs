//! The driver side of the host: the [`device::Device`] trait, its backends (simulated, and
//! [`xdma`]: a card behind the XDMA driver's device files) and the run
//! sequences. It depends on `partita-hdl` (the register table) and, for the simulated backend
//! (feature `sim`), on the Verilator cosimulation, but not on the generator or its templates:
//! a board host can use it with `default-features = false`.

pub mod device;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(unix)]
pub mod xdma;

pub use device::{Beat, Device, DeviceError, Identity};
pub use run::{run_cnn, run_device, run_lstm, RunResult, RunShape};
#[cfg(feature = "sim")]
pub use sim::{Backpressure, SimDevice};
