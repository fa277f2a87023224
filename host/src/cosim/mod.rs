//! Cosimulation runs: generate a design's RTL (or take a generated directory), build it in
//! Verilator, drive it through the device trait ([`crate::driver`]) and compare every output
//! word, and the word count, with the bit-exact golden model. [`multi`] does the same for
//! multi-device plans, all devices in lockstep over modelled links.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{ArrayD, Axis, IxDyn};
use partita_codegen::design::{Design, ModelDesign};
use partita_codegen::emit;
use partita_sim::cosim::{self, BuildOptions, Model};
use partita_sim::{Input, Mode};

use crate::driver::{run_lstm, Backpressure, SimDevice};

pub mod cnn;
pub mod multi;

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    pub input: Option<PathBuf>,
    pub rtl: Option<PathBuf>,
    pub wave: Option<PathBuf>,
    pub backpressure: u32,
    /// Show a spinner while Verilator builds.
    pub progress: bool,
    /// Model cache directory (default: cosim::cache_root()).
    pub cache: Option<PathBuf>,
}

/// The first differing word.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub layer: usize,
    pub batch: usize,
    pub timestep: usize,
    pub index: usize,
    pub expected: i64,
    pub got: i64,
}

/// Everything a cosimulation measured.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub matched: bool,
    pub mismatch: Option<Mismatch>,
    pub words_expected: usize,
    pub words_got: usize,
    pub sequences: usize,
    pub timesteps: usize,
    pub cycles_total: u64,
    pub cycles_per_timestep: f64,
    pub lower_bound_cycles_per_timestep: f64,
    pub efficiency: f64,
    pub sim_cycles: u64,
    pub sim_seconds: f64,
    pub sim_cycles_per_second: f64,
    pub build_seconds: f64,
    pub build_cached: bool,
    pub saturations_hw: u32,
    pub saturations_golden: u64,
    /// The golden model's saturations by layer and quantity, each with a format that would
    /// hold them.
    pub saturation_warnings: Vec<String>,
    pub rtl_dir: PathBuf,
    /// Device output as values, in the input's form.
    pub output: ArrayD<f64>,
    /// CNN runs: steady-state cycles per frame, frames per second, efficiency and each
    /// stage's cycles and lane utilization (JSON keys merged into `--json`).
    pub cnn: Option<cnn::CnnStats>,
}

impl SimReport {
    pub fn json(&self) -> String {
        let mm = self.mismatch.as_ref().map(|m| {
            serde_json::json!({"layer": m.layer, "batch": m.batch, "timestep": m.timestep, "index": m.index, "expected": m.expected, "got": m.got})
        });
        let mut v = serde_json::json!({
            "match": self.matched,
            "mismatch": mm,
            "words_expected": self.words_expected,
            "words_got": self.words_got,
            "sequences": self.sequences,
            "timesteps": self.timesteps,
            "cycles_total": self.cycles_total,
            "cycles_per_timestep": self.cycles_per_timestep,
            "lower_bound_cycles_per_timestep": self.lower_bound_cycles_per_timestep,
            "efficiency": self.efficiency,
            "sim_cycles": self.sim_cycles,
            "sim_seconds": self.sim_seconds,
            "sim_cycles_per_second": self.sim_cycles_per_second,
            "build_seconds": self.build_seconds,
            "build_cached": self.build_cached,
            "saturations_hw": self.saturations_hw,
            "saturations_golden": self.saturations_golden,
            "saturation_warnings": self.saturation_warnings,
            "rtl_dir": self.rtl_dir.display().to_string(),
        });
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(obj)) =
            (self.cnn.as_ref().map(cnn::CnnStats::json), &mut v)
        {
            for (k, x) in extra {
                obj.insert(k.clone(), x.clone());
            }
        }
        serde_json::to_string_pretty(&v).expect("json")
    }

    pub fn summary(&self) -> String {
        let verdict = match &self.mismatch {
            None if self.matched => format!(
                "match: all {} words equal the golden model",
                self.words_expected
            ),
            None => format!(
                "mismatch: got {} words, expected {}",
                self.words_got, self.words_expected
            ),
            Some(m) => format!(
                "mismatch at layer {}, batch {}, timestep {}, index {}: expected {}, got {}",
                m.layer, m.batch, m.timestep, m.index, m.expected, m.got
            ),
        };
        let cycles = match &self.cnn {
            Some(c) => c.text(self.cycles_total),
            None => format!(
                "cycles: {} total, {:.1} per timestep (lower bound {:.1}, efficiency {:.3})",
                self.cycles_total,
                self.cycles_per_timestep,
                self.lower_bound_cycles_per_timestep,
                self.efficiency
            ),
        };
        format!(
            "{verdict}\n{cycles}\n\
             simulation: {} cycles in {:.2} s ({:.0} cycles/s); build {:.2} s{}\n\
             saturations: hardware {}, golden {}\n{}",
            self.sim_cycles,
            self.sim_seconds,
            self.sim_cycles_per_second,
            self.build_seconds,
            if self.build_cached { " (cached)" } else { "" },
            self.saturations_hw,
            self.saturations_golden,
            warning_lines(&self.saturation_warnings)
        )
    }
}

