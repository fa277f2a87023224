//! Emitter `gen`: fill the Verilog templates in `templates/` from the architecture layer
//! (`crate::arch`), write the `$readmemh` images, the register map (JSON and C header), the
//! file lists and the library cores a design uses. Views hold names and numbers the
//! architecture computed; the only work here is turning them into Verilog text.
//!
//! - [`top`]: a single-device LSTM (with a self-checking testbench, [`testbench`]).
//! - [`node`]: one top per device of a multi-device system, plus `system.json`.
//! - [`engine`], [`tables`]: the BBS row engine and the activation tables both use.
//! - [`memory`]: weight and bias images; [`regmap`]: `regmap.json` and `partita_regs.h`.

use crate::design::{Design, ModelDesign};

pub mod board;
pub mod cnn;
pub mod engine;
pub mod ew;
pub mod harness;
pub mod memory;
pub mod node;
pub mod regmap;
pub mod tables;
pub mod testbench;
pub mod top;
pub mod verilog;

pub use testbench::Vectors;
pub use verilog::{module_prefix, node_design_prefix, top_module, version_word, File};

/// Generate every file of a design: one device (with a self-checking testbench when `vectors`
/// are given), or one directory per device and `system.json`.
pub fn generate(design: &Design, vectors: Option<&Vectors>) -> Result<Vec<File>, String> {
    if let ModelDesign::Cnn(_) = &design.model {
        return cnn::generate(design, vectors);
    }
    if design.plan.devices > 1 {
        node::generate(design)
    } else {
        top::generate(design, vectors)
    }
}
