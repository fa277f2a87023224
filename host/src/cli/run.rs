//! `partita run`: inputs through the devices via the host driver, like boards: no golden model,
//! just the devices' output. Backends: `sim` (the Verilator models of the generated RTL; a
//! multi-device plan runs every device in lockstep over the modelled links, driven by the
//! system driver, which relays host links) and `pcie` (a card behind the Xilinx XDMA driver's
//! device files, single-device plans).

use std::path::PathBuf;
use std::time::Duration;

use partita_codegen::arch::cnn::CnnArch;
use partita_codegen::design::{self, ModelDesign};

use super::{io_failure, temp, ArgFailure, Failure, GenFailure, NotBuilt};
use crate::cosim::{self, SimError, SimOptions};
use crate::driver;
use crate::driver::xdma::file::{FileTransport, XdmaPaths};
use crate::driver::xdma::XdmaDevice;

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    /// `sim` (Verilator models of the generated RTL, any number of devices) or `pcie` (an XDMA
    /// card, single-device plans). The `remote` backend (gRPC) is not built yet.
    #[arg(long, default_value = "sim")]
    backend: String,
    /// Use an already generated RTL directory (sim).
    #[arg(long)]
    rtl: Option<PathBuf>,
    /// The XDMA device files' prefix (pcie): `{prefix}_user`, `{prefix}_h2c_K`, `{prefix}_c2h_K`.
    #[arg(long, default_value = "/dev/xdma0")]
    xdma: String,
    /// The XDMA stream channel K (pcie).
    #[arg(long, default_value_t = 0)]
    channel: u32,
    /// Each register access, input packet and output vector must finish within this (pcie).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

