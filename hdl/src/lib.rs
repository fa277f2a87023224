//! partita-hdl: the hardware that does not depend on the plan, and its contracts.
//!
//! - [`regs`]: the one register table (AXI4-Lite map) every consumer derives from.
//! - [`frame`]: the link frame format as a Rust type, and the reference CRC.
//! - [`cores`]: the library Verilog cores under `hdl/rtl/` (requantizer, CRC, FIFO, skid
//!   buffer, link framer and deframer, tx port arbiter, AXI4-Lite block), each with a
//!   self-checking testbench under `hdl/tb/`.
//! - [`stream`]: the packed AXI4-Stream layout of x and h (values per beat, tkeep, tlast).

pub mod cores;
pub mod frame;
pub mod regs;
pub mod stream;
