//! Float weights: from a PyTorch `state_dict` saved as safetensors, or seeded random weights
//! with PyTorch's default initialisation ranges.

use ndarray::{Array1, Array2, ArrayD, IxDyn};

use safetensors::{Dtype, SafeTensors};

use crate::diag::{Issue, PlanError, SpanIndex};
use crate::plan::{CheckedPlan, CnnLayer, ModelShape, WeightSource};

/// One `nn.LSTM` layer, gate order i, f, g, o.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmLayerWeights {
    /// 4H x I (I = input size for layer 0, H after).
    pub w_ih: Array2<f64>,
    /// 4H x H.
    pub w_hh: Array2<f64>,
    pub b_ih: Array1<f64>,
    pub b_hh: Array1<f64>,
}

/// One CNN layer with weights: conv2d `(out, in, k, k)` or dense `(out, in)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CnnLayerWeights {
    pub weight: ArrayD<f64>,
    pub bias: Array1<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FloatWeights {
    Lstm(Vec<LstmLayerWeights>),
    /// One entry per layer of the stack; `None` for layers without weights.
    Cnn(Vec<Option<CnnLayerWeights>>),
}

/// SplitMix64: a small, fixed, portable generator, so a seed means the same weights on every
/// machine and every release.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-bound, bound).
    pub fn uniform(&mut self, bound: f64) -> f64 {
        (2.0 * self.unit() - 1.0) * bound
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Expected tensors: name and shape, in load order.
pub fn expected_tensors(shape: &ModelShape) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    match shape {
        ModelShape::Lstm {
            input_size,
            hidden_size,
            num_layers,
        } => {
            let h = *hidden_size;
            for l in 0..*num_layers {
                let i = if l == 0 { *input_size } else { h };
                out.push((format!("weight_ih_l{l}"), vec![4 * h, i]));
                out.push((format!("weight_hh_l{l}"), vec![4 * h, h]));
                out.push((format!("bias_ih_l{l}"), vec![4 * h]));
                out.push((format!("bias_hh_l{l}"), vec![4 * h]));
            }
        }
        ModelShape::Cnn { layers, .. } => {
            for layer in layers {
                match layer {
                    CnnLayer::Conv2d {
                        name,
                        in_channels,
                        out_channels,
                        kernel,
                        ..
                    } => {
                        out.push((
                            format!("{name}.weight"),
                            vec![*out_channels, *in_channels, *kernel, *kernel],
                        ));
                        out.push((format!("{name}.bias"), vec![*out_channels]));
                    }
                    CnnLayer::Dense {
                        name,
                        in_features,
                        out_features,
                    } => {
                        out.push((format!("{name}.weight"), vec![*out_features, *in_features]));
                        out.push((format!("{name}.bias"), vec![*out_features]));
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// PyTorch's default init bound for each expected tensor: 1/sqrt(H) for LSTMs, 1/sqrt(fan_in)
/// for conv and linear layers.
fn init_bound(shape: &ModelShape, tensor_shape: &[usize], name: &str) -> f64 {
    match shape {
        ModelShape::Lstm { hidden_size, .. } => 1.0 / (*hidden_size as f64).sqrt(),
        ModelShape::Cnn { layers, .. } => {
            let stem = name.rsplit_once('.').map(|p| p.0).unwrap_or(name);
            let fan_in = layers
                .iter()
                .find_map(|l| match l {
                    CnnLayer::Conv2d {
                        name,
                        in_channels,
                        kernel,
                        ..
                    } if name == stem => Some(in_channels * kernel * kernel),
                    CnnLayer::Dense {
                        name, in_features, ..
                    } if name == stem => Some(*in_features),
                    _ => None,
                })
                .unwrap_or(tensor_shape.iter().skip(1).product());
            1.0 / (fan_in.max(1) as f64).sqrt()
        }
    }
}

/// Load (or generate) the plan's float weights, checking names, shapes and values.
pub fn load(plan: &CheckedPlan) -> Result<FloatWeights, crate::Error> {
    let expected = expected_tensors(&plan.shape);
    let tensors: Vec<ArrayD<f64>> = match &plan.weights {
        WeightSource::Seed(seed) => {
            let mut rng = SplitMix64::new(*seed);
            expected
                .iter()
                .map(|(name, dims)| {
                    let b = init_bound(&plan.shape, dims, name);
                    let n = dims.iter().product();
                    let v: Vec<f64> = (0..n).map(|_| rng.uniform(b)).collect();
                    ArrayD::from_shape_vec(IxDyn(dims), v).expect("length matches shape")
                })
                .collect()
        }
        WeightSource::File(path) => read_safetensors(plan, path, &expected)?,
    };
    let mut it = tensors.into_iter();
    Ok(match &plan.shape {
        ModelShape::Lstm { num_layers, .. } => {
            let mut layers = Vec::new();
            for _ in 0..*num_layers {
                let w_ih = take(&mut it);
                let w_hh = take(&mut it);
                let b_ih = take(&mut it);
                let b_hh = take(&mut it);
                layers.push(LstmLayerWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                });
            }
            FloatWeights::Lstm(layers)
        }
        ModelShape::Cnn { layers, .. } => FloatWeights::Cnn(
            layers
                .iter()
                .map(|l| match l {
                    CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. } => {
                        let weight = it.next().expect("checked");
                        let bias = take(&mut it);
                        Some(CnnLayerWeights { weight, bias })
                    }
                    _ => None,
                })
                .collect(),
        ),
    })
}

fn take<D: ndarray::Dimension>(
    it: &mut impl Iterator<Item = ArrayD<f64>>,
) -> ndarray::Array<f64, D> {
    it.next()
        .and_then(|t| t.into_dimensionality().ok())
        .expect("checked shape")
}

/// Build a plan error that points at `[model] weights`.
pub fn weights_issue(plan: &CheckedPlan, message: String, help: String) -> crate::Error {
    let spans = SpanIndex::new(&plan.text);
    let issue = Issue::new(message)
        .help(help)
        .at(spans.value(&["model", "weights"]), "weights named here");
    crate::Error::Plan(Box::new(PlanError::new(
        &plan.name,
        &plan.text,
        vec![issue],
    )))
}

fn read_safetensors(
    plan: &CheckedPlan,
    path: &std::path::Path,
    expected: &[(String, Vec<usize>)],
) -> Result<Vec<ArrayD<f64>>, crate::Error> {
    let shown = path.display();
    let bytes = crate::limits::read_file(path, &crate::limits::WEIGHTS_BYTES, "weights file")
        .map_err(|e| {
            weights_issue(
                plan,
                e,
                "the path is relative to the plan file; save weights with \
                 safetensors.torch.save_file(model.state_dict(), PATH)"
                    .into(),
            )
        })?;
    if let Err(why) = check_safetensors_layout(&bytes) {
        return Err(weights_issue(
            plan,
            format!("weights file `{shown}`: {why}"),
            "partita reads PyTorch state_dicts saved with safetensors.torch.save_file; save the file again".into(),
        ));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        weights_issue(
            plan,
            format!("`{shown}` is not a safetensors file ({e})"),
            "partita reads PyTorch state_dicts saved with safetensors.torch.save_file".into(),
        )
    })?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let prefix = &plan.plan.model.weights_prefix;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut prefix_hint: Option<String> = None;
    for (name, dims) in expected {
        let key = format!("{prefix}{name}");
        let view = match st.tensor(&key) {
            Ok(v) => v,
            Err(_) => {
                if let Some(n) = names.iter().find(|n| n.ends_with(name.as_str())) {
                    prefix_hint.get_or_insert_with(|| n[..n.len() - name.len()].to_string());
                }
                problems.push(format!("tensor `{key}` is missing"));
                continue;
            }
        };
        if view.shape() != dims.as_slice() {
            problems.push(format!(
                "tensor `{key}` has shape {:?}, but the plan needs {:?}",
                view.shape(),
                dims
            ));
            continue;
        }
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| f16_to_f64(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64)
                .collect(),
            other => {
                problems.push(format!(
                    "tensor `{key}` has dtype {other:?}; partita reads F64, F32, F16 and BF16"
                ));
                continue;
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            problems.push(format!(
                "tensor `{key}` holds a non-finite value ({}) at flat index {i}",
                values[i]
            ));
            continue;
        }
        out.push(ArrayD::from_shape_vec(IxDyn(dims), values).expect("shape checked"));
    }
    // As torch's load_state_dict(strict=True): tensors under the prefix that the plan does
    // not use mean the file is for another model (more layers, other sizes).
    let unused: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with(prefix.as_str())
                && !expected.iter().any(|(e, _)| **n == format!("{prefix}{e}"))
        })
        .collect();
    if !unused.is_empty() && problems.is_empty() {
        let list = unused
            .iter()
            .take(8)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let more = if unused.len() > 8 { ", ..." } else { "" };
        problems.push(format!(
            "the file has {} tensor(s) the plan does not use: {list}{more} (is the file for a model with more layers? check num_layers / the layer list, or set weights_prefix to the part of the file for this model)",
            unused.len()
        ));
    }
    if problems.is_empty() {
        return Ok(out);
    }
    if let Some(p) = prefix_hint.filter(|p| p != prefix) {
        problems.push(format!(
            "the file has these tensors under the prefix `{p}`: set weights_prefix = \"{p}\""
        ));
    }
    let listing = names
        .iter()
        .take(12)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = if names.len() > 12 { ", ..." } else { "" };
    Err(weights_issue(
        plan,
        format!(
            "weights file `{shown}` does not match the plan:\n  - {}",
            problems.join("\n  - ")
        ),
        format!(
            "the file holds: {listing}{more}. The plan expects PyTorch names ({}) with the \
             sizes in [model]",
            match plan.shape {
                ModelShape::Lstm { .. } =>
                    "weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}",
                ModelShape::Cnn { .. } => "{layer}.weight, {layer}.bias",
            }
        ),
    ))
}

/// Check a safetensors file's framing before the library sees it, so each problem is named:
/// a truncated file (with the size the header implies), a header that is not JSON, and a
/// tensor whose shape and dtype disagree with its byte range.
fn check_safetensors_layout(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 {
        return Err(format!(
            "the file is truncated or not safetensors: {} bytes, but a safetensors file starts with an 8-byte header length",
            bytes.len()
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let rest = (bytes.len() - 8) as u64;
    if n > rest {
        return Err(format!(
            "the file is truncated or not safetensors: its first 8 bytes give a {n}-byte header, but only {rest} bytes follow"
        ));
    }
    let header = &bytes[8..8 + n as usize];
    let json: serde_json::Value = serde_json::from_slice(header).map_err(|e| {
        format!("the header is not valid JSON ({e}); this is not a safetensors file")
    })?;
    let Some(map) = json.as_object() else {
        return Err("the header is not a JSON object; this is not a safetensors file".into());
    };
    let data_len = rest - n;
    let mut end_max = 0u64;
    for (name, t) in map {
        if name == "__metadata__" {
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let size: Option<u64> = match dtype {
            "F64" | "I64" | "U64" => Some(8),
            "F32" | "I32" | "U32" => Some(4),
            "F16" | "BF16" | "I16" | "U16" => Some(2),
            "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => Some(1),
            _ => None,
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let (Some(shape), Some(off)) = (shape, offsets) else {
            return Err(format!(
                "tensor `{name}` has no valid `shape` or `data_offsets` in the header"
            ));
        };
        let [a, b] = off[..] else {
            return Err(format!(
                "tensor `{name}`: data_offsets has {} entries, not 2",
                off.len()
            ));
        };
        if b < a {
            return Err(format!(
                "tensor `{name}`: data_offsets [{a}, {b}] run backwards"
            ));
        }
        if b > data_len {
            return Err(format!(
                "the file is truncated: tensor `{name}` ends at data byte {b}, but the file holds only {data_len} data bytes (expected at least {} bytes in all, the file has {})",
                8 + n + b,
                bytes.len()
            ));
        }
        if let Some(size) = size {
            let count = shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
            let need = count.and_then(|c| c.checked_mul(size));
            if need != Some(b - a) {
                return Err(format!(
                    "tensor `{name}`: shape {shape:?} of dtype {dtype} needs {} bytes, but its data_offsets [{a}, {b}] span {} bytes",
                    need.map_or("too many".into(), |x| x.to_string()),
                    b - a
                ));
            }
        }
        end_max = end_max.max(b);
    }
    if end_max < data_len && end_max > 0 {
        // Trailing bytes: safetensors refuses them; say so plainly.
        return Err(format!(
            "the file has {} bytes after its last tensor; it is damaged or not one safetensors file",
            data_len - end_max
        ));
    }
    Ok(())
}

/// IEEE half to f64, exact.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * (-24f64).exp2(),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * ((e - 15) as f64).exp2(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_values() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x0001), 5.960464477539063e-8);
    }

    #[test]
    fn splitmix_is_stable() {
        // The published SplitMix64 sequence for seed 0. Seeds name weights, so this is fixed.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut r = SplitMix64::new(1);
        for _ in 0..1000 {
            let u = r.uniform(0.5);
            assert!((-0.5..0.5).contains(&u));
        }
    }
}
