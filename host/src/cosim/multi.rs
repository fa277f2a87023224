//! `partita sim` on a multi-device plan: generate every device's RTL, build one Verilator model
//! per device, run them in lockstep over the modelled links, and compare every output word
//! with the single-device golden model.

use std::path::PathBuf;
use std::time::Instant;

use partita_codegen::arch::lstm::System;
use partita_codegen::design::{Design, ModelDesign};
use partita_codegen::emit;
use partita_sim::cosim::{self, BuildOptions, Model};
use partita_sim::multi::{self, Fault, LinkReport, Lockstep, Wiring};

use crate::driver::lockstep;
use crate::driver::system::{
    run_system, DeviceStats, RelayStats, SystemIo, SystemOptions, SystemRun,
};

use super::{
    first_mismatch, golden_case, output_array, GoldenCase, Mismatch, SimError, SimOptions,
};

/// One device's measured figures.
#[derive(Clone, Debug)]
pub struct DeviceReport {
    pub device: usize,
    pub cycles: u64,
    pub mac_cycles: u64,
    /// Engine issue cycles over busy cycles.
    pub utilization: f64,
    /// Cycles spent waiting for link data (barriers, partial sums).
    pub link_wait_cycles: u64,
    pub tx_bytes: u64,
    pub forwarded_bytes: u64,
    pub stats: DeviceStats,
}

/// Everything a multi-device cosimulation measured.
#[derive(Clone, Debug)]
pub struct MultiReport {
    pub matched: bool,
    pub mismatch: Option<Mismatch>,
    pub words_expected: usize,
    pub words_got: usize,
    pub sequences: usize,
    pub timesteps: usize,
    pub devices: Vec<DeviceReport>,
    /// Slowest device's busy cycles over the timesteps.
    pub cycles_per_timestep: f64,
    pub link_bytes_per_timestep: f64,
    pub topology: String,
    pub strategies: Vec<String>,
    pub sim_cycles: u64,
    pub sim_seconds: f64,
    pub build_seconds: f64,
    pub saturations_hw: u64,
    pub saturations_golden: u64,
    /// The golden model's saturations by layer and quantity, each with a format that would
    /// hold them.
    pub saturation_warnings: Vec<String>,
    /// A link or device error that stopped the run.
    pub error: Option<String>,
    /// Link channels and the beats that entered each.
    pub channels: Vec<(String, u64)>,
    /// Frames each device sent (h, partial sums, barriers), decoded by the Rust frame type on
    /// the first link they entered, next to what the schedule says it sends.
    pub frames_sent: Vec<[usize; 3]>,
    pub frames_expected: Vec<[usize; 3]>,
    /// Frames the Rust decoder rejected: as sent (an RTL framer fault) and as delivered (link
    /// damage, such as an injected fault).
    pub sent_frame_errors: Vec<String>,
    pub delivered_frame_errors: Vec<String>,
    /// Host-relayed links: frames the host driver relayed, per source device, and beats.
    pub relay: RelayStats,
    pub rtl_dir: PathBuf,
    pub output: ndarray::ArrayD<f64>,
    /// A CNN system's figures (JSON, and lines for the summary).
    pub cnn: Option<(serde_json::Value, String)>,
}