/// `warning: ...` lines, one per saturation record.
pub fn warning_lines(w: &[String]) -> String {
    w.iter().map(|l| format!("warning: {l}\n")).collect()
}

/// Errors of a cosimulation run (exit 2: the inputs or the tools; mismatches are in the report).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SimError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cosim(#[from] cosim::CosimError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Device(#[from] crate::driver::DeviceError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Input(#[from] partita_sim::Error),
    #[error("{0}")]
    #[diagnostic(code(partita::gen))]
    Gen(String),
    #[error("cannot write `{path}`: {why}")]
    #[diagnostic(code(partita::io))]
    Io { path: String, why: String },
    /// A `--rtl` directory that does not hold this plan's generated design.
    #[error("{message}")]
    #[diagnostic(code(partita::rtl))]
    Rtl {
        message: String,
        #[help]
        help: String,
    },
}

/// Check a `--rtl` directory against what `partita gen` writes for `design`, before Verilator
/// sees it: `files.f` and every source it lists exist, and every `$readmemh` image the model
/// reads exists and holds the same number of words, each a hex word no wider than the
/// generated one. Verilog may be edited freely; the images' values may be too.
pub fn check_rtl_dir(design: &Design, dir: &Path) -> Result<(), SimError> {
    let regen = || {
        "regenerate it with `partita gen PLAN -o DIR`, or pass the plan the directory was generated from".to_string()
    };
    let rtl = |message: String, help: String| SimError::Rtl { message, help };
    let shown = dir.display();
    if !dir.is_dir() {
        return Err(rtl(
            format!("--rtl `{shown}` is not a directory"),
            "--rtl takes a directory written by `partita gen`".into(),
        ));
    }
    let files = emit::generate(design, Some(&tb_vectors(design))).map_err(SimError::Gen)?;
    for f in &files {
        let name = f.name.as_str();
        let base = Path::new(name)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_list = base == "files.f";
        let is_image = name.ends_with(".hex") && !base.starts_with("tb_");
        if !is_list && !is_image {
            continue;
        }
        let p = dir.join(name);
        if !p.exists() {
            return Err(rtl(
                format!("--rtl `{shown}`: `{name}` is missing"),
                format!("this plan's design has `{name}`; {}", regen()),
            ));
        }
        let limit = &partita_codegen::limits::RTL_FILE_BYTES;
        let text = partita_codegen::limits::read_file(&p, limit, "RTL file")
            .map_err(|e| rtl(format!("--rtl `{shown}`: {e}"), regen()))?;
        let Ok(text) = String::from_utf8(text) else {
            return Err(rtl(
                format!("--rtl `{shown}`: `{name}` is not text"),
                regen(),
            ));
        };
        if is_list {
            let sub = p.parent().unwrap_or(dir);
            for (i, l) in text.lines().enumerate() {
                let l = l.trim();
                if l.is_empty() || l.starts_with("//") {
                    continue;
                }
                let src = sub.join(l);
                let ok = std::fs::metadata(&src)
                    .map(|m| m.is_file() && m.len() <= limit.value())
                    .unwrap_or(false);
                if !ok {
                    return Err(rtl(
                        format!(
                            "--rtl `{shown}`: `{name}` line {} lists `{l}`, which is missing, not a regular file, or larger than {} bytes",
                            i + 1,
                            limit.value()
                        ),
                        regen(),
                    ));
                }
            }
            continue;
        }
        check_image(&text, &f.text).map_err(|(line, why)| {
            rtl(
                format!("--rtl `{shown}`: `{name}` line {line}: {why}"),
                format!(
                    "a $readmemh image holds one hex word per line (digits 0-9, a-f; `//` comments); {}",
                    regen()
                ),
            )
        })?;
    }
    Ok(())
}

