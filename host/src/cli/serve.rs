//! `partita serve`: one device of a plan, served to remote hosts over gRPC (see
//! `crate::remote::server`). The device is simulated (the Verilator model of its generated
//! RTL) or a card behind the XDMA driver's files.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use partita_codegen::design::{self, ModelDesign};

use super::{io_failure, ArgFailure, Failure, GenFailure};
use crate::cosim::{self, SimOptions};
use crate::driver::xdma::file::open_card;
use crate::driver::Device;
use crate::remote::server::{serve, MakeDevice, ServeError, ServeOptions, Served, ServerTls};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Address to listen on. Loopback needs no credentials; any other address needs TLS with
    /// client certificates or a token.
    #[arg(long, default_value = "127.0.0.1:50551")]
    listen: String,
    /// Which device of the plan to serve.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// `sim` (the Verilator model of the device's RTL) or `xdma` (a card behind the XDMA
    /// driver; a device of a multi-device plan has its host link on channel 1).
    #[arg(long, default_value = "sim")]
    backend: String,
    /// Use an already generated RTL directory (sim).
    #[arg(long)]
    rtl: Option<PathBuf>,
    /// The XDMA device files' prefix (xdma).
    #[arg(long, default_value = "/dev/xdma0")]
    xdma: String,
    /// The XDMA stream channel (xdma).
    #[arg(long, default_value_t = 0)]
    channel: u32,
    /// A file holding the token clients must send (one line).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// TLS: the server's certificate, its key, and the CA of the client certificates (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Append every operation, with the client's identity, to this file.
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Stop after this many seconds without a request (default: serve until killed).
    #[arg(long)]
    idle_exit_s: Option<u64>,
    /// Each request must finish within this.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
}

fn read(p: &PathBuf, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(p)
        .map_err(|e| ArgFailure(format!("{what} {}: cannot read it: {e}", p.display())).into())
}

pub(crate) fn run(a: Args, out: &mut dyn Write) -> Result<(), Failure> {
    let listen: std::net::SocketAddr = a.listen.parse().map_err(|_| {
        ArgFailure(format!(
            "--listen {}: not an IP:PORT address (for example 127.0.0.1:50551)",
            a.listen
        ))
    })?;
    if a.timeout_ms == 0 || a.timeout_ms > 3_600_000 {
        return Err(ArgFailure(format!(
            "--timeout-ms {}: allowed 1 to 3600000 (an hour)",
            a.timeout_ms
        ))
        .into());
    }
    let token = match &a.token_file {
        Some(p) => {
            let t = String::from_utf8(read(p, "--token-file")?).unwrap_or_default();
            let t = t.trim().to_string();
            if t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ArgFailure(format!(
                    "--token-file {}: the token must be at least 16 printable ASCII characters without spaces",
                    p.display()
                ))
                .into());
            }
            Some(t)
        }
        None => None,
    };
    let tls = match (&a.tls_cert, &a.tls_key, &a.client_ca) {
        (None, None, None) => None,
        (Some(c), Some(k), Some(ca)) => Some(ServerTls {
            cert: read(c, "--tls-cert")?,
            key: read(k, "--tls-key")?,
            client_ca: read(ca, "--client-ca")?,
        }),
        _ => {
            return Err(ArgFailure(
                "TLS needs all of --tls-cert, --tls-key and --client-ca (clients must present certificates the CA signed)".into(),
            )
            .into())
        }
    };
    let d = design::from_path(&a.plan)?;
    let n = d.plan.devices;
    if a.device >= n {
        return Err(ArgFailure(format!(
            "--device {}: {} has devices 0..{}",
            a.device,
            a.plan.display(),
            n
        ))
        .into());
    }
    let opts = SimOptions {
        rtl: a.rtl.clone(),
        ..Default::default()
    };
    let timeout = Duration::from_millis(a.timeout_ms);
    // Build the device on the server's device thread; configuration errors come back here.
    let make: MakeDevice = match a.backend.as_str() {
        "sim" if n == 1 => {
            let d = d.clone();
            Box::new(move || {
                cosim::open_sim_device(&d, &opts)
                    .map(|(dev, _, _)| Box::new(dev) as Box<dyn Device>)
                    .map_err(|e| e.to_string())
            })
        }
        "sim" => {
            let d = d.clone();
            let index = a.device;
            Box::new(move || {
                let sys =
                    crate::cosim::multi::served_device(&d, index, &opts).map_err(|e| e.to_string())?;
                let (_, mut devs) = crate::driver::lockstep::devices(sys, u64::MAX);
                devs.pop()
                    .map(|dv| Box::new(dv) as Box<dyn Device>)
                    .ok_or_else(|| "no device was built".to_string())
            })
        }
        "xdma" => {
            // One card: its streams on --channel; a device of a host-relayed system also has
            // its link on channel 1.
            let (layout, values, link) = if n == 1 {
                match &d.model {
                    ModelDesign::Lstm(m) => (
                        partita_codegen::arch::lstm::stream_layout(&d),
                        m.hidden_size,
                        None,
                    ),
                    ModelDesign::Cnn(_) => {
                        let arch =
                            partita_codegen::arch::cnn::CnnArch::new(&d).map_err(GenFailure)?;
                        (arch.out_layout, arch.output.values(), None)
                    }
                }
            } else {
                let shape = crate::cosim::multi::system_shape(&d)?;
                if !shape.host {
                    return Err(ArgFailure(format!(
                        "--backend xdma: {} has direct links; a card serves a device of a multi-device plan only when the host relays its links (mode = \"host\" in [target.link]; the board wrapper puts the link on channel 1)",
                        a.plan.display()
                    ))
                    .into());
                }
                (
                    shape.out_layout,
                    shape.out_values[a.device],
                    Some(shape.frame.link_width),
                )
            };
            let (prefix, channel) = (a.xdma.clone(), a.channel);
            let what = format!("--backend xdma (--xdma {prefix} --channel {channel})");
            Box::new(move || {
                open_card(&prefix, channel, link, layout, values, timeout)
                    .map(|c| Box::new(c) as Box<dyn Device>)
                    .map_err(|e| format!("{what}: {e}"))
            })
        }
        other => {
            return Err(ArgFailure(format!(
                "unknown backend `{other}` for --backend; allowed: sim (the Verilator model) and xdma (a card behind the XDMA driver)"
            ))
            .into())
        }
    };
    let so = ServeOptions {
        listen,
        token,
        tls,
        audit: a.audit.clone(),
        idle_exit: a.idle_exit_s.map(Duration::from_secs),
        request_timeout: timeout,
        served: Served {
            plan_hash: d.plan.plan_hash,
            device: a.device as u32,
            devices: n as u32,
            backend: a.backend.clone(),
        },
    };
    let plan = a.plan.display().to_string();
    let mut ready_err = None;
    let r = serve(so, make, |addr| {
        if let Err(e) = writeln!(
            out,
            "serving device {} of {plan} ({} backend) on {addr}",
            a.device, a.backend
        )
        .and_then(|_| out.flush())
        {
            ready_err = Some(e);
        }
    });
    if let Some(e) = ready_err {
        return Err(io_failure(e));
    }
    r.map_err(|e| match e {
        ServeError::Refused(m) => ArgFailure(m).into(),
        ServeError::Io(m) => ArgFailure(format!("partita serve: {m}")).into(),
    })
}
