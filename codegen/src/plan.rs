//! The partitioning plan: its TOML schema, defaults, and validation.
//!
//! A plan that holds only `[model]` is valid; every other table has the defaults documented on
//! its struct. Unknown keys are errors. Validation collects every problem it finds, each with
//! the line and column it comes from, instead of stopping at the first.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Issue, PlanError, SpanIndex};
use crate::fixed::{sum_bits, Overflow, QFormat, Rounding};

/// The whole plan, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub model: ModelSpec,
    #[serde(default)]
    pub quant: QuantSpec,
    #[serde(default)]
    pub activation: ActivationSpec,
    #[serde(default)]
    pub sparsity: SparsitySpec,
    #[serde(default)]
    pub target: TargetSpec,
    #[serde(default)]
    pub partition: PartitionSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Lstm,
    Cnn,
}

/// `[model]`: what network, its sizes, and where its weights come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// LSTM: features per input step.
    pub input_size: Option<i64>,
    /// LSTM: hidden units per layer.
    pub hidden_size: Option<i64>,
    /// LSTM: stacked layers (default 1).
    pub num_layers: Option<i64>,
    /// CNN: input feature map `[channels, height, width]`.
    pub input_shape: Option<Vec<i64>>,
    /// CNN: the layer stack, as `[[model.layer]]` tables.
    #[serde(default, rename = "layer")]
    pub layers: Vec<CnnLayerSpec>,
    /// A PyTorch `state_dict` saved as safetensors, relative to the plan file.
    pub weights: Option<String>,
    /// Random weights (PyTorch default initialisation ranges) from this seed.
    pub seed: Option<i64>,
    /// Prefix of every weight key, e.g. `"encoder.lstm."`.
    #[serde(default)]
    pub weights_prefix: String,
}

/// One CNN layer, with `nn.Conv2d` / `nn.MaxPool2d` / `nn.Linear` semantics. `name` is the
/// `state_dict` key stem (`"{name}.weight"`); it defaults to the layer's index in the stack,
/// as in `nn.Sequential`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum CnnLayerSpec {
    Conv2d {
        out_channels: i64,
        kernel: i64,
        #[serde(default = "one")]
        stride: i64,
        #[serde(default)]
        padding: i64,
        name: Option<String>,
        /// This layer's own formats (see [`LayerQuantSpec`]).
        data: Option<QFormat>,
        weight: Option<QFormat>,
        bias: Option<QFormat>,
        accumulator_bits: Option<i64>,
        /// Engines (output channels computed in parallel) of this layer's hardware.
        engines: Option<i64>,
        /// Lanes (window values per cycle) of this layer's hardware; dense weights only.
        lanes: Option<i64>,
    },
    Relu {
        name: Option<String>,
    },
    Maxpool {
        kernel: i64,
        /// Defaults to `kernel`.
        stride: Option<i64>,
        name: Option<String>,
    },
    Flatten {
        name: Option<String>,
    },
    Dense {
        out_features: i64,
        name: Option<String>,
        /// This layer's own formats (see [`LayerQuantSpec`]).
        data: Option<QFormat>,
        weight: Option<QFormat>,
        bias: Option<QFormat>,
        accumulator_bits: Option<i64>,
        /// Engines (output features computed in parallel) of this layer's hardware.
        engines: Option<i64>,
        /// Lanes (inputs per cycle) of this layer's hardware; dense weights only.
        lanes: Option<i64>,
    },
}

fn one() -> i64 {
    1
}

/// A conv2d or dense layer's own formats, overriding `[quant]` for that layer. `data` is the
/// format of the layer's output (ReLU, max-pool and flatten keep their input's format); the
/// layer's input has the format of the layer before it (the first layer's: `[quant].data`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerQuantSpec {
    pub data: Option<QFormat>,
    pub weight: Option<QFormat>,
    pub bias: Option<QFormat>,
    pub accumulator_bits: Option<i64>,
}

impl CnnLayerSpec {
    /// The layer's own engine count (conv2d and dense).
    pub fn engines(&self) -> Option<i64> {
        match self {
            CnnLayerSpec::Conv2d { engines, .. } | CnnLayerSpec::Dense { engines, .. } => *engines,
            _ => None,
        }
    }

    /// The layer's own lane count (conv2d and dense).
    pub fn lanes(&self) -> Option<i64> {
        match self {
            CnnLayerSpec::Conv2d { lanes, .. } | CnnLayerSpec::Dense { lanes, .. } => *lanes,
            _ => None,
        }
    }

    /// The layer's own formats (none for ReLU, max-pool and flatten).
    pub fn formats(&self) -> LayerQuantSpec {
        match self {
            CnnLayerSpec::Conv2d {
                data,
                weight,
                bias,
                accumulator_bits,
                ..
            }
            | CnnLayerSpec::Dense {
                data,
                weight,
                bias,
                accumulator_bits,
                ..
            } => LayerQuantSpec {
                data: *data,
                weight: *weight,
                bias: *bias,
                accumulator_bits: *accumulator_bits,
            },
            _ => LayerQuantSpec::default(),
        }
    }
}

/// The formats one CNN layer works in, resolved from `[quant]` and the layer's own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerFormat {
    /// The layer's input values (the previous layer's output).
    pub input: QFormat,
    /// The layer's output values.
    pub output: QFormat,
    /// Weights and biases (conv2d and dense; `[quant]`'s otherwise).
    pub weight: QFormat,
    pub bias: QFormat,
    /// The accumulator width in use (0 for layers without weights).
    pub acc_bits: u32,
    /// The width full-width accumulation needs (0 for layers without weights).
    pub acc_need: u32,
}

impl LayerFormat {
    /// Fraction bits of a product of a weight and an input value.
    pub fn prod_frac(&self) -> u32 {
        self.weight.frac_bits + self.input.frac_bits
    }
}

/// Bits a full-width accumulator needs for a dot product of `terms` products of a `weight` and
/// a `data` value, plus a `bias` aligned to the products' fraction bits.
pub fn dot_acc_bits(weight: QFormat, data: QFormat, bias: QFormat, terms: usize) -> u32 {
    // A product needs wa + wb bits: (-2^(wa-1)) * (-2^(wb-1)) = 2^(wa+wb-2).
    let prod = weight.width() + data.width();
    let prod_frac = weight.frac_bits + data.frac_bits;
    let bias_aligned = bias.width() + (prod_frac - bias.frac_bits.min(prod_frac));
    sum_bits(prod.max(bias_aligned), terms as u64 + 1)
}

/// `[quant]`: fixed-point formats (`sI.F`, see [`crate::fixed`]) and the rounding/overflow
/// modes used by every requantization.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantSpec {
    /// Weights (default `s1.14`).
    pub weight: QFormat,
    /// Biases; an LSTM row's two biases are summed in float and quantized once
    /// (default `s3.12`).
    pub bias: QFormat,
    /// Inputs x and hidden state h (default `s3.12`).
    pub data: QFormat,
    /// LSTM cell state c (default `s3.12`).
    pub cell: QFormat,
    /// Gate pre-activations, the input of sigmoid/tanh (default `s3.12`).
    pub preact: QFormat,
    /// Sigmoid/tanh outputs (default `s1.14`).
    pub gate: QFormat,
    /// `nearest-even` (default) or `truncate`.
    pub rounding: Rounding,
    /// `saturate` (default) or `wrap`.
    pub overflow: Overflow,
    /// Accumulator width. Default: exactly what full-width accumulation needs. A given width
    /// smaller than that is an error, since accumulators never round or overflow.
    pub accumulator_bits: Option<i64>,
}

impl Default for QuantSpec {
    fn default() -> Self {
        Self {
            weight: QFormat::new(1, 14),
            bias: QFormat::new(3, 12),
            data: QFormat::new(3, 12),
            cell: QFormat::new(3, 12),
            preact: QFormat::new(3, 12),
            gate: QFormat::new(1, 14),
            rounding: Rounding::NearestEven,
            overflow: Overflow::Saturate,
            accumulator_bits: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ActMethod {
    /// Piecewise linear over uniform segments: a coefficient ROM and one multiplier.
    #[default]
    Pwl,
    /// Lookup table over uniform bins.
    Lut,
}

impl fmt::Display for ActMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActMethod::Pwl => "pwl",
            ActMethod::Lut => "lut",
        })
    }
}

/// `[activation]`: how sigmoid and tanh are approximated. Inputs outside the range clamp to
/// its ends. The segment or bin width must be a power of two of the input LSB.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationSpec {
    /// `pwl` (default) or `lut`.
    pub method: ActMethod,
    /// PWL segments over each range (default 64, a power of two).
    pub segments: i64,
    /// LUT entries over each range (default 1024, a power of two).
    pub entries: i64,
    /// Sigmoid input range `[lo, hi]` (default `[-8.0, 8.0]`).
    pub sigmoid_range: [f64; 2],
    /// Tanh input range `[lo, hi]` (default `[-4.0, 4.0]`).
    pub tanh_range: [f64; 2],
}

impl Default for ActivationSpec {
    fn default() -> Self {
        Self {
            method: ActMethod::Pwl,
            segments: 64,
            entries: 1024,
            sigmoid_range: [-8.0, 8.0],
            tanh_range: [-4.0, 4.0],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SparsityKind {
    #[default]
    Dense,
    Bbs,
}

/// `[sparsity]`: dense, or bank-balanced sparse. `banks` is also the lane count of each
/// engine, so it matters for dense weights too (dense = BBS with every entry kept).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparsitySpec {
    /// `dense` (default) or `bbs`.
    pub kind: SparsityKind,
    /// Banks per weight row, K (default 4). Rows that K does not divide are zero-padded.
    pub banks: i64,
    /// Kept fraction per bank, in (0, 1]; n = round(density * bank size), at least 1.
    pub density: Option<f64>,
    /// Kept entries per bank, n, instead of `density`. With neither, weights that already
    /// are bank-balanced are kept as they are.
    pub nnz_per_bank: Option<i64>,
}

impl Default for SparsitySpec {
    fn default() -> Self {
        Self {
            kind: SparsityKind::Dense,
            banks: 4,
            density: None,
            nnz_per_bank: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    #[default]
    Ring,
    Chain,
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// Device-to-device links.
    #[default]
    Direct,
    /// Boards exchange link data through the host driver's streams.
    Host,
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Ring => "ring",
            Topology::Chain => "chain",
            Topology::Star => "star",
        })
    }
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkMode::Direct => "direct",
            LinkMode::Host => "host",
        })
    }
}

