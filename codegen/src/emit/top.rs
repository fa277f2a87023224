//! A single-device LSTM (`templates/partita_top.v`): M row engines in lockstep from one slice
//! counter, the gate collector, the element-wise unit, the output FIFO and the AXI4-Lite
//! registers; plus the shared datapath files, memory images, register map, file list and,
//! with test vectors, the self-checking testbench.
//!
//! Engine m computes hidden units m, m+M, m+2M, ... and for each the rows i, f, g, o in that
//! order; its weight memory holds those rows' CSB slices in exactly that order (x slices, then
//! h slices), so the shared controller just counts addresses.

use askama::Template;

use super::testbench::{self, Vectors};
use super::verilog::{core_files, file_list, header, module_file, render, sext, zext, File, Names};
use super::{engine, ew, memory, regmap, tables};
use crate::arch::lstm::{self, Mapping, SingleDevice};
use crate::design::Design;
use partita_hdl::cores;

struct RowLane {
    index: usize,
    /// Sum of this lane's engines' accumulators, one bit wider.
    sum_expr: String,
}

struct Bundle {
    index: usize,
    /// Per-gate mapping: {i, f, g, o} pre-activations of this bundle's unit.
    capture: String,
}

/// A group of E bundles, drained in one cycle.
struct Group {
    index: usize,
    /// Lane j's four pre-activations from bundle index·E + j, lane 0 in the low bits.
    feed: String,
}

/// One element-wise lane.
struct EwLane {
    index: usize,
    /// Its unit (u_cnt + index) exists while u_cnt is below this.
    limit: usize,
    feed_lo: u32,
}

struct LayerConst {
    index: usize,
    slices: usize,
    nih: usize,
    rows_last: usize,
    xbase_expr: String,
    hbase0: usize,
    hbase1: usize,
    cbase: usize,
}

#[derive(Template)]
#[template(path = "partita_top.v", escape = "none")]
struct TopView {
    header: String,
    layers_n: usize,
    input_size: usize,
    hidden: usize,
    engines: usize,
    k: usize,
    dw: u32,
    s: lstm::StreamGeom,
    wstage_w: u32,
    layer_w: u32,
    last_layer: usize,
    row_w: u32,
    slice_w: u32,
    waw: u32,
    baw: u32,
    lane_w: u32,
    vaw: u32,
    in_w: u32,
    unit_w: u32,
    caw: u32,
    layer_consts: Vec<LayerConst>,
    ofifo_depth: usize,
    room_limit: usize,
    ofifo_aw: u32,
    ofifo_cnt_w: u32,
    of_w: u32,
    rsum_w: u32,
    /// The row sum rounded, before saturation (partita_requant's width after the shift).
    rnd_w: u32,
    feed_w: u32,
    bx0_last: usize,
    xbase0: usize,
    xbase1: usize,
    in_last: usize,
    engine_list: Vec<usize>,
    /// Per weight chunk: parameter and file suffixes (see `engine::weight_suffixes`).
    wsuffix: Vec<(String, String)>,
    pre_w: u32,
    wword: u32,
    bw: u32,
    eng_w: u32,
    last_group: usize,
    ew_lanes: usize,
    ew_lanes1: usize,
    ew_last: usize,
    bx0: usize,
    jw1: u32,
    x_n: String,
    xr_avail: String,
    xr_off: String,
    xr_idx: String,
    xr_cnt: String,
    x_word_cases: Vec<(usize, String)>,
    hwide: u32,
    feed_all_w: u32,
    ewq: u32,
    vwa: u32,
    hgroups: usize,
    hgroups_last: usize,
    groups: Vec<Group>,
    lane_list: Vec<EwLane>,
    lane_list_rev: Vec<EwLane>,
    ocw: u32,
    pjw: u32,
    of_cnt_expr: String,
    sat_add_w: u32,
    row_clips_expr: String,
    accw: u32,
    pre_shr: u32,
    pre_shl: u32,
    engine_kinds: Vec<u32>,
    rlanes: Vec<RowLane>,
    per_gate: bool,
    bundles: usize,
    bundle_list: Vec<Bundle>,
    round_ne: u32,
    sat: u32,
    p: Names,
    unit_ext: String,
    reg_conns: Vec<regmap::Conn>,
    bh_last: usize,
    out_ext: String,
    sat_ext: String,
    unused_regs: String,
}

