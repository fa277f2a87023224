//! partita-sim: golden models (float and bit-exact fixed point) and their `.npy` I/O.
//!
//! [`cosim`] builds generated RTL with Verilator and loads it as a shared library.

pub mod cnn;
pub mod cosim;
pub mod lstm;
pub mod multi;

use std::path::Path;

use miette::Diagnostic;
use ndarray::{Array3, ArrayD, Axis, Ix2, Ix3, IxDyn};
use ndarray_npy::{write_npy, ReadNpyError};
use partita_codegen::design::{Design, ModelDesign};
use thiserror::Error;

pub use lstm::{Events, Saturated};

#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    /// An input or output file is unusable.
    #[error("{message}")]
    #[diagnostic(code(partita::input))]
    Input {
        message: String,
        #[help]
        help: String,
    },
}

fn input_err(message: String, help: impl Into<String>) -> Error {
    Error::Input {
        message,
        help: help.into(),
    }
}

/// Float (PyTorch semantics) or bit-exact fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Float,
    Fixed,
}

/// A checked input array, always batched: LSTM `(batch, seq, input)`, CNN `(n, c, h, w)`.
#[derive(Clone, Debug)]
pub struct Input {
    pub data: ArrayD<f64>,
    /// Whether the file had the batch axis (the output keeps the same form).
    pub batched: bool,
}

/// Golden output in the input's form, and what saturated on the way.
#[derive(Clone, Debug)]
pub struct Output {
    pub values: ArrayD<f64>,
    /// Fixed mode: the output codes, same shape.
    pub codes: Option<ArrayD<i64>>,
    pub events: Events,
}

/// Read a float32 or float64 `.npy` file: a regular file within the size limit, whose header
/// is checked (shape, value count limit, and that the data is all there) before the array is
/// allocated.
pub fn read_array(path: &Path) -> Result<ArrayD<f64>, Error> {
    use ndarray_npy::ReadNpyExt;
    let shown = path.display();
    let bytes = partita_codegen::limits::read_file(
        path,
        &partita_codegen::limits::INPUT_BYTES,
        "input array",
    )
    .map_err(|e| input_err(e, "give the path of a .npy file (numpy.save)"))?;
    npy_layout(&bytes).map_err(|why| {
        input_err(
            format!("`{shown}`: {why}"),
            "write inputs with numpy.save(path, array) as float32 or float64",
        )
    })?;
    match ArrayD::<f64>::read_npy(&bytes[..]) {
        Ok(a) => Ok(a),
        Err(ReadNpyError::WrongDescriptor(_)) => match ArrayD::<f32>::read_npy(&bytes[..]) {
            Ok(a) => Ok(a.mapv(f64::from)),
            Err(ReadNpyError::WrongDescriptor(d)) => Err(input_err(
                format!("`{shown}` holds {d}, not floats"),
                "inputs are float32 or float64 .npy arrays (numpy.save of a float array)",
            )),
            Err(e) => Err(input_err(
                format!("cannot read `{shown}`: {e}"),
                "give a .npy file",
            )),
        },
        Err(e) => Err(input_err(
            format!("`{shown}` is not a valid .npy file: {e}"),
            "write inputs with numpy.save(path, array) as float32 or float64",
        )),
    }
}

/// Check an .npy header: magic, shape, value-count limit, and that the file holds all the
/// data the header promises. Returns the shape.
pub fn npy_layout(bytes: &[u8]) -> Result<Vec<usize>, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(format!(
            "not a .npy file: it does not start with the .npy magic (\\x93NUMPY); {} bytes",
            bytes.len()
        ));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unknown .npy format version {v}")),
    };
    if start + hlen > bytes.len() {
        return Err(format!(
            "the file is truncated: its header says {hlen} header bytes, but the file has {} bytes",
            bytes.len()
        ));
    }
    let header = String::from_utf8_lossy(&bytes[start..start + hlen]);
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .unwrap_or("");
    let item: usize = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or("its header has no shape")?;
    let mut shape = Vec::new();
    for d in shape_text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        shape.push(
            d.parse::<usize>()
                .map_err(|_| format!("its header has a bad shape entry `{d}`"))?,
        );
    }
    let count = shape
        .iter()
        .try_fold(1u128, |a, d| a.checked_mul(*d as u128))
        .unwrap_or(u128::MAX);
    let max = partita_codegen::limits::INPUT_VALUES.value() as u128;
    if count > max {
        return Err(format!(
            "shape {shape:?} holds {count} values, more than the limit of {max} (README.md, \"Limits\")"
        ));
    }
    if item > 0 {
        let need = (start + hlen) as u128 + count * item as u128;
        if (bytes.len() as u128) < need {
            return Err(format!(
                "the file is truncated: shape {shape:?} of {descr} needs {need} bytes, but the file has {}",
                bytes.len()
            ));
        }
    }
    Ok(shape)
}

