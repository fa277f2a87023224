//! `$readmemh` images of the engines' weight and bias memories. A weight word holds one CSB
//! slice of a row: lane k's entry `{value, in-bank index}` at bits `k·entry_w`, lane 0 lowest.
//! Rows follow the engine's issue order, each as its x slices then its h slices; the bias
//! memory holds one word per row (`b_ih + b_hh`, quantized once).

use std::fmt::Write as _;

use super::verilog::{File, Word};
use crate::arch::lstm::{Datapath, Memories, SingleDevice, System};
use crate::design::{Design, LstmDesign};
use crate::passes::bbs_prune::CsbMatrix;

fn banner(design: &Design, what: &str) -> String {
    format!(
        "// partita {} plan hash {:016x}{what}\n",
        crate::VERSION,
        design.plan.plan_hash
    )
}

/// One weight word: slice `j` of `row` in `mat`, for the lanes in `lanes` (others zero).
fn slice_bits(
    dp: &Datapath,
    mat: &CsbMatrix<i64>,
    row: Option<usize>,
    j: usize,
    lanes: &dyn Fn(usize) -> bool,
) -> Word {
    let mut word = Word::new(dp.wword);
    for k in 0..dp.k {
        if !lanes(k) {
            continue;
        }
        let (v, idx) = row.map_or((0, 0), |r| mat.entry(r, j, k));
        let at = k as u32 * dp.entry_w;
        word.set(at, dp.iw, idx as u64);
        word.set(at + dp.iw, dp.ww, v as u64);
    }
    word
}

/// An engine's weight images: one file, or with chunks (`mem.wchunks` > 1) one per
/// chunk, `weights_e<e>_c<c>.hex` holding words `c·wrows ..` (missing words zero).
fn weight_images(dp: &Datapath, mem: &Memories, hdr: &str, e: usize, words: &[Word]) -> Vec<File> {
    let suffixes = super::engine::weight_suffixes(mem.wchunks);
    suffixes
        .iter()
        .enumerate()
        .map(|(c, (_, sfx))| {
            let mut text = hdr.to_string();
            let n = if mem.wchunks > 1 {
                mem.wrows
            } else {
                words.len()
            };
            for r in 0..n {
                let hex = words
                    .get(c * mem.wrows + r)
                    .map_or_else(|| Word::new(dp.wword).hex(), Word::hex);
                let _ = writeln!(text, "{hex}");
            }
            File {
                name: format!("weights_e{e}{sfx}.hex"),
                text,
            }
        })
        .collect()
}

fn bias_word(dp: &Datapath, v: Option<i64>) -> String {
    let mut word = Word::new(dp.bw);
    if let Some(v) = v {
        word.set(0, dp.bw, v as u64);
    }
    word.hex()
}

/// Per engine of a single device: the weight words and the biases, in schedule order.
pub(crate) fn single(design: &Design, m: &LstmDesign, d: &SingleDevice) -> Vec<File> {
    let dp = &d.arch.dp;
    let hdr = banner(design, "");
    let mut out = Vec::new();
    for e in 0..d.m {
        let mut words = Vec::new();
        let mut b = hdr.clone();
        let (kind, lane) = (d.engine_kind(e), d.engine_rlane(e));
        for (l, layer) in m.layers.iter().enumerate() {
            let per_row = d.slices_per_row(l);
            // Kind 0: x then h slices; 1: x only; 2: h only (ops pairs).
            let mats: Vec<&CsbMatrix<i64>> = match kind {
                1 => vec![&layer.q_ih],
                2 => vec![&layer.q_hh],
                _ => vec![&layer.q_ih, &layer.q_hh],
            };
            for p in 0..d.rows_per_lane {
                let row = d.row_of(lane, p);
                let mut emitted = 0;
                for mat in &mats {
                    for j in 0..mat.shape.nnz_per_bank {
                        words.push(slice_bits(dp, mat, row, j, &|_| true));
                        emitted += 1;
                    }
                }
                // An ops pair pads its shorter product with zero slices.
                for _ in emitted..per_row {
                    words.push(Word::new(dp.wword));
                }
                let bias = (kind != 2).then(|| row.map_or(0, |r| layer.q_bias[r]));
                let _ = writeln!(b, "{}", bias_word(dp, bias));
            }
        }
        out.extend(weight_images(dp, &d.mem, &hdr, e, &words));
        out.push(File {
            name: format!("bias_e{e}.hex"),
            text: b,
        });
    }
    out
}

/// A node's engines: engine e holds rows e, e + M, ... of every layer (the last slot padded
/// with zero rows), each as x slices then h slices (layer 0 with `overlap`: all x slices, then
/// all h slices), lanes of banks the node does not hold zero; the bias only where it holds
/// column block 0, and a zero bias word last with `overlap`.
pub(crate) fn node(design: &Design, m: &LstmDesign, sys: &System, me: usize) -> Vec<File> {
    let dp = &sys.arch.dp;
    let n = &sys.schedule.nodes[me];
    let na = &sys.nodes[me];
    let hdr = banner(design, &format!(" device {me}"));
    let mut out = Vec::new();
    for e in 0..na.m {
        let mut b = hdr.clone();
        let mut words = Vec::new();
        for (l, (nlay, la)) in n.layers.iter().zip(&na.layers).enumerate() {
            let layer = &m.layers[l];
            let mats = [(&layer.q_ih, &nlay.x_banks), (&layer.q_hh, &nlay.h_banks)];
            // Row by row, x slices then h slices; or, where W_ih·x runs ahead (layer 0 with
            // `overlap`), every row's x slices, then every row's h slices.
            let blocks: Vec<Vec<usize>> = if l == 0 && na.overlap {
                vec![vec![0], vec![1]]
            } else {
                vec![vec![0, 1]]
            };
            for block in &blocks {
                for slot in 0..la.slots {
                    let r = nlay.rows.get(slot * na.m + e).copied();
                    for &k in block {
                        let (mat, banks) = mats[k];
                        if banks.is_empty() {
                            continue;
                        }
                        for j in 0..mat.shape.nnz_per_bank {
                            let held = |lane: usize| banks.contains(&lane);
                            words.push(slice_bits(dp, mat, r, j, &held));
                        }
                    }
                }
            }
            for slot in 0..la.slots {
                let r = nlay.rows.get(slot * na.m + e).copied();
                let bias = r.and_then(|r| nlay.bias.then_some(layer.q_bias[r]));
                let _ = writeln!(b, "{}", bias_word(dp, bias));
            }
        }
        if na.overlap {
            // The h pass's bias: zero.
            let _ = writeln!(b, "{}", bias_word(dp, None));
        }
        if words.is_empty() {
            words.push(Word::new(dp.wword));
            let _ = writeln!(b, "{}", Word::new(dp.bw).hex());
        }
        out.extend(weight_images(dp, &na.mem, &hdr, e, &words));
        out.push(File {
            name: format!("bias_e{e}.hex"),
            text: b,
        });
    }
    out
}
