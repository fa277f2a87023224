//! What the cost models predict (`cost` for LSTMs, `cnn_cost` for CNNs): the types they share.

use crate::design::Design;
use crate::plan::Strategy;

/// What the model predicts for one design.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub cycles_per_step: f64,
    /// How the cycle figure was made.
    pub basis: CycleBasis,
    pub link_bytes_per_step: f64,
    pub max_memory_bits: u64,
    pub multipliers: u64,
    /// A fused CNN stack: multiply-accumulates done over those needed.
    pub recompute: Option<f64>,
}

/// How a cycle prediction was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleBasis {
    /// Follows the generated single-device hardware exactly.
    Exact,
    /// Replays the generated multi-device hardware's ticks.
    NodeModel,
    /// No generated hardware: a coarser estimate.
    Estimate,
}

impl CycleBasis {
    pub fn describe(self) -> &'static str {
        match self {
            CycleBasis::Exact => "exact for the generated single-device hardware",
            CycleBasis::NodeModel => "model of the generated multi-device hardware",
            CycleBasis::Estimate => "estimate",
        }
    }
}

/// One row of a sweep.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub strategy: Strategy,
    pub devices: usize,
    pub prediction: Prediction,
    /// The plan variant the row describes (for measuring it).
    pub design: Design,
}
