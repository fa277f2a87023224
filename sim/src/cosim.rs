//! Verilator cosimulation: build generated RTL at run time into a shared library through a
//! small generated C-ABI wrapper, cache it by content hash, and load it with `libloading`.
//!
//! A build runs `verilator --cc --build` (run-time C++ at -O2, run-once C++ unoptimized,
//! through ccache when present), compiles the wrapper and Verilator's runtime with `-fPIC`, and
//! links `libpartita_model.so`. The cache key covers every Verilog source, the wrapper, the flags
//! and the Verilator version; `$readmemh` files are read when the model is created, so they are
//! not part of the key.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use thiserror::Error;

/// How long one build step may take before a hung toolchain is killed.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Clone, Debug, Error, miette::Diagnostic)]
pub enum CosimError {
    #[error("{tool} is not installed")]
    #[diagnostic(code(partita::tool), help("install it with `bash scripts/ensure-tools.sh verilator ccache` (Debian: apt-get install verilator ccache)"))]
    MissingTool { tool: String },
    #[error("Verilator build failed ({what}):\n{log}")]
    #[diagnostic(code(partita::build), help("the full log is in {dir}"))]
    Build {
        what: String,
        log: String,
        dir: String,
    },
    #[error("cannot load the simulation model {path}: {why}")]
    #[diagnostic(code(partita::load))]
    Load { path: String, why: String },
    #[error("the Verilator model stopped: {why}")]
    #[diagnostic(
        code(partita::model),
        help("most often a damaged or missing $readmemh (.hex) file in the RTL directory; regenerate it with `partita gen`, or fix the file named above (model library {path})")
    )]
    Model { path: String, why: String },
    #[error("file problem at {path}: {why}")]
    #[diagnostic(code(partita::io))]
    Io { path: String, why: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CosimError {
    CosimError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// Inputs of `partita_top`, applied before a rising edge. Layout shared with the wrapper.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PinsIn {
    pub rst_n: u32,
    pub awaddr: u32,
    pub awvalid: u32,
    pub wdata: u32,
    pub wstrb: u32,
    pub wvalid: u32,
    pub bready: u32,
    pub araddr: u32,
    pub arvalid: u32,
    pub rready: u32,
    pub s_tvalid: u32,
    pub s_tlast: u32,
    pub m_tready: u32,
    /// A multi-device node's identity (its `dev_id` input; ignored by a single-device top).
    pub dev_id: u32,
    /// tdata, least significant 64 bits first (up to 512 bits).
    pub s_tdata: [u64; 8],
    pub s_tkeep: u64,
}

/// Outputs of `partita_top`, sampled just before the rising edge (so `valid && ready` here is
/// a handshake that completes at that edge).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PinsOut {
    pub awready: u32,
    pub wready: u32,
    pub bresp: u32,
    pub bvalid: u32,
    pub arready: u32,
    pub rdata: u32,
    pub rresp: u32,
    pub rvalid: u32,
    pub s_tready: u32,
    pub m_tvalid: u32,
    pub m_tlast: u32,
    pub _pad: u32,
    pub m_tdata: [u64; 8],
    pub m_tkeep: u64,
}

/// Link-port inputs of a multi-device node (after [`PinsIn`] in the same C struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkIn {
    pub rx_tvalid: [u32; 2],
    pub rx_tlast: [u32; 2],
    pub tx_tready: [u32; 2],
    pub _pad: [u32; 2],
    /// Per port, the beat's 64-bit words, least significant first (links up to 512 bits).
    pub rx_tdata: [partita_hdl::frame::BeatData; 2],
}

/// Link-port outputs of a multi-device node.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkOut {
    pub tx_tvalid: [u32; 2],
    pub tx_tlast: [u32; 2],
    pub rx_tready: [u32; 2],
    pub _pad: [u32; 2],
    pub tx_tdata: [partita_hdl::frame::BeatData; 2],
}

/// Pins of a multi-device node: the device pins and its link ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeIn {
    pub pins: PinsIn,
    pub link: LinkIn,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeOut {
    pub pins: PinsOut,
    pub link: LinkOut,
}

