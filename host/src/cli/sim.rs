//! `partita sim`: cosimulate a design's RTL in Verilator (one model per device, in lockstep
//! for multi-device plans) and compare every output word, and the word count, with the golden
//! model. Exit 1 on a mismatch.

use std::path::{Path, PathBuf};

use partita_codegen::design;

use super::{io_failure, temp, ArgFailure, Failure};
use crate::cosim::{self, multi, SimOptions};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Input .npy like `golden` takes (default: 2 sequences of 8 unit-normal steps).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write the device's output here (.npy float64, same shape as `golden`). On a mismatch
    /// this file is left as it was, and the device's output goes to NAME.mismatch.npy.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Simulate an already generated directory (from `partita gen`) instead of generating.
    #[arg(long)]
    rtl: Option<PathBuf>,
    /// Dump an FST waveform of the whole run (one per device: NAME.devD.fst).
    #[arg(long)]
    wave: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Hold stream ready/valid low on this percentage of cycles (0-99).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..100))]
    backpressure: u32,
    /// Multi-device plans: damage one link frame, KIND:CHANNEL:FRAME with KIND corrupt
    /// (flip a bit), drop or reorder (deliver after the next frame). Channel numbers are in
    /// the summary. The run must then report a link error.
    #[arg(long, value_parser = multi::parse_fault)]
    inject_fault: Option<partita_sim::multi::Fault>,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    if let Some(p) = &a.output {
        temp::check_out_file(p, "--output").map_err(ArgFailure)?;
    }
    if let Some(p) = &a.wave {
        temp::check_out_file(p, "--wave").map_err(ArgFailure)?;
    }
    let d = design::from_path(&a.plan)?;
    if a.inject_fault.is_some() && d.plan.devices == 1 {
        return Err(ArgFailure(
            "--inject-fault damages link frames; this plan has one device and no links".into(),
        )
        .into());
    }
    let opts = SimOptions {
        input: a.input,
        rtl: a.rtl,
        wave: a.wave.clone(),
        backpressure: a.backpressure,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        cache: None,
    };
    // Both reports: (output values, JSON, summary, every word matched).
    let (values, json_text, summary, matched) = if d.plan.devices > 1 {
        let r = multi::simulate_multi(&d, &opts, a.inject_fault)?;
        (r.output.clone(), r.json(), r.summary(), r.matched)
    } else {
        let r = cosim::simulate(&d, &opts)?;
        (r.output.clone(), r.json(), r.summary(), r.matched)
    };
    if let Some(w) = &a.wave {
        // Verilator opens the FST itself and does not report failure; check it is there.
        let files: Vec<PathBuf> = if d.plan.devices > 1 {
            (0..d.plan.devices)
                .map(|n| w.with_extension(format!("dev{n}.fst")))
                .collect()
        } else {
            vec![w.clone()]
        };
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(ArgFailure(format!(
                "--wave: the waveform `{}` was not written (is its directory writable?)",
                missing.display()
            ))
            .into());
        }
    }
    let mut summary = summary;
    if let Some(p) = a.output {
        if matched {
            temp::write_npy(&p, &values)?;
        } else {
            let bad = mismatch_path(&p);
            temp::write_npy(&bad, &values)?;
            summary.push_str(&format!(
                "output: the mismatching device output is in {} ({} left as it was)\n",
                bad.display(),
                p.display()
            ));
        }
    }
    if a.json {
        writeln!(out, "{json_text}").map_err(io_failure)?;
    } else {
        write!(out, "{summary}").map_err(io_failure)?;
    }
    if matched {
        Ok(())
    } else {
        Err(Failure::mismatch(
            summary.lines().next().unwrap_or("mismatch"),
        ))
    }
}

/// `y.npy` -> `y.mismatch.npy`: where a failed run's device output goes.
fn mismatch_path(p: &Path) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    p.with_file_name(format!("{stem}.mismatch.npy"))
}
