//! Cosimulation of a single-device CNN: frames in (y, x, c) order through the device trait,
//! every output word and the word count compared with the bit-exact golden model, and the
//! steady-state throughput measured as (T(N frames) - T(1 frame)) / (N - 1) from two runs.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use partita_codegen::arch::cnn::CnnArch;
use partita_codegen::design::{Design, ModelDesign};
use partita_sim::Mode;

use super::{first_mismatch, open_sim_device, SimError, SimOptions, SimReport};
use crate::driver::run_cnn;

/// Throughput figures of a CNN cosimulation.
#[derive(Clone, Debug)]
pub struct CnnStats {
    /// Steady-state cycles per frame (from two runs; the single run's average with one frame).
    pub cycles_per_frame: f64,
    /// Cycles of one frame alone, input to last output.
    pub latency_cycles: u64,
    pub clock_mhz: f64,
    pub efficiency: f64,
    /// The architecture's prediction (the slowest stage).
    pub predicted_cycles_per_frame: u64,
    pub multipliers: usize,
    pub macs_per_frame: u64,
    /// Per stage: layer, kind, predicted cycles per frame, lane utilization at the measured
    /// cycles per frame.
    pub stages: Vec<(usize, &'static str, u64, f64)>,
}

impl CnnStats {
    pub fn frames_per_second(&self) -> f64 {
        self.clock_mhz * 1e6 / self.cycles_per_frame.max(1.0)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "cycles_per_frame": self.cycles_per_frame,
            "latency_cycles": self.latency_cycles,
            "predicted_cycles_per_frame": self.predicted_cycles_per_frame,
            "frames_per_second": self.frames_per_second(),
            "clock_mhz": self.clock_mhz,
            "efficiency": self.efficiency,
            "multipliers": self.multipliers,
            "macs_per_frame": self.macs_per_frame,
            "layers": self.stages.iter().map(|(l, k, c, u)| serde_json::json!({
                "layer": l, "kind": k, "cycles_per_frame": c, "lane_utilization": u,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn text(&self, total: u64) -> String {
        let per: Vec<String> = self
            .stages
            .iter()
            .map(|(l, k, c, u)| format!("layer {l} {k} {c} ({u:.2} busy)"))
            .collect();
        format!(
            "cycles: {total} total, {:.1} per frame in steady state (predicted {}), latency {} cycles; \
             {:.0} frames/s at {} MHz; efficiency {:.3} ({} MACs per frame on {} multipliers)\n\
             stages (predicted cycles per frame, lane utilization): {}",
            self.cycles_per_frame,
            self.predicted_cycles_per_frame,
            self.latency_cycles,
            self.frames_per_second(),
            self.clock_mhz,
            self.efficiency,
            self.macs_per_frame,
            self.multipliers,
            per.join(", ")
        )
    }
}

/// Frame `f` of a checked input as data codes in the stream's (y, x, c) order.
fn frame_codes(design: &Design, x: ndarray::ArrayView3<f64>) -> Vec<i64> {
    let q = design.quant();
    let (c, h, w) = x.dim();
    let mut out = Vec::with_capacity(c * h * w);
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                out.push(q.data.quantize(x[[ch, y, xx]], q.rounding, q.overflow).code);
            }
        }
    }
    out
}

/// Device output codes (per frame in (y, x, c) order) back in the golden model's (c, y, x).
pub(crate) fn to_chw(a: &CnnArch, codes: &[i64]) -> Vec<i64> {
    let o = a.out_order;
    let n = o.values();
    let mut out = Vec::with_capacity(codes.len());
    for f in codes.chunks(n) {
        for ch in 0..o.c {
            for y in 0..o.h {
                for x in 0..o.w {
                    out.push(f.get((y * o.w + x) * o.c + ch).copied().unwrap_or(i64::MIN));
                }
            }
        }
    }
    out
}

/// Testbench vectors: 2 unit-normal frames (seed 2) and the golden model's output for them,
/// both in the stream's (y, x, c) order.
pub fn tb_vectors(design: &Design) -> partita_codegen::emit::Vectors {
    let (ModelDesign::Cnn(m), Ok(arch)) = (&design.model, CnnArch::new(design)) else {
        return partita_codegen::emit::Vectors::default();
    };
    let mut rng = partita_codegen::weights::SplitMix64::new(2);
    let s = m.input_shape;
    let data = ArrayD::from_shape_fn(IxDyn(&[2, s[0], s[1], s[2]]), |_| rng.normal());
    let input = partita_sim::Input {
        data,
        batched: true,
    };
    let golden = partita_sim::run(design, &input, Mode::Fixed);
    let chw: Vec<i64> = golden
        .codes
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    // (c, y, x) -> (y, x, c) per frame.
    let o = arch.out_order;
    let mut expected = Vec::with_capacity(chw.len());
    for f in chw.chunks(o.values().max(1)) {
        for y in 0..o.h {
            for x in 0..o.w {
                for ch in 0..o.c {
                    expected.push(f[(ch * o.h + y) * o.w + x]);
                }
            }
        }
    }
    partita_codegen::emit::Vectors {
        seq_len: 1,
        seq_count: 2,
        input: input_codes(design, &input),
        expected,
    }
}

/// Every frame of a checked input as codes in the stream's order.
pub fn input_codes(design: &Design, input: &partita_sim::Input) -> Vec<i64> {
    let mut codes = Vec::new();
    for f in input.data.outer_iter() {
        let x = f
            .into_dimensionality::<ndarray::Ix3>()
            .expect("checked rank");
        codes.extend(frame_codes(design, x));
    }
    codes
}

/// The most cycles a run of `frames` frames may take: 4 x the architecture's cycles per frame
/// with slack for the pipeline's fill, refused up front above the `sim_cycles` limit.
pub fn cycle_budget(arch: &CnnArch, frames: usize) -> Result<u64, SimError> {
    let budget = 4 * arch.cycles_per_frame * (frames as u64 + 4) + 200_000;
    let max = partita_codegen::limits::SIM_CYCLES.value();
    if budget > max {
        return Err(SimError::Input(partita_sim::Error::Input {
            message: format!(
                "this run would be allowed {budget} simulated cycles ({} per frame x {frames} frame(s)), more than the limit of {max}",
                arch.cycles_per_frame
            ),
            help: "give fewer frames (README.md, \"Limits\": sim_cycles)".into(),
        }));
    }
    Ok(budget)
}

/// Device output codes as values, shaped as the golden model's output for `input`: per frame
/// `(c, h, w)`, or a vector after dense/flatten; with the batch axis if the input had one.
pub fn output_array(
    design: &Design,
    arch: &CnnArch,
    input: &partita_sim::Input,
    codes: &[i64],
) -> ArrayD<f64> {
    let ModelDesign::Cnn(m) = &design.model else {
        return ArrayD::zeros(IxDyn(&[0]));
    };
    let frames = input.data.shape()[0];
    let o = arch.output;
    let vector = matches!(
        m.layers.last(),
        Some(
            partita_codegen::plan::CnnLayer::Dense { .. }
                | partita_codegen::plan::CnnLayer::Flatten
        )
    );
    let mut shape = vec![frames];
    if vector {
        shape.push(o.values());
    } else {
        shape.extend([o.c, o.h, o.w]);
    }
    let lsb = design.output_format().lsb();
    let chw = to_chw(arch, codes);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|i| chw.get(i).map_or(f64::NAN, |c| *c as f64 * lsb))
        .collect();
    let a = ArrayD::from_shape_vec(IxDyn(&shape), values).expect("shape holds the values");
    if input.batched {
        a
    } else {
        a.index_axis_move(ndarray::Axis(0), 0)
    }
}

/// What a CNN cosim runs and compares against: the input (the file given, or the default),
/// the bit-exact golden model's run on it and its output codes, the frame count, and the
/// input as codes in the stream's order.
pub(crate) struct Case {
    pub input: partita_sim::Input,
    pub golden: partita_sim::Output,
    pub expected: Vec<i64>,
    pub frames: usize,
    pub codes: Vec<i64>,
}

pub(crate) fn case(design: &Design, input: Option<&std::path::Path>) -> Result<Case, SimError> {
    let input = match input {
        Some(p) => partita_sim::read_input(p, design)?,
        None => super::default_input(design),
    };
    let golden = partita_sim::run(design, &input, Mode::Fixed);
    let expected: Vec<i64> = golden
        .codes
        .as_ref()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    let frames = input.data.shape()[0];
    let codes = input_codes(design, &input);
    Ok(Case {
        input,
        golden,
        expected,
        frames,
        codes,
    })
}

/// Build, run and compare a CNN plan.
pub fn simulate(design: &Design, opts: &SimOptions) -> Result<SimReport, SimError> {
    let ModelDesign::Cnn(_) = &design.model else {
        return Err(SimError::Gen("not a CNN plan".into()));
    };
    let arch = CnnArch::new(design).map_err(SimError::Gen)?;
    let Case {
        input,
        golden,
        expected,
        frames,
        codes,
    } = case(design, opts.input.as_deref())?;
    let budget = cycle_budget(&arch, frames)?;
    let (mut dev, built, rtl_dir) = open_sim_device(design, opts)?;
    dev.budget_cycles = budget;
    let (iv, ov) = (arch.input.values(), arch.output.values());
    let t0 = Instant::now();
    let run = run_cnn(
        &mut dev,
        design.plan.plan_hash,
        frames,
        iv,
        ov,
        arch.in_layout,
        arch.out_layout,
        &codes,
    )?;
    // One frame alone: the latency, and with it the steady state.
    let single = if frames >= 2 {
        Some(run_cnn(
            &mut dev,
            design.plan.plan_hash,
            1,
            iv,
            ov,
            arch.in_layout,
            arch.out_layout,
            &codes[..iv],
        )?)
    } else {
        None
    };
    let sim_seconds = t0.elapsed().as_secs_f64();
    let got = to_chw(&arch, &run.codes);
    let mismatch = first_mismatch(&expected, &got, arch.stages.len() - 1, 1, ov);
    let matched = mismatch.is_none() && expected.len() == run.codes.len();
    let latency = single.as_ref().map_or(run.cycles, |s| s.cycles);
    let cpf = match &single {
        Some(s) => (run.cycles as f64 - s.cycles as f64) / (frames as f64 - 1.0),
        None => run.cycles as f64,
    };
    let mults = arch.multipliers();
    let stats = CnnStats {
        cycles_per_frame: cpf,
        latency_cycles: latency,
        clock_mhz: design.plan.plan.target.clock_mhz,
        efficiency: arch.efficiency(cpf),
        predicted_cycles_per_frame: arch.cycles_per_frame,
        multipliers: mults,
        macs_per_frame: arch.macs,
        stages: arch
            .stages
            .iter()
            .map(|s| {
                (
                    s.layer,
                    s.kind_name(),
                    s.cycles,
                    s.utilization(cpf.round() as u64),
                )
            })
            .collect(),
    };
    let output = output_array(design, &arch, &input, &run.codes);
    Ok(SimReport {
        matched,
        mismatch,
        words_expected: expected.len(),
        words_got: run.codes.len(),
        sequences: frames,
        timesteps: frames,
        cycles_total: run.cycles,
        cycles_per_timestep: cpf,
        lower_bound_cycles_per_timestep: arch.macs as f64 / mults.max(1) as f64,
        efficiency: stats.efficiency,
        sim_cycles: dev.cycles(),
        sim_seconds,
        sim_cycles_per_second: dev.cycles() as f64 / sim_seconds.max(1e-9),
        build_seconds: built.seconds,
        build_cached: built.cached,
        saturations_hw: run.saturations,
        saturations_golden: golden.events.saturations,
        saturation_warnings: golden.events.warnings(),
        rtl_dir,
        output,
        cnn: Some(stats),
    })
}