/// The generated C-ABI wrapper around `Vpartita_top`.
pub const WRAPPER: &str = r#"// partita cosimulation wrapper (generated; C ABI for libloading).
#include "Vpartita_top.h"
#include "verilated.h"
#if PARTITA_TRACE
#include "verilated_fst_c.h"
#endif
#include <cstdint>
#include <string>

// Verilator's fatal errors (a damaged $readmemh file, say) would call abort() and take the
// whole partita process down. These replace its handlers (built with VL_USER_FATAL and
// VL_USER_WARN): the first problem is kept for pt_problem() and the model runs on harmlessly.
static std::string pt_first_problem;
static void pt_note(const char* kind, const char* filename, int linenum, const char* msg) {
    if (!pt_first_problem.empty()) return;
    pt_first_problem = kind;
    if (filename && filename[0]) {
        pt_first_problem += std::string(" in ") + filename;
        if (linenum > 0) pt_first_problem += " (Verilator's line " + std::to_string(linenum) + ")";
    }
    pt_first_problem += std::string(": ") + (msg ? msg : "");
}
void vl_fatal(const char* filename, int linenum, const char* hier, const char* msg) {
    (void)hier;
    Verilated::threadContextp()->gotError(true);
    Verilated::threadContextp()->gotFinish(true);
    pt_note("fatal error", filename, linenum, msg);
}
void vl_warn(const char* filename, int linenum, const char* hier, const char* msg) {
    (void)hier;
    pt_note("warning", filename, linenum, msg);
}

struct PinsIn { uint32_t rst_n, awaddr, awvalid, wdata, wstrb, wvalid, bready, araddr, arvalid,
                rready, s_tvalid, s_tlast, m_tready, dev_id; uint64_t s_tdata[8], s_tkeep; };
struct PinsOut { uint32_t awready, wready, bresp, bvalid, arready, rdata, rresp, rvalid, s_tready,
                 m_tvalid, m_tlast, pad; uint64_t m_tdata[8], m_tkeep; };
struct Handle {
    VerilatedContext* ctx;
    Vpartita_top* top;
#if PARTITA_TRACE
    VerilatedFstC* tfp;
#endif
    uint64_t time;
};

