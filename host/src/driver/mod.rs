//! The driver side of the host: the [`device::Device`] trait, its backends (simulated, a
//! lockstep multi-device cosimulation, and [`xdma`]: a card behind the XDMA driver's device
//! files), the run sequences, and the [`system`] driver that runs N devices as one system
//! (with the host relay). It depends on `partita-hdl` (the register table) and, for the simulated backend
//! (feature `sim`), on the Verilator cosimulation, but not on the generator or its templates:
//! a board host can use it with `default-features = false`.

pub mod device;
#[cfg(feature = "sim")]
pub mod lockstep;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;
pub mod system;
#[cfg(unix)]
pub mod xdma;

pub use device::{Beat, Device, DeviceError, Identity, LinkBeat};
pub use run::{run_cnn, run_device, run_lstm, RunResult, RunShape};
#[cfg(feature = "sim")]
pub use sim::{Backpressure, SimDevice};
pub use system::{run_system, DeviceStats, SystemIo, SystemOptions, SystemRun};