/// Read and check an input array against the design.
pub fn read_input(path: &Path, design: &Design) -> Result<Input, Error> {
    let data = read_array(path)?;
    check_input(data, design, &path.display().to_string())
}

/// Check an input array's shape and values against the design.
pub fn check_input(data: ArrayD<f64>, design: &Design, name: &str) -> Result<Input, Error> {
    let input = check_shape(data, design, name)?;
    // Bound the run before it starts: its output array and its multiply-accumulates.
    let shape = input.data.shape();
    let samples = match &design.model {
        ModelDesign::Lstm(_) => shape[0] as u128 * shape[1] as u128,
        ModelDesign::Cnn(_) => shape[0] as u128,
    };
    let out_values = samples * design.plan.shape.output_values() as u128;
    let max_values = partita_codegen::limits::INPUT_VALUES.value() as u128;
    if out_values > max_values {
        return Err(input_err(
            format!("`{name}` would give an output of {out_values} values, more than the limit of {max_values}"),
            "give fewer sequences, steps or samples (README.md, \"Limits\": input_values bounds input and output arrays)",
        ));
    }
    let macs = samples.saturating_mul(design.plan.shape.macs_per_sample());
    let max_macs = partita_codegen::limits::GOLDEN_MACS.value() as u128;
    if macs > max_macs {
        return Err(input_err(
            format!("`{name}` needs {macs} multiply-accumulates through this model, more than the limit of {max_macs}"),
            "give fewer sequences, steps or samples (README.md, \"Limits\": golden_macs)",
        ));
    }
    Ok(input)
}

fn check_shape(data: ArrayD<f64>, design: &Design, name: &str) -> Result<Input, Error> {
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(input_err(
            format!("`{name}` holds a non-finite value ({v}) at flat index {i}"),
            "inputs must be finite numbers",
        ));
    }
    let shape = data.shape().to_vec();
    match &design.model {
        ModelDesign::Lstm(m) => {
            let ok_rank = matches!(shape.len(), 2 | 3);
            let last = shape.last().copied().unwrap_or(0);
            if !ok_rank || last != m.input_size || shape.contains(&0) {
                return Err(input_err(
                    format!(
                        "`{name}` has shape {shape:?}, but this LSTM takes (seq, {i}) or (batch, seq, {i})",
                        i = m.input_size
                    ),
                    format!(
                        "the last axis is the input width, input_size = {}; seq and batch must be at least 1",
                        m.input_size
                    ),
                ));
            }
            let seq = shape[shape.len() - 2];
            let max_seq = partita_codegen::limits::SEQUENCE.value();
            if seq as u64 > max_seq {
                return Err(input_err(
                    format!("`{name}` has sequences of {seq} timesteps, more than the limit of {max_seq}"),
                    "split the sequence (README.md, \"Limits\": sequence)",
                ));
            }
            let batched = shape.len() == 3;
            let data = if batched {
                data
            } else {
                data.insert_axis(Axis(0))
            };
            Ok(Input { data, batched })
        }
        ModelDesign::Cnn(m) => {
            let want = m.input_shape.to_vec();
            let (batched, got) = match shape.len() {
                3 => (false, shape.clone()),
                4 => (true, shape[1..].to_vec()),
                _ => (false, Vec::new()),
            };
            if got != want || shape[0] == 0 {
                return Err(input_err(
                    format!(
                        "`{name}` has shape {shape:?}, but this CNN takes {want:?} or (n, {}, {}, {})",
                        want[0], want[1], want[2]
                    ),
                    "input maps are (channels, height, width), with an optional leading batch axis",
                ));
            }
            let data = if batched {
                data
            } else {
                data.insert_axis(Axis(0))
            };
            Ok(Input { data, batched })
        }
    }
}

/// Run the golden model on a checked input. Fixed mode follows the plan's partition.
pub fn run(design: &Design, input: &Input, mode: Mode) -> Output {
    run_with(design, input, mode, Some(&design.partition.layers))
}