/// Compare a `$readmemh` image with the generated one: same word count, each word hex digits,
/// no wider. Errors carry the 1-based line.
fn check_image(got: &str, want: &str) -> Result<(), (usize, String)> {
    let words = |t: &str| -> Vec<(usize, String)> {
        t.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("").trim().to_string()))
            .filter(|(_, w)| !w.is_empty())
            .collect()
    };
    let (g, w) = (words(got), words(want));
    for (k, (line, word)) in g.iter().enumerate() {
        let Some((_, ref_word)) = w.get(k) else {
            return Err((
                *line,
                format!("one word too many: this memory holds {} words", w.len()),
            ));
        };
        if let Some(c) = word.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err((
                *line,
                format!("`{word}` is not a hex word (`{c}` is not a hex digit)"),
            ));
        }
        if word.len() > ref_word.len() {
            return Err((
                *line,
                format!(
                    "`{word}` has {} hex digits; this memory's words have {}",
                    word.len(),
                    ref_word.len()
                ),
            ));
        }
    }
    if g.len() < w.len() {
        let last = got.lines().count();
        return Err((
            last.max(1),
            format!(
                "the file ends after {} words; this memory holds {}",
                g.len(),
                w.len()
            ),
        ));
    }
    Ok(())
}

/// Write the generated files for `design` into a content-addressed directory of the cache
/// (or `dir`), and return it.
pub fn generate_into(design: &Design, dir: Option<&Path>) -> Result<PathBuf, SimError> {
    let files = emit::generate(design, Some(&tb_vectors(design))).map_err(SimError::Gen)?;
    write_cached(&files, dir)
}

/// Write `files` into `dir`, or a content-addressed directory of the cache, and return it.
pub fn write_cached(files: &[emit::File], dir: Option<&Path>) -> Result<PathBuf, SimError> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for f in files {
                for b in f.name.bytes().chain(f.text.bytes()) {
                    h ^= b as u64;
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            cosim::cache_root().join("rtl").join(format!("{h:016x}"))
        }
    };
    let io = |p: &Path, e: std::io::Error| SimError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    for f in files {
        let p = dir.join(&f.name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if std::fs::read_to_string(&p).ok().as_deref() != Some(f.text.as_str()) {
            // Write then rename, so a concurrent reader never sees a half-written file.
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let base = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = p.with_file_name(format!(".{base}.{}-{n}", std::process::id()));
            std::fs::write(&tmp, &f.text).map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &p).map_err(|e| io(&p, e))?;
        }
    }
    Ok(dir)
}

/// Testbench vectors: one sequence of 3 unit-normal steps (seed 2) through the golden model.
pub fn tb_vectors(design: &Design) -> emit::Vectors {
    let ModelDesign::Lstm(m) = &design.model else {
        return cnn::tb_vectors(design);
    };
    let mut rng = partita_codegen::weights::SplitMix64::new(2);
    let x = ndarray::Array2::from_shape_fn((3, m.input_size), |_| rng.normal());
    let q = design.quant();
    let mut ev = partita_sim::Events::default();
    let xq = partita_sim::lstm::quantize_input(q, x.view(), &mut ev);
    let y = partita_sim::lstm::fixed(m, q, None, xq.view(), &mut ev);
    emit::Vectors {
        seq_len: 3,
        seq_count: 1,
        input: xq.iter().copied().collect(),
        expected: y.iter().copied().collect(),
    }
}

/// Default input when none is given: 2 sequences of 8 unit-normal steps (seed 1), or 4
/// unit-normal CNN frames.
pub fn default_input(design: &Design) -> Input {
    let shape = match &design.model {
        ModelDesign::Lstm(m) => vec![2, 8, m.input_size],
        ModelDesign::Cnn(m) => vec![4, m.input_shape[0], m.input_shape[1], m.input_shape[2]],
    };
    let mut rng = partita_codegen::weights::SplitMix64::new(1);
    let data = ArrayD::from_shape_fn(IxDyn(&shape), |_| rng.normal());
    Input {
        data,
        batched: true,
    }
}