extern "C" {
const char* pt_problem(void) { return pt_first_problem.empty() ? nullptr : pt_first_problem.c_str(); }
void* pt_new(int argc, const char** argv) {
    pt_first_problem.clear();
    Handle* h = new Handle;
    h->ctx = new VerilatedContext;
    // Plusargs: the engines' memory images (read by the constructor's first eval).
    h->ctx->commandArgs(argc, argv);
#if PARTITA_TRACE
    h->ctx->traceEverOn(true);
    h->tfp = nullptr;
#endif
    h->top = new Vpartita_top{h->ctx};
    h->time = 0;
    h->top->clk = 0;
    h->top->rst_n = 0;
    h->top->eval();
    return h;
}
int pt_trace(void* p, const char* path) {
#if PARTITA_TRACE
    Handle* h = static_cast<Handle*>(p);
    h->tfp = new VerilatedFstC;
    h->top->trace(h->tfp, 99);
    h->tfp->open(path);
    return 1;
#else
    (void)p; (void)path;
    return 0;
#endif
}
void pt_free(void* p) {
    Handle* h = static_cast<Handle*>(p);
    h->top->final();
#if PARTITA_TRACE
    if (h->tfp) { h->tfp->close(); delete h->tfp; }
#endif
    delete h->top;
    delete h->ctx;
    delete h;
}
struct LinkIn { uint32_t rx_tvalid[2], rx_tlast[2], tx_tready[2], pad[2]; uint64_t rx_tdata[2][8]; };
struct LinkOut { uint32_t tx_tvalid[2], tx_tlast[2], rx_tready[2], pad[2]; uint64_t tx_tdata[2][8]; };
// Stream and link data of any width: Verilator keeps up to 8 bits in CData, 16 in SData, 32
// in IData, 64 in QData, more in VlWide (32-bit words); the C side holds eight 64-bit words,
// least significant first.
extern "C++" {
static inline void pt_set(CData& d, const uint64_t* w) { d = static_cast<CData>(w[0]); }
static inline void pt_set(SData& d, const uint64_t* w) { d = static_cast<SData>(w[0]); }
static inline void pt_set(IData& d, const uint64_t* w) { d = static_cast<IData>(w[0]); }
static inline void pt_set(QData& d, const uint64_t* w) { d = w[0]; }
template <std::size_t N> static inline void pt_set(VlWide<N>& d, const uint64_t* w) {
    for (std::size_t i = 0; i < N; i++) d[i] = static_cast<uint32_t>(w[i / 2] >> (32 * (i % 2)));
}
static inline void pt_get(uint64_t* w, CData d) { for (int i = 0; i < 8; i++) w[i] = 0; w[0] = d; }
static inline void pt_get(uint64_t* w, SData d) { for (int i = 0; i < 8; i++) w[i] = 0; w[0] = d; }
static inline void pt_get(uint64_t* w, IData d) { for (int i = 0; i < 8; i++) w[i] = 0; w[0] = d; }
static inline void pt_get(uint64_t* w, QData d) { for (int i = 0; i < 8; i++) w[i] = 0; w[0] = d; }
template <std::size_t N> static inline void pt_get(uint64_t* w, const VlWide<N>& d) {
    for (int i = 0; i < 8; i++) w[i] = 0;
    for (std::size_t i = 0; i < N; i++) w[i / 2] |= static_cast<uint64_t>(d[i]) << (32 * (i % 2));
}
}
struct NodeIn { PinsIn pins; LinkIn link; };
struct NodeOut { PinsOut pins; LinkOut link; };
#ifndef PARTITA_PORTS
#define PARTITA_PORTS 0
#endif
#if PARTITA_PORTS > 0
#define PT_LINK(n) \
    t->l##n##_rx_tvalid = li->rx_tvalid[n]; t->l##n##_rx_tlast = li->rx_tlast[n]; \
    pt_set(t->l##n##_rx_tdata, li->rx_tdata[n]); t->l##n##_tx_tready = li->tx_tready[n];
#define PT_LINK_OUT(n) \
    lo->tx_tvalid[n] = t->l##n##_tx_tvalid; lo->tx_tlast[n] = t->l##n##_tx_tlast; \
    pt_get(lo->tx_tdata[n], t->l##n##_tx_tdata); lo->rx_tready[n] = t->l##n##_rx_tready;
#endif
static void pt_cycle(Handle* h, const PinsIn* in, PinsOut* out, const LinkIn* li, LinkOut* lo);
void pt_step(void* p, const PinsIn* in, PinsOut* out) {
    pt_cycle(static_cast<Handle*>(p), in, out, nullptr, nullptr);
}
void pt_step_node(void* p, const NodeIn* in, NodeOut* out) {
    pt_cycle(static_cast<Handle*>(p), &in->pins, &out->pins, &in->link, &out->link);
}
static void pt_cycle(Handle* h, const PinsIn* in, PinsOut* out, const LinkIn* li, LinkOut* lo) {
    Vpartita_top* t = h->top;
#if PARTITA_PORTS > 0
    // A node design's identity: one model serves every device of the design.
    t->dev_id = in->dev_id;
    PT_LINK(0)
#endif
#if PARTITA_PORTS > 1
    PT_LINK(1)
#endif
    (void)li; (void)lo;
    t->rst_n = in->rst_n;
    t->s_axil_awaddr = in->awaddr; t->s_axil_awvalid = in->awvalid;
    t->s_axil_wdata = in->wdata; t->s_axil_wstrb = in->wstrb; t->s_axil_wvalid = in->wvalid;
    t->s_axil_bready = in->bready; t->s_axil_araddr = in->araddr; t->s_axil_arvalid = in->arvalid;
    t->s_axil_rready = in->rready;
    pt_set(t->s_axis_tdata, in->s_tdata); t->s_axis_tkeep = in->s_tkeep;
    t->s_axis_tvalid = in->s_tvalid; t->s_axis_tlast = in->s_tlast;
    t->m_axis_tready = in->m_tready;
    t->clk = 0;
    t->eval();
    out->awready = t->s_axil_awready; out->wready = t->s_axil_wready;
    out->bresp = t->s_axil_bresp; out->bvalid = t->s_axil_bvalid;
    out->arready = t->s_axil_arready; out->rdata = t->s_axil_rdata;
    out->rresp = t->s_axil_rresp; out->rvalid = t->s_axil_rvalid;
    out->s_tready = t->s_axis_tready;
    out->m_tvalid = t->m_axis_tvalid; out->m_tlast = t->m_axis_tlast;
    pt_get(out->m_tdata, t->m_axis_tdata); out->m_tkeep = t->m_axis_tkeep;
#if PARTITA_PORTS > 0
    PT_LINK_OUT(0)
#endif
#if PARTITA_PORTS > 1
    PT_LINK_OUT(1)
#endif
#if PARTITA_TRACE
    if (h->tfp) h->tfp->dump(h->time);
#endif
    h->time += 5;
    t->clk = 1;
    t->eval();
#if PARTITA_TRACE
    if (h->tfp) h->tfp->dump(h->time);
#endif
    h->time += 5;
}
}
"#;

/// Verilator configuration of every build: the row engines stay modules of their own (one
/// C++ class however many instances, rather than inlined into the top once per engine). Their
/// weight- and bias-write enables are kept as variables (`public`): otherwise Verilator
/// substitutes each instance's enable expression, which compares with that engine's number,
/// into the engine's logic, and every instance gets its own copy of the engine's C++ (on a node
/// with 60 engines, 38 MB of C++ and a 4.7-minute build; with the enables kept, 13 MB).
pub const VLT_CONFIG: &str = "`verilator_config
no_inline -module \"*_engine\"
public -module \"*_engine\" -var \"ww_en\"
public -module \"*_engine\" -var \"bw_en\"
";

/// Compiler flags of every Verilator build: the run-time code at -O2; the code that runs once
/// (initial blocks and constructors: Verilator's "slow" files, one per engine instance)
/// unoptimized, which compiles in a fraction of the time.
const BUILD_FLAGS: &[&str] = &[
    "-CFLAGS",
    "-fPIC",
    "-MAKEFLAGS",
    "OPT_FAST=-O2",
    "-MAKEFLAGS",
    "OPT_GLOBAL=-O2",
];

/// Build options.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Compile FST tracing in.
    pub trace: bool,
    /// Cache directory instead of [`cache_root`] (benchmarks use an empty one for cold builds).
    pub cache: Option<PathBuf>,
    /// Link ports of a multi-device node (0 for a single-device top).
    pub ports: usize,
    /// The top module (default `partita_top`); the model's C++ class is `Vpartita_top` either way.
    pub top: Option<String>,
    /// Parallel C++ compiles of the model (0: one per core).
    pub jobs: usize,
    /// A file of `files.f` not to compile: a multi-device node's own top, which only ties the
    /// identity of the node design the model is built from (so every device of the design
    /// builds the same sources, the same cache key, one model).
    pub skip: Option<String>,
}

/// Where built models live: `$PARTITA_CACHE`, else `$XDG_CACHE_HOME/partita`, else
/// `~/.cache/partita`, else the system temp dir.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("PARTITA_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("partita");
    }
    if let Some(p) = std::env::var_os("HOME") {
        return PathBuf::from(p).join(".cache/partita");
    }
    std::env::temp_dir().join("partita-cache")
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// How a logged tool run ended, when it did not succeed.
#[derive(Debug)]
pub enum ToolFailure {
    /// It could not start, or the log could not be written.
    Start(String),
    /// It ran past its time limit and was killed.
    Timeout,
    /// It exited unsuccessfully; the last lines of its log.
    Failed(String),
}