impl MultiReport {
    pub fn json(&self) -> String {
        let mm = self.mismatch.as_ref().map(|m| {
            serde_json::json!({"layer": m.layer, "batch": m.batch, "timestep": m.timestep, "index": m.index, "expected": m.expected, "got": m.got})
        });
        let devs: Vec<serde_json::Value> = self
            .devices
            .iter()
            .map(|d| {
                serde_json::json!({
                    "device": d.device,
                    "cycles": d.cycles,
                    "mac_cycles": d.mac_cycles,
                    "utilization": d.utilization,
                    "link_wait_cycles": d.link_wait_cycles,
                    "tx_bytes": d.tx_bytes,
                    "forwarded_bytes": d.forwarded_bytes,
                    "saturations": d.stats.saturations,
                    "link_status": d.stats.link_status,
                    "crc_errors": d.stats.crc_errors,
                    "seq_errors": d.stats.seq_errors,
                })
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "match": self.matched,
            "mismatch": mm,
            "error": self.error,
            "words_expected": self.words_expected,
            "words_got": self.words_got,
            "sequences": self.sequences,
            "timesteps": self.timesteps,
            "devices": devs,
            "cycles_per_timestep": self.cycles_per_timestep,
            "link_bytes_per_timestep": self.link_bytes_per_timestep,
            "topology": self.topology,
            "channels": self.channels.iter().map(|(n, b)| serde_json::json!({"name": n, "beats": b})).collect::<Vec<_>>(),
            "frames": {
                "sent": self.frames_sent,
                "expected": self.frames_expected,
                "sent_decode_errors": self.sent_frame_errors,
                "delivered_decode_errors": self.delivered_frame_errors,
            },
            "relay": {
                "frames": self.relay.frames,
                "beats": self.relay.beats,
                "seconds": self.relay.seconds,
            },
            "strategies": self.strategies,
            "sim_cycles": self.sim_cycles,
            "sim_seconds": self.sim_seconds,
            "build_seconds": self.build_seconds,
            "saturations_hw": self.saturations_hw,
            "saturations_golden": self.saturations_golden,
            "saturation_warnings": self.saturation_warnings,
            "rtl_dir": self.rtl_dir.display().to_string(),
            "cnn": self.cnn.as_ref().map(|c| c.0.clone()),
        }))
        .unwrap_or_default()
    }

    pub fn summary(&self) -> String {
        let verdict = match (&self.error, &self.mismatch) {
            (Some(e), _) => format!("error: {e}"),
            (None, None) if self.matched => format!(
                "match: all {} words from {} devices equal the golden model",
                self.words_expected,
                self.devices.len()
            ),
            (None, None) => format!(
                "mismatch: got {} words, expected {}",
                self.words_got, self.words_expected
            ),
            (None, Some(m)) => format!(
                "mismatch at layer {}, batch {}, timestep {}, index {}: expected {}, got {}",
                m.layer, m.batch, m.timestep, m.index, m.expected, m.got
            ),
        };
        let mut s = format!(
            "{verdict}\nsystem: {} devices, {} links, strategies {}; {:.1} cycles per timestep, \
             {:.0} link bytes per timestep\n",
            self.devices.len(),
            self.topology,
            self.strategies.join("/"),
            self.cycles_per_timestep,
            self.link_bytes_per_timestep
        );
        s += "device  cycles    utilization  link-wait  tx-bytes  fwd-bytes\n";
        for d in &self.devices {
            s += &format!(
                "{:<7} {:<9} {:<12.3} {:<10} {:<9} {}\n",
                d.device,
                d.cycles,
                d.utilization,
                d.link_wait_cycles,
                d.tx_bytes,
                d.forwarded_bytes
            );
        }
        s += "link channels (beats carried):";
        for (i, (name, beats)) in self.channels.iter().enumerate() {
            s += &format!(" [{i}] {name}: {beats};");
        }
        s += "\n";
        if self.relay.beats > 0 {
            let frames: usize = self.relay.frames.iter().sum();
            s += &format!(
                "host relay: {frames} frames ({} beats) checked and forwarded by the host driver, per source device {:?}\n",
                self.relay.beats, self.relay.frames
            );
        }
        s += &format!(
            "simulation: {} cycles in {:.2} s; build {:.2} s\nsaturations: hardware {}, golden {}\n",
            self.sim_cycles, self.sim_seconds, self.build_seconds, self.saturations_hw, self.saturations_golden
        );
        s += &super::warning_lines(&self.saturation_warnings);
        if let Some((_, t)) = &self.cnn {
            s += t;
        }
        s
    }
}

/// Parse `KIND:CHANNEL:FRAME` (KIND corrupt, drop or reorder).
pub fn parse_fault(s: &str) -> Result<Fault, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let usage =
        "expected KIND:CHANNEL:FRAME, KIND one of corrupt, drop, reorder (e.g. corrupt:0:3)";
    let [kind, ch, fr] = parts.as_slice() else {
        return Err(usage.into());
    };
    let kind = match *kind {
        "corrupt" => multi::FaultKind::Corrupt,
        "drop" => multi::FaultKind::Drop,
        "reorder" => multi::FaultKind::Reorder,
        other => return Err(format!("unknown fault `{other}`; {usage}")),
    };
    let num = |t: &str, what: &str| {
        t.parse::<usize>()
            .map_err(|_| format!("{what} `{t}` is not a number; {usage}"))
    };
    Ok(Fault {
        kind,
        channel: num(ch, "channel")?,
        frame: num(fr, "frame")?,
    })
}

