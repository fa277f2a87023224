//! `partita calibrate`: run the float model on sample inputs, pick every format's integer bits
//! from the ranges it saw (with a margin; each word keeps its width), and write the plan with
//! those formats: CNN plans get a `data`, `weight` and `bias` on each conv2d and dense layer,
//! LSTM plans new `[quant]` formats. The written plan is checked first; then the bit-exact
//! golden model is run on the same samples with it, and what still saturates is reported.

use std::path::PathBuf;

use partita_codegen::design;
use partita_codegen::passes::calibrate;

use super::{io_failure, temp, ArgFailure, Failure, WriteFailure};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Sample inputs (.npy, float32/float64), shaped as for `golden`: LSTM (seq, input) or
    /// (batch, seq, input); CNN (c, h, w) or (n, c, h, w).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the calibrated plan (a complete plan; a relative weights path is
    /// rewritten if the file goes to another directory).
    #[arg(long)]
    output: PathBuf,
    /// Headroom over the largest observed value, as a fraction (0.25: a format that holds
    /// 1.25 times the largest value seen).
    #[arg(long, default_value_t = 0.25, allow_negative_numbers = true)]
    margin: f64,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    temp::check_out_file(&a.output, "--output").map_err(ArgFailure)?;
    if !(0.0..=10.0).contains(&a.margin) {
        return Err(ArgFailure(format!(
            "--margin is {}; give a fraction of the observed range from 0 to 10 (0.25 = 25% headroom)",
            a.margin
        ))
        .into());
    }
    let d = design::from_path(&a.plan)?;
    let x = partita_sim::read_input(&a.input, &d)?;
    let ranges = partita_sim::observe(&d, &x);
    let out_dir = match a.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let c = calibrate::calibrate(&d, &ranges, a.margin, &out_dir).map_err(ArgFailure)?;
    // What the calibrated formats do on the same samples, before anything is written.
    let cd = design::build(c.plan.clone())?;
    let y = partita_sim::run(&cd, &x, partita_sim::Mode::Fixed);
    let f = partita_sim::run(&cd, &x, partita_sim::Mode::Float);
    let err = y
        .values
        .iter()
        .zip(f.values.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    temp::write_text(&a.output, &c.text).map_err(|e| WriteFailure {
        path: a.output.display().to_string(),
        source: e,
    })?;
    writeln!(
        out,
        "calibrated on {} sample(s), margin {}: {}",
        ranges.samples,
        a.margin,
        a.output.display()
    )
    .map_err(io_failure)?;
    for ch in &c.choices {
        let mark = if ch.from == ch.to { "" } else { "  (changed)" };
        writeln!(
            out,
            "  {:<34} largest |value| {:<12.6} {} -> {}{mark}",
            ch.what, ch.largest, ch.from, ch.to
        )
        .map_err(io_failure)?;
    }
    writeln!(
        out,
        "on these samples: {} input values clipped, {} saturations; max |fixed - float| = {err:.3e}",
        y.events.input_clipped, y.events.saturations
    )
    .map_err(io_failure)?;
    for w in y.events.warnings() {
        writeln!(out, "warning: {w}").map_err(io_failure)?;
    }
    Ok(())
}
