//! `partita bench`: the figures the README reports, measured rather than timed inside tests.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use partita_codegen::design::{self, Design, ModelDesign};
use partita_sim::{Input, Mode};

use super::{io_failure, Failure};
use crate::cosim::{self as simulate, SimError, SimOptions};

#[derive(clap::Args)]
pub struct Args {
    plans: Vec<PathBuf>,
    /// Timesteps per sequence of the benchmark input (2 sequences).
    #[arg(long, default_value_t = 32)]
    steps: usize,
}

pub(crate) fn run_verb(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
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

pub const HEADER: &str = "plan                                  cycles/step  x MAC bound  efficiency  cosim cycles/s  build cold s  build cached s  golden steps/s (fixed)  golden steps/s (float)";

/// One plan's figures.
pub struct Row {
    pub cycles_per_step: f64,
    pub efficiency: f64,
    pub cosim_cycles_per_s: f64,
    pub build_cold_s: f64,
    pub build_cached_s: f64,
    pub golden_fixed_steps_per_s: f64,
    pub golden_float_steps_per_s: f64,
}

impl Row {
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:<37} {:>11.1}  {:>11.3}  {:>10.3}  {:>14.0}  {:>12.2}  {:>14.2}  {:>22.0}  {:>22.0}",
            self.cycles_per_step,
            1.0 / self.efficiency.max(1e-12),
            self.efficiency,
            self.cosim_cycles_per_s,
            self.build_cold_s,
            self.build_cached_s,
            self.golden_fixed_steps_per_s,
            self.golden_float_steps_per_s
        )
    }
}

/// Measure one single-device LSTM plan on 2 sequences of `steps` timesteps.
pub fn measure(design: &Design, steps: usize) -> Result<Row, SimError> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Err(SimError::Gen("bench measures LSTM plans".into()));
    };
    let mut rng = partita_codegen::weights::SplitMix64::new(3);
    let data = ArrayD::from_shape_fn(IxDyn(&[2, steps, m.input_size]), |_| rng.normal());
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
    let mut opts = SimOptions {
        input: Some(npy),
        cache: Some(cold_cache),
        ..Default::default()
    };
    let cold = simulate::simulate(design, &opts)?;
    let cached = simulate::simulate(design, &opts)?;
    opts.cache = None;
    let _ = std::fs::remove_dir_all(&tmp);
    let time = |mode| {
        let t0 = Instant::now();
        let _ = partita_sim::run(design, &input, mode);
        (2 * steps) as f64 / t0.elapsed().as_secs_f64().max(1e-9)
    };
    Ok(Row {
        cycles_per_step: cached.cycles_per_timestep,
        efficiency: cached.efficiency,
        cosim_cycles_per_s: cached.sim_cycles_per_second,
        build_cold_s: cold.build_seconds,
        build_cached_s: cached.build_seconds,
        golden_fixed_steps_per_s: time(Mode::Fixed),
        golden_float_steps_per_s: time(Mode::Float),
    })
}
