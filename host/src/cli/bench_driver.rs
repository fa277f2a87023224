//! `partita bench --driver`: what the host driver costs. On one single-device LSTM plan, for
//! each backend (the simulated device, the XDMA backend over a simulated card, and a remote
//! device served on loopback gRPC): the register round trip and the stream throughput of a
//! whole run. On a host-relayed multi-device plan: the relay's time per frame (decode, check,
//! forward), in process, with every device remote, and on simulated XDMA cards.

use std::path::Path;
use std::time::{Duration, Instant};

use partita_codegen::design::{self, Design, ModelDesign};
use partita_hdl::regs;

use super::{io_failure, ArgFailure, Failure, GenFailure};
use crate::cosim::{self, SimOptions};
use crate::driver::{self, Device};
use crate::remote::client::{Connect, RemoteDevice};
use crate::remote::server::{serve, MakeDevice, ServeOptions, Served};

/// Register reads timed per backend.
const READS: usize = 2000;

/// Serve `make` on a free loopback port from a thread; the server stops 5 s after its last
/// request. Returns the address.
fn serve_here(d: &Design, device: usize, make: MakeDevice) -> Result<String, Failure> {
    let so = ServeOptions {
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| ArgFailure("address".into()))?,
        token: None,
        tls: None,
        audit: Some(std::env::temp_dir().join(format!(
            "partita-bench-audit-{}-{device}.log",
            std::process::id()
        ))),
        idle_exit: Some(Duration::from_secs(5)),
        request_timeout: Duration::from_secs(60),
        served: Served {
            plan_hash: d.plan.plan_hash,
            device: device as u32,
            devices: d.plan.devices as u32,
            backend: "sim".into(),
        },
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        if let Err(e) = serve(so, make, move |a| {
            let _ = tx.send(Ok(a.to_string()));
        }) {
            let _ = err_tx.send(Err(e.to_string()));
        }
    });
    rx.recv_timeout(Duration::from_secs(900))
        .map_err(|_| ArgFailure("the loopback server did not start".into()))?
        .map_err(|e| ArgFailure(format!("the loopback server: {e}")).into())
}

fn connect(addr: String, device: usize, hash: u64) -> Result<RemoteDevice, Failure> {
    Ok(RemoteDevice::connect(Connect {
        addr,
        device,
        plan_hash: hash,
        token: None,
        tls: None,
        timeout: Duration::from_secs(60),
        client: "partita bench".into(),
    })
    .map_err(cosim::SimError::from)?)
}

pub(crate) fn run(
    plan: &Path,
    relay_plan: &Path,
    steps: usize,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    let d = design::from_path(plan)?;
    let ModelDesign::Lstm(m) = &d.model else {
        return Err(ArgFailure(format!(
            "--driver measures a single-device LSTM plan; {} is a CNN",
            plan.display()
        ))
        .into());
    };
    if d.plan.devices != 1 {
        return Err(ArgFailure(format!(
            "--driver measures a single-device LSTM plan; {} has {} devices (give the multi-device one as --relay-plan)",
            plan.display(),
            d.plan.devices
        ))
        .into());
    }
    let layout = partita_codegen::arch::lstm::stream_layout(&d);
    let seqs = 2;
    let codes: Vec<i64> = (0..seqs * steps * m.input_size)
        .map(|i| ((i * 37) % 255) as i64 - 127)
        .collect();
    let opts = SimOptions::default();
    let bytes = ((layout.beats(m.input_size) + layout.beats(m.hidden_size)) * seqs * steps) as f64
        * (layout.beat_bits as f64 / 8.0);
    writeln!(
        out,
        "driver on {} ({} steps x {seqs} sequences, {} bytes through the streams)\nbackend        register round trip (us)  run (s)  stream MB/s  output",
        plan.display(),
        steps,
        bytes
    )
    .map_err(io_failure)?;
    let mut reference: Option<Vec<i64>> = None;
    for name in ["sim", "xdma-cosim", "remote"] {
        let mut dev: Box<dyn Device> = match name {
            "sim" => Box::new(cosim::open_sim_device(&d, &opts)?.0),
            "xdma-cosim" => {
                // A card comes up out of reset; the XDMA backend's reset is CTRL's soft reset.
                let dd = d.clone();
                let make: driver::xdma::cosim::MakeCard = Box::new(move || {
                    let mut sim = cosim::open_sim_device(&dd, &SimOptions::default())
                        .map_err(|e| e.to_string())?
                        .0;
                    sim.reset().map_err(|e| e.to_string())?;
                    Ok(Box::new(sim) as Box<dyn Device>)
                });
                let card =
                    driver::xdma::cosim::card(make, layout, 0).map_err(cosim::SimError::Gen)?;
                Box::new(card.device(layout, m.hidden_size, 0, Duration::from_secs(60)))
            }
            _ => {
                let dd = d.clone();
                let make: MakeDevice = Box::new(move || {
                    cosim::open_sim_device(&dd, &SimOptions::default())
                        .map(|(v, _, _)| Box::new(v) as Box<dyn Device>)
                        .map_err(|e| e.to_string())
                });
                let addr = serve_here(&d, 0, make)?;
                Box::new(connect(addr, 0, d.plan.plan_hash)?)
            }
        };
        dev.reset().map_err(cosim::SimError::from)?;
        let t0 = Instant::now();
        for _ in 0..READS {
            dev.reg_read(regs::VERSION.offset)
                .map_err(cosim::SimError::from)?;
        }
        let rtt = t0.elapsed().as_secs_f64() / READS as f64 * 1e6;
        let t0 = Instant::now();
        let r = driver::run_lstm(
            dev.as_mut(),
            d.plan.plan_hash,
            steps,
            seqs,
            m.hidden_size,
            layout,
            &codes,
        )
        .map_err(cosim::SimError::from)?;
        let secs = t0.elapsed().as_secs_f64();
        let same = match &reference {
            None => {
                reference = Some(r.codes.clone());
                "reference".to_string()
            }
            Some(c) if *c == r.codes => "same as sim".into(),
            Some(_) => "DIFFERS from sim".into(),
        };
        writeln!(
            out,
            "{name:<14} {rtt:>24.1}  {secs:>7.2}  {:>11.3}  {same}",
            bytes / secs / 1e6
        )
        .map_err(io_failure)?;
    }
    relay(relay_plan, out)
}

