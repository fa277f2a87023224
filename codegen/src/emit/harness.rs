//! The place-and-route harness of `partita synth` (template `partita_harness.v`): a top around
//! one device's top that takes its ports off the FPGA's pins. Not part of the generated RTL;
//! `partita synth` writes it beside the device's files when asked.
//!
//! - `loop_links`: each link port's transmitted data, valid and last return to its own receive
//!   side through one register stage (as a transceiver's PCS registers them); its two readies
//!   stay on pins.
//! - `core`: every other port except `clk` and `rst_n` is driven from a shift register fed by
//!   one input pin (`sin`) or read into a signature register (a rotating XOR of every output,
//!   shifted out on `sout`). On a board these ports connect to on-chip logic (an XDMA core or a
//!   processor system's AXI master, a DMA engine's streams), not to pads; on pins, the
//!   registers behind them are pulled out to the die's edge and the placement is spread.
//!   Every output still reaches `sout` and every input still comes from `sin`, so synthesis
//!   removes nothing.

use askama::Template;

use super::verilog::{header, module_file, render, top_module, File};
use crate::arch::cnn::CnnArch;
use crate::arch::lstm::{LstmArch, System};
use crate::design::{Design, ModelDesign};

/// The harness's module name.
pub const HARNESS: &str = "partita_harness";

/// One port of a device's top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub input: bool,
    pub width: u32,
    /// A link port's signal: the port's index and the signal's name within it (`tx_tdata`).
    pub link: Option<(usize, &'static str)>,
}

fn port(name: &str, input: bool, width: u32) -> Port {
    Port {
        name: name.into(),
        input,
        width,
        link: None,
    }
}

/// The ports of device `device`'s top, in declaration order.
pub fn top_ports(design: &Design, device: usize) -> Result<Vec<Port>, String> {
    let mut p = vec![port("clk", true, 1), port("rst_n", true, 1)];
    for (n, i, w) in [
        ("s_axil_awaddr", true, 12),
        ("s_axil_awvalid", true, 1),
        ("s_axil_awready", false, 1),
        ("s_axil_wdata", true, 32),
        ("s_axil_wstrb", true, 4),
        ("s_axil_wvalid", true, 1),
        ("s_axil_wready", false, 1),
        ("s_axil_bresp", false, 2),
        ("s_axil_bvalid", false, 1),
        ("s_axil_bready", true, 1),
        ("s_axil_araddr", true, 12),
        ("s_axil_arvalid", true, 1),
        ("s_axil_arready", false, 1),
        ("s_axil_rdata", false, 32),
        ("s_axil_rresp", false, 2),
        ("s_axil_rvalid", false, 1),
        ("s_axil_rready", true, 1),
    ] {
        p.push(port(n, i, w));
    }
    let (in_sb, out_sb) = match &design.model {
        ModelDesign::Cnn(_) => {
            let a = CnnArch::new(design)?;
            (a.in_layout.beat_bits, a.out_layout.beat_bits)
        }
        _ if design.plan.devices > 1 => {
            let sys = System::new(design)?;
            let n = sys.schedule.nodes.get(device).ok_or_else(|| {
                format!(
                    "device {device}: the plan has {} devices",
                    sys.schedule.nodes.len()
                )
            })?;
            let lw = sys.schedule.width;
            for k in 0..n.ports.len() {
                for (s, i, w) in [
                    ("tx_tdata", false, lw),
                    ("tx_tvalid", false, 1),
                    ("tx_tready", true, 1),
                    ("tx_tlast", false, 1),
                    ("rx_tdata", true, lw),
                    ("rx_tvalid", true, 1),
                    ("rx_tready", false, 1),
                    ("rx_tlast", true, 1),
                ] {
                    p.push(Port {
                        link: Some((k, s)),
                        ..port(&format!("l{k}_{s}"), i, w)
                    });
                }
            }
            let sb = sys.arch.dp.stream.beat_bits;
            (sb, sb)
        }
        _ => {
            let sb = LstmArch::new(design)?.dp.stream.beat_bits;
            (sb, sb)
        }
    };
    for (n, i, w) in [
        ("s_axis_tdata", true, in_sb),
        ("s_axis_tkeep", true, in_sb / 8),
        ("s_axis_tvalid", true, 1),
        ("s_axis_tready", false, 1),
        ("s_axis_tlast", true, 1),
        ("m_axis_tdata", false, out_sb),
        ("m_axis_tkeep", false, out_sb / 8),
        ("m_axis_tvalid", false, 1),
        ("m_axis_tready", true, 1),
        ("m_axis_tlast", false, 1),
    ] {
        p.push(port(n, i, w));
    }
    Ok(p)
}

struct PinView {
    input: bool,
    /// Bus ports: the high bit index (width - 1).
    hi: Option<u32>,
    name: String,
}

struct ConnView {
    port: String,
    signal: String,
}

