//! `partita bench`: the figures the README reports, measured rather than timed inside tests.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use partita_codegen::design::{self, Design, ModelDesign};
use partita_sim::{Input, Mode};

use super::{io_failure, Failure};
use crate::cosim::multi::simulate_multi;
use crate::cosim::{self as simulate, SimError, SimOptions};

#[derive(clap::Args)]
pub struct Args {
    plans: Vec<PathBuf>,
    /// Timesteps per sequence of the benchmark input (2 sequences).
    #[arg(long, default_value_t = 32)]
    steps: usize,
    /// Measure the host driver instead: register round trip and stream throughput on the
    /// sim, XDMA-over-cosim and remote (loopback gRPC) backends of a single-device LSTM plan
    /// (PLANS: one; default examples/lstm_1dev_ew.toml), and the host relay's cost per
    /// frame on --relay-plan.
    #[arg(long)]
    driver: bool,
    /// A multi-device plan with host-relayed links, for --driver.
    #[arg(long, default_value = "examples/lstm_3dev_relay.toml")]
    relay_plan: PathBuf,
}

pub(crate) fn run_verb(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    if a.driver {
        let plan = a
            .plans
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("examples/lstm_1dev_ew.toml"));
        return super::bench_driver::run(&plan, &a.relay_plan, a.steps, out);
    }
    let plans = if a.plans.is_empty() {
        vec![
            PathBuf::from("examples/lstm_1dev_dense.toml"),
            PathBuf::from("examples/lstm_1dev_bbs.toml"),
        ]
    } else {
        a.plans
    };
    writeln!(out, "{HEADER}").map_err(io_failure)?;
    for p in plans {
        let d = design::from_path(&p)?;
        let row = measure(&d, a.steps)?;
        writeln!(out, "{}", row.line(&p.display().to_string())).map_err(io_failure)?;
    }
    Ok(())
}

pub const HEADER: &str = "plan                                  devices  cycles/step  x MAC bound  efficiency  cosim cycles/s  sim s/16 steps  build cold s  build cached s  golden steps/s (fixed)  golden steps/s (float)";

/// One plan's figures.
pub struct Row {
    pub devices: usize,
    pub cycles_per_step: f64,
    pub efficiency: f64,
    pub cosim_cycles_per_s: f64,
    /// Wall time of the simulation, scaled to 16 timesteps.
    pub sim_s_per_16_steps: f64,
    pub build_cold_s: f64,
    pub build_cached_s: f64,
    pub golden_fixed_steps_per_s: f64,
    pub golden_float_steps_per_s: f64,
}

impl Row {
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<37} {:>7}  {:>11.1}  {:>11.3}  {:>10.3}  {:>14.0}  {:>14.2}  {:>12.2}  {:>14.2}  {:>22.0}  {:>22.0}",
            self.devices,
            self.cycles_per_step,
            1.0 / self.efficiency.max(1e-12),
            self.efficiency,
            self.cosim_cycles_per_s,
            self.sim_s_per_16_steps,
            self.build_cold_s,
            self.build_cached_s,
            self.golden_fixed_steps_per_s,
            self.golden_float_steps_per_s
        )
    }
}

/// Measure one plan on 2 sequences of `steps` timesteps (a one-device CNN: on 2 x `steps`
/// frames, a "step" being a frame; efficiency as `sim` reports it). The MAC bound is the stored
/// weight entries of a step over every device's multipliers; a multi-device plan is
/// cosimulated in lockstep over its modelled links, and its build covers every device.
pub fn measure(design: &Design, steps: usize) -> Result<Row, SimError> {
    // A CNN's "step" is a frame: 2 x `steps` frames, one device.
    let shape = match &design.model {
        ModelDesign::Lstm(m) => vec![2, steps, m.input_size],
        ModelDesign::Cnn(c) => {
            let s = c.input_shape;
            vec![2 * steps, s[0], s[1], s[2]]
        }
    };
    let mut rng = partita_codegen::weights::SplitMix64::new(3);
    let data = ArrayD::from_shape_fn(IxDyn(&shape), |_| rng.normal());
    let input = Input {
        data,
        batched: true,
    };
    let tmp = std::env::temp_dir().join(format!("partita-bench-{}", std::process::id()));
    let npy = tmp.join("x.npy");
    std::fs::create_dir_all(&tmp).map_err(|e| SimError::Io {
        path: tmp.display().to_string(),
        why: e.to_string(),
    })?;
    partita_sim::write_output(&npy, &input.data)?;
    // Cold: an empty model cache (ccache, if present, still holds compiled objects).
    let cold_cache = tmp.join("cache");
    let opts = SimOptions {
        input: Some(npy),
        cache: Some(cold_cache),
        ..Default::default()
    };
    let time = |mode| {
        let t0 = Instant::now();
        let _ = partita_sim::run(design, &input, mode);
        (2 * steps) as f64 / t0.elapsed().as_secs_f64().max(1e-9)
    };
    let per_16 = |sim_seconds: f64| sim_seconds * 16.0 / (2 * steps) as f64;
    let row = if let (ModelDesign::Lstm(m), true) = (&design.model, design.plan.devices > 1) {
        let cold = simulate_multi(design, &opts, None);
        let cached = simulate_multi(design, &opts, None);
        let _ = std::fs::remove_dir_all(&tmp);
        let (cold, cached) = (cold?, cached?);
        for r in [&cold, &cached] {
            if !r.matched {
                return Err(SimError::Gen(format!(
                    "the multi-device cosim does not match the golden model: {}",
                    r.summary().lines().next().unwrap_or("")
                )));
            }
        }
        Row {
            devices: design.plan.devices,
            cycles_per_step: cached.cycles_per_timestep,
            efficiency: simulate::mac_bound(design, m) / cached.cycles_per_timestep,
            cosim_cycles_per_s: cached.sim_cycles as f64 / cached.sim_seconds.max(1e-9),
            sim_s_per_16_steps: per_16(cached.sim_seconds),
            build_cold_s: cold.build_seconds,
            build_cached_s: cached.build_seconds,
            golden_fixed_steps_per_s: 0.0,
            golden_float_steps_per_s: 0.0,
        }
    } else {
        let cold = simulate::simulate(design, &opts);
        let cached = simulate::simulate(design, &opts);
        let _ = std::fs::remove_dir_all(&tmp);
        let (cold, cached) = (cold?, cached?);
        Row {
            devices: 1,
            cycles_per_step: cached.cycles_per_timestep,
            efficiency: cached.efficiency,
            cosim_cycles_per_s: cached.sim_cycles_per_second,
            sim_s_per_16_steps: per_16(cached.sim_seconds),
            build_cold_s: cold.build_seconds,
            build_cached_s: cached.build_seconds,
            golden_fixed_steps_per_s: 0.0,
            golden_float_steps_per_s: 0.0,
        }
    };
    Ok(Row {
        golden_fixed_steps_per_s: time(Mode::Fixed),
        golden_float_steps_per_s: time(Mode::Float),
        ..row
    })
}
