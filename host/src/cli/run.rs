//! `partita run`: inputs through the devices via the host driver, like boards: no golden model,
//! just the devices' output. Backends: `sim` (the Verilator models of the generated RTL; a
//! multi-device plan runs every device in lockstep over the modelled links, driven by the
//! system driver, which relays host links), `pcie` (cards behind the Xilinx XDMA driver's
//! device files), `xdma-cosim` (the same backend over simulated cards, each on its own thread
//! and clock) and `remote` (devices served by `partita serve`).

use std::path::PathBuf;
use std::time::Duration;

use partita_codegen::arch::cnn::CnnArch;
use partita_codegen::design::{self, ModelDesign};

use super::{io_failure, temp, ArgFailure, Failure, GenFailure};
use crate::cosim::{self, SimError, SimOptions};
use crate::driver;
use crate::driver::xdma::file::open_card;
use crate::remote::client::{ClientTls, Connect, RemoteDevice};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    /// `sim` (Verilator models of the generated RTL, any number of devices), `pcie` (XDMA
    /// cards, --xdma), `xdma-cosim` (the pcie backend over simulated cards) or `remote`
    /// (devices served by `partita serve`, --connect).
    #[arg(long, default_value = "sim")]
    backend: String,
    /// Use an already generated RTL directory (sim).
    #[arg(long)]
    rtl: Option<PathBuf>,
    /// The XDMA device files' prefix (pcie): `{prefix}_user`, `{prefix}_h2c_K`, `{prefix}_c2h_K`;
    /// `/dev/xdma0` when not given. A multi-device plan names every card: `N=PREFIX`, once
    /// per device.
    #[arg(long)]
    xdma: Vec<String>,
    /// The XDMA stream channel K (pcie); a multi-device plan's links use channel 1.
    #[arg(long, default_value_t = 0)]
    channel: u32,
    /// Each register access, input packet and output vector must finish within this (pcie,
    /// remote: each request).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Where device N is served (remote), `N=HOST:PORT`, once per device.
    #[arg(long)]
    connect: Vec<String>,
    /// A file holding the token the servers want (remote).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// TLS (remote): the CA of the servers' certificates, the client's certificate and key
    /// (PEM), and the name the servers' certificates carry.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    #[arg(long, default_value = "localhost")]
    tls_domain: String,
    /// The whole run's deadline on several devices (pcie, xdma-cosim, remote), in seconds.
    #[arg(long, default_value_t = 600)]
    deadline_s: u64,
}

