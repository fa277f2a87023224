//! Board wrappers (`partita gen --board xdma`): a Verilog top that puts a device behind a
//! Xilinx XDMA core in AXI4-Stream mode (template `partita_xdma_top.v`) and the Vivado Tcl that
//! builds the block design around it for the plan's part (`partita_xdma.tcl`).
//!
//! The XDMA core's AXI4-Lite master drives the device's registers (12 address bits decoded),
//! stream channel 0 carries the input (host to card) and the output (card to host), and for a
//! device of a host-relayed system (`mode = "host"`) channel 1 carries its link port: the
//! frames it sends the host to relay, and those the host relays to it. The streams' width is
//! the core's: the plan's `stream_bits` (and its link width, when relayed) must be 64, 128,
//! 256 or 512.

use askama::Template;

use super::harness::top_ports;
use super::verilog::{header, render, top_module, File};
use crate::design::Design;

/// The XDMA core's AXI4-Stream widths.
pub const XDMA_WIDTHS: [u32; 4] = [64, 128, 256, 512];

struct ConnView {
    port: String,
    signal: String,
}

#[derive(Template)]
#[template(path = "partita_xdma_top.v", escape = "none")]
struct XdmaTopView {
    header: String,
    me: usize,
    top: String,
    doc: Vec<String>,
    busifs: String,
    dw_hi: u32,
    kw: u32,
    kw_hi: u32,
    link: bool,
    conns: Vec<ConnView>,
}

#[derive(Template)]
#[template(path = "partita_xdma.tcl", escape = "none")]
struct XdmaTclView<'a> {
    version: &'a str,
    plan_name: &'a str,
    plan_hash: String,
    me: usize,
    project: String,
    part: &'a str,
    lanes: &'static str,
    speed: &'static str,
    dw: u32,
    channels: u32,
    link: bool,
    sources: Vec<String>,
    images: Vec<String>,
}

/// A Vivado part name as Vivado spells it (`xcu280-fsvh2892-2L-e`), or why not.
pub fn check_part(part: &str) -> Result<(), String> {
    let ok = part.starts_with("xc")
        && part.len() <= 40
        && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{part}` is not a Xilinx part name (letters, digits and dashes, starting with xc, such as xcu280-fsvh2892-2L-e)"
        ))
    }
}

/// The wrapper and the Tcl for device `device` on `part`: `sources` are its Verilog files in
/// `files.f` order, `images` its `$readmemh` files (names within its directory).
pub fn xdma(
    design: &Design,
    device: usize,
    sources: &[String],
    images: &[String],
    part: &str,
) -> Result<Vec<File>, String> {
    check_part(part)?;
    let ports = top_ports(design, device)?;
    let width = |n: &str| ports.iter().find(|p| p.name == n).map(|p| p.width);
    let (din, dout) = (width("s_axis_tdata"), width("m_axis_tdata"));
    let dw = match (din, dout) {
        (Some(a), Some(b)) if a == b && XDMA_WIDTHS.contains(&a) => a,
        _ => {
            return Err(format!(
                "the XDMA core's streams are 64, 128, 256 or 512 bits wide, and device {device}'s are {} in and {} out: set stream_bits = 64 (or 128, 256, 512) in [target]",
                din.unwrap_or(0),
                dout.unwrap_or(0)
            ))
        }
    };
    let link_ports: Vec<usize> = {
        let mut v: Vec<usize> = ports.iter().filter_map(|p| p.link.map(|l| l.0)).collect();
        v.dedup();
        v
    };
    let host = design.plan.plan.target.link.mode == crate::plan::LinkMode::Host;
    let link = !link_ports.is_empty();
    if link && (!host || link_ports.len() != 1) {
        return Err(
            "the XDMA wrapper carries a device's links over the core's second DMA channel, so the host relays them: set mode = \"host\" in [target.link] (direct links between boards need transceivers, which partita does not wrap yet)".into(),
        );
    }
    if link && width("l0_tx_tdata") != Some(dw) {
        return Err(format!(
            "the host relays device {device}'s link over the XDMA core's {dw}-bit channel 1: set [target.link] width = {dw} (it is {})",
            width("l0_tx_tdata").unwrap_or(0)
        ));
    }
    let mut conns = Vec::new();
    for p in &ports {
        let signal = match (p.name.as_str(), p.link) {
            ("clk", _) => "aclk".to_string(),
            ("rst_n", _) => "aresetn".to_string(),
            ("s_axil_awaddr", _) => "s_axil_awaddr[11:0]".to_string(),
            ("s_axil_araddr", _) => "s_axil_araddr[11:0]".to_string(),
            (_, Some((_, sig))) => match sig {
                "tx_tdata" => "m_axis_link_tdata",
                "tx_tvalid" => "m_axis_link_tvalid",
                "tx_tready" => "m_axis_link_tready",
                "tx_tlast" => "m_axis_link_tlast",
                "rx_tdata" => "s_axis_link_tdata",
                "rx_tvalid" => "s_axis_link_tvalid",
                "rx_tready" => "s_axis_link_tready",
                _ => "s_axis_link_tlast",
            }
            .to_string(),
            (n, None) => n.to_string(),
        };
        conns.push(ConnView {
            port: p.name.clone(),
            signal,
        });
    }
    let mut doc = vec![
        format!("AXI4-Stream channel 0 carries x in and the output back, {dw} bits per beat (the plan's stream layout)."),
        "aclk is the core's axi_aclk; aresetn its axi_aresetn (the device's active-low reset).".to_string(),
    ];
    if link {
        doc.push(format!(
            "Channel 1 carries link port 0: frames the host relays (host-relayed links), {dw} bits per beat."
        ));
    }
    let busifs = if link {
        "s_axil:s_axis:m_axis:s_axis_link:m_axis_link"
    } else {
        "s_axil:s_axis:m_axis"
    };
    let top = XdmaTopView {
        header: header(design),
        me: device,
        top: top_module(design, device),
        doc,
        busifs: busifs.into(),
        dw_hi: dw - 1,
        kw: dw / 8,
        kw_hi: dw / 8 - 1,
        link,
        conns,
    };
    let (lanes, speed) = match dw {
        64 => ("X2", "8.0_GT/s"),
        128 => ("X4", "8.0_GT/s"),
        256 => ("X8", "8.0_GT/s"),
        _ => ("X16", "8.0_GT/s"),
    };
    let tcl = XdmaTclView {
        version: crate::VERSION,
        plan_name: &design.plan.name,
        plan_hash: format!("{:016x}", design.plan.plan_hash),
        me: device,
        project: format!("partita_dev{device}"),
        part,
        lanes,
        speed,
        dw,
        channels: if link { 2 } else { 1 },
        link,
        sources: sources.to_vec(),
        images: images.to_vec(),
    };
    Ok(vec![
        File {
            name: "partita_xdma_top.v".into(),
            text: render(top.render())?,
        },
        File {
            name: "partita_xdma.tcl".into(),
            text: render(tcl.render())?,
        },
    ])
}