/// The relay's cost per frame on a host-relayed plan: in process (lockstep devices), with
/// every device served on loopback, and on the PCIe backend over simulated cards.
fn relay(plan: &Path, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    use crate::cosim::multi::{lstm_io, lstm_system, run_lockstep, served_device};
    use crate::driver::system::{run_system, SystemOptions};
    let d = design::from_path(plan)?;
    let ModelDesign::Lstm(_) = &d.model else {
        return Err(ArgFailure("--relay-plan must be an LSTM plan".into()).into());
    };
    let sys = partita_codegen::arch::lstm::System::new(&d).map_err(GenFailure)?;
    if sys.schedule.mode != partita_codegen::plan::LinkMode::Host || d.plan.devices < 2 {
        return Err(ArgFailure(format!(
            "--relay-plan {}: needs several devices and mode = \"host\"",
            plan.display()
        ))
        .into());
    }
    let ModelDesign::Lstm(m) = &d.model else {
        return Ok(());
    };
    let (steps, seqs) = (16, 1);
    let codes: Vec<i64> = (0..steps * m.input_size)
        .map(|i| ((i * 29) % 255) as i64 - 127)
        .collect();
    let opts = SimOptions::default();
    let s = lstm_system(&d, &sys, &opts, &codes, steps, seqs)?;
    let t0 = Instant::now();
    let local = run_lockstep(
        s.models,
        s.wiring,
        &s.io,
        None,
        s.budget,
        d.plan.plan_hash,
        0,
    );
    let local_s = t0.elapsed().as_secs_f64();
    if let Some(e) = &local.error {
        return Err(ArgFailure(format!("the relay benchmark's run failed: {e}")).into());
    }
    let mut devs = Vec::new();
    for i in 0..d.plan.devices {
        let dd = d.clone();
        let make: MakeDevice = Box::new(move || {
            let ls = served_device(&dd, i, &SimOptions::default()).map_err(|e| e.to_string())?;
            let (_, mut v) = crate::driver::lockstep::devices(ls, u64::MAX);
            v.pop()
                .map(|x| Box::new(x) as Box<dyn Device>)
                .ok_or_else(|| "no device".to_string())
        });
        let addr = serve_here(&d, i, make)?;
        devs.push(connect(addr, i, d.plan.plan_hash)?);
    }
    let io = lstm_io(&d, &sys, &codes, steps, seqs);
    // One system run, timed; a failed run ends the benchmark naming `what`.
    let timed = |refs: &mut [&mut dyn Device], what: &str| {
        let t0 = Instant::now();
        let r = run_system(
            refs,
            &io,
            &SystemOptions {
                plan_hash: d.plan.plan_hash,
                link_timeout: 0,
                start_skew: 0,
                frame: sys.frame,
                deadline: Duration::from_secs(600),
                poll_rounds: 8,
            },
        );
        match &r.error {
            Some(e) => Err(Failure::from(ArgFailure(format!(
                "the {what} relay benchmark's run failed: {e}"
            )))),
            None => Ok((r, t0.elapsed().as_secs_f64())),
        }
    };
    let mut refs: Vec<&mut dyn Device> = devs.iter_mut().map(|v| v as &mut dyn Device).collect();
    let (remote, remote_s) = timed(&mut refs, "remote")?;
    drop(refs);
    drop(devs);
    // The PCIe backend over simulated cards: each card's model on its own thread, its link
    // read and written through the XDMA channel 1 threads.
    let mut cards = crate::cosim::multi::xdma_cards(&d, &opts, Duration::from_secs(60))?;
    let mut refs: Vec<&mut dyn Device> = cards.iter_mut().map(|v| v as &mut dyn Device).collect();
    let (xdma, xdma_s) = timed(&mut refs, "XDMA")?;
    writeln!(
        out,
        "relay on {} ({} devices, {steps} steps)\nwhere        frames  beats  relay us/frame  run (s)  output",
        plan.display(),
        d.plan.devices
    )
    .map_err(io_failure)?;
    for (name, r, secs, codes) in [
        ("in process", &local.relay, local_s, &local.codes),
        ("loopback", &remote.relay, remote_s, &remote.codes),
        ("xdma-cosim", &xdma.relay, xdma_s, &xdma.codes),
    ] {
        let frames: usize = r.frames.iter().sum();
        writeln!(
            out,
            "{name:<12} {frames:>6}  {:>5}  {:>14.2}  {secs:>7.2}  {}",
            r.beats,
            r.seconds / frames.max(1) as f64 * 1e6,
            if name == "in process" {
                "reference"
            } else if *codes == local.codes {
                "same as in process"
            } else {
                "DIFFERS"
            }
        )
        .map_err(io_failure)?;
    }
    Ok(())
}