/// The device a run goes through.
#[derive(Clone, Copy)]
enum Backend {
    Sim,
    Pcie,
    XdmaCosim,
    Remote,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let backend = match a.backend.as_str() {
        "sim" => Backend::Sim,
        "pcie" => Backend::Pcie,
        "xdma-cosim" => Backend::XdmaCosim,
        "remote" => Backend::Remote,
        other => {
            return Err(ArgFailure(format!(
                "unknown backend `{other}` for --backend; allowed: sim (the Verilator model), pcie (XDMA cards), xdma-cosim (the pcie backend over simulated cards) and remote (devices served by `partita serve`)"
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
    let prefixes = xdma_prefixes(&a, &d, backend)?;
    // Boards (and remote devices) reach each other through the host.
    if d.plan.devices > 1
        && !matches!(backend, Backend::Sim)
        && !crate::cosim::multi::system_shape(&d)?.host
    {
        return Err(ArgFailure(format!(
            "--backend {}: devices in different hosts or cards reach each other through the host, and {} has direct links; set mode = \"host\" in [target.link] (the board wrapper carries a host link on the XDMA core's channel 1)",
            a.backend,
            a.plan.display()
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
        return run_system(&a, &d, &x, &opts, backend, &prefixes, out);
    }
    let mut remote = match backend {
        Backend::Remote => Some(connect_all(&a, &d)?),
        _ => None,
    };
    let name = a.backend.as_str();
    // The device: a simulated one with the whole run's cycle budget, or the card behind the
    // XDMA files, whose output vectors come one packet each.
    let mut open =
        |budget: u64, out_layout, out_values| -> Result<Box<dyn driver::Device>, Failure> {
            Ok(match backend {
                Backend::Remote => match remote.take().and_then(|mut v| v.pop()) {
                    Some(dv) => Box::new(dv),
                    None => return Err(ArgFailure("no remote device".into()).into()),
                },
                Backend::Sim => {
                    let (mut dev, _, _) = cosim::open_sim_device(&d, &opts)?;
                    dev.budget_cycles = budget;
                    Box::new(dev)
                }
                Backend::Pcie => Box::new(
                    open_card(
                        &prefixes[0],
                        a.channel,
                        None,
                        out_layout,
                        out_values,
                        Duration::from_millis(a.timeout_ms),
                    )
                    .map_err(|e| {
                        ArgFailure(format!(
                            "--backend pcie (--xdma {} --channel {}): {e}",
                            prefixes[0], a.channel
                        ))
                    })?,
                ),
                Backend::XdmaCosim => {
                    let make_opts = opts.clone();
                    let dd = d.clone();
                    let make: driver::xdma::cosim::MakeCard = Box::new(move || {
                        // A card's clock runs from power-up, so no cycle budget: the
                        // deadlines bound the run, as on a board.
                        let (mut dev, _, _) =
                            cosim::open_sim_device(&dd, &make_opts).map_err(|e| e.to_string())?;
                        driver::Device::reset(&mut dev).map_err(|e| e.to_string())?;
                        Ok(Box::new(dev) as Box<dyn driver::Device>)
                    });
                    let in_layout = match &d.model {
                        ModelDesign::Lstm(_) => partita_codegen::arch::lstm::stream_layout(&d),
                        ModelDesign::Cnn(_) => CnnArch::new(&d).map_err(GenFailure)?.in_layout,
                    };
                    let card =
                        driver::xdma::cosim::card(make, in_layout, 0).map_err(SimError::Gen)?;
                    Box::new(card.device(
                        out_layout,
                        out_values,
                        0,
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

/// What a multi-device run gave: the output codes, each device's counters, the frames the
/// host relayed, and the error that ended it, if any.
type Outcome = (Vec<i64>, Vec<driver::DeviceStats>, usize, Option<String>);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the run stopped: {0}")]
#[diagnostic(
    code(partita::run),
    help("the outputs finished before it are in the output file (NaN for the rest); `partita sim` on the plan shows the devices' counters and links")
)]
struct RunStopped(String);

/// Parse `--connect N=HOST:PORT` (once per device of the plan), read the credentials, and
/// connect to every device: handshake (plan hash, device index, version) and lease.
fn connect_all(a: &Args, d: &design::Design) -> Result<Vec<RemoteDevice>, Failure> {
    let addrs = per_device(
        "--connect",
        &a.connect,
        d.plan.devices,
        "N=HOST:PORT, N a device of the plan (e.g. --connect 0=127.0.0.1:50551)",
        "--backend remote needs --connect N=HOST:PORT for every device of the plan",
    )?;
    let read = |p: &PathBuf, what: &str| -> Result<Vec<u8>, Failure> {
        std::fs::read(p)
            .map_err(|e| ArgFailure(format!("{what} {}: cannot read it: {e}", p.display())).into())
    };
    let token = match &a.token_file {
        Some(p) => Some(
            String::from_utf8_lossy(&read(p, "--token-file")?)
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let tls = |a: &Args| -> Result<Option<ClientTls>, Failure> {
        Ok(match (&a.tls_ca, &a.tls_cert, &a.tls_key) {
            (None, None, None) => None,
            (Some(ca), Some(c), Some(k)) => Some(ClientTls {
                ca: read(ca, "--tls-ca")?,
                cert: read(c, "--tls-cert")?,
                key: read(k, "--tls-key")?,
                domain: a.tls_domain.clone(),
            }),
            _ => {
                return Err(ArgFailure(
                    "TLS needs all of --tls-ca, --tls-cert and --tls-key".into(),
                )
                .into())
            }
        })
    };
    let mut devs = Vec::new();
    for (i, addr) in addrs.into_iter().enumerate() {
        devs.push(
            RemoteDevice::connect(Connect {
                addr,
                device: i,
                plan_hash: d.plan.plan_hash,
                token: token.clone(),
                tls: tls(a)?,
                timeout: Duration::from_millis(a.timeout_ms),
                client: format!("partita run (pid {})", std::process::id()),
            })
            .map_err(SimError::from)?,
        );
    }
    Ok(devs)
}

/// A multi-device plan through the system driver (which relays host links): on simulated
/// devices (every device's model in lockstep over the modelled links), or on devices served
/// by `partita serve` (`remote`; their links must be host-relayed). No golden model.
fn run_system(
    a: &Args,
    d: &design::Design,
    x: &partita_sim::Input,
    opts: &SimOptions,
    backend: Backend,
    prefixes: &[String],
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    use crate::cosim::multi::{cnn_io, cnn_system, lstm_io, lstm_system, run_lockstep};
    use crate::driver::system::{run_system, SystemIo, SystemOptions};
    let hash = d.plan.plan_hash;
    let shape = crate::cosim::multi::system_shape(d)?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let boards: Option<Vec<Box<dyn driver::Device>>> = match backend {
        Backend::Sim => None,
        Backend::Remote => Some(
            connect_all(a, d)?
                .into_iter()
                .map(|v| Box::new(v) as Box<dyn driver::Device>)
                .collect(),
        ),
        Backend::XdmaCosim => Some(
            crate::cosim::multi::xdma_cards(d, opts, timeout)?
                .into_iter()
                .map(|v| Box::new(v) as Box<dyn driver::Device>)
                .collect(),
        ),
        Backend::Pcie => {
            let mut v: Vec<Box<dyn driver::Device>> = Vec::new();
            for (k, p) in prefixes.iter().enumerate() {
                let card = open_card(
                    p,
                    a.channel,
                    Some(shape.frame.link_width),
                    shape.out_layout,
                    shape.out_values[k],
                    timeout,
                )
                .map_err(|e| {
                    ArgFailure(format!(
                        "--backend pcie, device {k} (--xdma {k}={p} --channel {}): {e}",
                        a.channel
                    ))
                })?;
                v.push(Box::new(card));
            }
            Some(v)
        }
    };
    // Runs `io` on the boards or, for the simulated devices, builds them (`sim`).
    let go = |io: SystemIo,
              frame: partita_hdl::frame::Format,
              sim: &dyn Fn() -> Result<crate::cosim::multi::SimSystem, SimError>|
     -> Result<Outcome, Failure> {
        Ok(match boards {
            None => {
                let s = sim()?;
                let r = run_lockstep(s.models, s.wiring, &s.io, None, s.budget, hash, 0);
                (r.codes, r.devices, r.relay.frames.iter().sum(), r.error)
            }
            Some(mut devs) => {
                let mut refs: Vec<&mut dyn driver::Device> = devs
                    .iter_mut()
                    .map(|v| &mut **v as &mut dyn driver::Device)
                    .collect();
                let r = run_system(
                    &mut refs,
                    &io,
                    &SystemOptions {
                        plan_hash: hash,
                        link_timeout: 0,
                        start_skew: 0,
                        frame,
                        deadline: Duration::from_secs(a.deadline_s),
                        poll_rounds: 8,
                    },
                );
                (r.codes, r.devices, r.relay.frames.iter().sum(), r.error)
            }
        })
    };
    let ((_, devices, relayed, error), y, what) = match &d.model {
        ModelDesign::Lstm(m) => {
            let sys = partita_codegen::arch::lstm::System::new(d).map_err(GenFailure)?;
            let (seqs, steps) = (x.data.shape()[0], x.data.shape()[1]);
            let codes = cosim::input_codes(d, x);
            let io = lstm_io(d, &sys, &codes, steps, seqs);
            let r = go(io, sys.frame, &|| {
                lstm_system(d, &sys, opts, &codes, steps, seqs)
            })?;
            let y = cosim::output_array(d, x, m.hidden_size, &r.0);
            let done = r.0.len() / m.hidden_size.max(1);
            let what = format!(
                "{seqs} sequence(s) x {steps} step(s) ({done} of {} steps finished)",
                seqs * steps
            );
            (r, y, what)
        }
        ModelDesign::Cnn(_) => {
            let sys = partita_codegen::arch::cnn_system::CnnSystem::new(d).map_err(GenFailure)?;
            let frames = x.data.shape()[0];
            let codes = cosim::cnn::input_codes(d, x);
            let io = cnn_io(&sys, &codes, frames);
            let r = go(io, sys.frame, &|| cnn_system(d, &sys, opts, &codes, frames))?;
            let y = cosim::cnn::output_array(d, &sys.whole, x, &r.0);
            let done = r.0.len() / sys.whole.output.values().max(1);
            let what = format!("{frames} frame(s) ({done} finished)");
            (r, y, what)
        }
    };
    // What finished is written whether or not the run completed.
    temp::write_npy(&a.output, &y)?;
    if let Some(e) = error {
        return Err(RunStopped(format!("{e}; {what}, written to {}", a.output.display())).into());
    }
    let cycles = devices.iter().map(|s| s.cycles).max().unwrap_or(0);
    let sats: u64 = devices.iter().map(|s| s.saturations as u64).sum();
    let relay = if relayed > 0 {
        format!(", {relayed} frames relayed by the host")
    } else {
        String::new()
    };
    writeln!(
        out,
        "run ({}, {} devices): {what} -> {} {:?}; {cycles} cycles on the slowest device, {sats} saturation events{relay}",
        a.backend,
        devices.len(),
        a.output.display(),
        y.shape(),
    )
    .map_err(io_failure)?;
    // Each device's counters, as its registers read after the run.
    for (i, s) in devices.iter().enumerate() {
        writeln!(
            out,
            "  device {i}: {} cycles, {} MAC cycles, {} link-wait cycles, {} beats sent, {} forwarded, {} received, {} saturations",
            s.cycles, s.mac_cycles, s.wait_cycles, s.tx_beats, s.fwd_beats, s.rx_beats, s.saturations
        )
        .map_err(io_failure)?;
    }
    Ok(())
}

/// Each device's XDMA prefix (pcie): one `--xdma PREFIX` (or none: `/dev/xdma0`) for a
/// single-device plan, `--xdma N=PREFIX` for every device of a multi-device plan.
fn xdma_prefixes(a: &Args, d: &design::Design, backend: Backend) -> Result<Vec<String>, Failure> {
    if !matches!(backend, Backend::Pcie) {
        if !a.xdma.is_empty() {
            return Err(ArgFailure(format!(
                "--xdma names the cards of --backend pcie; this run is on --backend {}",
                a.backend
            ))
            .into());
        }
        return Ok(Vec::new());
    }
    if d.plan.devices == 1 {
        return match a.xdma.as_slice() {
            [] => Ok(vec!["/dev/xdma0".into()]),
            [p] => Ok(vec![p.strip_prefix("0=").unwrap_or(p).to_string()]),
            _ => Err(ArgFailure(format!(
                "--xdma given {} times, and {} has one device (one card)",
                a.xdma.len(),
                a.plan.display()
            ))
            .into()),
        };
    }
    if a.channel == driver::xdma::file::LINK_CHANNEL {
        return Err(ArgFailure(format!(
            "--channel {}: a multi-device plan's cards carry their host links on channel {} (the board wrapper's), so their streams use another channel (0 in the wrapper)",
            a.channel,
            driver::xdma::file::LINK_CHANNEL
        ))
        .into());
    }
    per_device(
        "--xdma",
        &a.xdma,
        d.plan.devices,
        "N=PREFIX, N a device of the plan (e.g. --xdma 0=/dev/xdma0 --xdma 1=/dev/xdma1)",
        "--backend pcie on a multi-device plan needs --xdma N=PREFIX for every card",
    )
}

/// `N=VALUE` options, one for each of the plan's `n` devices, in device order.
fn per_device(
    flag: &str,
    given: &[String],
    n: usize,
    usage: &str,
    missing_what: &str,
) -> Result<Vec<String>, Failure> {
    let mut v: Vec<Option<String>> = vec![None; n];
    for c in given {
        let Some((i, value)) = c.split_once('=') else {
            return Err(ArgFailure(format!("{flag} {c}: expected {usage}")).into());
        };
        let i: usize = i.parse().map_err(|_| {
            ArgFailure(format!(
                "{flag} {c}: `{i}` is not a number; expected {usage}"
            ))
        })?;
        if i >= n {
            return Err(ArgFailure(format!(
                "{flag} {c}: the plan has devices 0..{n}; expected {usage}"
            ))
            .into());
        }
        if v[i].replace(value.to_string()).is_some() {
            return Err(ArgFailure(format!("{flag}: device {i} given twice")).into());
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| v[*i].is_none()).collect();
    if !missing.is_empty() {
        return Err(ArgFailure(format!("{missing_what}; missing: {missing:?}")).into());
    }
    Ok(v.into_iter().flatten().collect())
}