/// Run `cmd` with stdout and stderr in `log_path`, killing it after `limit`. Every external
/// tool partita runs (Verilator, the compiler, Yosys, nextpnr) goes through here, so none
/// can hang a run.
pub fn run_logged(cmd: &mut Command, log_path: &Path, limit: Duration) -> Result<(), ToolFailure> {
    let log = std::fs::File::create(log_path).map_err(|e| ToolFailure::Start(e.to_string()))?;
    let err = log
        .try_clone()
        .map_err(|e| ToolFailure::Start(e.to_string()))?;
    let mut child = cmd
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| ToolFailure::Start(e.to_string()))?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ToolFailure::Timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(ToolFailure::Start(e.to_string())),
        }
    };
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    Err(ToolFailure::Failed(
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    ))
}

/// Run a build step with its output in `<dir>/<what>.log`, killing it after BUILD_TIMEOUT.
fn run(cmd: &mut Command, what: &str, dir: &Path) -> Result<(), CosimError> {
    let log_path = dir.join(format!("{what}.log"));
    run_logged(cmd, &log_path, BUILD_TIMEOUT).map_err(|f| CosimError::Build {
        what: what.into(),
        log: match f {
            ToolFailure::Start(e) | ToolFailure::Failed(e) => e,
            ToolFailure::Timeout => format!("timed out after {} s", BUILD_TIMEOUT.as_secs()),
        },
        dir: dir.display().to_string(),
    })
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Built {
    pub library: PathBuf,
    /// Plusargs naming each engine's memory images (`+TOP.<top>.u_engine_<e>.load_w=FILE`, or
    /// `load_w_c<c>` per weight chunk):
    /// the images are read when an instance is created, not compiled into the model.
    pub plusargs: Vec<String>,
    /// True when the model came from the cache.
    pub cached: bool,
    pub seconds: f64,
}

/// What a build compiles, and its cache key.
struct Prepared {
    sources: Vec<PathBuf>,
    plusargs: Vec<String>,
    top: String,
    key: u64,
}

/// The sources (`files.f` but `opts.skip`), the engine images' plusargs and the cache key of
/// the model for `rtl_dir`.
fn prepare(rtl_dir: &Path, opts: &BuildOptions) -> Result<Prepared, CosimError> {
    let rtl_dir = rtl_dir.canonicalize().map_err(|e| io(rtl_dir, e))?;
    let list_path = rtl_dir.join("files.f");
    let list = std::fs::read_to_string(&list_path).map_err(|e| io(&list_path, e))?;
    let sources: Vec<PathBuf> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .filter(|l| opts.skip.as_deref() != Some(*l))
        .map(|l| rtl_dir.join(l))
        .collect();
    let version = Command::new("verilator")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // Engine images are read at run time (plusargs), so the key holds the RTL only: the same
    // design in another directory, or with other weights, reuses the model.
    let top = opts.top.clone().unwrap_or_else(|| "partita_top".into());
    let mut plusargs = Vec::new();
    for e in 0.. {
        let b = rtl_dir.join(format!("bias_e{e}.hex"));
        if !b.exists() {
            break;
        }
        let inst = format!("TOP.{top}.u_engine_{e}");
        // One weight image, or one per chunk (weights_e<e>_c<c>.hex, block load_w_c<c>).
        let w = rtl_dir.join(format!("weights_e{e}.hex"));
        if w.exists() {
            plusargs.push(format!("+{inst}.load_w={}", w.display()));
        }
        for c in 0.. {
            let w = rtl_dir.join(format!("weights_e{e}_c{c}.hex"));
            if !w.exists() {
                break;
            }
            plusargs.push(format!("+{inst}.load_w_c{c}={}", w.display()));
        }
        plusargs.push(format!(
            "+{inst}.load_b={}",
            rtl_dir.join(format!("bias_e{e}.hex")).display()
        ));
    }
    // CNN stages: st<i>_w<e>.hex and st<i>_b<e>.hex for engine e of stage i.
    let mut stage_images: Vec<(usize, usize)> = std::fs::read_dir(&rtl_dir)
        .map_err(|e| io(&rtl_dir, e))?
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            let n = d.file_name().to_string_lossy().into_owned();
            let (st, e) = n
                .strip_prefix("st")?
                .strip_suffix(".hex")?
                .split_once("_w")?;
            Some((st.parse().ok()?, e.parse().ok()?))
        })
        .collect();
    stage_images.sort_unstable();
    for (st, e) in stage_images {
        let inst = format!("TOP.{top}.u_st{st}");
        plusargs.push(format!(
            "+{inst}.load_w{e}={}",
            rtl_dir.join(format!("st{st}_w{e}.hex")).display()
        ));
        plusargs.push(format!(
            "+{inst}.load_b{e}={}",
            rtl_dir.join(format!("st{st}_b{e}.hex")).display()
        ));
    }
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    for s in &sources {
        fnv(
            &mut key,
            s.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        fnv(&mut key, &std::fs::read(s).map_err(|e| io(s, e))?);
    }
    fnv(&mut key, WRAPPER.as_bytes());
    fnv(&mut key, VLT_CONFIG.as_bytes());
    for f in BUILD_FLAGS {
        fnv(&mut key, f.as_bytes());
    }
    fnv(&mut key, version.as_bytes());
    fnv(&mut key, &[opts.trace as u8, opts.ports as u8]);
    fnv(&mut key, top.as_bytes());
    Ok(Prepared {
        sources,
        plusargs,
        top,
        key,
    })
}

