//! `partita synth`: open synthesis of one device's generated RTL (Yosys), optionally place and
//! route (nextpnr), and the counts next to the cost model's.

use std::path::PathBuf;
use std::time::Duration;

use partita_codegen::analysis::resources;
use partita_codegen::design;
use partita_codegen::emit;

use super::{io_failure, ArgFailure, Failure, GenFailure};
use crate::synth::{self, Family};

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// The device to synthesize (multi-device plans).
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// FPGA family to map to.
    #[arg(long, value_enum, default_value = "ecp5")]
    family: Family,
    /// Also place and route (nextpnr: ECP5-85F speed 8, Nexus LIFCL-40, iCE40 HX8K) and report
    /// the achieved Fmax and critical path. Minutes for small designs.
    #[arg(long)]
    pnr: bool,
    /// Clock requested from place-and-route, MHz (default: the plan's clock_mhz).
    #[arg(long)]
    mhz: Option<f64>,
    /// nextpnr's placement seed. Fmax varies between placements (by tens of MHz on a full
    /// ECP5-85F), so compare designs at the same seed, or sweep seeds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Place and route once per seed (a comma-separated list of 2 to 32 distinct seeds, in
    /// place of --seed), up to --jobs at a time, and report every run, the best, the worst and
    /// the median: how far a netlist is from a clock, where one seed says how one placement
    /// went. Implies --pnr.
    #[arg(long, value_delimiter = ',', conflicts_with = "seed")]
    seeds: Vec<u64>,
    /// Place-and-route runs at a time with --seeds (default: the machine's cores). Each
    /// nextpnr run on a full ECP5-85F takes one core and 1 to 2 GB.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: Option<u32>,
    /// Ask nextpnr's router to rip up and reroute failing paths for timing (its
    /// `--tmg-ripup`, marked experimental by nextpnr). Slower; on a placement of the single
    /// device that routed at 111.0 MHz without it, 125.8 MHz with it.
    #[arg(long)]
    tmg_ripup: bool,
    /// nextpnr's analytic placer's timing weight (`--placer-heap-timingweight`, 1 to 1000;
    /// nextpnr's default is 10): how hard the placer pulls timing-critical cells together
    /// against wire length.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    timing_weight: Option<u32>,
    /// Loop each link port back to itself through a register stage instead of putting it on
    /// pins (multi-device plans): a board connects links to transceivers, not to
    /// general-purpose pads, and a node's link ports alone take 132 of the ECP5-85F's 365 I/O
    /// pins at 64 bits. A harness (`partita_harness`) is synthesized as the top; the report
    /// says so.
    #[arg(long)]
    loop_links: bool,
    /// Synthesize the device as a core, as it sits on a board: every port but clk and rst_n
    /// (AXI4-Lite, AXI4-Stream, and with --loop-links the link readies) is driven from a shift
    /// register fed by one pin and read into a signature register shifted out on another,
    /// instead of from pads. On a board those ports meet on-chip logic (an XDMA core, a
    /// processor's AXI master, a DMA engine); on pins, their registers are pulled to the die's
    /// edge and the placement spreads. Inside the same harness as --loop-links.
    #[arg(long)]
    core: bool,
    /// Stop a tool that runs longer than this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the work files here (the RTL, Yosys's netlists and logs, nextpnr's log and its
    /// report with every critical path cell by cell) instead of a temporary directory that is
    /// removed. The directory must not exist yet.
    #[arg(long)]
    keep: Option<PathBuf>,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    if a.device >= d.plan.devices {
        return Err(ArgFailure(format!(
            "--device {}: this plan has {} device(s), numbered from 0",
            a.device, d.plan.devices
        ))
        .into());
    }
    if let Some(m) = a.mhz {
        if !(m > 0.0 && m <= 2000.0) {
            return Err(ArgFailure(format!("--mhz {m}: give a clock from 0 to 2000 MHz")).into());
        }
    }
    if a.loop_links && d.plan.devices < 2 {
        return Err(ArgFailure(
            "--loop-links: this plan has one device and no link ports; drop the flag".into(),
        )
        .into());
    }
    if !a.seeds.is_empty() {
        let mut sorted = a.seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if a.seeds.len() < 2 || a.seeds.len() > 32 || sorted.len() != a.seeds.len() {
            return Err(ArgFailure(format!(
                "--seeds {}: give 2 to 32 distinct seeds, separated by commas (one seed: --seed)",
                a.seeds
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .into());
        }
    }
    if a.jobs.is_some() && a.seeds.is_empty() {
        return Err(ArgFailure(
            "--jobs: it sets how many --seeds runs go at a time; give --seeds too".into(),
        )
        .into());
    }
    let pnr = a.pnr || !a.seeds.is_empty();
    if let Some(k) = &a.keep {
        if k.exists() {
            return Err(ArgFailure(format!(
                "--keep {}: it already exists; name a directory that does not",
                k.display()
            ))
            .into());
        }
    }
    // Find the tools before generating anything.
    synth::yosys()?;
    if pnr {
        synth::nextpnr(a.family)?;
    }
    let mut files = emit::generate(&d, None).map_err(GenFailure)?;
    // The harness goes beside the device's RTL (not in its files.f).
    let harness = if a.loop_links || a.core {
        let mut f =
            emit::harness::harness(&d, a.device, a.loop_links, a.core).map_err(GenFailure)?;
        let name = f.name.clone();
        f.name = if d.plan.devices > 1 {
            format!("dev{}/{name}", a.device)
        } else {
            name.clone()
        };
        files.push(f);
        Some(name)
    } else {
        None
    };
    let root = a.keep.clone().unwrap_or_else(synth::work_dir);
    let result = (|| -> Result<synth::Report, Failure> {
        super::gen::write_files(&root, &files)?;
        let (dir, mut top) = if d.plan.devices > 1 {
            (
                root.join(format!("dev{}", a.device)),
                emit::top_module(&d, a.device),
            )
        } else {
            (root.clone(), "partita_top".to_string())
        };
        if harness.is_some() {
            top = emit::harness::HARNESS.to_string();
        }
        let limit = Duration::from_secs(a.timeout);
        let mut r = synth::synthesize(&dir, &top, harness.as_deref(), a.family, limit)?;
        if pnr {
            let mhz = a.mhz.unwrap_or(d.plan.plan.target.clock_mhz);
            let opts = synth::PnrOptions {
                mhz,
                seed: a.seed,
                tmg_ripup: a.tmg_ripup,
                timing_weight: a.timing_weight,
            };
            if a.seeds.is_empty() {
                synth::place_and_route(&dir, a.family, opts, &mut r, limit)?;
            } else {
                let jobs = a
                    .jobs
                    .map(|j| j as usize)
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                synth::place_and_route_seeds(&dir, a.family, opts, &a.seeds, jobs, &mut r, limit)?;
            }
        }
        Ok(r)
    })();
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    let r = result?;
    let cost = &resources::device_costs(&d)[a.device];
    // Over a sweep: the worst and the median run.
    let sweep = r.pnr_runs.len() > 1;
    let mut fs: Vec<f64> = r.pnr_runs.iter().filter_map(|x| x.fmax_mhz).collect();
    fs.sort_by(f64::total_cmp);
    let median = (!fs.is_empty()).then(|| {
        let n = fs.len();
        if n % 2 == 1 {
            fs[n / 2]
        } else {
            (fs[n / 2 - 1] + fs[n / 2]) / 2.0
        }
    });
    // Runs that met the requested clock.
    let met = r
        .pnr_runs
        .iter()
        .filter(|x| matches!((x.fmax_mhz, x.target_mhz), (Some(f), Some(t)) if f >= t))
        .count();
    let best_seed = r
        .pnr_runs
        .iter()
        .find(|x| x.fmax_mhz == r.fmax_mhz)
        .map(|x| x.seed);
    if a.json {
        let runs: Vec<serde_json::Value> = r
            .pnr_runs
            .iter()
            .map(|x| {
                serde_json::json!({
                    "seed": x.seed, "fmax_mhz": x.fmax_mhz, "target_mhz": x.target_mhz,
                    "critical_path": x.critical_path, "pnr_seconds": x.pnr_seconds,
                    "log": x.log,
                })
            })
            .collect();
        let mems: Vec<serde_json::Value> = r
            .memories
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name, "width": m.width, "depth": m.depth,
                    "mapped_to": m.mapped_to, "cells": m.cells,
                })
            })
            .collect();
        let j = serde_json::json!({
            "plan": a.plan.display().to_string(),
            "device": a.device,
            "family": r.family,
            "top": r.top,
            "loop_links": a.loop_links,
            "core": a.core,
            "yosys": r.yosys,
            "luts": r.luts, "ffs": r.ffs, "dsps": r.dsps, "brams": r.brams, "lutrams": r.lutrams,
            "cells_by_type": r.cells_by_type,
            "memories": mems,
            "synth_seconds": r.synth_seconds,
            "predicted_multipliers": cost.multipliers,
            "predicted_memory_bits": cost.weight_bits + cost.state_bits,
            "fmax_mhz": r.fmax_mhz, "target_mhz": r.target_mhz,
            "critical_path": r.critical_path, "pnr_device": r.pnr_device,
            "pnr_seconds": r.pnr_seconds,
            "clock_pin": r.clock_pin,
            "pnr_seed": if pnr { best_seed } else { None },
            "pnr_tmg_ripup": pnr && a.tmg_ripup,
            "pnr_timing_weight": a.timing_weight.filter(|_| pnr),
            "pnr_runs": runs,
            "fmax_min_mhz": fs.first(),
            "fmax_median_mhz": median,
            "pnr_met": met,
        });
        return writeln!(out, "{j}").map_err(io_failure);
    }
    let mut s = format!(
        "synth: device {} of {} ({}{}), {} with {} in {:.1} s\n",
        a.device,
        a.plan.display(),
        r.top,
        match (a.loop_links, a.core) {
            (true, true) => ": link ports looped back, every other port but clk and rst_n behind registers, not on pins",
            (true, false) => ": link ports looped back through registers, not on pins",
            (false, true) => ": every port but clk and rst_n behind registers, not on pins",
            _ => "",
        },
        r.family,
        r.yosys,
        r.synth_seconds
    );
    s += &format!(
        "  LUTs {}, flip-flops {}, DSP blocks {}, block RAMs {}, LUT RAMs {}\n",
        r.luts, r.ffs, r.dsps, r.brams, r.lutrams
    );
    s += &format!(
        "  cost model: {} multipliers (row lanes and element-wise unit), {} bits of weight and state memory\n",
        cost.multipliers,
        cost.weight_bits + cost.state_bits
    );
    s += "  memories (width x depth -> where):\n";
    for m in &r.memories {
        s += &format!(
            "    {:<40} {:>4} x {:<6} -> {} ({} cells)\n",
            m.name, m.width, m.depth, m.mapped_to, m.cells
        );
    }
    let opts = format!(
        "{}{}",
        a.timing_weight
            .map(|w| format!(", placer timing weight {w}"))
            .unwrap_or_default(),
        if a.tmg_ripup {
            ", timing-driven rip-up"
        } else {
            ""
        }
    );
    if sweep {
        s += &format!(
            "place and route: {}, {} seeds{opts}, requested {:.0} MHz:\n",
            r.pnr_device.as_deref().unwrap_or("?"),
            r.pnr_runs.len(),
            r.target_mhz.unwrap_or(0.0)
        );
        for x in &r.pnr_runs {
            s += &format!(
                "  seed {:>3}: {} in {:.0} s{}\n",
                x.seed,
                x.fmax_mhz
                    .map_or("no Fmax in nextpnr's report".into(), |f| format!(
                        "Fmax {f:.2} MHz{}",
                        match x.target_mhz {
                            Some(t) if f >= t => " (met)",
                            Some(_) => " (not met)",
                            None => "",
                        }
                    )),
                x.pnr_seconds,
                x.critical_path
                    .as_ref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            );
        }
        s += &format!(
            "  best {:.2} MHz (seed {}), median {:.2}, worst {:.2}; met by {} of {} seeds\n",
            r.fmax_mhz.unwrap_or(0.0),
            best_seed.map_or("?".into(), |x| x.to_string()),
            median.unwrap_or(0.0),
            fs.first().copied().unwrap_or(0.0),
            met,
            r.pnr_runs.len()
        );
        if let Some(p) = &r.clock_pin {
            s += &format!("  clk on pin {p}\n");
        }
        return write!(out, "{s}").map_err(io_failure);
    }
    match (r.fmax_mhz, r.target_mhz) {
        (Some(f), Some(t)) => {
            s += &format!(
                "place and route: {} in {:.0} s, seed {}{}: Fmax {:.1} MHz (requested {:.0} MHz{})\n",
                r.pnr_device.as_deref().unwrap_or("?"),
                r.pnr_seconds.unwrap_or(0.0),
                a.seed,
                opts,
                f,
                t,
                if f >= t { ", met" } else { ", not met" }
            );
            if let Some(p) = &r.critical_path {
                s += &format!("  critical path: {p}\n");
            }
            if let Some(p) = &r.clock_pin {
                s += &format!("  clk on pin {p}\n");
            }
        }
        _ if pnr => s += "place and route: no Fmax in nextpnr's report\n",
        _ => s += "place and route: not run (add --pnr for Fmax)\n",
    }
    write!(out, "{s}").map_err(io_failure)
}
