//! The register map of a generated device, from the one table in `partita_hdl::regs`: the
//! Verilog decode (`templates/partita_regs.v`, in front of the library core `partita_axil`),
//! `regmap.json` and `partita_regs.h`.
//!
//! Every table register maps to the decode the same way: a constant (ID, version, plan hash,
//! geometry) is a case arm; any other read-only register is an input port named after it
//! (`SAT_COUNT` → `sat_count`); a read-write register is an output register named after it,
//! reset to the table's value. Only the commands (CTRL, WCOMMIT, the WDATA staging words) and
//! the composed STATUS, CYCLES and ERR_COUNT have their own arms.

use askama::Template;
use partita_hdl::regs::{self, Access, Reset, Word};

use super::verilog::render;
use crate::design::Design;

/// The words a device decodes: every register of its kind and `nwords` WDATA words.
pub fn device_map(node: bool, nwords: u32) -> Vec<Word> {
    regs::device_map(node, nwords)
}

/// The port of the decode module for a register: its name in lower case.
fn port(w: &Word) -> String {
    w.reg.name.to_ascii_lowercase()
}

/// How the decode treats a word.
enum Decode {
    Ctrl,
    Commit,
    Wdata,
    /// A read-only value: a constant, an internal signal, or an input port.
    Read(String),
    Input,
    Rw,
}

fn decode(w: &Word, value: &dyn Fn(&str) -> Option<u32>) -> Result<Decode, String> {
    Ok(match (w.reg.name, w.reg.access, w.reg.reset) {
        ("CTRL", ..) => Decode::Ctrl,
        ("WCOMMIT", ..) => Decode::Commit,
        ("WDATA", ..) => Decode::Wdata,
        ("STATUS", ..) => Decode::Read("{29'd0, err_flag || fault, done, busy}".into()),
        ("CYCLES_LO", ..) => Decode::Read("cycles[31:0]".into()),
        ("CYCLES_HI", ..) => Decode::Read("cycles[63:32]".into()),
        ("ERR_COUNT", ..) => Decode::Read("err_count".into()),
        (_, Access::R, Reset::Const(v)) => Decode::Read(format!("32'h{v:08x}")),
        // A design constant the caller has no value for (a node's NODE, from its identity) is
        // an input the top connects.
        (name, Access::R, Reset::Design) => match value(name) {
            Some(v) => Decode::Read(format!("32'h{v:08x}")),
            None => Decode::Input,
        },
        (_, Access::R, _) => Decode::Input,
        (_, Access::RW, _) => Decode::Rw,
        (name, Access::W, _) => return Err(format!("write-only register {name} has no decode")),
    })
}

struct RwReg {
    index: String,
    port: String,
    reset: String,
    /// Its bit in the registered write decode (`whit`).
    hit: usize,
}

struct ReadReg {
    index: String,
    expr: String,
}

/// A group of the read multiplexer's first level: its low bit in `rgrp`, and its registers'
/// bits in `rhit` with their values.
struct ReadGroup {
    lo: usize,
    terms: Vec<(usize, String)>,
}

struct WdataWord {
    index: String,
    word: u32,
    /// Its bit in the registered write decode (`whit`).
    hit: usize,
}

#[derive(Template)]
#[template(path = "partita_regs.v", escape = "none")]
pub(crate) struct RegsView {
    header: String,
    name: String,
    inputs: Vec<String>,
    rws: Vec<RwReg>,
    reads: Vec<ReadReg>,
    /// The readable registers in groups of [`READ_GROUP`] (their bits in `rhit`, their
    /// values), each group's AND-OR registered apart before the word's OR of the groups.
    rgroups: Vec<ReadGroup>,
    /// Bits of all the groups' registers (32 each).
    rgrp_w: usize,
    wdata: Vec<WdataWord>,
    ctrl: String,
    commit: String,
    wstage_w: u32,
    /// Registers and weight-staging words written through the registered decode.
    nwhit: usize,
}

/// A connection of the decode module's port to the top's signal.
pub(crate) struct Conn {
    pub(crate) port: String,
    pub(crate) expr: String,
}

