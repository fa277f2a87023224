//! `partita golden`: run the golden model on an input array: bit-exact fixed point (the
//! hardware contract), or float64.

use std::path::PathBuf;

use partita_codegen::design;
use partita_sim::Mode;

use super::{io_failure, temp, ArgFailure, Failure};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Input .npy, float32/float64: LSTM (seq, input) or (batch, seq, input); CNN (c, h, w)
    /// or (n, c, h, w).
    #[arg(long)]
    input: PathBuf,
    /// Output .npy, float64: the last layer's h per step (LSTM) or the network output.
    #[arg(long)]
    output: PathBuf,
    /// Float64 instead of the fixed-point hardware contract: PyTorch's equations on the
    /// pruned weights (for a dense plan, what torch.nn.LSTM / nn.Sequential computes).
    #[arg(long, conflicts_with = "vs_float")]
    float: bool,
    /// Also run the float model and print the max |fixed - float| difference.
    #[arg(long)]
    vs_float: bool,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    temp::check_out_file(&a.output, "--output").map_err(ArgFailure)?;
    let d = design::from_path(&a.plan)?;
    let x = partita_sim::read_input(&a.input, &d)?;
    let mode = if a.float { Mode::Float } else { Mode::Fixed };
    let y = partita_sim::run(&d, &x, mode);
    temp::write_npy(&a.output, &y.values)?;
    let mode_name = if a.float { "float" } else { "fixed" };
    writeln!(
        out,
        "golden ({mode_name}): input {:?} -> {} {:?}",
        x.data.shape(),
        a.output.display(),
        y.values.shape()
    )
    .map_err(io_failure)?;
    if !a.float {
        writeln!(
            out,
            "events: {} input values clipped, {} saturations",
            y.events.input_clipped, y.events.saturations
        )
        .map_err(io_failure)?;
        for w in y.events.warnings() {
            writeln!(out, "warning: {w}").map_err(io_failure)?;
        }
    }
    if a.vs_float {
        let f = partita_sim::run(&d, &x, Mode::Float);
        let err = y
            .values
            .iter()
            .zip(f.values.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        writeln!(out, "max |fixed - float| = {err:.3e}").map_err(io_failure)?;
    }
    Ok(())
}
