//! The self-checking testbench of a single-device design (`templates/partita_tb.v`): it
//! resets the device, programs SEQ_LEN and SEQ_COUNT, streams `tb_input.hex` and compares
//! every output word with `tb_expected.hex` from the bit-exact golden model.

use std::fmt::Write as _;

use askama::Template;
use partita_hdl::regs;

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
    axis_w: u32,
    hidden: usize,
    hidden_last: usize,
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
    let axis_w = d.arch.dp.axis_w;
    let words = |codes: &[i64]| {
        let mut t = String::new();
        for c in codes {
            let mut w = Word::new(axis_w);
            // Sign-extended to the stream width, as the device drives tdata.
            w.set(0, axis_w, *c as u64);
            let _ = writeln!(t, "{}", w.hex());
        }
        t
    };
    // Generous: every row of every layer plus a pipeline drain, twice over, per step.
    let per_step: u64 = d
        .arch
        .slices
        .iter()
        .map(|(a, b)| (d.rows_per_lane * (a + b) + 64) as u64)
        .sum::<u64>()
        + d.arch.input_size as u64;
    let addr = |r: regs::Reg| format!("12'h{:03X}", r.offset);
    let tb = TbView {
        header,
        top: top.to_string(),
        seq_len_addr: addr(regs::SEQ_LEN),
        seq_count_addr: addr(regs::SEQ_COUNT),
        ctrl_addr: addr(regs::CTRL),
        nin: v.input.len(),
        nout: v.expected.len(),
        axis_w,
        hidden: d.arch.hidden,
        hidden_last: d.arch.hidden - 1,
        seq_len: v.seq_len,
        seq_count: v.seq_count,
        timeout: 10_000 + 2 * per_step * (v.seq_len * v.seq_count) as u64,
    };
    Ok(vec![
        File {
            name: "partita_tb.v".into(),
            text: render(tb.render())?,
        },
        File {
            name: "tb_input.hex".into(),
            text: words(&v.input),
        },
        File {
            name: "tb_expected.hex".into(),
            text: words(&v.expected),
        },
    ])
}