/// The decode module for `map`, and how the top connects its table-derived ports: `value`
/// gives the design constants, `signal` the top's signal behind a register port.
pub(crate) fn decode_module(
    header: String,
    name: &str,
    map: &[Word],
    wstage_w: u32,
    value: &dyn Fn(&str) -> Option<u32>,
    signal: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Conn>), String> {
    let idx = |w: &Word| format!("{:03X}", w.index());
    let mut v = RegsView {
        header,
        name: name.to_string(),
        inputs: Vec::new(),
        rws: Vec::new(),
        reads: Vec::new(),
        rgroups: Vec::new(),
        rgrp_w: 0,
        wdata: Vec::new(),
        ctrl: String::new(),
        commit: String::new(),
        wstage_w,
        nwhit: 0,
    };
    let mut conns = Vec::new();
    for w in map {
        let mut connect = |w: &Word| -> Result<(), String> {
            let p = port(w);
            let expr = signal(w.reg.name)
                .ok_or(format!("the top has no signal for register {}", w.reg.name))?;
            conns.push(Conn { port: p, expr });
            Ok(())
        };
        match decode(w, value)? {
            Decode::Ctrl => {
                // CTRL reads as 0.
                v.ctrl = idx(w);
                v.reads.push(ReadReg {
                    index: idx(w),
                    expr: "32'd0".into(),
                });
            }
            Decode::Commit => v.commit = idx(w),
            Decode::Wdata => {
                v.wdata.push(WdataWord {
                    index: idx(w),
                    word: w.word,
                    hit: v.nwhit,
                });
                v.nwhit += 1;
            }
            Decode::Read(expr) => v.reads.push(ReadReg {
                index: idx(w),
                expr,
            }),
            Decode::Input => {
                v.inputs.push(port(w));
                v.reads.push(ReadReg {
                    index: idx(w),
                    expr: port(w),
                });
                connect(w)?;
            }
            Decode::Rw => {
                let Reset::Value(r) = w.reg.reset else {
                    return Err(format!(
                        "read-write register {} has no reset value",
                        w.reg.name
                    ));
                };
                v.rws.push(RwReg {
                    index: idx(w),
                    port: port(w),
                    reset: format!("{r:08x}"),
                    hit: v.nwhit,
                });
                v.nwhit += 1;
                v.reads.push(ReadReg {
                    index: idx(w),
                    expr: port(w),
                });
                connect(w)?;
            }
        }
    }
    v.rgroups = v
        .reads
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.expr.clone()))
        .collect::<Vec<_>>()
        .chunks(READ_GROUP)
        .enumerate()
        .map(|(g, c)| ReadGroup {
            lo: 32 * g,
            terms: c.to_vec(),
        })
        .collect();
    v.rgrp_w = 32 * v.rgroups.len();
    Ok((render(v.render())?, conns))
}

/// Readable registers per group of the read multiplexer's first level: four AND-OR terms,
/// two LUT levels per bit; the word then ORs the groups' registers.
const READ_GROUP: usize = 4;

/// The design constants every device reads back: version, plan hash and CONFIG0/1/2
/// (input_size << 16 | hidden_size; layers << 24 | engines << 16 | lanes << 8 | data width;
/// values per beat << 16 | stream tdata bits).
pub(crate) fn design_value(
    design: &Design,
    arch: &crate::arch::lstm::LstmArch,
    engines: usize,
    name: &str,
) -> Option<u32> {
    Some(match name {
        "VERSION" => super::verilog::version_word(),
        "PLAN_HASH_LO" => design.plan.plan_hash as u32,
        "PLAN_HASH_HI" => (design.plan.plan_hash >> 32) as u32,
        "CONFIG0" => ((arch.input_size as u32 & 0xffff) << 16) | (arch.hidden as u32 & 0xffff),
        "CONFIG1" => {
            ((arch.layers as u32 & 0xff) << 24)
                | ((engines as u32 & 0xff) << 16)
                | ((arch.dp.k as u32 & 0xff) << 8)
                | (arch.dp.dw & 0xff)
        }
        "CONFIG2" => (arch.dp.stream.per_beat << 16) | (arch.dp.stream.beat_bits & 0xffff),
        _ => return None,
    })
}

/// `regmap.json`: the top module, buses, geometry, fixed-point formats and every register word.
/// `extra` adds device-specific keys (a multi-device node's index, count and links).
pub(crate) fn json(
    design: &Design,
    top: &str,
    bus: serde_json::Value,
    geometry: serde_json::Value,
    extra: serde_json::Value,
    map: &[Word],
) -> String {
    let q = design.quant();
    let mut v = serde_json::json!({
        "generator": format!("partita {}", crate::VERSION),
        "plan_hash": format!("{:016x}", design.plan.plan_hash),
        "top": top,
        "bus": bus,
        "geometry": geometry,
        "formats": {
            "weight": q.weight.to_string(), "bias": q.bias.to_string(), "data": q.data.to_string(),
            "cell": q.cell.to_string(), "preact": q.preact.to_string(), "gate": q.gate.to_string(),
            "accumulator_bits": design.acc_bits, "rounding": q.rounding.to_string(), "overflow": q.overflow.to_string(),
        },
        "registers": json_registers(map),
    });
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The `registers` list of `regmap.json`.
pub(crate) fn json_registers(map: &[Word]) -> Vec<serde_json::Value> {
    map.iter()
        .map(|w| {
            serde_json::json!({
                "name": w.reg.name,
                "offset": w.offset(),
                "access": w.reg.access.name(),
                "doc": w.doc(),
            })
        })
        .collect()
}

/// `partita_regs.h`: the map as C defines, the ID value and the plan hash.
pub(crate) fn c_header(design: &Design, map: &[Word]) -> String {
    format!(
        "/* Generated by partita {} (plan hash {:016x}). AXI4-Lite register map. */\n\
         #ifndef PARTITA_REGS_H\n#define PARTITA_REGS_H\n\n{}\n\
         #define PARTITA_ID_VALUE 0x{:08X}u\n#define PARTITA_PLAN_HASH 0x{:016X}ull\n\n#endif\n",
        crate::VERSION,
        design.plan.plan_hash,
        regs::c_defines(map),
        regs::DEVICE_ID,
        design.plan.plan_hash
    )
}