/// Generate (unless `opts.rtl`), build or fetch from the cache, and open a simulated device.
pub fn open_sim_device(
    design: &Design,
    opts: &SimOptions,
) -> Result<(SimDevice, cosim::Built, PathBuf), SimError> {
    let rtl_dir = match &opts.rtl {
        Some(d) => {
            check_rtl_dir(design, d)?;
            d.clone()
        }
        None => generate_into(design, None)?,
    };
    let spinner = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("building the Verilator model (cached after the first time)");
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let built = cosim::build(
        &rtl_dir,
        &BuildOptions {
            trace: opts.wave.is_some(),
            cache: opts.cache.clone(),
            ports: 0,
            top: None,
            jobs: 0,
            skip: None,
        },
    );
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    let built = built?;
    let mut model = Model::load(&built)?;
    if let Some(w) = &opts.wave {
        model.trace(w)?;
    }
    let dev = SimDevice::new(
        model,
        Backpressure {
            percent: opts.backpressure,
            seed: 0x9e37_79b9,
        },
    );
    Ok((dev, built, rtl_dir))
}

/// Input values as data-format codes, `(sequence, timestep, feature)` flattened.
pub fn input_codes(design: &Design, input: &Input) -> Vec<i64> {
    let q = design.quant();
    let mut codes = Vec::with_capacity(input.data.len());
    let mut ev = partita_sim::Events::default();
    for s in input.data.outer_iter() {
        let x = s
            .into_dimensionality::<ndarray::Ix2>()
            .expect("checked input rank");
        codes.extend(
            partita_sim::lstm::quantize_input(q, x, &mut ev)
                .iter()
                .copied(),
        );
    }
    codes
}

/// Device output codes as values in the input's form.
pub fn output_array(design: &Design, input: &Input, hidden: usize, codes: &[i64]) -> ArrayD<f64> {
    let (seqs, steps) = (input.data.shape()[0], input.data.shape()[1]);
    let lsb = design.output_format().lsb();
    let out = ArrayD::from_shape_fn(IxDyn(&[seqs, steps, hidden]), |ix| {
        codes
            .get((ix[0] * steps + ix[1]) * hidden + ix[2])
            .map_or(f64::NAN, |c| *c as f64 * lsb)
    });
    if input.batched {
        out
    } else {
        out.index_axis_move(Axis(0), 0)
    }
}

/// A cosimulation's input (the user's or the default), its data codes, and the golden model's
/// output codes for it.
pub struct GoldenCase {
    pub input: Input,
    pub expected: Vec<i64>,
    pub saturations_golden: u64,
    pub saturation_warnings: Vec<String>,
    pub seqs: usize,
    pub steps: usize,
    /// Input codes, `(sequence, timestep, feature)` flattened.
    pub codes: Vec<i64>,
}

/// Read (or make) the input and run the bit-exact golden model on it.
pub fn golden_case(design: &Design, opts: &SimOptions) -> Result<GoldenCase, SimError> {
    let input = match &opts.input {
        Some(p) => partita_sim::read_input(p, design)?,
        None => default_input(design),
    };
    let golden = partita_sim::run(design, &input, Mode::Fixed);
    let expected: Vec<i64> = golden
        .codes
        .as_ref()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    let (seqs, steps) = (input.data.shape()[0], input.data.shape()[1]);
    let codes = input_codes(design, &input);
    Ok(GoldenCase {
        input,
        expected,
        saturations_golden: golden.events.saturations,
        saturation_warnings: golden.events.warnings(),
        seqs,
        steps,
        codes,
    })
}

/// The first output word that differs from the golden model, with its position.
pub fn first_mismatch(
    expected: &[i64],
    got: &[i64],
    layer: usize,
    steps: usize,
    hidden: usize,
) -> Option<Mismatch> {
    expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .map(|i| Mismatch {
            layer,
            batch: i / (steps * hidden),
            timestep: (i / hidden) % steps,
            index: i % hidden,
            expected: expected[i],
            got: got[i],
        })
}