/// A fault's channel must exist: else the error names the system's channels.
fn check_fault_channel(fault: Option<Fault>, channels: &[String]) -> Result<(), SimError> {
    match fault {
        Some(f) if f.channel >= channels.len() => Err(SimError::Gen(format!(
            "--inject-fault: channel {} does not exist; this system has channels 0..{}: {}",
            f.channel,
            channels.len(),
            channels
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i}: {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The system's RTL: `opts.rtl` (checked against the plan), or generated into the cache.
fn system_rtl_dir(design: &Design, opts: &SimOptions) -> Result<PathBuf, SimError> {
    match &opts.rtl {
        Some(d) => {
            super::check_rtl_dir(design, d)?;
            Ok(d.clone())
        }
        None => generate_multi(design),
    }
}

/// Write every device's files into a content-addressed cache directory.
pub fn generate_multi(design: &Design) -> Result<PathBuf, SimError> {
    let files = emit::generate(design, None).map_err(SimError::Gen)?;
    super::write_cached(&files, None)
}

/// Build, run in lockstep and compare. `fault` injects a link fault.
pub fn simulate_multi(
    design: &Design,
    opts: &SimOptions,
    fault: Option<Fault>,
) -> Result<MultiReport, SimError> {
    simulate_multi_with(design, opts, fault, 0)
}

/// As [`simulate_multi`], with `start_skew` STATUS reads between two devices' starts (the
/// system driver starts them from the last to the first).
pub fn simulate_multi_with(
    design: &Design,
    opts: &SimOptions,
    fault: Option<Fault>,
    start_skew: usize,
) -> Result<MultiReport, SimError> {
    let ModelDesign::Lstm(m) = &design.model else {
        return simulate_cnn_multi(design, opts, fault);
    };
    let sys = System::new(design).map_err(SimError::Gen)?;
    let channels = multi::channel_names(&sys);
    check_fault_channel(fault, &channels)?;
    let GoldenCase {
        input,
        expected,
        saturations_golden,
        saturation_warnings,
        seqs,
        steps,
        codes,
    } = golden_case(design, opts)?;
    let SimSystem {
        models,
        wiring,
        io,
        budget,
        rtl_dir,
        build_seconds,
    } = lstm_system(design, &sys, opts, &codes, steps, seqs)?;
    let t1 = Instant::now();
    let run = run_lockstep(
        models,
        wiring,
        &io,
        fault,
        budget,
        design.plan.plan_hash,
        start_skew,
    );
    let sim_seconds = t1.elapsed().as_secs_f64();
    let h = m.hidden_size;
    let mismatch = first_mismatch(&expected, &run.codes, m.layers.len() - 1, steps, h);
    // The oracle: every frame a framer sent decodes, and (when nothing stopped the run) each
    // device sent exactly the frames the schedule says.
    let frames_expected = partita_codegen::analysis::traffic::frames_per_device(&sys, steps, seqs);
    let Verdict {
        frames_sent,
        sent_frame_errors,
        delivered_frame_errors,
        error,
    } = verdict(&run, &frames_expected, "schedule");
    let matched = error.is_none() && mismatch.is_none() && expected.len() == run.codes.len();
    let timesteps = seqs * steps;
    let bytes = sys.schedule.width as u64 / 8;
    let devices: Vec<DeviceReport> = run
        .devices
        .iter()
        .enumerate()
        .map(|(d, s)| DeviceReport {
            device: d,
            cycles: s.cycles as u64,
            mac_cycles: s.mac_cycles as u64,
            utilization: s.mac_cycles as f64 / (s.cycles as f64).max(1.0),
            link_wait_cycles: s.wait_cycles as u64,
            tx_bytes: s.tx_beats as u64 * bytes,
            forwarded_bytes: s.fwd_beats as u64 * bytes,
            stats: s.clone(),
        })
        .collect();
    let max_cycles = devices.iter().map(|d| d.cycles).max().unwrap_or(0);
    let link_bytes: u64 = devices.iter().map(|d| d.tx_bytes).sum();
    let output = output_array(design, &input, h, &run.codes);
    Ok(MultiReport {
        matched,
        mismatch,
        words_expected: expected.len(),
        words_got: run.codes.len(),
        sequences: seqs,
        timesteps,
        cycles_per_timestep: max_cycles as f64 / timesteps as f64,
        link_bytes_per_timestep: link_bytes as f64 / timesteps as f64,
        topology: sys.schedule.wiring(),
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
        saturations_golden,
        saturation_warnings,
        error,
        channels: channels.into_iter().zip(run.channel_beats).collect(),
        frames_sent,
        frames_expected,
        sent_frame_errors,
        delivered_frame_errors,
        relay: run.relay.clone(),
        rtl_dir,
        output,
        cnn: None,
    })
}

/// A multi-device system ready to run in lockstep: one model per device (built, or from the
/// cache), its wiring, what the host feeds and collects, and the shared clock's budget.
pub struct SimSystem {
    pub models: Vec<Model>,
    pub wiring: Wiring,
    pub io: SystemIo,
    pub budget: u64,
    pub rtl_dir: PathBuf,
    pub build_seconds: f64,
}

/// The Verilator build of every device of an LSTM system. Every device's model is its node
/// design's `node` module (without the device's own top, which only ties the identity):
/// devices of one design share one build, and each instance gets its device's identity and
/// memory images. Distinct designs build side by side.
fn lstm_jobs(
    design: &Design,
    sys: &System,
    opts: &SimOptions,
    rtl_dir: &std::path::Path,
) -> Result<Vec<(PathBuf, BuildOptions)>, SimError> {
    let node_modules = emit::node::node_modules(design).map_err(SimError::Gen)?;
    Ok(sys
        .schedule
        .nodes
        .iter()
        .map(|n| {
            (
                rtl_dir.join(format!("dev{}", n.index)),
                BuildOptions {
                    trace: opts.wave.is_some(),
                    cache: opts.cache.clone(),
                    ports: n.ports.len(),
                    top: Some(node_modules[n.index].clone()),
                    jobs: 0,
                    skip: Some(format!("{}.v", emit::top_module(design, n.index))),
                },
            )
        })
        .collect())
}

/// Load a built model; `identity` sets a node model's device index; with `--wave`, one FST
/// per device (run.fst -> run.dev0.fst, run.dev1.fst, ...).
fn load_model(
    built: cosim::Built,
    identity: Option<usize>,
    opts: &SimOptions,
) -> Result<Model, SimError> {
    let mut model = Model::load(&built)?;
    let d = identity.unwrap_or(0);
    if identity.is_some() {
        model.set_identity(d);
    }
    if let Some(w) = &opts.wave {
        model.trace(&w.with_extension(format!("dev{d}.fst")))?;
    }
    Ok(model)
}

/// What the host feeds an LSTM system and collects: x to every device that needs it, each
/// device's slice of h per step.
pub fn lstm_io(
    design: &Design,
    sys: &System,
    codes: &[i64],
    steps: usize,
    seqs: usize,
) -> SystemIo {
    let layout = partita_codegen::arch::lstm::stream_layout(design);
    let input = match &design.model {
        ModelDesign::Lstm(m) => m.input_size,
        ModelDesign::Cnn(_) => 1,
    };
    let xb = layout.pack(codes, input);
    SystemIo {
        inputs: sys
            .schedule
            .nodes
            .iter()
            .map(|n| if n.needs_x { xb.clone() } else { Vec::new() })
            .collect(),
        outputs: sys.schedule.outputs.iter().map(|o| (o.0, o.2)).collect(),
        repeats: steps * seqs,
        out_layout: layout,
        seq_len: steps as u32,
        seq_count: seqs as u32,
    }
}

/// Device `index` of a multi-device plan alone, for `partita serve`: its model, with its one
/// link port going to the host (the plan's links must be host-relayed).
pub fn served_device(
    design: &Design,
    index: usize,
    opts: &SimOptions,
) -> Result<Lockstep, SimError> {
    let (jobs, _, wiring, lstm) = device_jobs(design, opts)?;
    if !wiring.host {
        return Err(SimError::Gen(
            "a served device of a multi-device plan reaches the others through the host: the plan needs mode = \"host\" in [target.link] (direct links cannot cross machines)".into(),
        ));
    }
    let Some(job) = jobs.into_iter().nth(index) else {
        return Err(SimError::Gen(format!("the plan has no device {index}")));
    };
    let built = cosim::build_all(&[job]).into_iter().next();
    let Some(built) = built else {
        return Err(SimError::Gen("the build produced no model".into()));
    };
    let model = load_model(built?, lstm.then_some(index), opts)?;
    let one = Wiring {
        ports: vec![1],
        links: Vec::new(),
        ..wiring
    };
    Ok(Lockstep::new(vec![model], one, None))
}

/// A Verilator build: the RTL directory and how to build it.
type BuildJob = (PathBuf, BuildOptions);

/// Every device's build job of a multi-device plan (generating its RTL unless `opts.rtl`), the
/// RTL directory, the system's wiring, and whether it is an LSTM.
fn device_jobs(
    design: &Design,
    opts: &SimOptions,
) -> Result<(Vec<BuildJob>, PathBuf, Wiring, bool), SimError> {
    let rtl_dir = system_rtl_dir(design, opts)?;
    Ok(match &design.model {
        ModelDesign::Lstm(_) => {
            let sys = System::new(design).map_err(SimError::Gen)?;
            let jobs = lstm_jobs(design, &sys, opts, &rtl_dir)?;
            (jobs, rtl_dir, Wiring::of(&sys), true)
        }
        ModelDesign::Cnn(_) => {
            let sys =
                partita_codegen::arch::cnn_system::CnnSystem::new(design).map_err(SimError::Gen)?;
            let jobs = cnn_jobs(design, &sys, opts, &rtl_dir);
            (jobs, rtl_dir, Wiring::of_cnn(&sys), false)
        }
    })
}

/// How the devices of a multi-device plan meet the host: the streams' packing, each device's
/// output values per step or frame (0: none), whether the links are host-relayed, and the
/// link frames' format.
pub struct SystemShape {
    pub in_layout: partita_hdl::stream::Layout,
    pub out_layout: partita_hdl::stream::Layout,
    pub out_values: Vec<usize>,
    pub host: bool,
    pub frame: partita_hdl::frame::Format,
}

pub fn system_shape(design: &Design) -> Result<SystemShape, SimError> {
    use partita_codegen::plan::LinkMode;
    let per_device = |n: usize, outputs: &[(usize, usize)]| -> Vec<usize> {
        (0..n)
            .map(|d| outputs.iter().filter(|o| o.0 == d).map(|o| o.1).sum())
            .collect()
    };
    Ok(match &design.model {
        ModelDesign::Lstm(_) => {
            let sys = System::new(design).map_err(SimError::Gen)?;
            let layout = partita_codegen::arch::lstm::stream_layout(design);
            let outputs: Vec<(usize, usize)> =
                sys.schedule.outputs.iter().map(|o| (o.0, o.2)).collect();
            SystemShape {
                in_layout: layout,
                out_layout: layout,
                out_values: per_device(sys.schedule.nodes.len(), &outputs),
                host: sys.schedule.mode == LinkMode::Host,
                frame: sys.frame,
            }
        }
        ModelDesign::Cnn(_) => {
            let sys =
                partita_codegen::arch::cnn_system::CnnSystem::new(design).map_err(SimError::Gen)?;
            SystemShape {
                in_layout: sys.whole.in_layout,
                out_layout: sys.whole.out_layout,
                out_values: per_device(
                    sys.devices.len(),
                    &[(sys.out_device, sys.whole.output.values())],
                ),
                host: sys.mode == LinkMode::Host,
                frame: sys.frame,
            }
        }
    })
}

/// Every device of a host-relayed plan as a simulated PCIe card (`driver::xdma::cosim`): each
/// device's model on a thread and clock of its own, behind the XDMA ports, its link on the
/// second channel. The system driver drives them as it would cards in a host.
pub fn xdma_cards(
    design: &Design,
    opts: &SimOptions,
    timeout: std::time::Duration,
) -> Result<Vec<XdmaCard>, SimError> {
    xdma_cards_with(design, opts, timeout, None)
}

/// A simulated card behind the PCIe backend.
pub type XdmaCard = crate::driver::xdma::XdmaDevice<crate::driver::xdma::cosim::CardRegs>;

/// [`xdma_cards`], with card `hang.0` hanging after it has sent `hang.1` output packets: it
/// answers nothing from then on, as a hung card does (a failure injected by tests).
pub fn xdma_cards_with(
    design: &Design,
    opts: &SimOptions,
    timeout: std::time::Duration,
    hang: Option<(usize, usize)>,
) -> Result<Vec<XdmaCard>, SimError> {
    use crate::driver::xdma::cosim::{card_with, MakeCard};
    use crate::driver::Device;
    let shape = system_shape(design)?;
    if !shape.host {
        return Err(SimError::Gen(
            "cards in a host reach each other through it over their second DMA channel: the plan needs mode = \"host\" in [target.link]".into(),
        ));
    }
    // Every model built at once (on every core); each card's thread then loads its own.
    let (jobs, rtl_dir, _, _) = device_jobs(design, opts)?;
    for b in cosim::build_all(&jobs) {
        b?;
    }
    let opts = SimOptions {
        rtl: Some(rtl_dir),
        ..opts.clone()
    };
    let link_bits = shape.frame.link_width;
    let mut cards = Vec::new();
    for (index, values) in shape.out_values.iter().enumerate() {
        let (d, o) = (design.clone(), opts.clone());
        let make: MakeCard = Box::new(move || {
            let sys = served_device(&d, index, &o).map_err(|e| e.to_string())?;
            let (_, mut devs) = lockstep::devices(sys, u64::MAX);
            let mut dev = devs.pop().ok_or("no device was built")?;
            dev.reset().map_err(|e| e.to_string())?;
            Ok(Box::new(dev) as Box<dyn Device>)
        });
        let hang_after = hang.filter(|h| h.0 == index).map(|h| h.1);
        let c = card_with(make, shape.in_layout, link_bits, hang_after).map_err(SimError::Gen)?;
        cards.push(c.device(shape.out_layout, *values, link_bits, timeout));
    }
    Ok(cards)
}

/// Generate (unless `opts.rtl`), build and load every device of an LSTM system, and the
/// streams for `steps` x `seqs` timesteps of input `codes` (`(sequence, timestep, feature)`).
pub fn lstm_system(
    design: &Design,
    sys: &System,
    opts: &SimOptions,
    codes: &[i64],
    steps: usize,
    seqs: usize,
) -> Result<SimSystem, SimError> {
    let budget = super::cycle_budget(design, seqs, steps, 0)?;
    let rtl_dir = system_rtl_dir(design, opts)?;
    let t0 = Instant::now();
    let jobs = lstm_jobs(design, sys, opts, &rtl_dir)?;
    let mut models = Vec::new();
    for (n, built) in sys.schedule.nodes.iter().zip(cosim::build_all(&jobs)) {
        models.push(load_model(built?, Some(n.index), opts)?);
    }
    let build_seconds = t0.elapsed().as_secs_f64();
    let io = lstm_io(design, sys, codes, steps, seqs);
    Ok(SimSystem {
        models,
        wiring: Wiring::of(sys),
        io,
        budget,
        rtl_dir,
        build_seconds,
    })
}

/// Build every device of a multi-device CNN, run them in lockstep over the modelled links and
/// compare every output word, and the count, with the single-device golden model. Each device
/// that reads the image gets its rows of every frame from the host (the host scatters them);
/// the output device's stream carries the network's output.
pub fn simulate_cnn_multi(
    design: &Design,
    opts: &SimOptions,
    fault: Option<partita_sim::multi::Fault>,
) -> Result<MultiReport, SimError> {
    use partita_codegen::arch::cnn_system::{CnnSystem, Source};
    let sys = CnnSystem::new(design).map_err(SimError::Gen)?;
    let channels = Wiring::of_cnn(&sys).channel_names();
    check_fault_channel(fault, &channels)?;
    let whole = &sys.whole;
    let super::cnn::Case {
        input,
        golden,
        expected,
        frames,
        codes,
    } = super::cnn::case(design, opts.input.as_deref())?;
    let SimSystem {
        models,
        wiring,
        io: streams,
        budget,
        rtl_dir,
        build_seconds,
    } = cnn_system(design, &sys, opts, &codes, frames)?;
    let ov = whole.output.values();
    let t1 = Instant::now();
    let hash = design.plan.plan_hash;
    let mut run = run_lockstep(models, wiring.clone(), &streams, fault, budget, hash, 0);
    let models = std::mem::take(&mut run.models);
    // One frame alone gives the latency, and with the run above the steady state.
    let single = (frames >= 2 && run.error.is_none()).then(|| {
        let one = SystemIo {
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
        run_lockstep(models, wiring, &one, fault, budget, hash, 0)
    });
    let sim_seconds = t1.elapsed().as_secs_f64();
    let got = super::cnn::to_chw(whole, &run.codes);
    let mismatch = first_mismatch(&expected, &got, whole.stages.len() - 1, 1, ov);
    // Every frame a device sends is an h frame: each of its runs per frame (its output, and on
    // a tiles device its halo rows up and down) split at the frame format's most values.
    let fmt = sys.frame;
    let frames_expected: Vec<[usize; 3]> = sys
        .devices
        .iter()
        .map(|d| {
            [
                d.runs()
                    .iter()
                    .map(|r| r.frames(&fmt) as usize)
                    .sum::<usize>()
                    * frames,
                0,
                0,
            ]
        })
        .collect();
    let Verdict {
        frames_sent,
        sent_frame_errors,
        delivered_frame_errors,
        error,
    } = verdict(&run, &frames_expected, "system");
    let matched = error.is_none() && mismatch.is_none() && expected.len() == run.codes.len();
    let bytes = fmt.link_width as u64 / 8;
    let devices: Vec<DeviceReport> = run
        .devices
        .iter()
        .enumerate()
        .map(|(d, s)| DeviceReport {
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
    let output = super::cnn::output_array(design, whole, &input, &run.codes);
    let latency = single
        .as_ref()
        .map(|r| r.devices.iter().map(|d| d.cycles as u64).max().unwrap_or(0));
    let cpf = match latency {
        Some(l) => (max_cycles as f64 - l as f64) / (frames as f64 - 1.0),
        None => max_cycles as f64 / frames.max(1) as f64,
    };
    let cnn = cnn_system_stats(&sys, cpf, latency, link_bytes as f64 / frames.max(1) as f64);
    Ok(MultiReport {
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
        relay: run.relay.clone(),
        rtl_dir,
        output,
        cnn: Some(cnn),
    })
}

/// The Verilator build of every device of a CNN system (each its own top).
fn cnn_jobs(
    design: &Design,
    sys: &partita_codegen::arch::cnn_system::CnnSystem,
    opts: &SimOptions,
    rtl_dir: &std::path::Path,
) -> Vec<(PathBuf, BuildOptions)> {
    sys.devices
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
        .collect()
}

/// What the host feeds a CNN system and collects: it scatters each frame's rows (their
/// columns and channels) to the devices that read the image, and reads the output device.
pub fn cnn_io(
    sys: &partita_codegen::arch::cnn_system::CnnSystem,
    codes: &[i64],
    frames: usize,
) -> SystemIo {
    use partita_codegen::arch::cnn_system::Source;
    let whole = &sys.whole;
    let iv = whole.input.values();
    let row = whole.input.w * whole.input.c;
    let inputs: Vec<Vec<partita_hdl::stream::Beat>> = sys
        .devices
        .iter()
        .map(|d| match d.source {
            Source::Host { lo, hi } => {
                // Rows lo..=hi, their columns x0..x1, and of every pixel the device's input
                // channels.
                let (c0, c1) = d.host_channels;
                let (x0, x1) = d.host_cols;
                let c = whole.input.c;
                let mut v = Vec::with_capacity(frames * (hi - lo + 1) * row);
                for f in codes.chunks(iv) {
                    for r in f[lo * row..(hi + 1) * row].chunks(row) {
                        for px in r[x0 * c..x1 * c].chunks(c) {
                            v.extend_from_slice(&px[c0..c1]);
                        }
                    }
                }
                whole.in_layout.pack(&v, d.arch.input.values())
            }
            Source::Link { .. } => Vec::new(),
        })
        .collect();
    SystemIo {
        inputs,
        outputs: vec![(sys.out_device, whole.output.values())],
        repeats: frames,
        out_layout: whole.out_layout,
        seq_len: 1,
        seq_count: frames as u32,
    }
}

/// Generate (unless `opts.rtl`), build and load every device of a CNN system, and the streams
/// for `frames` frames of input `codes` (each frame in the stream's (y, x, c) order): the
/// host scatters each frame's rows to the devices that read the image.
pub fn cnn_system(
    design: &Design,
    sys: &partita_codegen::arch::cnn_system::CnnSystem,
    opts: &SimOptions,
    codes: &[i64],
    frames: usize,
) -> Result<SimSystem, SimError> {
    let whole = &sys.whole;
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
    let rtl_dir = system_rtl_dir(design, opts)?;
    let t0 = Instant::now();
    let jobs = cnn_jobs(design, sys, opts, &rtl_dir);
    let mut models = Vec::new();
    for built in cosim::build_all(&jobs) {
        models.push(load_model(built?, None, opts)?);
    }
    let build_seconds = t0.elapsed().as_secs_f64();
    let io = cnn_io(sys, codes, frames);
    Ok(SimSystem {
        models,
        wiring: Wiring::of_cnn(sys),
        io,
        budget,
        rtl_dir,
        build_seconds,
    })
}

/// A lockstep run through the system driver, with what the links carried.
pub struct LockRun {
    pub codes: Vec<i64>,
    pub devices: Vec<DeviceStats>,
    pub error: Option<String>,
    pub sim_cycles: u64,
    pub channel_beats: Vec<u64>,
    pub links: LinkReport,
    pub relay: RelayStats,
    /// The models, for another run on the same builds.
    pub models: Vec<Model>,
}

/// Run `models` wired as `wiring` says, each device behind the device trait, through the
/// system driver (which relays host links), with `fault` injected. The shared clock may run
/// `budget` cycles.
pub fn run_lockstep(
    models: Vec<Model>,
    wiring: Wiring,
    io: &SystemIo,
    fault: Option<Fault>,
    budget: u64,
    plan_hash: u64,
    start_skew: usize,
) -> LockRun {
    let frame = wiring.frame;
    let (sys, mut devs) = lockstep::devices(Lockstep::new(models, wiring, fault), budget);
    let mut refs: Vec<&mut dyn crate::driver::Device> = devs
        .iter_mut()
        .map(|d| d as &mut dyn crate::driver::Device)
        .collect();
    let SystemRun {
        codes,
        devices,
        error,
        relay,
        ..
    } = run_system(
        &mut refs,
        io,
        &SystemOptions {
            plan_hash,
            link_timeout: 0,
            start_skew,
            frame,
            // The cycle budget bounds a simulated run; this is the wall-clock backstop.
            deadline: std::time::Duration::from_secs(3600),
            // STATUS every 1024 cycles until the outputs are in.
            poll_rounds: (1024 / lockstep::ROUND_CYCLES) as usize,
        },
    );
    drop(refs);
    drop(devs);
    let mut sys = sys.borrow_mut();
    let links = sys.links();
    LockRun {
        codes,
        devices,
        error,
        sim_cycles: sys.now(),
        channel_beats: links.beats.clone(),
        links,
        relay,
        models: sys.take_models(),
    }
}

/// What the link oracle says of a run: the frames each device's framer sent (h, psum,
/// barrier) and those that do not decode, the decode errors of the frames delivered, and the
/// run's error: the simulator's own, else a sent frame the Rust decoder rejects, else frame
/// counts other than the `what` (schedule or system) says.
struct Verdict {
    frames_sent: Vec<[usize; 3]>,
    sent_frame_errors: Vec<String>,
    delivered_frame_errors: Vec<String>,
    error: Option<String>,
}

fn verdict(run: &LockRun, frames_expected: &[[usize; 3]], what: &str) -> Verdict {
    let (frames_sent, sent_frame_errors) = run.links.frames_sent(frames_expected.len());
    let delivered_frame_errors: Vec<String> = run
        .links
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
                "frames sent per device (h, psum, barrier) {frames_sent:?}, the {what} says {frames_expected:?}"
            ));
        }
    }
    Verdict {
        frames_sent,
        sent_frame_errors,
        delivered_frame_errors,
        error,
    }
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
    // `tiles`: the layers before which some device sends halo rows or columns.
    let mut halo_exchanged: Vec<usize> = sys
        .devices
        .iter()
        .flat_map(|d| {
            d.exchanges
                .iter()
                .filter(|x| x.has_up() || x.has_down())
                .map(|x| d.arch.stages[x.stage].layer)
        })
        .collect();
    halo_exchanged.sort_unstable();
    halo_exchanged.dedup();
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
        "grid": sys.fused.as_ref().map(|f| [f.grid.0, f.grid.1]),
        "layer_recompute": sys.fused.as_ref().map(|f| f
            .stage_recompute
            .iter()
            .zip(&sys.whole.stages[f.first_stage..])
            .map(|(r, s)| serde_json::json!({"layer": s.layer, "recompute": r}))
            .collect::<Vec<_>>()),
        "after_stack": sys.fused.as_ref().map(|f| f.after.clone()),
        // The split stacks before it (a stack after another stack): first layer, layers and
        // first device of each.
        "stacks_before": sys.before.iter().map(|f| serde_json::json!({
            "from": f.from, "layers": f.layers, "head": f.head,
        })).collect::<Vec<_>>(),
        // `filters`: the layers whose input every device all-gathers.
        "all_gathered": sys
            .devices
            .iter()
            .find(|d| !d.merges.is_empty())
            .map(|d| d.merges.iter().map(|m| d.arch.stages[m.stage].layer).collect::<Vec<_>>())
            .unwrap_or_default(),
        "halo_exchanged": halo_exchanged,
        "devices": devs,
    });
    let mut text = format!(
        "CNN {}: {cpf:.1} cycles per frame in steady state (predicted {pred}), {:.3} of one device's {one}; {link_bytes:.0} link bytes per frame (predicted {})",
        sys.strategy.name(),
        cpf / one.max(1) as f64,
        sys.link_bytes_per_frame()
    );
    if let Some(t) = sys.stack_summary() {
        text += &format!("; {t}");
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