/// `u_cnt / E` (`u_cnt` has `unit_w` bits, E = 2^ewq) as a cell-memory offset (`caw` bits).
fn unit_ext(unit_w: u32, ewq: u32, caw: u32) -> String {
    let w = unit_w - ewq;
    let v = if ewq == 0 {
        "u_cnt".to_string()
    } else {
        format!("u_cnt[{}:{ewq}]", unit_w - 1)
    };
    if caw >= w {
        zext(&v, w, caw)
    } else {
        format!("u_cnt[{}:{ewq}]", caw + ewq - 1)
    }
}

/// The packer's word from the output FIFO's head `{h of lane E-1 .. lane 0, count (ocw bits),
/// last}`: each lane's value sign-extended to its slot (whole bytes), lane 0 in the low bits.
pub(crate) fn out_word(dw: u32, vb: u32, e: usize, ocw: u32) -> String {
    let lanes: Vec<String> = (0..e)
        .rev()
        .map(|j| {
            let lo = 1 + ocw + j as u32 * dw;
            let hi = lo + dw - 1;
            if vb > dw {
                format!("{{{}{{of_head[{hi}]}}}}, of_head[{hi}:{lo}]", vb - dw)
            } else {
                format!("of_head[{hi}:{lo}]")
            }
        })
        .collect();
    format!("{{{}}}", lanes.join(", "))
}

/// The output stream's value: the FIFO head's h value, sign-extended to its slot (whole bytes).
pub(crate) fn out_ext(dw: u32, vb: u32) -> String {
    if vb > dw {
        format!("{{{{{}{{of_head[{dw}]}}}}, of_head[{dw}:1]}}", vb - dw)
    } else {
        format!("of_head[{dw}:1]")
    }
}

