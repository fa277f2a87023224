//! The element-wise unit (`templates/partita_ew.v`): four pre-activations in, c' = f·c + i·g
//! into the cell memory and h' = o·tanh(c') out, with its own sigmoid and tanh units. Widths
//! and alignments come from `arch::lstm::EwWidths`; this module writes the expressions.

use askama::Template;

use super::verilog::{header, module_file, render, sext, File, Names};
use crate::arch::lstm::{Datapath, ACT_LATENCY, EW_LATENCY};
use crate::design::Design;

/// The products and aligned terms of the unit, as Verilog expressions.
pub(crate) struct Exprs {
    dw: u32,
    pre_w: u32,
    round_ne: u32,
    sat: u32,
    cell_w: u32,
    gw: u32,
    fc_w: u32,
    ig_w: u32,
    csum_w: u32,
    cell_shr: u32,
    cell_shl: u32,
    cell_rw: u32,
    oh_w: u32,
    h_shr: u32,
    h_shl: u32,
    h_rw: u32,
    fc_aligned: String,
    ig_aligned: String,
    /// Full-width products o*tanh(c), f*c and i*g.
    oh_expr: String,
    fc_expr: String,
    ig_expr: String,
}

impl Exprs {
    fn new(dp: &Datapath) -> Exprs {
        let e = &dp.ew;
        // {sign extension, name, zero bits}: the sign comes from `name` itself, since
        // Verilog-2005 cannot bit-select a concatenation.
        let align = |name: &str, w: u32, ext: u32, sh: u32| {
            let mut parts = Vec::new();
            if ext > 0 {
                parts.push(format!("{{{ext}{{{name}[{}]}}}}", w - 1));
            }
            parts.push(name.to_string());
            if sh > 0 {
                parts.push(format!("{sh}'d0"));
            }
            if parts.len() == 1 {
                name.to_string()
            } else {
                format!("{{{}}}", parts.join(", "))
            }
        };
        Exprs {
            dw: e.dw,
            pre_w: e.pre_w,
            round_ne: dp.round_ne as u32,
            sat: dp.sat as u32,
            cell_w: e.cell_w,
            gw: e.gw,
            fc_w: e.fc_w,
            ig_w: e.ig_w,
            csum_w: e.csum_w,
            cell_shr: e.cell_shr,
            cell_shl: e.cell_shl,
            cell_rw: e.cell_rw,
            oh_w: e.oh_w,
            h_shr: e.h_shr,
            h_shl: e.h_shl,
            h_rw: e.h_rw,
            fc_aligned: align("fc_p", e.fc_w, e.fc_ext, e.fc_shift),
            ig_aligned: align("ig_p", e.ig_w, e.ig_ext, e.ig_shift),
            oh_expr: format!(
                "$signed({}) * $signed({})",
                sext(&format!("od[{}]", Stages::TS), e.gw, e.oh_w),
                sext("tc_a", e.gw, e.oh_w)
            ),
            fc_expr: format!(
                "$signed({}) * $signed({})",
                sext("f_a", e.gw, e.fc_w),
                sext(&format!("cd[{}]", Stages::AS), e.cell_w, e.fc_w)
            ),
            ig_expr: format!(
                "$signed({}) * $signed({})",
                sext("i_a", e.gw, e.ig_w),
                sext("g_a", e.gw, e.ig_w)
            ),
        }
    }
}

/// Stage numbers of the unit's pipeline (stage 1 registers the input), from
/// `arch::lstm::{ACT_LATENCY, EW_LATENCY}`.
struct Stages;

impl Stages {
    /// Activations out.
    const AS: u32 = 1 + ACT_LATENCY;
    /// f·c and i·g; their sum; the sum rounded (full width); c' saturated.
    const PS: u32 = Self::AS + 1;
    const SS: u32 = Self::PS + 1;
    const RS: u32 = Self::SS + 1;
    const CS: u32 = Self::RS + 1;
    /// tanh(c') out; o·tanh(c'); h rounded (full width); h saturated at the output.
    const TS: u32 = Self::CS + ACT_LATENCY;
    const OS: u32 = Self::TS + 1;
    const HS: u32 = Self::OS + 1;
}

const _: () = assert!(Stages::HS + 1 == EW_LATENCY);

#[derive(Template)]
#[template(path = "partita_ew.v", escape = "none")]
struct EwView {
    header: String,
    name: String,
    w: Exprs,
    feed_w: u32,
    caw: u32,
    cdepth: usize,
    sigmoid: String,
    tanh: String,
    tanh_cell: String,
    cell_fmt: String,
    data_fmt: String,
    lat: u32,
    lat_less1: u32,
    ps_plus1: u32,
    act_lat: u32,
    as_: u32,
    ps: u32,
    ss: u32,
    rs: u32,
    cs: u32,
    ts: u32,
    os: u32,
    hs: u32,
}

/// The unit of a device whose cell memory holds `cdepth` states (address width `caw`).
pub(crate) fn file(
    design: &Design,
    names: &Names,
    dp: &Datapath,
    caw: u32,
    cdepth: usize,
) -> Result<File, String> {
    let q = design.quant();
    let v = EwView {
        header: header(design),
        name: names.ew.clone(),
        w: Exprs::new(dp),
        feed_w: 4 * dp.pre_w,
        caw,
        cdepth,
        sigmoid: names.sigmoid.clone(),
        tanh: names.tanh.clone(),
        tanh_cell: names.tanh_cell.clone(),
        cell_fmt: q.cell.to_string(),
        data_fmt: q.data.to_string(),
        lat: EW_LATENCY,
        lat_less1: EW_LATENCY - 1,
        ps_plus1: Stages::PS + 1,
        act_lat: ACT_LATENCY,
        as_: Stages::AS,
        ps: Stages::PS,
        ss: Stages::SS,
        rs: Stages::RS,
        cs: Stages::CS,
        ts: Stages::TS,
        os: Stages::OS,
        hs: Stages::HS,
    };
    Ok(module_file(&names.ew, render(v.render())?))
}
