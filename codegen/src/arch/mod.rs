//! The architecture layer: every geometry, memory layout and width of the generated hardware,
//! computed once per model kind from the design and the schedule. Emitters, memory images, the
//! cost model and the cosimulation read these types.

pub mod cnn;
pub mod cnn_system;
pub mod lstm;

/// Bits needed to hold the unsigned value `v` (at least 1).
pub fn bits_for(v: u64) -> u32 {
    (64 - v.leading_zeros()).max(1)
}