/// `[target.link]`: how devices are connected.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSpec {
    /// `ring` (default), `chain`, or `star` (through a hub).
    pub topology: Topology,
    /// Link data width in bits (default 64).
    pub width: i64,
    /// One-way latency in cycles (default 16).
    pub latency: i64,
    /// `direct` (default) or `host` (relayed by the host driver).
    pub mode: LinkMode,
}

impl Default for LinkSpec {
    fn default() -> Self {
        Self {
            topology: Topology::Ring,
            width: 64,
            latency: 16,
            mode: LinkMode::Direct,
        }
    }
}

/// `[target]`: the devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSpec {
    /// Number of FPGAs (default 1).
    pub devices: i64,
    /// Row engines per device, M (default 1), or `"auto"`: as many as fill `fill` of the
    /// board's multipliers (or all of `dsp_budget`); each engine has `banks` multiplier lanes.
    pub engines: Engines,
    /// A board preset (see `partita_codegen::boards`): its part's multipliers and block memory
    /// bound every device, and size `engines = "auto"`.
    pub board: Option<String>,
    /// Fraction of the board's multipliers `engines = "auto"` may use (default 0.8).
    pub fill: Option<f64>,
    /// Clock for time estimates, MHz (default 200).
    pub clock_mhz: f64,
    /// Optional per-device multiplier budget; exceeding it is an error.
    pub dsp_budget: Option<i64>,
    /// Optional per-device on-chip memory budget in bits; exceeding it is an error.
    pub memory_bits: Option<i64>,
    /// tdata width of the x and h AXI4-Stream ports: 8 to 512, a power of two, at least one
    /// value (the data width in whole bytes). Several values share a beat
    /// (`partita_hdl::stream`). Default: one value per beat.
    pub stream_bits: Option<i64>,
    /// Element-wise lanes E on a single device: hidden units finished per cycle, each lane with
    /// its own sigmoid/tanh units and cell memory (a power of two, 1 to 64). Default: the
    /// fewest that keep up with the engines.
    pub ew_lanes: Option<i64>,
    pub link: LinkSpec,
    /// `[[target.device]]`: per-device overrides, one table per device in device order (or
    /// none). Work is split in proportion to each device's engines.
    pub device: Vec<DeviceSpec>,
}

/// One `[[target.device]]` table: what differs on this device. Lanes per engine are the plan's
/// BBS banks on every device (a `cols` device builds only the lanes of the banks it holds).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSpec {
    pub engines: Option<Engines>,
    pub board: Option<String>,
    pub fill: Option<f64>,
    pub dsp_budget: Option<i64>,
    pub memory_bits: Option<i64>,
}

/// A path of owned keys as the `&[&str]` the span index takes.
pub fn strs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

impl TargetSpec {
    /// The keys every device shares unless its `[[target.device]]` table says otherwise.
    pub fn device_keys(&self) -> DeviceSpec {
        DeviceSpec {
            engines: Some(self.engines),
            board: self.board.clone(),
            fill: self.fill,
            dsp_budget: self.dsp_budget,
            memory_bits: self.memory_bits,
        }
    }

    /// Device `i`'s target: the `[target]` keys with its `[[target.device]]` table on top.
    pub fn for_device(&self, i: usize) -> TargetSpec {
        let mut t = self.clone();
        t.device = Vec::new();
        if let Some(d) = self.device.get(i) {
            if let Some(e) = d.engines {
                t.engines = e;
            }
            if d.board.is_some() {
                t.board = d.board.clone();
            }
            if d.fill.is_some() {
                t.fill = d.fill;
            }
            if d.dsp_budget.is_some() {
                t.dsp_budget = d.dsp_budget;
            }
            if d.memory_bits.is_some() {
                t.memory_bits = d.memory_bits;
            }
        }
        t
    }

    /// The plan path of device `i`'s `key`: in its `[[target.device]]` table when that table
    /// sets it, else in `[target]`.
    pub fn key_of(&self, i: usize, key: &str) -> Vec<String> {
        let set = self.device.get(i).is_some_and(|d| match key {
            "engines" => d.engines.is_some(),
            "board" => d.board.is_some(),
            "fill" => d.fill.is_some(),
            "dsp_budget" => d.dsp_budget.is_some(),
            "memory_bits" => d.memory_bits.is_some(),
            _ => false,
        });
        if set {
            vec!["target".into(), "device".into(), i.to_string(), key.into()]
        } else {
            vec!["target".into(), key.into()]
        }
    }
}

impl Default for TargetSpec {
    fn default() -> Self {
        Self {
            devices: 1,
            engines: Engines::Count(1),
            board: None,
            fill: None,
            clock_mhz: 200.0,
            dsp_budget: None,
            memory_bits: None,
            stream_bits: None,
            ew_lanes: None,
            link: LinkSpec::default(),
            device: Vec::new(),
        }
    }
}

/// `engines = N` or `engines = "auto"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Engines {
    Count(i64),
    Auto,
}

