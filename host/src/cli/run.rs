//! `partita run`: inputs through a device via the host driver, like a board: no golden model,
//! just the device's output. Backends: `sim` (the Verilator model of the generated RTL).

use std::path::PathBuf;

use partita_codegen::arch::cnn::CnnArch;
use partita_codegen::design::{self, ModelDesign};

use super::{io_failure, temp, ArgFailure, Failure, GenFailure, NotBuilt};
use crate::cosim::{self, SimError, SimOptions};
use crate::driver;

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    /// `sim` (Verilator model of the generated RTL). The board backends `pcie` (XDMA) and
    /// `remote` (gRPC) are not built yet.
    #[arg(long, default_value = "sim")]
    backend: String,
    /// Use an already generated RTL directory.
    #[arg(long)]
    rtl: Option<PathBuf>,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    match a.backend.as_str() {
        "sim" => {}
        "pcie" | "remote" => {
            return Err(NotBuilt {
                verb: "run --backend pcie/remote",
                what: "Board backends (pcie: XDMA, remote: gRPC)",
            }
            .into())
        }
        other => {
            return Err(ArgFailure(format!(
                "unknown backend `{other}` for --backend; allowed: sim (the Verilator model, built), pcie and remote (boards, not built yet)"
            ))
            .into())
        }
    }
    temp::check_out_file(&a.output, "--output").map_err(ArgFailure)?;
    let d = design::from_path(&a.plan)?;
    if d.plan.devices > 1 {
        return Err(ArgFailure(format!(
            "`partita run` drives one device today, and {} has {} devices; `partita sim {}` runs every device of the system in lockstep over the modelled links and compares the output with the golden model",
            a.plan.display(),
            d.plan.devices,
            a.plan.display()
        ))
        .into());
    }
    let x = partita_sim::read_input(&a.input, &d)?;
    let opts = SimOptions {
        rtl: a.rtl,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..Default::default()
    };
    let ModelDesign::Lstm(m) = &d.model else {
        // A CNN: frames through the device trait, like a board.
        let arch = CnnArch::new(&d).map_err(GenFailure)?;
        let frames = x.data.shape()[0];
        let budget = cosim::cnn::cycle_budget(&arch, frames)?;
        let (mut dev, _, _) = cosim::open_sim_device(&d, &opts)?;
        dev.budget_cycles = budget;
        let codes = cosim::cnn::input_codes(&d, &x);
        let r = driver::run_cnn(
            &mut dev,
            d.plan.plan_hash,
            frames,
            arch.input.values(),
            arch.output.values(),
            arch.in_layout,
            arch.out_layout,
            &codes,
        )
        .map_err(SimError::from)?;
        let y = cosim::cnn::output_array(&d, &arch, &x, &r.codes);
        temp::write_npy(&a.output, &y)?;
        return writeln!(
            out,
            "run (sim): {frames} frame(s) -> {} {:?}; {} cycles, {} saturation events, {} refused accesses",
            a.output.display(),
            y.shape(),
            r.cycles,
            r.saturations,
            r.errors
        )
        .map_err(io_failure);
    };
    let (seqs, steps) = (x.data.shape()[0], x.data.shape()[1]);
    let budget = cosim::cycle_budget(&d, seqs, steps, 0)?;
    let (mut dev, _, _) = cosim::open_sim_device(&d, &opts)?;
    dev.budget_cycles = budget;
    let codes = cosim::input_codes(&d, &x);
    let r = driver::run_lstm(
        &mut dev,
        d.plan.plan_hash,
        steps,
        seqs,
        m.hidden_size,
        partita_codegen::arch::lstm::stream_layout(&d),
        &codes,
    )
    .map_err(SimError::from)?;
    let y = cosim::output_array(&d, &x, m.hidden_size, &r.codes);
    temp::write_npy(&a.output, &y)?;
    writeln!(
        out,
        "run (sim): {} sequence(s) x {} step(s) -> {} {:?}; {} cycles, {} saturation events, {} refused accesses",
        seqs,
        steps,
        a.output.display(),
        y.shape(),
        r.cycles,
        r.saturations,
        r.errors
    )
    .map_err(io_failure)
}