/// The device a run goes through.
enum Backend {
    Sim,
    Pcie,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let backend = match a.backend.as_str() {
        "sim" => Backend::Sim,
        "pcie" => Backend::Pcie,
        "remote" => {
            return Err(NotBuilt {
                verb: "run --backend remote",
                what: "The remote backend (gRPC)",
            }
            .into())
        }
        other => {
            return Err(ArgFailure(format!(
                "unknown backend `{other}` for --backend; allowed: sim (the Verilator model), pcie (an XDMA card) and remote (not built yet)"
            ))
            .into())
        }
    };
    if a.timeout_ms == 0 || a.timeout_ms > 3_600_000 {
        return Err(ArgFailure(format!(
            "--timeout-ms {}: allowed 1 to 3600000 (an hour)",
            a.timeout_ms
        ))
        .into());
    }
    temp::check_out_file(&a.output, "--output").map_err(ArgFailure)?;
    let d = design::from_path(&a.plan)?;
    if d.plan.devices > 1 && matches!(backend, Backend::Pcie) {
        return Err(ArgFailure(format!(
            "--backend pcie drives one card today, and {} has {} devices; the system driver runs multi-device plans on --backend sim (README.md, \"Status\")",
            a.plan.display(),
            d.plan.devices,
        ))
        .into());
    }
    let x = partita_sim::read_input(&a.input, &d)?;
    let opts = SimOptions {
        rtl: a.rtl.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..Default::default()
    };
    if d.plan.devices > 1 {
        return run_system(&a, &d, &x, &opts, out);
    }
    let name = match backend {
        Backend::Sim => "sim",
        Backend::Pcie => "pcie",
    };
    // The device: a simulated one with the whole run's cycle budget, or the card behind the
    // XDMA files, whose output vectors come one packet each.
    let open = |budget: u64, out_layout, out_values| -> Result<Box<dyn driver::Device>, Failure> {
        Ok(match backend {
            Backend::Sim => {
                let (mut dev, _, _) = cosim::open_sim_device(&d, &opts)?;
                dev.budget_cycles = budget;
                Box::new(dev)
            }
            Backend::Pcie => {
                let paths = XdmaPaths::new(&a.xdma, a.channel);
                let t = FileTransport::open(&paths).map_err(|e| {
                    ArgFailure(format!(
                        "--backend pcie (--xdma {} --channel {}): {e}",
                        a.xdma, a.channel
                    ))
                })?;
                Box::new(XdmaDevice::new(
                    t.regs,
                    t.h2c,
                    t.c2h,
                    out_layout,
                    out_values,
                    Duration::from_millis(a.timeout_ms),
                ))
            }
        })
    };
    let ModelDesign::Lstm(m) = &d.model else {
        // A CNN: frames through the device trait.
        let arch = CnnArch::new(&d).map_err(GenFailure)?;
        let frames = x.data.shape()[0];
        let budget = cosim::cnn::cycle_budget(&arch, frames)?;
        let mut dev = open(budget, arch.out_layout, arch.output.values())?;
        let codes = cosim::cnn::input_codes(&d, &x);
        let r = driver::run_cnn(
            dev.as_mut(),
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
            "run ({name}): {frames} frame(s) -> {} {:?}; {} cycles, {} saturation events, {} refused accesses",
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
    let layout = partita_codegen::arch::lstm::stream_layout(&d);
    let mut dev = open(budget, layout, m.hidden_size)?;
    let codes = cosim::input_codes(&d, &x);
    let r = driver::run_lstm(
        dev.as_mut(),
        d.plan.plan_hash,
        steps,
        seqs,
        m.hidden_size,
        layout,
        &codes,
    )
    .map_err(SimError::from)?;
    let y = cosim::output_array(&d, &x, m.hidden_size, &r.codes);
    temp::write_npy(&a.output, &y)?;
    writeln!(
        out,
        "run ({name}): {} sequence(s) x {} step(s) -> {} {:?}; {} cycles, {} saturation events, {} refused accesses",
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

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the run stopped: {0}")]
#[diagnostic(
    code(partita::run),
    help("the outputs finished before it are in the output file (NaN for the rest); `partita sim` on the plan shows the devices' counters and links")
)]
struct RunStopped(String);

/// A multi-device plan on simulated devices: every device's model in lockstep over the
/// modelled links, driven by the system driver (which relays host links), no golden model.
fn run_system(
    a: &Args,
    d: &design::Design,
    x: &partita_sim::Input,
    opts: &SimOptions,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    use crate::cosim::multi::{cnn_system, lstm_system, run_lockstep};
    let hash = d.plan.plan_hash;
    let (run, y, what) = match &d.model {
        ModelDesign::Lstm(m) => {
            let sys = partita_codegen::arch::lstm::System::new(d).map_err(GenFailure)?;
            let (seqs, steps) = (x.data.shape()[0], x.data.shape()[1]);
            let codes = cosim::input_codes(d, x);
            let s = lstm_system(d, &sys, opts, &codes, steps, seqs)?;
            let run = run_lockstep(s.models, s.wiring, &s.io, None, s.budget, hash, 0);
            let y = cosim::output_array(d, x, m.hidden_size, &run.codes);
            let done = run.codes.len() / m.hidden_size.max(1);
            let what = format!(
                "{seqs} sequence(s) x {steps} step(s) ({done} of {} steps finished)",
                seqs * steps
            );
            (run, y, what)
        }
        ModelDesign::Cnn(_) => {
            let sys = partita_codegen::arch::cnn_system::CnnSystem::new(d).map_err(GenFailure)?;
            let frames = x.data.shape()[0];
            let codes = cosim::cnn::input_codes(d, x);
            let s = cnn_system(d, &sys, opts, &codes, frames)?;
            let run = run_lockstep(s.models, s.wiring, &s.io, None, s.budget, hash, 0);
            let y = cosim::cnn::output_array(d, &sys.whole, x, &run.codes);
            let done = run.codes.len() / sys.whole.output.values().max(1);
            let what = format!("{frames} frame(s) ({done} finished)");
            (run, y, what)
        }
    };
    // What finished is written whether or not the run completed.
    temp::write_npy(&a.output, &y)?;
    if let Some(e) = run.error {
        return Err(RunStopped(format!("{e}; {what}, written to {}", a.output.display())).into());
    }
    let cycles = run.devices.iter().map(|s| s.cycles).max().unwrap_or(0);
    let sats: u64 = run.devices.iter().map(|s| s.saturations as u64).sum();
    let relayed: usize = run.relay.frames.iter().sum();
    let relay = if relayed > 0 {
        format!(", {relayed} frames relayed by the host")
    } else {
        String::new()
    };
    writeln!(
        out,
        "run (sim, {} devices): {what} -> {} {:?}; {cycles} cycles on the slowest device, {sats} saturation events{relay}",
        run.devices.len(),
        a.output.display(),
        y.shape(),
    )
    .map_err(io_failure)
}
