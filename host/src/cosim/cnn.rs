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
fn to_chw(a: &CnnArch, codes: &[i64]) -> Vec<i64> {
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

/// Build, run and compare a CNN plan.
pub fn simulate(design: &Design, opts: &SimOptions) -> Result<SimReport, SimError> {
    let ModelDesign::Cnn(_) = &design.model else {
        return Err(SimError::Gen("not a CNN plan".into()));
    };
    let arch = CnnArch::new(design).map_err(SimError::Gen)?;
    let input = match &opts.input {
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

/// Build every device of a multi-device CNN, run them in lockstep over the modelled links and
/// compare every output word, and the count, with the single-device golden model. Each device
/// that reads the image gets its rows of every frame from the host (the host scatters them);
/// the output device's stream carries the network's output.
pub fn simulate_multi(
    design: &Design,
    opts: &SimOptions,
    fault: Option<partita_sim::multi::Fault>,
) -> Result<super::multi::MultiReport, SimError> {
    use partita_codegen::arch::cnn_system::{CnnSystem, Source};
    use partita_sim::cosim::{self, BuildOptions, Model};
    use partita_sim::multi::{self, MultiOptions, Streams, Wiring};
    let sys = CnnSystem::new(design).map_err(SimError::Gen)?;
    let wiring = Wiring {
        ports: sys.devices.iter().map(|d| d.ports.len()).collect(),
        links: sys.links.clone(),
        switched: sys.switched,
        latency: sys.latency as u64,
        frame: sys.frame,
    };
    let channels: Vec<String> = if sys.switched {
        (0..sys.devices.len())
            .map(|d| format!("device {d} -> switch"))
            .chain((0..sys.devices.len()).map(|d| format!("switch -> device {d}")))
            .collect()
    } else {
        sys.links
            .iter()
            .map(|l| {
                format!(
                    "device {} port {} -> device {} port {}",
                    l.from.0, l.from.1, l.to.0, l.to.1
                )
            })
            .collect()
    };
    if let Some(f) = fault {
        if f.channel >= channels.len() {
            return Err(SimError::Gen(format!(
                "--inject-fault: channel {} does not exist; this system has channels 0..{}: {}",
                f.channel,
                channels.len(),
                channels
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{i}: {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let whole = &sys.whole;
    let input = match &opts.input {
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
    // The slowest device sets the pace; the budget covers it and the pipeline's fill.
    let per = sys.cycles_per_frame().max(whole.cycles_per_frame);
    let budget = 4 * per * (frames as u64 + 4) + 400_000;
    let max = partita_codegen::limits::SIM_CYCLES.value();
    if budget > max {
        return Err(SimError::Input(partita_sim::Error::Input {
            message: format!(
                "this run would be allowed {budget} simulated cycles ({per} per frame x {frames} frame(s)), more than the limit of {max}"
            ),
            help: "give fewer frames (README.md, \"Limits\": sim_cycles)".into(),
        }));
    }
    let rtl_dir = match &opts.rtl {
        Some(d) => {
            super::check_rtl_dir(design, d)?;
            d.clone()
        }
        None => super::multi::generate_multi(design)?,
    };
    let t0 = Instant::now();
    let jobs: Vec<(std::path::PathBuf, BuildOptions)> = sys
        .devices
        .iter()
        .map(|d| {
            (
                rtl_dir.join(format!("dev{}", d.index)),
                BuildOptions {
                    trace: opts.wave.is_some(),
                    cache: opts.cache.clone(),
                    ports: d.ports.len(),
                    top: Some(partita_codegen::emit::top_module(design, d.index)),
                    jobs: 0,
                    skip: None,
                },
            )
        })
        .collect();
    let mut models = Vec::new();
    for (d, built) in sys.devices.iter().zip(cosim::build_all(&jobs)) {
        let mut model = Model::load(&built?)?;
        if let Some(w) = &opts.wave {
            model.trace(&w.with_extension(format!("dev{}.fst", d.index)))?;
        }
        models.push(model);
    }
    let build_seconds = t0.elapsed().as_secs_f64();
    // The host scatters each frame's rows to the devices that read the image.
    let iv = whole.input.values();
    let row = whole.input.w * whole.input.c;
    let inputs: Vec<Vec<partita_hdl::stream::Beat>> = sys
        .devices
        .iter()
        .map(|d| match d.source {
            Source::Host { lo, hi } => {
                let mut v = Vec::with_capacity(frames * (hi - lo + 1) * row);
                for f in codes.chunks(iv) {
                    v.extend_from_slice(&f[lo * row..(hi + 1) * row]);
                }
                whole.in_layout.pack(&v, (hi - lo + 1) * row)
            }
            Source::Link { .. } => Vec::new(),
        })
        .collect();
    let ov = whole.output.values();
    let streams = Streams {
        inputs,
        outputs: vec![(sys.out_device, ov)],
        repeats: frames,
        out_layout: whole.out_layout,
        seq_len: 1,
        seq_count: frames as u32,
    };
    let mopts = MultiOptions {
        fault,
        max_cycles: budget,
        link_timeout: 0,
        start_skew: 0,
    };
    let t1 = Instant::now();
    let run = multi::run_wired(&mut models, &wiring, &streams, &mopts);
    // One frame alone gives the latency, and with the run above the steady state.
    let single = (frames >= 2 && run.error.is_none()).then(|| {
        let one = Streams {
            inputs: streams
                .inputs
                .iter()
                .zip(&sys.devices)
                .map(|(b, d)| match d.source {
                    Source::Host { .. } => {
                        b[..whole.in_layout.beats(d.arch.input.values())].to_vec()
                    }
                    Source::Link { .. } => Vec::new(),
                })
                .collect(),
            repeats: 1,
            seq_count: 1,
            ..streams.clone()
        };
        multi::run_wired(&mut models, &wiring, &one, &mopts)
    });
    let sim_seconds = t1.elapsed().as_secs_f64();
    let got = to_chw(whole, &run.codes);
    let mismatch = first_mismatch(&expected, &got, whole.stages.len() - 1, 1, ov);
    let (frames_sent, sent_frame_errors) = run.frames_sent();
    // Every frame a device sends is an h frame: each of its runs per frame (its output, and on
    // a tiles device its halo rows up and down) split at the frame format's most values.
    let fmt = sys.frame;
    let per_run =
        |v: usize| (v as u32).div_ceil(fmt.max_values(partita_hdl::frame::Kind::H)) as usize;
    let frames_expected: Vec<[usize; 3]> = sys
        .devices
        .iter()
        .map(|d| {
            [
                d.runs().iter().map(|r| per_run(r.2)).sum::<usize>() * frames,
                0,
                0,
            ]
        })
        .collect();
    let delivered_frame_errors: Vec<String> = run
        .delivered
        .iter()
        .enumerate()
        .flat_map(|(c, m)| m.errors.iter().map(move |e| format!("channel {c}: {e}")))
        .collect();
    let mut error = run.error.clone();
    if error.is_none() {
        if let Some(e) = sent_frame_errors.first() {
            error = Some(format!(
                "a framer sent a frame the Rust decoder rejects: {e}"
            ));
        } else if frames_sent != frames_expected {
            error = Some(format!(
                "frames sent per device (h, psum, barrier) {frames_sent:?}, the system says {frames_expected:?}"
            ));
        }
    }
    let matched = error.is_none() && mismatch.is_none() && expected.len() == run.codes.len();
    let bytes = fmt.link_width as u64 / 8;
    let devices: Vec<super::multi::DeviceReport> = run
        .devices
        .iter()
        .enumerate()
        .map(|(d, s)| super::multi::DeviceReport {
            device: d,
            cycles: s.cycles as u64,
            mac_cycles: s.mac_cycles as u64,
            utilization: sys.devices[d]
                .arch
                .efficiency(s.cycles as f64 / frames.max(1) as f64),
            link_wait_cycles: s.wait_cycles as u64,
            tx_bytes: s.tx_beats as u64 * bytes,
            forwarded_bytes: s.fwd_beats as u64 * bytes,
            stats: s.clone(),
        })
        .collect();
    let max_cycles = devices.iter().map(|d| d.cycles).max().unwrap_or(0);
    let link_bytes: u64 = devices.iter().map(|d| d.tx_bytes).sum();
    let output = output_array(design, whole, &input, &run.codes);
    let latency = single
        .as_ref()
        .map(|r| r.devices.iter().map(|d| d.cycles as u64).max().unwrap_or(0));
    let cpf = match latency {
        Some(l) => (max_cycles as f64 - l as f64) / (frames as f64 - 1.0),
        None => max_cycles as f64 / frames.max(1) as f64,
    };
    let cnn = cnn_system_stats(&sys, cpf, latency, link_bytes as f64 / frames.max(1) as f64);
    Ok(super::multi::MultiReport {
        matched,
        mismatch,
        words_expected: expected.len(),
        words_got: run.codes.len(),
        sequences: frames,
        timesteps: frames,
        cycles_per_timestep: cpf,
        link_bytes_per_timestep: link_bytes as f64 / frames.max(1) as f64,
        topology: if sys.mode == partita_codegen::plan::LinkMode::Host {
            "host-relayed".into()
        } else {
            sys.topology.to_string()
        },
        strategies: design
            .plan
            .layers
            .iter()
            .map(|a| a.strategy.to_string())
            .collect(),
        devices,
        sim_cycles: run.sim_cycles,
        sim_seconds,
        build_seconds,
        saturations_hw: run.devices.iter().map(|d| d.saturations as u64).sum(),
        saturations_golden: golden.events.saturations,
        saturation_warnings: golden.events.warnings(),
        error,
        channels: channels.into_iter().zip(run.channel_beats).collect(),
        frames_sent,
        frames_expected,
        sent_frame_errors,
        delivered_frame_errors,
        rtl_dir,
        output,
        cnn: Some(cnn),
    })
}

/// A CNN system's measured and predicted figures: cycles per frame (and one device's, for the
/// speed-up), link bytes per frame, and per device its work, multipliers and memories.
fn cnn_system_stats(
    sys: &partita_codegen::arch::cnn_system::CnnSystem,
    cpf: f64,
    latency: Option<u64>,
    link_bytes: f64,
) -> (serde_json::Value, String) {
    let one = sys.whole.cycles_per_frame;
    let pred = sys.cycles_per_frame();
    let devs: Vec<serde_json::Value> = sys
        .devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "device": d.index,
                "layers": d.arch.stages.iter().map(|s| s.layer).collect::<Vec<_>>(),
                "predicted_cycles_per_frame": d.cycles_per_frame(),
                "multipliers": d.arch.multipliers(),
                "weight_bits": d.arch.stages.iter().map(|s| s.weight_bits()).sum::<u64>(),
                "line_buffer_bits": d.arch.stages.iter().map(|s| s.buffer_bits()).sum::<u64>(),
                "link_values_per_frame": d.link_values(),
            })
        })
        .collect();
    let json = serde_json::json!({
        "strategy": sys.strategy.name(),
        "cycles_per_frame": cpf,
        "predicted_cycles_per_frame": pred,
        "latency_cycles": latency,
        "one_device_cycles_per_frame": one,
        "fraction_of_one_device": cpf / one.max(1) as f64,
        "link_bytes_per_frame": link_bytes,
        "predicted_link_bytes_per_frame": sys.link_bytes_per_frame(),
        "recompute": sys.fused.as_ref().map(|f| f.recompute),
        "input_factor": sys.fused.as_ref().map(|f| f.input_factor),
        "devices": devs,
    });
    let mut text = format!(
        "CNN {}: {cpf:.1} cycles per frame in steady state (predicted {pred}), {:.3} of one device's {one}; {link_bytes:.0} link bytes per frame (predicted {})",
        sys.strategy.name(),
        cpf / one.max(1) as f64,
        sys.link_bytes_per_frame()
    );
    if let Some(f) = &sys.fused {
        text += &match sys.strategy {
            partita_codegen::plan::Strategy::Tiles => format!(
                "; the tiled stack exchanges halo rows and reads {:.2}x the input",
                f.input_factor
            ),
            _ => format!(
                "; the fused stack recomputes {:.2}x its work and reads {:.2}x the input",
                f.recompute, f.input_factor
            ),
        };
    }
    text += "\n";
    for d in &sys.devices {
        text += &format!(
            "  device {}: layers {:?}, {} multipliers, predicted {} cycles per frame\n",
            d.index,
            d.arch.stages.iter().map(|s| s.layer).collect::<Vec<_>>(),
            d.arch.multipliers(),
            d.cycles_per_frame()
        );
    }
    (json, text)
}
