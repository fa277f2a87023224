//! What every emitter shares: the generated-file type and header, Verilog expression helpers,
//! module names, file lists, memory words, and the library cores a design copies.

use std::fmt::Write as _;

use askama::Template;

use crate::design::Design;

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// Sign-extend `expr` (width `from`) to `to` bits, as a Verilog expression.
pub fn sext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "sext {expr} from {from} to {to}");
    if to == from {
        expr.to_string()
    } else {
        format!("{{{{{}{{{}[{}]}}}}, {}}}", to - from, expr, from - 1, expr)
    }
}

/// Zero-extend `expr` (width `from`) to `to` bits.
pub fn zext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "zext {expr} from {from} to {to}");
    if to == from {
        expr.to_string()
    } else {
        format!("{{{}'d0, {}}}", to - from, expr)
    }
}

/// Resize `expr` (width `from`) to `to` bits, unsigned.
pub fn fit(expr: &str, from: u32, to: u32) -> String {
    if to >= from {
        zext(expr, from, to)
    } else {
        format!("{expr}[{}:0]", to - 1)
    }
}

/// A `width`-bit constant holding the two's-complement pattern of `v`.
pub fn konst(v: i64, width: u32) -> String {
    let mask = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    format!("{width}'h{:x}", (v as u64) & mask)
}

/// The low `n` bits of `m` as a binary literal body, most significant first.
pub fn mask_bits(m: u8, n: usize) -> String {
    (0..n)
        .rev()
        .map(|b| if m >> b & 1 == 1 { '1' } else { '0' })
        .collect()
}

/// The header every generated Verilog file starts with: generator version and plan hash, and
/// the one timescale every file (testbench included) shares.
pub(crate) fn header(design: &Design) -> String {
    format!("{}\n`timescale 1ns / 1ps", comment_header(design))
}

/// The header's comment lines.
fn comment_header(design: &Design) -> String {
    HeaderView {
        version: crate::VERSION,
        plan_name: &design.plan.name,
        plan_hash: &format!("{:016x}", design.plan.plan_hash),
    }
    .render()
    .expect("header template renders")
    .trim_end()
    .to_string()
}

#[derive(Template)]
#[template(path = "header.txt", escape = "none")]
struct HeaderView<'a> {
    version: &'a str,
    plan_name: &'a str,
    plan_hash: &'a str,
}

/// askama drops the template's final newline; POSIX text files (and Verilator) want it.
pub(crate) fn render(r: Result<String, askama::Error>) -> Result<String, String> {
    r.map(|t| t.trim_end().to_string() + "\n")
        .map_err(|e| format!("template error: {e}"))
}

/// Generator version as the VERSION register value: major << 16 | minor << 8 | patch.
pub fn version_word() -> u32 {
    let v = crate::VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0))
        .collect::<Vec<_>>();
    (v.first().copied().unwrap_or(0) << 16)
        | (v.get(1).copied().unwrap_or(0) << 8)
        | v.get(2).copied().unwrap_or(0)
}

/// Prefix of device `device`'s plan-shaped module names: `partita_` on a single device,
/// `partita_d{device}_` on a multi-device system, so every device's modules can be simulated
/// together (the library cores are the same on every device).
pub fn module_prefix(design: &Design, device: usize) -> String {
    if design.plan.devices > 1 {
        format!("partita_d{device}_")
    } else {
        "partita_".into()
    }
}

/// The top module of device `device`.
pub fn top_module(design: &Design, device: usize) -> String {
    Names::new(&module_prefix(design, device)).top
}

/// Prefix of multi-device node design `k`'s modules (`k`: the first device using it). Devices
/// whose hardware differs only in identity share a node design; each device's top
/// ([`top_module`]) ties its identity and instantiates the design's `node` module.
pub fn node_design_prefix(k: usize) -> String {
    format!("partita_n{k}_")
}