/// The harness (`partita_harness.v`).
#[derive(Template)]
#[template(path = "partita_harness.v", escape = "none")]
struct HarnessView {
    header: String,
    name: String,
    top: String,
    me: usize,
    doc: Vec<String>,
    /// The harness's own ports after clk and rst_n.
    pins: Vec<PinView>,
    /// Signals of the device's ports that are wires inside the harness (core).
    wires: Vec<PinView>,
    /// Looped link ports, with their data width's high bit.
    loops: Vec<usize>,
    lw: u32,
    lw_hi: u32,
    core: bool,
    /// The shift register (inputs) and signature register (outputs), high bits of each and of
    /// each less its top bit.
    ni: u32,
    no: u32,
    ni_hi: u32,
    ni_hi1: u32,
    no_hi: u32,
    no_hi1: u32,
    ins: Vec<String>,
    outs: Vec<String>,
    conns: Vec<ConnView>,
}

/// The harness around device `device`'s top: `loop_links` (multi-device plans) loops each link
/// port back through a register stage; `core` takes every other port but clk and rst_n off the
/// pins, behind a shift register and a signature register. At least one of them.
pub fn harness(
    design: &Design,
    device: usize,
    loop_links: bool,
    core: bool,
) -> Result<File, String> {
    if !loop_links && !core {
        return Err(
            "a harness loops the link ports back, takes the ports off the pins, or both".into(),
        );
    }
    let ports = top_ports(design, device)?;
    // The link signals the loop replaces (each port's readies are not looped).
    let looped = |p: &Port| -> Option<(usize, &'static str)> {
        p.link
            .filter(|(_, sig)| loop_links && !sig.ends_with("_tready"))
    };
    let mut loops: Vec<usize> = ports
        .iter()
        .filter_map(|p| looped(p).map(|l| l.0))
        .collect();
    loops.dedup();
    if loop_links && loops.is_empty() {
        return Err(format!(
            "device {device} has no link ports to loop back (a one-device plan)"
        ));
    }
    let lw = ports
        .iter()
        .find(|p| p.name == "l0_tx_tdata")
        .map(|p| p.width)
        .unwrap_or(1);
    let (mut pins, mut wires, mut ins, mut outs, mut conns) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in &ports {
        let v = PinView {
            input: p.input,
            hi: (p.width > 1).then(|| p.width - 1),
            name: p.name.clone(),
        };
        let signal = if let Some((k, sig)) = looped(p) {
            match sig {
                "tx_tdata" => format!("l{k}_td"),
                "tx_tvalid" => format!("l{k}_tv"),
                "tx_tlast" => format!("l{k}_tl"),
                "rx_tdata" => format!("l{k}_rd"),
                "rx_tvalid" => format!("l{k}_rv"),
                _ => format!("l{k}_rl"),
            }
        } else if p.name == "clk" || p.name == "rst_n" || !core {
            if p.name != "clk" && p.name != "rst_n" {
                pins.push(v);
            }
            p.name.clone()
        } else {
            if p.input {
                ins.push(p.name.clone());
            } else {
                outs.push(p.name.clone());
            }
            wires.push(v);
            p.name.clone()
        };
        conns.push(ConnView {
            port: p.name.clone(),
            signal,
        });
    }
    let bits = |names: &[String]| -> u32 {
        names
            .iter()
            .map(|n| {
                ports
                    .iter()
                    .find(|p| &p.name == n)
                    .map(|p| p.width)
                    .unwrap_or(0)
            })
            .sum()
    };
    let (ni, no) = (bits(&ins), bits(&outs));
    let mut doc = Vec::new();
    if loop_links {
        doc.push(format!(
            "The {} link port(s) loop back: each port's transmitted data, valid and last return to its own receive side through one register stage (as a transceiver's PCS registers them); its two readies {}.",
            loops.len(),
            if core { "go with the other ports" } else { "stay on pins" }
        ));
    }
    if core {
        doc.push(format!(
            "The other ports but clk and rst_n are off the pins: {ni} input bits from a shift register fed by `sin`, {no} output bits into a signature register (each edge rotates it and XORs them in) shifted out on `sout`, as on-chip logic, not pads, would drive them on a board."
        ));
    } else {
        doc.push("clk, rst_n, AXI4-Lite and AXI4-Stream stay on pins.".into());
    }
    // (Without `core` the two registers are not written out; max(2) only keeps the unused
    // bounds valid numbers.)
    let view = HarnessView {
        header: header(design),
        doc: doc.iter().flat_map(|d| wrap(d, 96)).collect(),
        name: HARNESS.into(),
        top: top_module(design, device),
        me: device,
        pins,
        wires,
        loops,
        lw,
        lw_hi: lw - 1,
        core,
        ni: ni.max(2),
        no: no.max(2),
        ni_hi: ni.max(2) - 1,
        ni_hi1: ni.max(2) - 2,
        no_hi: no.max(2) - 1,
        no_hi1: no.max(2) - 2,
        ins,
        outs,
        conns,
    };
    Ok(module_file(HARNESS, render(view.render())?))
}

/// `text` in lines of at most `width` characters (words longer than that on their own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