/// Build (or find in the cache) the model for the RTL in `rtl_dir` (which holds `files.f`).
pub fn build(rtl_dir: &Path, opts: &BuildOptions) -> Result<Built, CosimError> {
    let t0 = Instant::now();
    if !have("verilator") {
        return Err(CosimError::MissingTool {
            tool: "verilator".into(),
        });
    }
    let Prepared {
        sources,
        plusargs,
        top,
        key,
    } = prepare(rtl_dir, opts)?;
    let root = opts.cache.clone().unwrap_or_else(cache_root);
    let dir = root.join("models").join(format!("{key:016x}"));
    let lib = dir.join("libpartita_model.so");
    if lib.exists() {
        return Ok(Built {
            library: lib,
            plusargs,
            cached: true,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    // Unique per build, also between threads of one process.
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let work = root
        .join("models")
        .join(format!("{key:016x}.tmp{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| io(&work, e))?;
    let ccache = have("ccache");
    let obj = work.join("obj");
    let vlt = work.join("partita.vlt");
    std::fs::write(&vlt, VLT_CONFIG).map_err(|e| io(&vlt, e))?;
    let jobs = match opts.jobs {
        0 => cores(),
        j => j,
    }
    .to_string();
    let mut v = Command::new("verilator");
    v.args([
        "--cc",
        "--build",
        "-j",
        &jobs,
        "-O3",
        "--prefix",
        "Vpartita_top",
        "--top-module",
        &top,
        "+define+PARTITA_COSIM",
        "--Mdir",
    ])
    .arg(&obj)
    .arg(&vlt)
    .args(BUILD_FLAGS)
    .args(&sources);
    if opts.trace {
        v.arg("--trace-fst");
    }
    if ccache {
        v.env("OBJCACHE", "ccache");
    }
    let root = Command::new("verilator")
        .args(["--getenv", "VERILATOR_ROOT"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "/usr/share/verilator".into());
    let inc = PathBuf::from(&root).join("include");
    std::fs::write(work.join("wrapper.cpp"), WRAPPER).map_err(|e| io(&work, e))?;
    // Verilator's runtime does not depend on the model: it compiles while Verilator runs.
    let mut runtime = vec![inc.join("verilated.cpp"), inc.join("verilated_threads.cpp")];
    if opts.trace {
        runtime.push(inc.join("verilated_fst_c.cpp"));
    }
    let compile = |n: usize, src: &Path| -> Result<PathBuf, CosimError> {
        let o = work.join(format!("u{n}.o"));
        let mut c = if ccache {
            let mut c = Command::new("ccache");
            c.arg("g++");
            c
        } else {
            Command::new("g++")
        };
        c.args(["-c", "-fPIC", "-O2", "-std=gnu++17", "-faligned-new"])
            .args(["-DVL_USER_FATAL", "-DVL_USER_WARN"])
            .arg(format!("-DPARTITA_TRACE={}", opts.trace as u8))
            .arg(format!("-DPARTITA_PORTS={}", opts.ports))
            .arg(format!("-DVM_TRACE={}", opts.trace as u8))
            .arg(format!("-DVM_TRACE_FST={}", opts.trace as u8))
            .arg("-I")
            .arg(&obj)
            .arg("-I")
            .arg(&inc)
            .arg("-I")
            .arg(inc.join("vltstd"))
            .arg(src)
            .arg("-o")
            .arg(&o);
        run(&mut c, &format!("compile-{n}"), &work)?;
        Ok(o)
    };
    let (model, runtime) = std::thread::scope(|scope| {
        let side = scope.spawn(|| {
            runtime
                .iter()
                .enumerate()
                .map(|(n, src)| compile(n + 1, src))
                .collect::<Result<Vec<_>, _>>()
        });
        let model = run(&mut v, "verilator", &work);
        let runtime = side
            .join()
            .unwrap_or_else(|_| Err(io(&work, "the runtime compile thread panicked")));
        (model, runtime)
    });
    model?;
    let mut objects = vec![compile(0, &work.join("wrapper.cpp"))?];
    objects.extend(runtime?);
    let mut link = Command::new("g++");
    link.args(["-shared", "-o"])
        .arg(work.join("libpartita_model.so"))
        .args(&objects)
        .arg(obj.join("Vpartita_top__ALL.a"))
        .arg("-pthread");
    if opts.trace {
        link.arg("-lz");
    }
    run(&mut link, "link", &work)?;
    // Publish atomically: another process may have built the same key meanwhile.
    if std::fs::rename(&work, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&work);
    }
    if !lib.exists() {
        return Err(io(&lib, "the build finished but the library is missing"));
    }
    Ok(Built {
        library: lib,
        plusargs,
        cached: false,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Cores of this machine (1 when it cannot tell).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// [`build`] for several designs (a multi-device system's devices), as many at once as the
/// machine has cores, the cores shared out between them: a build is one single-threaded
/// Verilator run and then a parallel C++ compile, so two builds side by side keep both cores
/// busy through the Verilator runs. Results come back in the order of `jobs`.
pub fn build_all(jobs: &[(PathBuf, BuildOptions)]) -> Vec<Result<Built, CosimError>> {
    // Jobs with the same cache key (devices of one node design) build once: the first of them
    // builds, the others take its model with their own memory images.
    let t0 = Instant::now();
    let preps: Vec<Option<Prepared>> = jobs.iter().map(|(d, o)| prepare(d, o).ok()).collect();
    let keys: Vec<Option<u64>> = preps.iter().map(|p| p.as_ref().map(|p| p.key)).collect();
    let first = |i: usize| match keys[i] {
        Some(k) => keys.iter().position(|x| *x == Some(k)).unwrap_or(i),
        None => i,
    };
    let unique: Vec<usize> = (0..jobs.len()).filter(|&i| first(i) == i).collect();
    let workers = cores().clamp(1, unique.len().max(1));
    let share = (cores() / workers).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<Built, CosimError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let u = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = unique.get(u) else {
                            break mine;
                        };
                        let (dir, opts) = &jobs[i];
                        let mut o = opts.clone();
                        if o.jobs == 0 {
                            o.jobs = share;
                        }
                        mine.push((i, build(dir, &o)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let built: Vec<Option<Result<Built, CosimError>>> = (0..jobs.len())
        .map(|i| {
            done.iter()
                .position(|(j, _)| *j == i)
                .map(|p| done[p].1.clone())
        })
        .collect();
    (0..jobs.len())
        .map(|i| match &built[first(i)] {
            None => Err(io(&jobs[i].0, "the build thread stopped without a result")),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(b)) if first(i) == i => Ok(b.clone()),
            // The same sources as the first: its model, with this job's memory images.
            Some(Ok(b)) => Ok(Built {
                library: b.library.clone(),
                plusargs: preps[i]
                    .as_ref()
                    .map(|p| p.plusargs.clone())
                    .unwrap_or_default(),
                cached: true,
                seconds: t0.elapsed().as_secs_f64(),
            }),
        })
        .collect()
}

type NewFn = unsafe extern "C" fn(i32, *const *const std::ffi::c_char) -> *mut std::ffi::c_void;
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);
type StepFn = unsafe extern "C" fn(*mut std::ffi::c_void, *const PinsIn, *mut PinsOut);
type StepNodeFn = unsafe extern "C" fn(*mut std::ffi::c_void, *const NodeIn, *mut NodeOut);
type ProblemFn = unsafe extern "C" fn() -> *const std::ffi::c_char;
type TraceFn = unsafe extern "C" fn(*mut std::ffi::c_void, *const std::ffi::c_char) -> i32;

/// One instance of a built model.
pub struct Model {
    handle: *mut std::ffi::c_void,
    step_fn: StepFn,
    step_node_fn: StepNodeFn,
    free_fn: FreeFn,
    trace_fn: TraceFn,
    problem_fn: ProblemFn,
    /// Keeps the library mapped while the instance lives.
    _lib: libloading::Library,
    pub cycles: u64,
    /// The node identity applied on every node step.
    dev_id: u32,
}

impl Model {
    /// Load a built library and create an instance. `$readmemh` files (the engines' images
    /// named in `built.plusargs` among them) are read now.
    pub fn load(built: &Built) -> Result<Model, CosimError> {
        let path = built.library.as_path();
        // Plusargs as C strings ("partita" standing for argv[0]); a NUL in a path is refused.
        let args: Vec<std::ffi::CString> = std::iter::once("partita".to_string())
            .chain(built.plusargs.iter().cloned())
            .map(std::ffi::CString::new)
            .collect::<Result<_, _>>()
            .map_err(|e| CosimError::Load {
                path: path.display().to_string(),
                why: format!("a memory image path holds a NUL byte: {e}"),
            })?;
        let argv: Vec<*const std::ffi::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let argc = i32::try_from(argv.len()).map_err(|_| CosimError::Load {
            path: path.display().to_string(),
            why: "too many memory images".into(),
        })?;
        let fail = |e: libloading::Error| CosimError::Load {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        // SAFETY: the library is one we built from WRAPPER; its symbols have the declared types.
        unsafe {
            let lib = libloading::Library::new(path).map_err(fail)?;
            let new: NewFn = *lib.get::<NewFn>(b"pt_new\0").map_err(fail)?;
            let step_fn: StepFn = *lib.get::<StepFn>(b"pt_step\0").map_err(fail)?;
            let step_node_fn: StepNodeFn =
                *lib.get::<StepNodeFn>(b"pt_step_node\0").map_err(fail)?;
            let free_fn: FreeFn = *lib.get::<FreeFn>(b"pt_free\0").map_err(fail)?;
            let trace_fn: TraceFn = *lib.get::<TraceFn>(b"pt_trace\0").map_err(fail)?;
            let problem_fn: ProblemFn = *lib.get::<ProblemFn>(b"pt_problem\0").map_err(fail)?;
            // The context copies the arguments; `args` outlives the call.
            let handle = new(argc, argv.as_ptr());
            let model = Model {
                handle,
                step_fn,
                step_node_fn,
                free_fn,
                trace_fn,
                problem_fn,
                _lib: lib,
                cycles: 0,
                dev_id: 0,
            };
            // $readmemh files were read by the constructor: any problem stops here.
            match model.problem() {
                None => Ok(model),
                Some(why) => Err(CosimError::Model {
                    path: path.display().to_string(),
                    why,
                }),
            }
        }
    }

    /// The first fatal error or warning Verilator raised in this model's library, if any.
    pub fn problem(&self) -> Option<String> {
        // SAFETY: the function returns null or a NUL-terminated string owned by the library,
        // which self keeps loaded; it is copied before returning.
        unsafe {
            let p = (self.problem_fn)();
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// Start an FST dump (the model must have been built with `trace`).
    pub fn trace(&mut self, path: &Path) -> Result<(), CosimError> {
        let c = CString::new(path.display().to_string()).map_err(|e| io(path, e))?;
        // SAFETY: handle is live; the string outlives the call.
        let ok = unsafe { (self.trace_fn)(self.handle, c.as_ptr()) };
        if ok == 1 {
            Ok(())
        } else {
            Err(io(path, "this model was built without tracing"))
        }
    }

    /// Apply `pins`, sample the outputs, and clock one rising edge.
    pub fn step(&mut self, pins: &PinsIn) -> PinsOut {
        let mut out = PinsOut::default();
        // SAFETY: handle is live and owned by self; both structs match the C layout.
        unsafe { (self.step_fn)(self.handle, pins, &mut out) };
        self.cycles += 1;
        out
    }
}

impl Model {
    /// Which device of its node design this instance is (the node's `dev_id` input, applied
    /// on every [`Model::step_node`]); 0 until set.
    pub fn set_identity(&mut self, dev: usize) {
        self.dev_id = dev as u32;
    }

    /// One cycle of a multi-device node (built with `ports` > 0): device pins and link ports.
    pub fn step_node(&mut self, pins: &NodeIn) -> NodeOut {
        let mut out = NodeOut::default();
        let mut pins = *pins;
        pins.pins.dev_id = self.dev_id;
        // SAFETY: as in `step`; the wrapper ignores link fields it was built without.
        unsafe { (self.step_node_fn)(self.handle, &pins, &mut out) };
        self.cycles += 1;
        out
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: handle came from pt_new and is freed exactly once.
        unsafe { (self.free_fn)(self.handle) };
    }
}
