//! The self-checking testbench of a single-device design (`templates/partita_tb.v`): it
//! resets the device, programs SEQ_LEN and SEQ_COUNT, streams the beats of `tb_input.hex` and
//! compares every output beat (tdata, tkeep, tlast) with `tb_expected.hex` from the bit-exact
//! golden model.

use std::fmt::Write as _;

use askama::Template;
use partita_hdl::regs;
use partita_hdl::stream::Layout;

use super::verilog::{render, File, Word};
use crate::arch::lstm::SingleDevice;

/// Test vectors for the generated self-checking testbench: data-format codes.
#[derive(Clone, Debug, Default)]
pub struct Vectors {
    pub seq_len: usize,
    pub seq_count: usize,
    /// `(sequence, timestep, feature)` flattened.
    pub input: Vec<i64>,
    /// `(sequence, timestep, unit)` flattened, from the golden model.
    pub expected: Vec<i64>,
}

#[derive(Template)]
#[template(path = "partita_tb.v", escape = "none")]
struct TbView {
    header: String,
    top: String,
    seq_len_addr: String,
    seq_count_addr: String,
    ctrl_addr: String,
    nin: usize,
    nout: usize,
    sb: u32,
    beat_w: u32,
    osb: u32,
    okw: u32,
    obeat_w: u32,
    keep_hi: u32,
    keep_hi_plus1: u32,
    seq_len: usize,
    seq_count: usize,
    timeout: u64,
}

/// The testbench and its two vector files.
pub(crate) fn files(
    header: String,
    top: &str,
    d: &SingleDevice,
    v: &Vectors,
) -> Result<Vec<File>, String> {
    let l = d.arch.dp.stream;
    // Generous: every row of every layer plus a pipeline drain, twice over, per step.
    let per_step: u64 = d
        .arch
        .slices
        .iter()
        .map(|(a, b)| (d.rows_per_lane * (a + b) + 64) as u64)
        .sum::<u64>()
        + d.arch.input_size as u64;
    files_for(
        header,
        top,
        (l, d.arch.input_size),
        (l, d.arch.hidden),
        per_step,
        v,
    )
}

/// The testbench of a device whose vectors of `input.1` values travel packed as `input.0`
/// says and whose output vectors of `output.1` values as `output.0` says; `per_vector` cycles
/// bound one vector's time (the timeout is twice that per vector, plus slack).
pub(crate) fn files_for(
    header: String,
    top: &str,
    input: (Layout, usize),
    output: (Layout, usize),
    per_vector: u64,
    v: &Vectors,
) -> Result<Vec<File>, String> {
    let (l, in_vec) = input;
    let (ol, out_vec) = output;
    // One beat per line, {tlast, tkeep, tdata}, packed as partita_hdl::stream lays them out.
    let beats = |l: Layout, codes: &[i64], vec_len: usize| {
        let (sb, kw) = (l.beat_bits, l.keep_bits());
        let mut t = String::new();
        for b in l.pack(codes, vec_len) {
            let mut w = Word::new(sb + kw + 1);
            for (i, d) in b.data.iter().enumerate() {
                let at = 64 * i as u32;
                if at < sb {
                    w.set(at, (sb - at).min(64), *d);
                }
            }
            w.set(sb, kw, b.keep);
            w.set(sb + kw, 1, b.last as u64);
            let _ = writeln!(t, "{}", w.hex());
        }
        t
    };
    let (sb, kw) = (l.beat_bits, l.keep_bits());
    let addr = |r: regs::Reg| format!("12'h{:03X}", r.offset);
    let tb = TbView {
        header,
        top: top.to_string(),
        seq_len_addr: addr(regs::SEQ_LEN),
        seq_count_addr: addr(regs::SEQ_COUNT),
        ctrl_addr: addr(regs::CTRL),
        nin: l.beats(in_vec) * v.input.len() / in_vec.max(1),
        nout: ol.beats(out_vec) * v.expected.len() / out_vec.max(1),
        sb,
        beat_w: sb + kw + 1,
        osb: ol.beat_bits,
        okw: ol.keep_bits(),
        obeat_w: ol.beat_bits + ol.keep_bits() + 1,
        keep_hi: sb + kw - 1,
        keep_hi_plus1: sb + kw,
        seq_len: v.seq_len,
        seq_count: v.seq_count,
        timeout: 10_000 + 2 * per_vector * (v.seq_len * v.seq_count) as u64,
    };
    Ok(vec![
        File {
            name: "partita_tb.v".into(),
            text: render(tb.render())?,
        },
        File {
            name: "tb_input.hex".into(),
            text: beats(l, &v.input, in_vec),
        },
        File {
            name: "tb_expected.hex".into(),
            text: beats(ol, &v.expected, out_vec),
        },
    ])
}
