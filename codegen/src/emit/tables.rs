//! The activation tables (`templates/partita_act.v`, PWL coefficient ROM and one multiplier, or
//! a LUT) and the plan-shaped files every device has: row engine and the three tables.

use askama::Template;

use super::engine::EngineView;
use super::verilog::{header, konst, module_file, render, sext, zext, File, Names};
use crate::arch::lstm::ACT_LATENCY;
use crate::design::{Design, LstmDesign};
use crate::fixed::{signed_bits, Rounding};
use crate::passes::act_table::ActTable;
use crate::plan::ActMethod;

#[derive(Template)]
#[template(path = "partita_act.v", escape = "none")]
pub(crate) struct ActView {
    header: String,
    module: String,
    func: &'static str,
    input_fmt: String,
    output_fmt: String,
    method: String,
    pieces: usize,
    lo: f64,
    hi: f64,
    max_err: String,
    iw: u32,
    ow: u32,
    x_ext: String,
    lo_const: String,
    last_const: String,
    last: u64,
    rel_w: u32,
    kw: u32,
    shift: u32,
    is_lut: bool,
    entries: Vec<String>,
    coeffs: Vec<(String, String)>,
    c0w: u32,
    c1w: u32,
    accw: u32,
    c0_ext: String,
    c1_ext: String,
    off_ext: String,
    guard: u32,
    round_ne: u32,
    lat: u32,
}

pub(crate) fn act_view(
    design: &Design,
    module: &str,
    name: &str,
    t: &ActTable,
) -> Result<ActView, String> {
    let iw = t.input.width();
    let ow = t.output.width();
    let shift = t.grid.step_shift;
    let pieces = t.grid.pieces;
    if pieces < 2 {
        return Err(format!(
            "the {name} table needs at least 2 pieces for hardware"
        ));
    }
    if t.method == ActMethod::Pwl && shift == 0 {
        return Err(format!(
            "the {name} table has one input code per segment; use fewer segments (or method = \"lut\")"
        ));
    }
    let kw = pieces.trailing_zeros();
    let rel_w = kw + shift;
    let last = ((pieces as u64) << shift) - 1;
    let c0w = signed_bits(&t.values).max(2);
    let c1w = signed_bits(&t.slopes).max(2);
    let accw = c0w.max(c1w + shift + 1) + 1;
    let lo_code = t.grid.lo_code;
    let (lo, hi) = (
        t.input.to_f64(lo_code),
        t.input.to_f64(lo_code + last as i64 + 1),
    );
    Ok(ActView {
        header: header(design),
        module: module.to_string(),
        func: t.func.name(),
        input_fmt: t.input.to_string(),
        output_fmt: t.output.to_string(),
        method: t.method.to_string(),
        pieces,
        lo,
        hi,
        max_err: format!("{:.3e}", t.max_abs_error),
        iw,
        ow,
        x_ext: sext("x", iw, iw + 1),
        lo_const: konst(lo_code, iw + 1),
        last_const: konst(last as i64, iw + 1),
        last,
        rel_w,
        kw,
        shift,
        is_lut: t.method == ActMethod::Lut,
        entries: t.values.iter().map(|v| konst(*v, ow)).collect(),
        coeffs: t
            .values
            .iter()
            .zip(&t.slopes)
            .map(|(c0, c1)| (konst(*c0, c0w), konst(*c1, c1w)))
            .collect(),
        c0w,
        c1w,
        accw,
        c0_ext: sext("c0_3", c0w, accw),
        c1_ext: sext("c1_2", c1w, accw),
        off_ext: zext("off_2", shift.max(1), accw),
        guard: t.guard,
        round_ne: (t.rounding == Rounding::NearestEven) as u32,
        lat: ACT_LATENCY,
    })
}

/// Render the plan-shaped files every device has: row engine and activation tables.
pub(crate) fn datapath_files(
    design: &Design,
    m: &LstmDesign,
    names: &Names,
    engine: EngineView,
) -> Result<Vec<File>, String> {
    let mut files = vec![module_file(&names.engine, render(engine.render())?)];
    for (module, name, t) in [
        (&names.sigmoid, "sigmoid", &m.tables.sigmoid),
        (&names.tanh, "tanh", &m.tables.tanh),
        (&names.tanh_cell, "tanh_cell", &m.tables.tanh_cell),
    ] {
        files.push(module_file(
            module,
            render(act_view(design, module, name, t)?.render())?,
        ));
    }
    Ok(files)
}
