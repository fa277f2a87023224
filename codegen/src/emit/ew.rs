//! The element-wise unit (`templates/partita_ew.v`): four pre-activations in, c' = f·c + i·g
//! into the cell memory and h' = o·tanh(c') out, with its own sigmoid and tanh units. Widths
//! and alignments come from `arch::lstm::EwWidths`; this module writes the expressions.

use askama::Template;

use super::verilog::{header, module_file, render, sext, File, Names};
use crate::arch::lstm::Datapath;
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
    oh_w: u32,
    h_shr: u32,
    h_shl: u32,
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
            oh_w: e.oh_w,
            h_shr: e.h_shr,
            h_shl: e.h_shl,
            fc_aligned: align("fc3", e.fc_w, e.fc_ext, e.fc_shift),
            ig_aligned: align("ig3", e.ig_w, e.ig_ext, e.ig_shift),
            oh_expr: format!(
                "$signed({}) * $signed({})",
                sext("o5", e.gw, e.oh_w),
                sext("tc5", e.gw, e.oh_w)
            ),
            fc_expr: format!(
                "$signed({}) * $signed({})",
                sext("f2", e.gw, e.fc_w),
                sext("c2", e.cell_w, e.fc_w)
            ),
            ig_expr: format!(
                "$signed({}) * $signed({})",
                sext("i2", e.gw, e.ig_w),
                sext("g2", e.gw, e.ig_w)
            ),
        }
    }
}

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
    };
    Ok(module_file(&names.ew, render(v.render())?))
}