/// `files.f`: the Verilog files of one device, for vendor tools. `what` names the device in
/// the header ("" for a single-device design).
pub(crate) fn file_list(design: &Design, what: &str, top: &str, files: &[File]) -> File {
    let mut list = String::new();
    let _ = writeln!(
        list,
        "// partita {} file list (plan hash {:016x}){what}; top module {top}",
        crate::VERSION,
        design.plan.plan_hash
    );
    for f in files.iter().filter(|f| f.name.ends_with(".v")) {
        let _ = writeln!(list, "{}", f.name);
    }
    File {
        name: "files.f".into(),
        text: list,
    }
}

/// A memory word of any width, for `$readmemh`.
pub(crate) struct Word {
    limbs: Vec<u64>,
    bits: u32,
}

impl Word {
    pub(crate) fn new(bits: u32) -> Self {
        Word {
            limbs: vec![0; bits.div_ceil(64) as usize],
            bits,
        }
    }

    /// Put the low `width` bits of `v` at bit `at`.
    pub(crate) fn set(&mut self, at: u32, width: u32, v: u64) {
        for b in 0..width {
            if (v >> b) & 1 == 1 {
                let p = at + b;
                self.limbs[(p / 64) as usize] |= 1 << (p % 64);
            }
        }
    }

    pub(crate) fn hex(&self) -> String {
        (0..self.bits.div_ceil(4))
            .rev()
            .map(|n| {
                let p = n * 4;
                let nib = (self.limbs[(p / 64) as usize] >> (p % 64)) & 0xf;
                char::from_digit(nib as u32, 16).unwrap_or('0')
            })
            .collect()
    }
}

/// The names of a device's plan-shaped modules (each in a file of the same name).
pub(crate) struct Names {
    pub(crate) top: String,
    pub(crate) engine: String,
    pub(crate) ew: String,
    pub(crate) regs: String,
    pub(crate) reduce: String,
    pub(crate) vwrite: String,
    pub(crate) sigmoid: String,
    pub(crate) tanh: String,
    pub(crate) tanh_cell: String,
    /// A multi-device node design's identity module.
    pub(crate) ident: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Names {
        let n = |m: &str| format!("{prefix}{m}");
        Names {
            top: n("top"),
            engine: n("engine"),
            ew: n("ew"),
            regs: n("regs"),
            reduce: n("reduce"),
            vwrite: n("vwrite"),
            sigmoid: n("act_sigmoid"),
            tanh: n("act_tanh"),
            tanh_cell: n("act_tanh_cell"),
            ident: n("ident"),
        }
    }
}

/// The file of Verilog module `name`.
pub(crate) fn module_file(name: &str, text: String) -> File {
    File {
        name: format!("{name}.v"),
        text,
    }
}

/// Copies of the library cores a design instantiates (and what they need), each behind the
/// generated header.
pub(crate) fn core_files(design: &Design, used: &[partita_hdl::cores::Core]) -> Vec<File> {
    // The core's source carries its own timescale.
    let hdr = comment_header(design);
    partita_hdl::cores::closure(used)
        .into_iter()
        .map(|c| File {
            name: c.file(),
            text: format!(
                "{hdr}
// Library core hdl/rtl/{}: it does not depend on the plan.
{}",
                c.file(),
                c.source
            ),
        })
        .collect()
}

/// The link hub's stream connections for a device's `np` link ports (`l<p>_tx_*`,
/// `l<p>_rx_*`, the highest port first in each concatenation): the transmit side's four and
/// the receive side's four, each a line of `.port(signal)` connections.
pub(crate) struct HubConns {
    pub tx: String,
    pub rx: String,
}

impl HubConns {
    pub(crate) fn new(np: usize) -> HubConns {
        let cat = |name: &str| -> String {
            let parts: Vec<String> = (0..np).rev().map(|p| format!("l{p}_{name}")).collect();
            if parts.len() == 1 {
                parts[0].clone()
            } else {
                format!("{{{}}}", parts.join(", "))
            }
        };
        let line = |dir: &str| -> String {
            ["tdata", "tvalid", "tready", "tlast"]
                .iter()
                .map(|f| format!(".{dir}_{f}({})", cat(&format!("{dir}_{f}"))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        HubConns {
            tx: line("tx"),
            rx: line("rx"),
        }
    }
}