/// Generate every file of a single-device LSTM design, plus a self-checking testbench when
/// `vectors` are given.
pub fn generate(design: &Design, vectors: Option<&Vectors>) -> Result<Vec<File>, String> {
    let m = lstm::lstm(design)?;
    if design.plan.devices != 1 {
        return Err(format!(
            "the plan has {} devices; this emitter writes single-device designs",
            design.plan.devices
        ));
    }
    let d = SingleDevice::new(design)?;
    let (a, dp, mem) = (&d.arch, &d.arch.dp, &d.mem);
    let hdr = header(design);
    let layer_consts = (0..a.layers)
        .map(|l| LayerConst {
            index: l,
            slices: d.slices_per_row(l),
            // x slices come first in a mixed engine; x-only and h-only engines ignore it.
            nih: a.slices[l].0,
            rows_last: d.rows_per_lane - 1,
            xbase_expr: if l == 0 {
                format!(
                    "(x_par ? {vaw}'d{} : {vaw}'d{})",
                    d.layout.xbase(1),
                    d.layout.xbase(0),
                    vaw = mem.vaw
                )
            } else {
                format!(
                    "(cur[{}] ? {vaw}'d{} : {vaw}'d{})",
                    l - 1,
                    d.layout.hbase(l - 1, 1),
                    d.layout.hbase(l - 1, 0),
                    vaw = mem.vaw
                )
            },
            hbase0: d.layout.hbase(l, 0),
            hbase1: d.layout.hbase(l, 1),
            cbase: l * a.hidden.div_ceil(d.e),
        })
        .collect();
    let mut unused = vec!["wsel[31:24]".to_string(), "wsel[15:1]".to_string()];
    if mem.waw.max(mem.baw) < 32 {
        unused.push(format!("waddr_reg[31:{}]", mem.waw.max(mem.baw)));
    }
    if dp.wstage_w > dp.wword.max(dp.bw) {
        unused.push(format!(
            "wstage[{}:{}]",
            dp.wstage_w - 1,
            dp.wword.max(dp.bw)
        ));
    }
    let names = Names::new(&super::verilog::module_prefix(design, 0));
    let map = regmap::device_map(false, dp.nwords);
    let (regs_text, reg_conns) = regmap::decode_module(
        hdr.clone(),
        &names.regs,
        &map,
        dp.wstage_w,
        &|name| regmap::design_value(design, a, d.m, name),
        &|name| {
            Some(match name {
                "WADDR" => "waddr_reg".into(),
                other => other.to_ascii_lowercase(),
            })
        },
    )?;
    let top = TopView {
        header: hdr.clone(),
        layers_n: a.layers,
        input_size: a.input_size,
        hidden: a.hidden,
        engines: d.m,
        k: dp.k,
        dw: dp.dw,
        s: dp.stream_geom(a.input_size),
        wstage_w: dp.wstage_w,
        layer_w: d.layer_w,
        last_layer: a.layers - 1,
        row_w: d.row_w,
        slice_w: d.slice_w,
        waw: mem.waw,
        baw: mem.baw,
        lane_w: dp.lane_w,
        vaw: mem.vaw,
        in_w: d.in_w,
        unit_w: d.unit_w,
        caw: d.caw,
        layer_consts,
        ofifo_depth: d.ofifo_depth,
        room_limit: d.ofifo_depth - a.hidden.div_ceil(d.e),
        ofifo_aw: d.ofifo_aw,
        ofifo_cnt_w: d.ofifo_aw + 1,
        of_w: d.e as u32 * dp.dw + ocw(d.e) + 1,
        rsum_w: dp.accw + 1,
        rnd_w: dp.round_w(dp.accw + 1),
        feed_w: 4 * dp.pre_w,
        bx0_last: a.bx0 - 1,
        xbase0: d.layout.xbase(0),
        xbase1: d.layout.xbase(1),
        in_last: a.input_size - 1,
        engine_list: (0..d.m).collect(),
        wsuffix: engine::weight_suffixes(d.mem.wchunks),
        pre_w: dp.pre_w,
        wword: dp.wword,
        bw: dp.bw,
        eng_w: d.eng_w,
        last_group: d.bundles() / d.e - 1,
        ew_lanes: d.e,
        ew_lanes1: d.e + 1,
        ew_last: d.e - 1,
        bx0: a.bx0,
        jw1: dp.stream_geom(a.input_size).jw + 1,
        x_n: if d.e > 1 {
            "x_n".into()
        } else {
            format!("{}'d0", dp.stream_geom(a.input_size).jw + 1)
        },
        xr_avail: zext("x_run_avail", dp.stream_geom(a.input_size).jw + 1, 32),
        xr_off: if d.ewq > 0 {
            zext(&format!("ld_addr[{}:0]", d.ewq - 1), d.ewq, 32)
        } else {
            String::new()
        },
        xr_idx: zext("ld_idx", mem.vaw, 32),
        xr_cnt: zext("ld_count", d.in_w, 32),
        x_word_cases: (0..d.e)
            .map(|k| {
                let vb = dp.stream.slot_bits;
                let slots: Vec<String> = (0..d.e)
                    .rev()
                    .map(|s| {
                        if s >= k {
                            let lo = (s - k) as u32 * vb;
                            format!("x_run_beat[{}:{lo}]", lo + dp.dw - 1)
                        } else {
                            format!("{}'d0", dp.dw)
                        }
                    })
                    .collect();
                (k, format!("{{{}}}", slots.join(", ")))
            })
            .collect(),
        hwide: d.e as u32 * dp.dw,
        feed_all_w: d.e as u32 * 4 * dp.pre_w,
        ewq: d.ewq,
        vwa: mem.vaw - mem.vqw,
        hgroups: a.hidden.div_ceil(d.e),
        hgroups_last: a.hidden.div_ceil(d.e) - 1,
        groups: (0..d.bundles() / d.e)
            .map(|g| Group {
                index: g,
                feed: format!(
                    "{{{}}}",
                    (0..d.e)
                        .rev()
                        .map(|j| format!("hold_{}", g * d.e + j))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect(),
        lane_list: lanes(d.e, a.hidden, 4 * dp.pre_w),
        lane_list_rev: lanes(d.e, a.hidden, 4 * dp.pre_w)
            .into_iter()
            .rev()
            .collect(),
        ocw: ocw(d.e),
        pjw: crate::arch::bits_for((dp.stream.per_beat as usize / d.e) as u64 - 1),
        of_cnt_expr: if d.e == 1 {
            "1'b1".into()
        } else {
            (0..d.e)
                .map(|j| zext(&format!("ew_v_{j}"), 1, ocw(d.e)))
                .collect::<Vec<_>>()
                .join(" + ")
        },
        accw: dp.accw,
        pre_shr: dp.pre_shr,
        pre_shl: dp.pre_shl,
        engine_kinds: (0..d.m).map(|e| d.engine_kind(e)).collect(),
        rlanes: (0..d.rlanes)
            .map(|r| RowLane {
                index: r,
                sum_expr: (0..d.m)
                    .filter(|e| d.engine_rlane(*e) == r)
                    .map(|e| sext(&format!("row_acc_{e}"), dp.accw, dp.accw + 1))
                    .collect::<Vec<_>>()
                    .join(" + "),
            })
            .collect(),
        per_gate: d.mapping == Mapping::PerGate,
        bundles: d.bundles(),
        bundle_list: (0..d.bundles())
            .map(|b| {
                let n = d.bundles();
                Bundle {
                    index: b,
                    capture: format!(
                        "{{row_preact_{}, row_preact_{}, row_preact_{}, row_preact_{}}}",
                        b,
                        n + b,
                        2 * n + b,
                        3 * n + b
                    ),
                }
            })
            .collect(),
        sat_add_w: d.sat_add_w,
        row_clips_expr: (0..d.rlanes)
            .map(|e| zext(&format!("row_clip_{e}"), 1, d.sat_add_w))
            .collect::<Vec<_>>()
            .join(" + "),
        round_ne: dp.round_ne as u32,
        sat: dp.sat as u32,
        unit_ext: unit_ext(d.unit_w, d.ewq, d.caw),
        reg_conns,
        bh_last: a.bh - d.e,
        out_ext: out_word(dp.dw, dp.stream.slot_bits, d.e, ocw(d.e)),
        sat_ext: zext("row_clips", d.sat_add_w, 32),
        unused_regs: unused.join(", "),
        p: names,
    };
    let names = &top.p;
    let mut files = core_files(
        design,
        &[
            cores::REQUANT,
            cores::FIFO,
            cores::SKID,
            cores::AXIL,
            cores::UNPACK,
            cores::PACK,
            cores::REP,
        ],
    );
    files.extend(tables::datapath_files(
        design,
        m,
        names,
        engine::view(
            hdr.clone(),
            &names.engine,
            dp,
            mem,
            &(0..dp.k).collect::<Vec<_>>(),
        ),
    )?);
    files.push(ew::file(
        design,
        names,
        dp,
        d.caw,
        a.layers * a.hidden.div_ceil(d.e),
    )?);
    files.push(module_file(&names.regs, regs_text));
    files.push(module_file(&names.top, render(top.render())?));
    files.extend(memory::single(design, m, &d));
    files.push(File {
        name: "regmap.json".into(),
        text: regmap_json(design, &d, &map),
    });
    files.push(File {
        name: "partita_regs.h".into(),
        text: regmap::c_header(design, &map),
    });
    files.push(file_list(design, "", &names.top, &files));
    if let Some(v) = vectors {
        files.extend(testbench::files(hdr, &names.top, &d, v)?);
    }
    Ok(files)
}

/// Bits of the output FIFO's count of h values in a group (holds E).
fn ocw(e: usize) -> u32 {
    crate::arch::bits_for(e as u64)
}

/// The element-wise lanes of E: lane j's unit is u_cnt + j.
fn lanes(e: usize, hidden: usize, feed_w: u32) -> Vec<EwLane> {
    (0..e)
        .map(|j| EwLane {
            index: j,
            limit: hidden - j,
            feed_lo: j as u32 * feed_w,
        })
        .collect()
}

fn regmap_json(design: &Design, d: &SingleDevice, map: &[partita_hdl::regs::Word]) -> String {
    let (a, dp) = (&d.arch, &d.arch.dp);
    regmap::json(
        design,
        &super::verilog::top_module(design, 0),
        stream_bus(dp),
        serde_json::json!({
            "input_size": a.input_size, "hidden_size": a.hidden, "layers": a.layers, "engines": d.m, "lanes": dp.k,
            "weight_word_bits": dp.wword, "weight_depth": d.mem.wdepth, "bias_bits": dp.bw, "bias_depth": d.mem.bdepth,
            "index_bits": dp.iw, "stream_bits": dp.stream.beat_bits, "values_per_beat": dp.stream.per_beat,
        }),
        serde_json::json!({}),
        map,
    )
}

/// The `bus` entry of `regmap.json`: AXI4-Lite control and the packed streams.
pub(crate) fn stream_bus(dp: &lstm::Datapath) -> serde_json::Value {
    let l = dp.stream;
    let packing = format!(
        "AXI4-Stream, {} bits (tkeep {} bits): {} value(s) of {} bits per beat, in {}-bit slots from bit 0; a timestep starts a beat, its last beat has tlast and tkeep low for empty slots",
        l.beat_bits,
        l.keep_bits(),
        l.per_beat,
        l.data_bits,
        l.slot_bits
    );
    serde_json::json!({
        "control": "AXI4-Lite, 32-bit data, 12-bit byte address",
        "input": format!("{packing} (x)"),
        "output": format!("{packing} (h, sign-extended to the slot)"),
    })
}