/// The most cycles a cosimulation of `seqs` sequences of `steps` steps may take: 4 x the cost
/// model's cycles (stretched for backpressure) plus slack for register setup. A bound above
/// the `sim_cycles` limit is refused before anything is built.
pub fn cycle_budget(
    design: &Design,
    seqs: usize,
    steps: usize,
    backpressure: u32,
) -> Result<u64, SimError> {
    let per_step = partita_codegen::analysis::cost::predict(design).cycles_per_step;
    let layers = match &design.model {
        ModelDesign::Lstm(m) => m.layers.len(),
        ModelDesign::Cnn(_) => 1,
    };
    let stretch = 100.0 / (100.0 - backpressure.min(99) as f64);
    let predicted = per_step * (seqs as f64) * ((steps + layers) as f64);
    let budget = 4.0 * predicted * stretch + 200_000.0 + 20_000.0 * seqs as f64;
    let max = partita_codegen::limits::SIM_CYCLES.value();
    if budget.is_nan() || budget > max as f64 {
        return Err(SimError::Input(partita_sim::Error::Input {
            message: format!(
                "this run would be allowed {budget:.0} simulated cycles (the cost model predicts {predicted:.0}: {per_step:.0} per step x {seqs} sequence(s) x {steps} step(s)), more than the limit of {max}"
            ),
            help: "give a shorter or smaller input, or a faster partition (README.md, \"Limits\": sim_cycles)".into(),
        }));
    }
    Ok(budget as u64)
}

/// Build, run and compare.
pub fn simulate(design: &Design, opts: &SimOptions) -> Result<SimReport, SimError> {
    let ModelDesign::Lstm(m) = &design.model else {
        return cnn::simulate(design, opts);
    };
    let GoldenCase {
        input,
        expected,
        saturations_golden,
        saturation_warnings,
        seqs,
        steps,
        codes,
    } = golden_case(design, opts)?;
    let budget = cycle_budget(design, seqs, steps, opts.backpressure)?;
    let (mut dev, built, rtl_dir) = open_sim_device(design, opts)?;
    dev.budget_cycles = budget;
    let t0 = Instant::now();
    let run = run_lstm(
        &mut dev,
        design.plan.plan_hash,
        steps,
        seqs,
        m.hidden_size,
        partita_codegen::arch::lstm::stream_layout(design),
        &codes,
    )?;
    let sim_seconds = t0.elapsed().as_secs_f64();
    let h = m.hidden_size;
    let mismatch = first_mismatch(&expected, &run.codes, m.layers.len() - 1, steps, h);
    let matched = mismatch.is_none() && expected.len() == run.codes.len();
    let timesteps = seqs * steps;
    let lower = mac_bound(design, m);
    let per_step = run.cycles as f64 / timesteps as f64;
    let output = output_array(design, &input, h, &run.codes);
    Ok(SimReport {
        matched,
        mismatch,
        words_expected: expected.len(),
        words_got: run.codes.len(),
        sequences: seqs,
        timesteps,
        cycles_total: run.cycles,
        cycles_per_timestep: per_step,
        lower_bound_cycles_per_timestep: lower,
        efficiency: lower / per_step,
        sim_cycles: dev.cycles(),
        sim_seconds,
        sim_cycles_per_second: dev.cycles() as f64 / sim_seconds.max(1e-9),
        build_seconds: built.seconds,
        build_cached: built.cached,
        saturations_hw: run.saturations,
        saturations_golden,
        saturation_warnings,
        rtl_dir,
        output,
        cnn: None,
    })
}

/// The MAC bound of one timestep: every stored weight entry (4H rows x K banks x the kept
/// entries per bank, both products, every layer) over the multipliers of all devices' row
/// engines, in cycles.
pub fn mac_bound(design: &Design, m: &partita_codegen::design::LstmDesign) -> f64 {
    let k = design.plan.banks;
    let entries: usize = m
        .layers
        .iter()
        .map(|l| 4 * m.hidden_size * k * (l.q_ih.shape.nnz_per_bank + l.q_hh.shape.nnz_per_bank))
        .sum();
    let engines: usize = (0..design.plan.devices)
        .map(|d| design.plan.engines_of(d))
        .sum();
    entries as f64 / (engines * k) as f64
}