/// Run with an explicit partition (`None`: every layer as one share).
pub fn run_with(
    design: &Design,
    input: &Input,
    mode: Mode,
    partition: Option<&[partita_codegen::passes::partition::LayerPartition]>,
) -> Output {
    let q = design.quant();
    let mut ev = Events::default();
    let mut codes_out: Vec<ArrayD<i64>> = Vec::new();
    let mut vals_out: Vec<ArrayD<f64>> = Vec::new();
    for item in input.data.outer_iter() {
        match (&design.model, mode) {
            (ModelDesign::Lstm(m), Mode::Float) => {
                let x = item.into_dimensionality::<Ix2>().expect("checked rank");
                vals_out.push(lstm::float(m, x).into_dyn());
            }
            (ModelDesign::Lstm(m), Mode::Fixed) => {
                let x = item.into_dimensionality::<Ix2>().expect("checked rank");
                let xq = lstm::quantize_input(q, x, &mut ev);
                codes_out.push(lstm::fixed(m, q, partition, xq.view(), &mut ev).into_dyn());
            }
            (ModelDesign::Cnn(m), Mode::Float) => {
                let x = item.into_dimensionality::<Ix3>().expect("checked rank");
                vals_out.push(cnn_out(m, cnn::float(m, x)));
            }
            (ModelDesign::Cnn(m), Mode::Fixed) => {
                let x = item.into_dimensionality::<Ix3>().expect("checked rank");
                let xq: Array3<i64> = x.mapv(|v| {
                    let y = q.data.quantize(v, q.rounding, q.overflow);
                    if y.clipped {
                        ev.input_clipped += 1;
                        ev.record_input(q.data, v);
                    }
                    y.code
                });
                codes_out.push(cnn_out(m, cnn::fixed(m, q, partition, xq.view(), &mut ev)));
            }
        }
    }
    let stack = |parts: Vec<ArrayD<f64>>| -> ArrayD<f64> {
        let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
        let s = ndarray::stack(Axis(0), &views).expect("equal shapes");
        if input.batched {
            s
        } else {
            s.index_axis_move(Axis(0), 0)
        }
    };
    match mode {
        Mode::Float => Output {
            values: stack(vals_out),
            codes: None,
            events: ev,
        },
        Mode::Fixed => {
            let lsb = design.output_format().lsb();
            let vals = codes_out
                .iter()
                .map(|c| c.mapv(|v| v as f64 * lsb))
                .collect();
            let views: Vec<_> = codes_out.iter().map(|a| a.view()).collect();
            let codes = ndarray::stack(Axis(0), &views).expect("equal shapes");
            let codes = if input.batched {
                codes
            } else {
                codes.index_axis_move(Axis(0), 0)
            };
            Output {
                values: stack(vals),
                codes: Some(codes),
                events: ev,
            }
        }
    }
}

/// Run the float model on every sample of a checked input and record the largest magnitudes
/// it sees (the input, each CNN layer's output, an LSTM's h, c and pre-activations), for
/// `calibrate`.
pub fn observe(design: &Design, input: &Input) -> partita_codegen::passes::calibrate::Ranges {
    let mut r = partita_codegen::passes::calibrate::Ranges {
        samples: input.data.shape()[0],
        input: input.data.iter().fold(0.0f64, |m, v| m.max(v.abs())),
        ..Default::default()
    };
    match &design.model {
        ModelDesign::Lstm(m) => {
            let mut seen = lstm::Seen::default();
            for item in input.data.outer_iter() {
                let x = item.into_dimensionality::<Ix2>().expect("checked rank");
                lstm::float_seen(m, x, &mut seen);
            }
            (r.h, r.cell, r.preact) = (seen.h, seen.cell, seen.preact);
        }
        ModelDesign::Cnn(m) => {
            r.layers = vec![0.0; m.layers.len()];
            for item in input.data.outer_iter() {
                let x = item.into_dimensionality::<Ix3>().expect("checked rank");
                cnn::float_seen(m, x, &mut r.layers);
            }
        }
    }
    r
}

/// A CNN ending in dense or flatten gives a vector `(n)`, like `nn.Linear`'s.
fn cnn_out<T: Clone>(m: &partita_codegen::design::CnnDesign, a: Array3<T>) -> ArrayD<T> {
    use partita_codegen::plan::CnnLayer;
    let (c, h, w) = a.dim();
    if matches!(
        m.layers.last(),
        Some(CnnLayer::Dense { .. } | CnnLayer::Flatten)
    ) {
        debug_assert!(h == 1 && w == 1);
        a.into_shape_with_order(IxDyn(&[c])).expect("same length")
    } else {
        a.into_dyn()
    }
}

/// Write a float64 `.npy`.
pub fn write_output(path: &Path, values: &ArrayD<f64>) -> Result<(), Error> {
    write_npy(path, values).map_err(|e| {
        input_err(
            format!("cannot write `{}`: {e}", path.display()),
            "check that the output directory exists and is writable",
        )
    })
}