impl<'de> Deserialize<'de> for Engines {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Engines;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of engines or \"auto\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Engines, E> {
                Ok(Engines::Count(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Engines, E> {
                Ok(Engines::Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Engines, E> {
                if v == "auto" {
                    Ok(Engines::Auto)
                } else {
                    Err(E::custom(format!(
                        "`{v}` is not an engine count: write a whole number, or \"auto\" to fill the board"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// How one layer's work is split over its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// LSTM: each device owns hidden units with their four gate rows; h is all-gathered.
    Rows,
    /// LSTM: each device owns banks of the [x; h] columns; partial sums are reduced.
    Cols,
    /// LSTM: the i, f, g, o matrices sit on different devices (at most 4).
    Gates,
    /// LSTM: W_ih x and W_hh h on different devices (at most 2).
    Ops,
    /// LSTM or CNN: whole layers on different devices, pipelined over timesteps.
    Layers,
    /// CNN: each device owns whole filters (output channels); outputs are concatenated.
    Filters,
    /// CNN: each device owns input channels; partial sums are reduced.
    Channels,
    /// CNN: spatial tiles (row strips) with halo exchanges.
    Tiles,
    /// CNN: fused tile partitioning (row strips or a grid of rows x columns).
    Fused,
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Rows => "rows",
            Strategy::Cols => "cols",
            Strategy::Gates => "gates",
            Strategy::Ops => "ops",
            Strategy::Layers => "layers",
            Strategy::Filters => "filters",
            Strategy::Channels => "channels",
            Strategy::Tiles => "tiles",
            Strategy::Fused => "fused",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[partition]`: the default strategy, and per-layer overrides.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PartitionSpec {
    /// Default `rows` for LSTMs and `filters` for CNNs.
    pub strategy: Option<Strategy>,
    /// `[[partition.override]]` tables.
    #[serde(rename = "override")]
    pub overrides: Vec<OverrideSpec>,
    /// CNN `fused` and `tiles`: the tile grid, `[rows, columns]` of the stack's last output
    /// map (default: one row strip per device, `[devices, 1]`).
    pub grid: Option<Vec<i64>>,
}

/// `[[partition.override]]`: a strategy and device set for one layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    /// Layer index (LSTM layer, or position in the CNN stack).
    pub layer: i64,
    pub strategy: Option<Strategy>,
    /// Devices that share this layer (default: all).
    pub devices: Option<Vec<i64>>,
}

pub const LSTM_STRATEGIES: &[Strategy] = &[
    Strategy::Rows,
    Strategy::Cols,
    Strategy::Gates,
    Strategy::Ops,
    Strategy::Layers,
];
pub const CNN_STRATEGIES: &[Strategy] = &[
    Strategy::Filters,
    Strategy::Channels,
    Strategy::Layers,
    Strategy::Tiles,
    Strategy::Fused,
];

/// How strategy `layers` deals a model's layers out to `devices` devices, in order: each
/// layer's device, and the number of layers dealt. A CNN's ReLU and flatten layers have no
/// hardware of their own, so its conv2d, dense and maxpool layers are dealt and each other
/// layer goes with the one before it.
pub fn deal_layers(shape: &ModelShape, devices: usize) -> (Vec<usize>, usize) {
    let hw_layer: Vec<bool> = match shape {
        ModelShape::Cnn { layers, .. } => layers
            .iter()
            .map(|l| !matches!(l, CnnLayer::Relu | CnnLayer::Flatten))
            .collect(),
        ModelShape::Lstm { .. } => vec![true; shape.num_layers()],
    };
    let n_hw = hw_layer.iter().filter(|h| **h).count().max(1);
    let dev = hw_layer
        .iter()
        .scan(0usize, |k, h| {
            let i = if *h { *k } else { k.saturating_sub(1) };
            if *h {
                *k += 1;
            }
            Some(i * devices / n_hw)
        })
        .collect();
    (dev, n_hw)
}

/// A CNN layer after validation, with its shapes resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum CnnLayer {
    Conv2d {
        name: String,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    Relu,
    Maxpool {
        kernel: usize,
        stride: usize,
    },
    Flatten,
    Dense {
        name: String,
        in_features: usize,
        out_features: usize,
    },
}

impl CnnLayer {
    /// The layer's type as the plan writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            CnnLayer::Conv2d { .. } => "conv2d",
            CnnLayer::Relu => "relu",
            CnnLayer::Maxpool { .. } => "maxpool",
            CnnLayer::Flatten => "flatten",
            CnnLayer::Dense { .. } => "dense",
        }
    }

    /// Multiply-accumulates of one sample through this layer, whose output map is `out`.
    pub fn macs(&self, out: &[usize; 3]) -> u128 {
        let values = out.iter().map(|d| *d as u128).product::<u128>();
        match self {
            CnnLayer::Conv2d {
                in_channels,
                kernel,
                ..
            } => values * (*in_channels as u128) * (*kernel as u128).pow(2),
            CnnLayer::Dense { in_features, .. } => values * *in_features as u128,
            _ => 0,
        }
    }
}

/// Model shape after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelShape {
    Lstm {
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
    },
    Cnn {
        input_shape: [usize; 3],
        layers: Vec<CnnLayer>,
        /// Shape after each layer, `[c, h, w]` (a dense output is `[n, 1, 1]`).
        shapes: Vec<[usize; 3]>,
        /// Each layer's formats.
        formats: Vec<LayerFormat>,
    },
}

/// Weights kept per bank for a density: the nearest count, at least 1, at most the bank.
pub fn nnz_for_density(density: f64, bank_size: usize) -> usize {
    ((density * bank_size as f64).round() as usize).clamp(1, bank_size)
}

impl ModelShape {
    /// Multiply-accumulates of one sample (CNN) or one timestep (LSTM), dense count.
    pub fn macs_per_sample(&self) -> u128 {
        match self {
            ModelShape::Lstm { .. } => self
                .matrix_rows()
                .iter()
                .map(|(_, c)| *c as u128)
                .sum::<u128>()
                .saturating_mul(4 * self.output_values() as u128),
            ModelShape::Cnn { layers, shapes, .. } => {
                layers.iter().zip(shapes).map(|(l, out)| l.macs(out)).sum()
            }
        }
    }

    /// Output values of one sample (CNN) or one timestep (LSTM: hidden_size).
    pub fn output_values(&self) -> usize {
        match self {
            ModelShape::Lstm { hidden_size, .. } => *hidden_size,
            ModelShape::Cnn {
                shapes,
                input_shape,
                ..
            } => shapes.last().unwrap_or(input_shape).iter().product(),
        }
    }

    /// Each weight matrix as (PyTorch name, columns per row).
    pub fn matrix_rows(&self) -> Vec<(String, usize)> {
        match self {
            ModelShape::Lstm {
                input_size,
                hidden_size,
                num_layers,
            } => (0..*num_layers)
                .flat_map(|l| {
                    let i = if l == 0 { *input_size } else { *hidden_size };
                    [
                        (format!("weight_ih_l{l}"), i),
                        (format!("weight_hh_l{l}"), *hidden_size),
                    ]
                })
                .collect(),
            ModelShape::Cnn { layers, .. } => layers
                .iter()
                .filter_map(|l| match l {
                    CnnLayer::Conv2d {
                        name,
                        in_channels,
                        kernel,
                        ..
                    } => Some((format!("{name}.weight"), in_channels * kernel * kernel)),
                    CnnLayer::Dense {
                        name, in_features, ..
                    } => Some((format!("{name}.weight"), *in_features)),
                    _ => None,
                })
                .collect(),
        }
    }

    /// A CNN's columns (window values K²·Cin, or input features) of every weight layer,
    /// indexed by layer (0 for the others); empty for an LSTM.
    pub fn cnn_columns(&self) -> Vec<usize> {
        let ModelShape::Cnn { layers, .. } = self else {
            return Vec::new();
        };
        layers
            .iter()
            .map(|l| match l {
                CnnLayer::Conv2d {
                    in_channels,
                    kernel,
                    ..
                } => in_channels * kernel * kernel,
                CnnLayer::Dense { in_features, .. } => *in_features,
                _ => 0,
            })
            .collect()
    }

    /// Layers that carry weights and can be split (LSTM layers; CNN conv/dense layers are
    /// indexed by stack position).
    pub fn num_layers(&self) -> usize {
        match self {
            ModelShape::Lstm { num_layers, .. } => *num_layers,
            ModelShape::Cnn { layers, .. } => layers.len(),
        }
    }
}

/// Where the weights come from, resolved against the plan's directory.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightSource {
    File(PathBuf),
    Seed(u64),
}

/// How many entries each BBS bank keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Keep {
    /// Every entry (dense).
    All,
    Density(f64),
    Nnz(usize),
    /// Infer from weights that are already bank-balanced.
    AsGiven,
}

impl Keep {
    /// Entries kept per bank of `bank` columns, or None when the weights decide (AsGiven).
    /// A `nnz_per_bank` larger than the bank is returned as given (the passes refuse it).
    pub fn nnz(self, bank: usize) -> Option<usize> {
        match self {
            Keep::All => Some(bank),
            Keep::Density(d) => Some(nnz_for_density(d, bank)),
            Keep::Nnz(n) => Some(n),
            Keep::AsGiven => None,
        }
    }
}

/// A plan that passed validation, with everything resolved to plain numbers.
#[derive(Debug, Clone)]
pub struct CheckedPlan {
    pub plan: Plan,
    /// The plan's name as the user gave it (used in messages).
    pub name: String,
    pub text: String,
    pub dir: PathBuf,
    pub shape: ModelShape,
    pub weights: WeightSource,
    pub banks: usize,
    pub keep: Keep,
    pub devices: usize,
    /// Row engines per device (resolved when the plan says "auto").
    pub engines: usize,
    /// For `engines = "auto"`: what set the count.
    pub engines_why: Option<String>,
    /// The board preset, if the plan names one.
    pub board: Option<&'static crate::boards::Board>,
    /// Each device's target: engines (resolved), board and budgets, from `[target]` and its
    /// `[[target.device]]` table. `engines`, `engines_why` and `board` above are device 0's.
    pub targets: Vec<DeviceTarget>,
    /// Strategy and devices for each layer.
    pub layers: Vec<LayerAssignment>,
    /// 64-bit FNV-1a of the plan text, for generated-file headers.
    pub plan_hash: u64,
}

/// One device's resolved target.
#[derive(Debug, Clone)]
pub struct DeviceTarget {
    pub engines: usize,
    pub engines_why: Option<String>,
    pub board: Option<&'static crate::boards::Board>,
    pub dsp_budget: Option<i64>,
    pub memory_bits: Option<i64>,
}

impl CheckedPlan {
    /// Row engines of device `d`.
    pub fn engines_of(&self, d: usize) -> usize {
        self.targets.get(d).map_or(self.engines, |t| t.engines)
    }

    /// Whether the devices differ (some `[[target.device]]` table changes something).
    pub fn devices_differ(&self) -> bool {
        self.targets.windows(2).any(|w| {
            w[0].engines != w[1].engines
                || w[0].board.map(|b| b.name) != w[1].board.map(|b| b.name)
                || w[0].dsp_budget != w[1].dsp_budget
                || w[0].memory_bits != w[1].memory_bits
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerAssignment {
    pub strategy: Strategy,
    pub devices: Vec<usize>,
}

/// FNV-1a, 64 bit. Stable across platforms and releases.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fraction of a board's multipliers `engines = "auto"` fills by default.
pub const DEFAULT_FILL: f64 = 0.8;

/// Multipliers of one LSTM element-wise unit: c' = f*c + i*g and o*tanh(c') take three, and
/// each of the five sigmoid/tanh units one more when it is piecewise linear.
pub fn ew_multipliers(method: ActMethod) -> u64 {
    match method {
        ActMethod::Pwl => 3 + 5,
        ActMethod::Lut => 3,
    }
}

/// Most element-wise lanes a single device may have.
pub const MAX_EW_LANES: i64 = 64;

/// Element-wise lane counts a device can build, fewest first: powers of two up to
/// [`MAX_EW_LANES`] dividing the h values per bank `bh` (a group's h values share one
/// vector-memory word) and the values per stream beat `per_beat` (a group's outputs share one
/// beat). The one rule for `engines = "auto"` here and for the architecture layer.
pub fn ew_lane_counts(bh: usize, per_beat: usize) -> impl Iterator<Item = usize> {
    (0..)
        .map(|i| 1usize << i)
        .take_while(|&e| e as i64 <= MAX_EW_LANES)
        .filter(move |&e| bh.is_multiple_of(e) && per_beat.is_multiple_of(e))
}

/// Peak memory of the passes per model weight, measured (README.md, "Limits").
pub const BYTES_PER_WEIGHT: u64 = 40;
/// Largest device, engine and bank counts, and CNN map side.
pub const MAX_COUNT: i64 = 4096;
/// Row engines a multi-device node may have (CONFIG1 and WSEL carry the engine count and index
/// in 8 bits).
pub const MAX_NODE_ENGINES: usize = 255;
pub const MAX_MAP_SIDE: i64 = 65536;
/// Largest LSTM size, channel or feature count.
pub const MAX_WIDTH: i64 = 1 << 24;

/// A number as a person would write it: 1e300, not 301 digits.
pub fn num(x: f64) -> String {
    if x.is_finite() && x != 0.0 && !(1e-4..1e7).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

const MODEL_EXAMPLE: &str = "a minimal plan is:\n  [model]\n  kind = \"lstm\"\n  input_size = 64\n  hidden_size = 256\n  seed = 1";

/// Read and validate a plan file. `name` is how the user wrote the path.
pub fn load(path: &Path) -> Result<CheckedPlan, crate::Error> {
    let name = path.display().to_string();
    let bytes =
        crate::limits::read_file(path, &crate::limits::PLAN_BYTES, "plan").map_err(|e| {
            crate::Error::input(
                e,
                "give the path of a TOML plan file; see examples/ for commented plans",
            )
        })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return Err(crate::Error::input(
                format!("plan `{name}` is not text: invalid UTF-8 at byte {at}"),
                "a plan is a UTF-8 TOML file; this looks like a binary file",
            ));
        }
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    check_text(&name, &text, &dir)
}

/// Validate plan text. Paths in the plan resolve against `dir`.
pub fn check_text(name: &str, text: &str, dir: &Path) -> Result<CheckedPlan, crate::Error> {
    let fail =
        |issues: Vec<Issue>| crate::Error::Plan(Box::new(PlanError::new(name, text, issues)));
    if text.trim().is_empty() {
        return Err(fail(vec![Issue::new("the plan is empty").help(format!(
            "a plan needs at least a [model] table; {MODEL_EXAMPLE}"
        ))]));
    }
    let plan: Plan = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let mut msg = plain_words(e.message().trim());
            let help = if msg.starts_with("missing field `model`") {
                msg = "the plan has no [model] table".into();
                MODEL_EXAMPLE.to_string()
            } else if let Some(field) = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                missing_help(field)
            } else if msg.contains(" as i128") {
                msg = msg
                    .split(" as i128")
                    .next()
                    .unwrap_or("")
                    .replace("invalid type: integer", "the whole number")
                    + " is too large";
                format!(
                    "whole numbers in a plan go up to {}; partita's own limits are far lower (README.md, \"Limits\")",
                    i64::MAX
                )
            } else if msg.contains("expected struct ModelSpec") {
                msg = "`model` must be a table, not a single value".into();
                MODEL_EXAMPLE.to_string()
            } else if msg.contains("expected struct") {
                msg = msg
                    .split(", expected struct")
                    .next()
                    .unwrap_or("")
                    .to_string()
                    + ", expected a table";
                "write it as a [table] with keys; see examples/ for commented plans".into()
            } else if msg.contains("unknown field") {
                "remove or rename the key; the allowed keys are listed above".into()
            } else if msg.contains("unknown variant") {
                "use one of the listed values".into()
            } else {
                "see examples/ for commented plans and README.md for every key".into()
            };
            return Err(fail(vec![Issue::new(msg).help(help).at(e.span(), "here")]));
        }
    };
    let spans = SpanIndex::new(text);
    let mut v = Validator {
        spans: &spans,
        issues: Vec::new(),
    };
    let checked = v.plan(plan, name, text, dir);
    match checked {
        Some(c) if v.issues.is_empty() => Ok(c),
        _ => Err(fail(v.issues)),
    }
}

/// What a missing required key takes.
fn missing_help(field: &str) -> String {
    match field {
        "kind" => "add `kind = \"lstm\"` or `kind = \"cnn\"` to [model] (in [sparsity]: \"dense\" or \"bbs\")".into(),
        "type" => "each [[model.layer]] needs `type`, one of: conv2d, relu, maxpool, flatten, dense".into(),
        "out_channels" => "a conv2d layer needs `out_channels = N` (and `kernel = K`)".into(),
        "kernel" => "conv2d and maxpool layers need `kernel = K` (a square kernel side)".into(),
        "out_features" => "a dense layer needs `out_features = N`".into(),
        other => format!("add `{other} = ...`; README.md lists every key and its allowed values"),
    }
}

/// serde names Rust types in its messages; say what a plan author writes instead.
fn plain_words(msg: &str) -> String {
    let mut m = msg.to_string();
    for (from, to) in [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a string", "expected a quoted string"),
        ("struct CnnLayerSpec", "a layer table"),
        (
            "wanted string or table",
            "expected one of the allowed words, quoted (e.g. kind = \"lstm\"); README.md lists them",
        ),
    ] {
        m = m.replace(from, to);
    }
    m
}

struct Validator<'s, 'a> {
    spans: &'s SpanIndex<'a>,
    issues: Vec<Issue>,
}

impl Validator<'_, '_> {
    fn err(&mut self, path: &[&str], message: impl Into<String>, help: impl Into<String>) {
        let span = self.spans.value(path);
        self.issues
            .push(Issue::new(message).help(help).at(span, "here"));
    }

    /// A positive size; reports and returns None otherwise.
    fn positive(&mut self, path: &[&str], v: i64) -> Option<usize> {
        if v >= 1 {
            Some(v as usize)
        } else {
            self.err(
                path,
                format!("`{}` is {v}, but it must be at least 1", path.join(".")),
                "sizes and counts are positive whole numbers",
            );
            None
        }
    }

    /// A positive count no larger than `max`.
    fn bounded(&mut self, path: &[&str], v: i64, max: i64, what: &str) -> Option<usize> {
        let n = self.positive(path, v)?;
        if v > max {
            self.err(
                path,
                format!("`{}` is {v}, more than partita supports", path.join(".")),
                format!("{what} can be at most {max}"),
            );
            return None;
        }
        Some(n)
    }

    fn required(&mut self, path: &[&str], v: Option<i64>, what: &str) -> Option<usize> {
        match v {
            Some(v) => self.bounded(path, v, MAX_WIDTH, path[path.len() - 1]),
            None => {
                self.err(
                    &path[..path.len() - 1],
                    format!("[model] needs `{}`", path[path.len() - 1]),
                    format!("add `{} = N`, {what}", path[path.len() - 1]),
                );
                None
            }
        }
    }

    fn plan(&mut self, plan: Plan, name: &str, text: &str, dir: &Path) -> Option<CheckedPlan> {
        let shape = self
            .model(&plan.model, &plan.quant)
            .filter(|s| self.size_ok(s));
        let weights = self.weights(&plan.model, dir);
        let (banks, keep) = self.sparsity(&plan.sparsity);
        if let (Some(s), Some(b), Some(k)) = (&shape, banks, keep) {
            self.banks_fit(s, b, k);
        }
        self.quant(&plan.quant, shape.as_ref(), banks);
        if let (Some(s), Some(k)) = (&shape, keep) {
            self.layer_lanes(&plan.model, s, k);
        }
        self.activation(&plan.activation, &plan.quant);
        self.stream(&plan.target, &plan.quant);
        self.ew_lanes(&plan.target);
        let devices = self.target(&plan.target);
        let layers = match (&shape, devices) {
            (Some(s), Some(d)) => self.partition(&plan.partition, s, d, plan.model.kind),
            _ => None,
        };
        let targets = match (&shape, banks, keep, devices, &layers) {
            (Some(s), Some(b), Some(k), Some(d), Some(l)) => {
                self.device_targets(&plan, s, b, k, d, l)
            }
            _ => None,
        };
        let first = targets.as_ref().and_then(|t| t.first());
        let (engines, engines_why, board) = (
            first.map(|t| t.engines),
            first.and_then(|t| t.engines_why.clone()),
            first.and_then(|t| t.board),
        );
        Some(CheckedPlan {
            name: name.to_string(),
            text: text.to_string(),
            dir: dir.to_path_buf(),
            plan_hash: fnv1a(text.as_bytes()),
            shape: shape?,
            weights: weights?,
            banks: banks?,
            keep: keep?,
            devices: devices?,
            engines: engines?,
            engines_why,
            board,
            targets: targets?,
            layers: layers?,
            plan,
        })
    }

    /// Every device's target: `[target]` with the device's `[[target.device]]` table on top,
    /// its fields checked and its engines resolved.
    fn device_targets(
        &mut self,
        plan: &Plan,
        shape: &ModelShape,
        banks: usize,
        keep: Keep,
        devices: usize,
        layers: &[LayerAssignment],
    ) -> Option<Vec<DeviceTarget>> {
        let given = plan.target.device.len();
        if given != 0 && given != devices {
            self.err(
                &["target", "device"],
                format!("{given} [[target.device]] table(s) for {devices} device(s)"),
                "give one [[target.device]] table per device, in device order, or none (every device then takes [target]'s keys)",
            );
            return None;
        }
        let mut out = Vec::with_capacity(devices);
        let mut ok = true;
        for (i, d) in plan.target.device.iter().enumerate() {
            ok &= self.device_keys(&["target", "device", &i.to_string()], d);
        }
        if !ok {
            return None;
        }
        for i in 0..devices {
            let t = plan.target.for_device(i);
            let board = t.board.as_deref().and_then(crate::boards::find);
            let key = plan.target.key_of(i, "engines");
            let (engines, engines_why) = self.engines(
                &t,
                plan.activation.method,
                &plan.quant,
                &strs(&key),
                shape,
                banks,
                keep,
                devices,
                layers,
                board,
            )?;
            out.push(DeviceTarget {
                engines,
                engines_why,
                board,
                dsp_budget: t.dsp_budget,
                memory_bits: t.memory_bits,
            });
        }
        Some(out)
    }

    /// The engine count: as written, or for `"auto"` as many as fit the multipliers a device
    /// may use (a `fill` of the board's, or the whole `dsp_budget`), after the element-wise
    /// unit's, rounded to what the gate sharing needs and capped where more would idle.
    #[allow(clippy::too_many_arguments)]
    fn engines(
        &mut self,
        t: &TargetSpec,
        method: ActMethod,
        q: &QuantSpec,
        key: &[&str],
        shape: &ModelShape,
        banks: usize,
        keep: Keep,
        devices: usize,
        layers: &[LayerAssignment],
        board: Option<&crate::boards::Board>,
    ) -> Option<(usize, Option<String>)> {
        if let Engines::Count(n) = t.engines {
            return Some((n as usize, None));
        }
        if let ModelShape::Cnn { .. } = shape {
            // A CNN's engines are chosen per layer by the architecture (arch::cnn::fold).
            return Some((
                1,
                Some("CNN: per layer, balanced to the slowest stage (see the layer table)".into()),
            ));
        }
        let budget = match (board, t.dsp_budget) {
            (_, Some(b)) if b > 0 => b as u64,
            (Some(b), _) => (b.multipliers as f64 * t.fill.unwrap_or(DEFAULT_FILL)).floor() as u64,
            _ => {
                self.err(
                    key,
                    "engines = \"auto\" needs something to fill",
                    format!(
                        "name a board ([target] board = one of {}) or give dsp_budget = N multipliers per device",
                        crate::boards::names()
                    ),
                );
                return None;
            }
        };
        let hidden = match shape {
            ModelShape::Lstm { hidden_size, .. } => *hidden_size,
            ModelShape::Cnn { .. } => unreachable!("returned above"),
        };
        // A node's element-wise lanes are the plan's `ew_lanes` (1 unless given).
        let node_lanes = if devices > 1 {
            t.ew_lanes.unwrap_or(1).max(1) as u64
        } else {
            1
        };
        let mut ew = ew_multipliers(method) * node_lanes;
        let mut fit = budget.saturating_sub(ew) / banks as u64;
        let all = |s: Strategy| layers.iter().all(|a| a.strategy == s);
        let (step, cap) = if all(Strategy::Gates) {
            (4, 4 * hidden)
        } else if all(Strategy::Ops) {
            (2, 2 * hidden)
        } else {
            (1, hidden)
        };
        // The element-wise unit takes one hidden unit per cycle, so the engines may not finish
        // units faster than that: bundles of engines < cycles per row (the rule the generator
        // enforces). Slices per row follow from the kept entries per bank; weights that arrive
        // pruned (no density or nnz_per_bank) are assumed to keep one per bank.
        let kept = |cols: usize| {
            let bank = cols.div_ceil(banks);
            keep.nnz(bank).map_or(1, |n| n.min(bank))
        };
        let rows = shape.matrix_rows();
        let ew_cap = rows
            .chunks(2)
            .map(|pair| {
                let (a, b) = (kept(pair[0].1), kept(pair[1].1));
                match step {
                    4 => 4 * (a + b - 1),
                    2 => 2 * (4 * a.max(b) - 1),
                    _ => 4 * (a + b) - 1,
                }
            })
            .min()
            .unwrap_or(1);
        // A multi-device node's engines hand over one row sum per cycle, so no more engines
        // than cycles per row, counting only the half a device may hold (x or h columns).
        // Where every layer keeps whole units on a device (rows, layers) they hand over one
        // unit's four gate sums per cycle: four times as many, in multiples of 4.
        let whole_units = layers
            .iter()
            .all(|l| matches!(l.strategy, Strategy::Rows | Strategy::Layers));
        let (step, cap, mut ew_cap) = if devices > 1 {
            let node_cap = rows
                .chunks(2)
                .map(|pair| {
                    let (a, b) = (kept(pair[0].1), kept(pair[1].1));
                    if whole_units {
                        4 * (a + b)
                    } else if layers.iter().all(|l| {
                        matches!(
                            l.strategy,
                            Strategy::Rows | Strategy::Gates | Strategy::Layers
                        )
                    }) {
                        a + b
                    } else {
                        a.min(b)
                    }
                })
                .min()
                .unwrap_or(1);
            (if whole_units { 4 } else { 1 }, 4 * hidden, node_cap)
        } else {
            (step, cap, ew_cap)
        };
        let max = if devices > 1 {
            MAX_NODE_ENGINES
        } else {
            usize::MAX
        };
        // Block memory: the same fraction of the board's (or all of memory_bits), less this
        // device's share of the weights, biases and cell state, in engines that each hold a copy of the x and h
        // vectors (x once, h double-buffered), as the resource estimate counts them.
        let fill = t.fill.unwrap_or(DEFAULT_FILL);
        let mem_budget = match (t.memory_bits, board) {
            (Some(m), _) if m > 0 => Some(m as u64),
            (_, Some(b)) => Some((b.memory_bits() as f64 * fill).floor() as u64),
            _ => None,
        };
        let mem = mem_budget.map(|mb| {
            let (ww, dw) = (q.weight.width() as u64, q.data.width() as u64);
            let (mut weights, mut per_engine) = (0u64, 0u64);
            for (i, (_, cols)) in rows.iter().enumerate() {
                let bank = cols.div_ceil(banks);
                let idx = if keep == Keep::All {
                    0
                } else {
                    (usize::BITS - bank.saturating_sub(1).leading_zeros()).max(1) as u64
                };
                weights += (4 * hidden * banks * kept(*cols)) as u64 * (ww + idx);
                per_engine += (bank * banks) as u64 * dw * if i % 2 == 0 { 1 } else { 2 };
                // Per layer: its biases and cell state.
                if i % 2 == 1 {
                    weights += (4 * hidden) as u64 * q.bias.width() as u64
                        + hidden as u64 * q.cell.width() as u64;
                }
            }
            let share = weights / devices.max(1) as u64;
            let e = mb.saturating_sub(share) / per_engine.max(1);
            (
                usize::try_from(e).unwrap_or(usize::MAX),
                mb,
                share,
                per_engine,
            )
        });
        let mem_cap = mem.map_or(usize::MAX, |m| m.0);
        // On one device, E element-wise lanes (8 or 3 multipliers each) take E units per
        // cycle, so engines may finish units E times as fast: try each E the streams and banks
        // allow (it divides the h values per bank and the values per stream beat) and keep the
        // one that builds the most engines.
        let mut lanes = 1;
        if devices == 1 {
            let per_beat = t.stream_bits.map_or(1, |b| {
                (b as usize) / (q.data.width().div_ceil(8) as usize * 8)
            });
            let bh = hidden.div_ceil(banks);
            let period = ew_cap / step + 1;
            let one = ew;
            let mut best = 0;
            for e in ew_lane_counts(bh, per_beat) {
                let fit_e = budget.saturating_sub(one * e as u64) / banks as u64;
                let cap_e = step * (e * period - 1);
                let raw = (fit_e as usize).min(cap).min(cap_e).min(mem_cap);
                let n = raw / (step * e) * (step * e);
                if n > best {
                    (best, lanes, ew, fit, ew_cap) = (n, e, one * e as u64, fit_e, cap_e);
                }
            }
        }
        let raw = (fit as usize).min(cap).min(ew_cap).min(max).min(mem_cap);
        // Fewer than 4 engines on a node hand their sums over one per cycle (at most the cycles
        // of a row of them).
        let e = if devices > 1 && whole_units && raw < 4 {
            raw.min(ew_cap / 4)
        } else {
            raw / (step * lanes) * (step * lanes)
        };
        let why = if let Some((m, mb, share, per)) =
            mem.filter(|m| m.0 < (fit as usize).min(cap).min(ew_cap).min(max))
        {
            format!(
                "capped at {m} by block memory: {mb} bits, less about {share} bits of weights, biases and cell state, in engines that hold {per} bits of x and h vectors each (the multipliers would allow {fit})"
            )
        } else if fit as usize <= cap.min(ew_cap).min(max) {
            if lanes > 1 {
                format!("{budget} multipliers less {lanes} element-wise lanes' {ew}, in engines of {banks} lanes")
            } else {
                format!("{budget} multipliers less the element-wise unit's {ew}, in engines of {banks} lanes")
            }
        } else if devices > 1 && max < cap.min(ew_cap) {
            format!("capped at {max}: the most a multi-device node has (the multipliers would allow {fit})")
        } else if devices > 1 && ew_cap < cap && whole_units {
            format!(
                "capped at {ew_cap}: a node's engines hand over one unit's four gate sums per cycle, so no more engines than four times the cycles per row (the multipliers would allow {fit})"
            )
        } else if devices > 1 && ew_cap < cap {
            format!(
                "capped at {ew_cap}: a node's engines hand over one row sum per cycle, so no more engines than cycles per row (the multipliers would allow {fit})"
            )
        } else if ew_cap < cap {
            format!(
                "capped at {ew_cap}: {lanes} element-wise lane(s) finish {lanes} hidden unit(s) per cycle, and more engines would finish them faster (the multipliers would allow {fit}; more lanes need a wider stream_bits or h banks they divide)"
            )
        } else {
            format!(
                "capped at {cap}: one engine per hidden unit (the multipliers would allow {fit})"
            )
        };
        if e == 0 && mem_cap < (fit as usize).min(cap).min(ew_cap).min(max) {
            self.err(
                key,
                format!("engines = \"auto\" finds room for no engine: {why}"),
                "use more devices, more sparsity or narrower formats, a larger board or fill, or give engines = N",
            );
            return None;
        }
        if e == 0 {
            self.err(
                key,
                format!(
                    "engines = \"auto\" finds room for no engine: {budget} multipliers, less the element-wise unit's {ew}, do not make {step} engine(s) of {banks} lanes"
                ),
                "use fewer banks (lanes per engine), a larger board or fill, or give engines = N",
            );
            return None;
        }
        Some((e, Some(why)))
    }

    fn model(&mut self, m: &ModelSpec, q: &QuantSpec) -> Option<ModelShape> {
        match m.kind {
            ModelKind::Lstm => {
                for (key, present) in [
                    ("input_shape", m.input_shape.is_some()),
                    ("layer", !m.layers.is_empty()),
                ] {
                    if present {
                        let span = self.spans.key(&["model", key]);
                        self.issues.push(
                            Issue::new(format!(
                                "`{key}` is for kind = \"cnn\"; this model is an LSTM"
                            ))
                            .help("an LSTM takes input_size, hidden_size and num_layers")
                            .at(span, "not allowed here"),
                        );
                    }
                }
                let i = self.required(&["model", "input_size"], m.input_size, "features per step");
                let h = self.required(&["model", "hidden_size"], m.hidden_size, "hidden units");
                let l = self.bounded(
                    &["model", "num_layers"],
                    m.num_layers.unwrap_or(1),
                    MAX_COUNT,
                    "num_layers",
                );
                Some(ModelShape::Lstm {
                    input_size: i?,
                    hidden_size: h?,
                    num_layers: l?,
                })
            }
            ModelKind::Cnn => {
                for (key, present) in [
                    ("input_size", m.input_size.is_some()),
                    ("hidden_size", m.hidden_size.is_some()),
                    ("num_layers", m.num_layers.is_some()),
                ] {
                    if present {
                        let span = self.spans.key(&["model", key]);
                        self.issues.push(
                            Issue::new(format!(
                                "`{key}` is for kind = \"lstm\"; this model is a CNN"
                            ))
                            .help("a CNN takes input_shape = [C, H, W] and [[model.layer]] tables")
                            .at(span, "not allowed here"),
                        );
                    }
                }
                self.cnn(m, q)
            }
        }
    }

    /// Refuse models too large to hold, before anything is allocated.
    fn size_ok(&mut self, shape: &ModelShape) -> bool {
        let params: u128 = match shape {
            ModelShape::Lstm {
                input_size,
                hidden_size,
                num_layers,
            } => {
                let (i, h, l) = (
                    *input_size as u128,
                    *hidden_size as u128,
                    *num_layers as u128,
                );
                4 * h * (i + h + 2) + (l - 1) * 4 * h * (2 * h + 2)
            }
            ModelShape::Cnn { layers, .. } => layers
                .iter()
                .map(|l| match l {
                    CnnLayer::Conv2d {
                        in_channels,
                        out_channels,
                        kernel,
                        ..
                    } => {
                        (*out_channels as u128) * (*in_channels as u128) * (*kernel as u128).pow(2)
                    }
                    CnnLayer::Dense {
                        in_features,
                        out_features,
                        ..
                    } => (*in_features as u128) * (*out_features as u128),
                    _ => 0,
                })
                .sum(),
        };
        let max = crate::limits::WEIGHTS.value() as u128;
        if params > max {
            self.err(
                &["model"],
                format!(
                    "the model has {params} weights, more than the limit of {max}: its passes would need about {:.1} GB of memory",
                    params as f64 * BYTES_PER_WEIGHT as f64 / 1e9
                ),
                format!(
                    "partita holds about {BYTES_PER_WEIGHT} bytes per weight while it prunes and quantizes; make the model smaller (README.md, \"Limits\")"
                ),
            );
            return false;
        }
        true
    }

    fn cnn(&mut self, m: &ModelSpec, q: &QuantSpec) -> Option<ModelShape> {
        let Some(shape) = &m.input_shape else {
            self.err(
                &["model"],
                "[model] needs `input_shape` for a CNN",
                "add `input_shape = [C, H, W]`, e.g. [1, 28, 28]",
            );
            return None;
        };
        if shape.len() != 3 {
            self.err(
                &["model", "input_shape"],
                format!("`input_shape` has {} entries", shape.len()),
                "write it as [channels, height, width]",
            );
            return None;
        }
        let mut dims = [0usize; 3];
        for (i, d) in shape.iter().enumerate() {
            dims[i] = self.bounded(
                &["model", "input_shape"],
                *d,
                MAX_MAP_SIDE,
                "each input_shape entry",
            )?;
        }
        if m.layers.is_empty() {
            self.err(
                &["model"],
                "a CNN needs at least one [[model.layer]]",
                "layer types: conv2d, relu, maxpool, flatten, dense",
            );
            return None;
        }
        let input_values = dims.iter().map(|d| *d as u128).product::<u128>();
        let max_map = crate::limits::FEATURE_MAP.value() as u128;
        if input_values > max_map {
            self.err(
                &["model", "input_shape"],
                format!(
                    "the input map {}x{}x{} holds {input_values} values, more than the limit of {max_map}",
                    dims[0], dims[1], dims[2]
                ),
                "use a smaller input (README.md, \"Limits\": feature_map)",
            );
            return None;
        }
        let mut cur = dims;
        let mut flat = false;
        let mut names: Vec<String> = Vec::new();
        let mut macs: u128 = 0;
        let mut layers = Vec::new();
        let mut shapes = Vec::new();
        let mut formats = Vec::new();
        let mut fmt_cur = q.data;
        for (i, l) in m.layers.iter().enumerate() {
            let idx = i.to_string();
            let p = |k: &'static str| -> Vec<String> {
                vec!["model".into(), "layer".into(), idx.clone(), k.into()]
            };
            let name_of = |n: &Option<String>| n.clone().unwrap_or_else(|| i.to_string());
            let pos = |v: &mut Self, k: &'static str, x: i64| -> Option<usize> {
                let path = p(k);
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let max = if k.starts_with("out_") {
                    MAX_WIDTH
                } else {
                    MAX_MAP_SIDE
                };
                v.bounded(&refs, x, max, k)
            };
            let (layer, next) = match l {
                CnnLayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    name,
                    ..
                } => {
                    let oc = pos(self, "out_channels", *out_channels);
                    let k = pos(self, "kernel", *kernel);
                    let s = pos(self, "stride", *stride);
                    let pad = if *padding > MAX_MAP_SIDE {
                        self.err(
                            &["model", "layer", &idx, "padding"],
                            format!("`padding` is {padding}, more than partita supports"),
                            format!("padding can be at most {MAX_MAP_SIDE}"),
                        );
                        None
                    } else if *padding < 0 {
                        self.err(
                            &["model", "layer", &idx, "padding"],
                            format!("`padding` is {padding}, but it must be 0 or more"),
                            "padding is a count of zero rows/columns on each side",
                        );
                        None
                    } else {
                        Some(*padding as usize)
                    };
                    let (oc, k, s, pad) = (oc?, k?, s?, pad?);
                    if flat {
                        self.err(
                            &["model", "layer", &idx],
                            format!("layer {i} is a conv2d after the map was flattened"),
                            "conv2d and maxpool must come before flatten/dense",
                        );
                        return None;
                    }
                    let (h, w) = (cur[1] + 2 * pad, cur[2] + 2 * pad);
                    if k > h || k > w {
                        self.err(
                            &["model", "layer", &idx, "kernel"],
                            format!(
                                "layer {i}: kernel {k} is larger than the padded {h}x{w} input map"
                            ),
                            "use a smaller kernel or more padding",
                        );
                        return None;
                    }
                    let next = [oc, (h - k) / s + 1, (w - k) / s + 1];
                    (
                        CnnLayer::Conv2d {
                            name: name_of(name),
                            in_channels: cur[0],
                            out_channels: oc,
                            kernel: k,
                            stride: s,
                            padding: pad,
                        },
                        next,
                    )
                }
                CnnLayerSpec::Relu { .. } => (CnnLayer::Relu, cur),
                CnnLayerSpec::Maxpool { kernel, stride, .. } => {
                    let k = pos(self, "kernel", *kernel)?;
                    let s = pos(self, "stride", stride.unwrap_or(*kernel))?;
                    if flat || k > cur[1] || k > cur[2] {
                        self.err(
                            &["model", "layer", &idx],
                            format!(
                                "layer {i}: maxpool {k} does not fit the {}x{} input map",
                                cur[1], cur[2]
                            ),
                            "maxpool needs a 2-D map at least as large as its kernel",
                        );
                        return None;
                    }
                    (
                        CnnLayer::Maxpool {
                            kernel: k,
                            stride: s,
                        },
                        [cur[0], (cur[1] - k) / s + 1, (cur[2] - k) / s + 1],
                    )
                }
                CnnLayerSpec::Flatten { .. } => {
                    flat = true;
                    (CnnLayer::Flatten, [cur[0] * cur[1] * cur[2], 1, 1])
                }
                CnnLayerSpec::Dense {
                    out_features, name, ..
                } => {
                    let o = pos(self, "out_features", *out_features)?;
                    if !flat {
                        self.err(
                            &["model", "layer", &idx],
                            format!(
                                "layer {i}: dense after a {}x{}x{} feature map, with no flatten before it",
                                cur[0], cur[1], cur[2]
                            ),
                            "add a [[model.layer]] with type = \"flatten\" before it: PyTorch's nn.Linear acts on the last axis and does not flatten (nn.Flatten does)",
                        );
                        return None;
                    }
                    (
                        CnnLayer::Dense {
                            name: name_of(name),
                            in_features: cur[0] * cur[1] * cur[2],
                            out_features: o,
                        },
                        [o, 1, 1],
                    )
                }
            };
            if let CnnLayer::Conv2d { name, .. } | CnnLayer::Dense { name, .. } = &layer {
                if let Some(j) = names.iter().position(|n| n == name) {
                    self.err(
                        &["model", "layer", &idx],
                        format!("layers {j} and {i} are both named `{name}`: both would load `{name}.weight`"),
                        "give each conv2d and dense layer its own `name` (the state_dict key stem), or leave `name` out to use the layer's index",
                    );
                    return None;
                }
                names.push(name.clone());
            }
            let values = next.iter().map(|d| *d as u128).product::<u128>();
            let max_map = crate::limits::FEATURE_MAP.value() as u128;
            if values > max_map {
                self.err(
                    &["model", "layer", &idx],
                    format!(
                        "layer {i}: its output map {}x{}x{} holds {values} values, more than the limit of {max_map}",
                        next[0], next[1], next[2]
                    ),
                    "use fewer channels or a smaller map (README.md, \"Limits\": feature_map)",
                );
                return None;
            }
            macs += layer.macs(&next);
            let max_macs = crate::limits::CNN_MACS.value() as u128;
            if macs > max_macs {
                self.err(
                    &["model", "layer", &idx],
                    format!(
                        "after layer {i} one sample takes {macs} multiply-accumulates, more than the limit of {max_macs}"
                    ),
                    "use fewer channels, smaller kernels or a smaller map (README.md, \"Limits\": cnn_macs)",
                );
                return None;
            }
            let f = self.layer_format(i, l, &layer, fmt_cur, q)?;
            fmt_cur = f.output;
            formats.push(f);
            layers.push(layer);
            shapes.push(next);
            cur = next;
        }
        Some(ModelShape::Cnn {
            input_shape: dims,
            layers,
            shapes,
            formats,
        })
    }

    /// A layer's own `lanes`: 1 to its columns (window values or inputs), and only with dense
    /// weights (bank-balanced sparsity is built on the plan's banks, one lane each).
    fn layer_lanes(&mut self, m: &ModelSpec, shape: &ModelShape, keep: Keep) {
        let cols = shape.cnn_columns();
        for (i, spec) in m.layers.iter().enumerate() {
            let Some(v) = spec.lanes() else { continue };
            let idx = i.to_string();
            let c = cols.get(i).copied().unwrap_or(0);
            if keep != Keep::All {
                self.err(
                    &["model", "layer", &idx, "lanes"],
                    format!("layer {i}: `lanes` with bank-balanced sparsity"),
                    "with [sparsity] kind = \"bbs\" every layer's lanes are the plan's `banks` (the sparsity pattern is built on them); give `lanes` only with dense weights",
                );
            } else if v < 1 || v as usize > c {
                self.err(
                    &["model", "layer", &idx, "lanes"],
                    format!("layer {i}: `lanes` is {v}"),
                    format!("a layer's lanes read its {c} window values (or inputs) in parallel: 1 to {c}"),
                );
            }
        }
    }

    /// Layer `i`'s formats: its own keys over `[quant]`'s, its input in the format of the
    /// layer before; its bias aligned to a product without rounding, its accumulator wide
    /// enough for full-width accumulation.
    fn layer_format(
        &mut self,
        i: usize,
        spec: &CnnLayerSpec,
        layer: &CnnLayer,
        input: QFormat,
        q: &QuantSpec,
    ) -> Option<LayerFormat> {
        let own = spec.formats();
        let terms = match layer {
            CnnLayer::Conv2d {
                in_channels,
                kernel,
                ..
            } => in_channels * kernel * kernel,
            CnnLayer::Dense { in_features, .. } => *in_features,
            _ => {
                return Some(LayerFormat {
                    input,
                    output: input,
                    weight: q.weight,
                    bias: q.bias,
                    acc_bits: 0,
                    acc_need: 0,
                })
            }
        };
        let idx = i.to_string();
        if let Some(e) = spec.engines() {
            let outs = match layer {
                CnnLayer::Conv2d { out_channels, .. } => *out_channels,
                CnnLayer::Dense { out_features, .. } => *out_features,
                _ => 0,
            };
            if e < 1 || e > outs as i64 {
                self.err(
                    &["model", "layer", &idx, "engines"],
                    format!("layer {i}: `engines` is {e}"),
                    format!("a layer's engines compute its outputs in parallel: 1 to its {outs} output channels"),
                );
                return None;
            }
        }
        let at = |key: &'static str, own: bool| -> Vec<String> {
            if own {
                vec!["model".into(), "layer".into(), idx.clone(), key.into()]
            } else {
                vec!["quant".into(), key.into()]
            }
        };
        let weight = own.weight.unwrap_or(q.weight);
        let bias = own.bias.unwrap_or(q.bias);
        let output = own.data.unwrap_or(q.data);
        let prod_frac = weight.frac_bits + input.frac_bits;
        let mut ok = true;
        if bias.frac_bits > prod_frac {
            let path = at("bias", own.bias.is_some());
            self.err(
                &strs(&path),
                format!(
                    "layer {i}: bias format {bias} has more fraction bits than a product of its weight ({weight}) and its input ({input}): {} + {} = {prod_frac}",
                    weight.frac_bits, input.frac_bits
                ),
                "biases are added to the accumulator without rounding; give them at most as many fraction bits as weight + input",
            );
            ok = false;
        }
        let need = dot_acc_bits(weight, input, bias, terms);
        let given = own.accumulator_bits.or(q.accumulator_bits);
        let path = at("accumulator_bits", own.accumulator_bits.is_some());
        match given {
            Some(a) if a < need as i64 => {
                self.err(
                    &strs(&path),
                    format!("`accumulator_bits` is {a}, but full-width accumulation for layer {i} needs {need}"),
                    format!("accumulators never round or overflow; use at least {need}, or leave the key out to get exactly {need}"),
                );
                ok = false;
            }
            Some(a) if a > 64 => {
                self.err(
                    &strs(&path),
                    format!("`accumulator_bits` is {a}"),
                    "partita supports accumulators of up to 64 bits",
                );
                ok = false;
            }
            None if need > 64 => {
                self.err(
                    &["model", "layer", &idx],
                    format!("full-width accumulation for layer {i} needs {need} bits"),
                    "partita supports accumulators of up to 64 bits; use narrower weight/data formats",
                );
                ok = false;
            }
            _ => {}
        }
        ok.then(|| LayerFormat {
            input,
            output,
            weight,
            bias,
            acc_bits: given.map_or(need, |a| a as u32),
            acc_need: need,
        })
    }

    fn weights(&mut self, m: &ModelSpec, dir: &Path) -> Option<WeightSource> {
        match (&m.weights, m.seed) {
            (Some(_), Some(_)) => {
                let span = self.spans.key(&["model", "seed"]);
                self.issues.push(
                    Issue::new("[model] gives both `weights` and `seed`")
                        .help("use `weights` for a safetensors file or `seed` for random weights, not both")
                        .at(span, "remove this or `weights`"),
                );
                None
            }
            (None, None) => {
                self.err(
                    &["model"],
                    "[model] says neither where the weights are nor a seed",
                    "add `weights = \"model.safetensors\"` (a PyTorch state_dict) or `seed = 1` for random weights",
                );
                None
            }
            (Some(w), None) => Some(WeightSource::File(dir.join(w))),
            (None, Some(s)) if s < 0 => {
                self.err(
                    &["model", "seed"],
                    format!("`seed` is {s}"),
                    "a seed is a whole number 0 or more",
                );
                None
            }
            (None, Some(s)) => Some(WeightSource::Seed(s as u64)),
        }
    }

    /// Some matrix must give every bank a column (else lanes never work), and a density
    /// below 1 must prune something (else it silently keeps every weight).
    fn banks_fit(&mut self, shape: &ModelShape, banks: usize, keep: Keep) {
        let rows = shape.matrix_rows();
        let Some((name, cols)) = rows.iter().max_by_key(|(_, c)| *c).cloned() else {
            return;
        };
        if banks > cols {
            self.err(
                &["sparsity", "banks"],
                format!(
                    "`banks` is {banks}, but the widest matrix row (`{name}`) has only {cols} columns: {} lanes would never work",
                    banks - cols
                ),
                format!("banks (the lanes of each engine) can be at most the widest row, {cols} columns here"),
            );
            return;
        }
        if let Keep::Density(d) = keep {
            let prunes = rows.iter().any(|(_, c)| {
                let bank = c.div_ceil(banks);
                nnz_for_density(d, bank) < bank
            });
            if d < 1.0 && !prunes {
                let bank = cols.div_ceil(banks);
                self.err(
                    &["sparsity", "density"],
                    format!(
                        "`density` = {d} prunes nothing: with {banks} banks the widest bank has {bank} entries (`{name}`), and {d} of {bank} rounds to all of them"
                    ),
                    "use fewer banks (wider banks), a lower density, or kind = \"dense\"",
                );
            }
        }
    }

    fn sparsity(&mut self, s: &SparsitySpec) -> (Option<usize>, Option<Keep>) {
        let banks = self.bounded(&["sparsity", "banks"], s.banks, MAX_COUNT, "banks");
        let keep = match (s.kind, s.density, s.nnz_per_bank) {
            (SparsityKind::Dense, None, None) => Some(Keep::All),
            (SparsityKind::Dense, _, _) => {
                let key = if s.density.is_some() {
                    "density"
                } else {
                    "nnz_per_bank"
                };
                let span = self.spans.key(&["sparsity", key]);
                self.issues.push(
                    Issue::new(format!("`{key}` is set but sparsity kind is \"dense\""))
                        .help("set `kind = \"bbs\"` for bank-balanced sparsity, or remove the key")
                        .at(span, "only for kind = \"bbs\""),
                );
                None
            }
            (SparsityKind::Bbs, Some(_), Some(_)) => {
                let span = self.spans.key(&["sparsity", "nnz_per_bank"]);
                self.issues.push(
                    Issue::new("[sparsity] gives both `density` and `nnz_per_bank`")
                        .help("give one: the kept fraction per bank, or the kept count per bank")
                        .at(span, "remove this or `density`"),
                );
                None
            }
            (SparsityKind::Bbs, Some(d), None) => {
                if d > 0.0 && d <= 1.0 {
                    Some(Keep::Density(d))
                } else {
                    self.err(
                        &["sparsity", "density"],
                        format!("`density` is {d}, outside (0, 1]"),
                        "density is the kept fraction of each bank: more than 0, at most 1",
                    );
                    None
                }
            }
            (SparsityKind::Bbs, None, Some(n)) => self
                .positive(&["sparsity", "nnz_per_bank"], n)
                .map(Keep::Nnz),
            (SparsityKind::Bbs, None, None) => Some(Keep::AsGiven),
        };
        (banks, keep)
    }

    /// `ew_lanes`: a power of two up to 64 (on a node, whether a group of E units stays whole
    /// is the architecture's check).
    fn ew_lanes(&mut self, t: &TargetSpec) {
        let Some(e) = t.ew_lanes else { return };
        if !(1..=MAX_EW_LANES).contains(&e) || (e & (e - 1)) != 0 {
            self.err(
                &["target", "ew_lanes"],
                format!("`ew_lanes` is {e}"),
                format!("element-wise lanes are a power of two from 1 to {MAX_EW_LANES}, or leave the key out for as many as the engines need"),
            );
        }
    }

    /// `stream_bits`: a DMA-friendly width that holds at least one value.
    fn stream(&mut self, t: &TargetSpec, q: &QuantSpec) {
        let Some(b) = t.stream_bits else { return };
        let slot = q.data.width().div_ceil(8) * 8;
        let pow2 = b > 0 && (b & (b - 1)) == 0;
        if !(8..=512).contains(&b) || !pow2 || b < slot as i64 {
            self.err(
                &["target", "stream_bits"],
                format!("`stream_bits` is {b}"),
                format!(
                    "the x and h streams are 8, 16, 32, 64, 128, 256 or 512 bits wide (a DMA engine's width), and at least one {slot}-bit value (data format {}, in whole bytes)",
                    q.data
                ),
            );
        }
    }

    fn quant(&mut self, q: &QuantSpec, shape: Option<&ModelShape>, banks: Option<usize>) {
        if matches!(shape, Some(ModelShape::Cnn { .. })) {
            // Checked layer by layer, in the formats each layer works in (`layer_format`).
            return;
        }
        let prod_frac = q.weight.frac_bits + q.data.frac_bits;
        if q.bias.frac_bits > prod_frac {
            self.err(
                &["quant", "bias"],
                format!(
                    "bias format {} has more fraction bits than a product ({} + {} = {prod_frac})",
                    q.bias, q.weight.frac_bits, q.data.frac_bits
                ),
                "biases are added to the accumulator without rounding; give them at most as many fraction bits as weight + data",
            );
        }
        let Some(shape) = shape else { return };
        let need = required_acc_bits(q, shape, banks.unwrap_or(1));
        match q.accumulator_bits {
            Some(a) if a < need as i64 => self.err(
                &["quant", "accumulator_bits"],
                format!("`accumulator_bits` is {a}, but full-width accumulation for this model needs {need}"),
                format!("accumulators never round or overflow; use at least {need}, or leave the key out to get exactly {need}"),
            ),
            Some(a) if a > 64 => self.err(
                &["quant", "accumulator_bits"],
                format!("`accumulator_bits` is {a}"),
                "partita supports accumulators of up to 64 bits",
            ),
            _ if need > 64 => self.err(
                &["quant"],
                format!("full-width accumulation for this model needs {need} bits"),
                "partita supports accumulators of up to 64 bits; use narrower weight/data formats",
            ),
            _ => {}
        }
    }

    fn activation(&mut self, a: &ActivationSpec, q: &QuantSpec) {
        let (key, n) = match a.method {
            ActMethod::Pwl => ("segments", a.segments),
            ActMethod::Lut => ("entries", a.entries),
        };
        if n < 1 || (n as u64).count_ones() != 1 || n > 1 << 16 {
            self.err(
                &["activation", key],
                format!("`{key}` is {n}"),
                format!("`{key}` must be a power of two from 1 to 65536"),
            );
            return;
        }
        for (rkey, range, fmt, fkey) in [
            ("sigmoid_range", a.sigmoid_range, q.preact, "preact"),
            ("tanh_range", a.tanh_range, q.preact, "preact"),
            ("tanh_range", a.tanh_range, q.cell, "cell"),
        ] {
            if let Err(why) = crate::fixed::grid(range, fmt, n as usize) {
                self.err(
                    &["activation", rkey],
                    format!("`{rkey}` = [{}, {}] does not fit {n} {key} over the {fkey} format {fmt}: {why}", num(range[0]), num(range[1])),
                    format!("the range must lie on the {fkey} grid, and its width / {key} must be a power of two of its LSB ({})", fmt.lsb()),
                );
                return;
            }
        }
    }

    fn target(&mut self, t: &TargetSpec) -> Option<usize> {
        let d = self.bounded(&["target", "devices"], t.devices, MAX_COUNT, "devices");
        self.device_keys(&["target"], &t.device_keys());
        self.positive(&["target", "link", "width"], t.link.width);
        let max_latency = crate::limits::LINK_LATENCY.value();
        if t.link.latency < 0 || t.link.latency as u64 > max_latency {
            self.err(
                &["target", "link", "latency"],
                format!("`latency` is {}", t.link.latency),
                format!("latency is a one-way cycle count from 0 to {max_latency} (README.md, \"Limits\")"),
            );
        }
        if !(t.clock_mhz > 0.0 && t.clock_mhz.is_finite()) {
            self.err(
                &["target", "clock_mhz"],
                format!("`clock_mhz` is {}", num(t.clock_mhz)),
                "a clock frequency in MHz, more than 0",
            );
        }
        d
    }

    /// The keys `[target]` and each `[[target.device]]` table share, under `prefix`: engines,
    /// board, fill and budgets. Whether they were all valid.
    fn device_keys(&mut self, prefix: &[&str], d: &DeviceSpec) -> bool {
        let before = self.issues.len();
        let path = |key: &str| -> Vec<String> {
            prefix
                .iter()
                .map(|s| s.to_string())
                .chain([key.to_string()])
                .collect()
        };
        if let Some(Engines::Count(e)) = d.engines {
            self.bounded(&strs(&path("engines")), e, MAX_COUNT, "engines per device");
        }
        if let Some(b) = &d.board {
            if crate::boards::find(b).is_none() {
                self.err(
                    &strs(&path("board")),
                    format!("unknown board `{b}`"),
                    format!("boards partita knows: {}", crate::boards::names()),
                );
            }
        }
        if let Some(f) = d.fill {
            if !(f > 0.0 && f <= 1.0) {
                self.err(
                    &strs(&path("fill")),
                    format!("`fill` is {}", num(f)),
                    "fill is the fraction of the board's multipliers engines = \"auto\" may use: more than 0, at most 1",
                );
            }
        }
        for (key, v) in [("dsp_budget", d.dsp_budget), ("memory_bits", d.memory_bits)] {
            if let Some(v) = v {
                self.positive(&strs(&path(key)), v);
            }
        }
        self.issues.len() == before
    }

    fn partition(
        &mut self,
        p: &PartitionSpec,
        shape: &ModelShape,
        devices: usize,
        kind: ModelKind,
    ) -> Option<Vec<LayerAssignment>> {
        let allowed = match kind {
            ModelKind::Lstm => LSTM_STRATEGIES,
            ModelKind::Cnn => CNN_STRATEGIES,
        };
        let allowed_list = allowed
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let kind_name = match kind {
            ModelKind::Lstm => "an LSTM",
            ModelKind::Cnn => "a CNN",
        };
        let check_strategy = |v: &mut Self, s: Strategy, path: &[&str]| -> bool {
            if !allowed.contains(&s) {
                v.err(
                    path,
                    format!("strategy \"{s}\" does not apply to {kind_name}"),
                    format!("{kind_name} can use {allowed_list}"),
                );
                false
            } else {
                true
            }
        };
        let default = p.strategy.unwrap_or(match kind {
            ModelKind::Lstm => Strategy::Rows,
            ModelKind::Cnn => Strategy::Filters,
        });
        let mut ok = check_strategy(self, default, &["partition", "strategy"]);
        if let Some(g) = &p.grid {
            let path = ["partition", "grid"];
            if kind != ModelKind::Cnn {
                self.err(
                    &path,
                    "`grid` applies to a CNN's fused or tiled stack",
                    "remove `grid` from an LSTM plan",
                );
                ok = false;
            } else if g.len() != 2 || g.iter().any(|v| *v < 1) {
                self.err(
                    &path,
                    format!("`grid` is {g:?}; it is two positive counts"),
                    "write grid = [rows, columns] of tiles, e.g. [2, 2]",
                );
                ok = false;
            } else if g[0].saturating_mul(g[1]) as usize > devices {
                self.err(
                    &path,
                    format!(
                        "a {} x {} grid has {} tiles, but the plan has {devices} devices",
                        g[0],
                        g[1],
                        g[0] as i128 * g[1] as i128
                    ),
                    "one tile per device: rows x columns must equal the fused stack's devices",
                );
                ok = false;
            }
        }
        let n_layers = shape.num_layers();
        let all: Vec<usize> = (0..devices).collect();
        let (layer_dev, n_hw) = deal_layers(shape, devices);
        let mut out: Vec<LayerAssignment> = (0..n_layers)
            .map(|l| {
                if default == Strategy::Layers {
                    LayerAssignment {
                        strategy: Strategy::Layers,
                        devices: vec![layer_dev[l]],
                    }
                } else {
                    LayerAssignment {
                        strategy: default,
                        devices: all.clone(),
                    }
                }
            })
            .collect();
        // With overrides that split some layers, the devices need not each take a whole
        // layer: the system checks that every device has work.
        let split_overrides = p
            .overrides
            .iter()
            .any(|o| o.strategy.is_some_and(|s| s != Strategy::Layers));
        if default == Strategy::Layers && devices > n_hw && !split_overrides {
            self.err(
                &["partition", "strategy"],
                match shape {
                    ModelShape::Lstm { .. } => format!("strategy \"layers\" puts whole layers on devices, but there are {devices} devices and {n_hw} layers"),
                    ModelShape::Cnn { .. } => format!("strategy \"layers\" puts whole layers on devices, but there are {devices} devices and {n_hw} conv2d, dense or maxpool layers (ReLU and flatten go with the layer before)"),
                },
                "use at most as many devices as layers, or split layers with another strategy",
            );
            ok = false;
        }
        let mut seen = vec![false; n_layers];
        for (i, o) in p.overrides.iter().enumerate() {
            let idx = i.to_string();
            let base = ["partition", "override", idx.as_str()];
            let l = if o.layer >= 0 && (o.layer as usize) < n_layers {
                o.layer as usize
            } else {
                self.err(
                    &[&base[..], &["layer"]].concat(),
                    format!(
                        "override for layer {}, but the model has layers 0 to {}",
                        o.layer,
                        n_layers - 1
                    ),
                    "layer indices start at 0",
                );
                ok = false;
                continue;
            };
            if std::mem::replace(&mut seen[l], true) {
                self.err(
                    &[&base[..], &["layer"]].concat(),
                    format!("layer {l} has more than one override"),
                    "give each layer at most one [[partition.override]]",
                );
                ok = false;
            }
            let strategy = o.strategy.unwrap_or(default);
            if let Some(s) = o.strategy {
                ok &= check_strategy(self, s, &[&base[..], &["strategy"]].concat());
            }
            let devs = match &o.devices {
                None => all.clone(),
                Some(ds) => {
                    let mut v: Vec<usize> = Vec::new();
                    for d in ds {
                        if *d < 0 || *d as usize >= devices {
                            self.err(
                                &[&base[..], &["devices"]].concat(),
                                format!("device {d} does not exist"),
                                format!(
                                    "devices are numbered 0 to {} ([target] devices = {devices})",
                                    devices - 1
                                ),
                            );
                            ok = false;
                        } else if v.contains(&(*d as usize)) {
                            self.err(
                                &[&base[..], &["devices"]].concat(),
                                format!("device {d} is listed twice"),
                                "list each device once",
                            );
                            ok = false;
                        } else {
                            v.push(*d as usize);
                        }
                    }
                    if ds.is_empty() {
                        self.err(
                            &[&base[..], &["devices"]].concat(),
                            "`devices` is empty",
                            "list at least one device",
                        );
                        ok = false;
                    }
                    v
                }
            };
            out[l] = LayerAssignment {
                strategy,
                devices: devs,
            };
        }
        // Strategy limits.
        for (l, a) in out.iter().enumerate() {
            let n = a.devices.len();
            let limit = match (a.strategy, shape) {
                (Strategy::Gates, _) => Some((4, "the four gates i, f, g, o")),
                (Strategy::Ops, _) => Some((2, "the two products W_ih x and W_hh h")),
                (Strategy::Layers, _) => Some((1, "a whole layer")),
                (Strategy::Rows, ModelShape::Lstm { hidden_size, .. }) => {
                    Some((*hidden_size, "its hidden units"))
                }
                (Strategy::Filters | Strategy::Channels, ModelShape::Cnn { layers, .. }) => {
                    let (o, i) = match &layers[l] {
                        CnnLayer::Conv2d {
                            out_channels,
                            in_channels,
                            ..
                        } => (*out_channels, *in_channels),
                        CnnLayer::Dense {
                            out_features,
                            in_features,
                            ..
                        } => (*out_features, *in_features),
                        _ => (usize::MAX, usize::MAX),
                    };
                    if a.strategy == Strategy::Filters {
                        Some((o, "its output channels"))
                    } else {
                        Some((i, "its input channels"))
                    }
                }
                _ => None,
            };
            if let Some((max, what)) = limit {
                if n > max {
                    let path = match p.overrides.iter().position(|o| o.layer == l as i64) {
                        Some(i) => vec![
                            "partition".to_string(),
                            "override".into(),
                            i.to_string(),
                            "devices".into(),
                        ],
                        None => vec!["partition".into(), "strategy".into()],
                    };
                    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                    self.err(&refs, format!("layer {l}: strategy \"{}\" splits {what} over at most {max} device(s), but {n} are given", a.strategy), "use fewer devices for this layer with a [[partition.override]], or another strategy");
                    ok = false;
                }
            }
        }
        if ok {
            for d in 0..devices {
                if !out.iter().any(|a| a.devices.contains(&d)) {
                    self.err(&["partition"], format!("device {d} gets no work"), "every device in [target] must hold part of the model; lower `devices` or change the partition");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Bits a full-width accumulator needs for the widest dot product of this model: every
/// product at full width, the sum of all of them, plus the bias.
pub fn required_acc_bits(q: &QuantSpec, shape: &ModelShape, banks: usize) -> u32 {
    let terms = match shape {
        ModelShape::Lstm {
            input_size,
            hidden_size,
            num_layers,
        } => {
            let in_max = if *num_layers > 1 {
                (*input_size).max(*hidden_size)
            } else {
                *input_size
            };
            // Padding to whole banks adds zero terms, which the width must still cover.
            let pad = |n: usize| n.div_ceil(banks) * banks;
            pad(in_max) + pad(*hidden_size)
        }
        ModelShape::Cnn { formats, .. } => {
            return formats.iter().map(|f| f.acc_need).max().unwrap_or(1)
        }
    };
    dot_acc_bits(q.weight, q.data, q.bias, terms)
}

/// The accumulator width in use: the plan's, or the required one.
pub fn acc_bits(plan: &CheckedPlan) -> u32 {
    if let ModelShape::Cnn { formats, .. } = &plan.shape {
        return formats.iter().map(|f| f.acc_bits).max().unwrap_or(1);
    }
    let need = required_acc_bits(&plan.plan.quant, &plan.shape, plan.banks);
    plan.plan
        .quant
        .accumulator_bits
        .map(|a| a as u32)
        .unwrap_or(need)
}
