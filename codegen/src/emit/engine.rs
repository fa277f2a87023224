//! The BBS row engine (`templates/partita_engine.v`): K lanes, each reading its own vector
//! memory at the CSB in-bank index, K multipliers, a registered adder tree, and a full-width
//! accumulator that starts from the aligned bias. Widths come from [`Datapath`] and
//! [`Memories`]; this module writes the per-lane expressions and the tree.

use askama::Template;

use super::verilog::{sext, zext};
use crate::arch::lstm::{weight_group_bits, Datapath, Memories};

pub(crate) struct TreeNode {
    name: String,
    width: u32,
    expr: String,
}

#[derive(Template)]
#[template(path = "partita_engine.v", escape = "none")]
pub(crate) struct EngineView {
    header: String,
    name: String,
    k: usize,
    /// The lanes built (banks the device holds); the others are absent, their products zero.
    lanes: Vec<usize>,
    absent: Vec<usize>,
    waw: u32,
    baw: u32,
    vaw: u32,
    lane_w: u32,
    dw: u32,
    ww: u32,
    iw: u32,
    bw: u32,
    pw: u32,
    sw: u32,
    accw: u32,
    wword: u32,
    entry_w: u32,
    /// Weights in chunks and column groups, stages A2, A3 and F (see `Memories::chunked` and
    /// the template).
    wrows: usize,
    wchunks: usize,
    wraw: u32,
    wraw1: u32,
    /// Width of a chunk's write-port register copy (row address, word; the strobe has its own).
    wcrep: u32,
    group_bits: u32,
    wch: Vec<ChunkView>,
    bdepth: usize,
    vdepth: usize,
    /// Vector words: values per word, its index width, word-address width, words, word bits,
    /// and each slot's (index, low bit).
    vq: usize,
    vqw: u32,
    vwa: u32,
    vwords: usize,
    vqd: u32,
    vslots: Vec<(usize, u32)>,
    /// Vector memories in block RAM (`Memories::vblock`).
    vbram: bool,
    /// Width of a lane's vector write-port register copy (word or address, data).
    vwrep: u32,
    idx_ext: Vec<String>,
    prod_a: Vec<String>,
    prod_b: Vec<String>,
    levels: Vec<u32>,
    tree: Vec<TreeNode>,
    tree_delay: u32,
    tree_len: u32,
    tree_out: String,
    sum_ext: String,
    bias_aligned: String,
}

/// One column group of a weight chunk: its name suffix, low bit and width, and the width of
/// its write-port register copy (row address, data; the strobe has its own).
pub(crate) struct GroupView {
    sfx: String,
    lo: u32,
    w: u32,
    wrep: u32,
}

/// One weight chunk: its name and parameter suffixes, whether stage A's address (`rsel`) and
/// the registered write address (`wsel`) fall in it, and its column groups.
pub(crate) struct ChunkView {
    sfx: String,
    psfx: String,
    rsel: String,
    wsel: String,
    groups: Vec<GroupView>,
}

fn chunk_views(dp: &Datapath, mem: &Memories) -> Vec<ChunkView> {
    let gb = weight_group_bits(mem.wrows);
    let hi = |sig: &str, c: usize| {
        if mem.wchunks > 1 {
            let cw = mem.waw - mem.wraw;
            format!("{sig}[{}:{}] == {cw}'d{c}", mem.waw - 1, mem.wraw)
        } else {
            "1'b1".into()
        }
    };
    weight_suffixes(mem.wchunks)
        .into_iter()
        .enumerate()
        .map(|(c, (psfx, sfx))| ChunkView {
            groups: (0..dp.wword.div_ceil(gb))
                .map(|g| {
                    let lo = g * gb;
                    let w = gb.min(dp.wword - lo);
                    GroupView {
                        sfx: format!("{sfx}_g{g}"),
                        lo,
                        w,
                        wrep: mem.wraw + w,
                    }
                })
                .collect(),
            rsel: hi("a_waddr", c),
            wsel: hi("wwa_q", c),
            sfx,
            psfx,
        })
        .collect()
}

/// Per weight chunk: the suffix of its `WEIGHT_HEX`/`WEIGHTS_E<e>` parameter and of its file
/// and memory names (`weights_e<e>_c<c>.hex`, `wmem_c<c>`); none for one chunk.
pub(crate) fn weight_suffixes(chunks: usize) -> Vec<(String, String)> {
    if chunks > 1 {
        (0..chunks)
            .map(|c| (format!("_C{c}"), format!("_c{c}")))
            .collect()
    } else {
        vec![(String::new(), String::new())]
    }
}

/// The engine (module `name`) of a device with memories `mem`, with the lanes in `lanes` (of
/// 0..K; a device that holds only some banks builds only their lanes).
pub(crate) fn view(
    header: String,
    name: &str,
    dp: &Datapath,
    mem: &Memories,
    lanes: &[usize],
) -> EngineView {
    let k = dp.k;
    // Adder tree: level 0 is the lane products t0_k; each level adds pairs at one bit wider.
    let mut tree = Vec::new();
    let mut prev: Vec<String> = (0..k).map(|k| format!("t0_{k}")).collect();
    let mut width = dp.pw;
    let mut levels = Vec::new();
    for lvl in 1..=dp.tree_levels {
        let next_w = width + 1;
        let mut next = Vec::new();
        for (i, pair) in prev.chunks(2).enumerate() {
            let name = format!("s{lvl}_{i}");
            let expr = match pair {
                [a, b] => format!("{} + {}", sext(a, width, next_w), sext(b, width, next_w)),
                [a] => sext(a, width, next_w),
                _ => unreachable!("chunks of two"),
            };
            tree.push(TreeNode {
                name: name.clone(),
                width: next_w,
                expr,
            });
            next.push(name);
        }
        levels.push(next_w);
        prev = next;
        width = next_w;
    }
    let bias = sext("sum_bias", dp.bw, dp.accw - dp.bias_shift);
    EngineView {
        header,
        name: name.to_string(),
        k,
        lanes: lanes.to_vec(),
        absent: (0..k).filter(|l| !lanes.contains(l)).collect(),
        waw: mem.waw,
        baw: mem.baw,
        vaw: mem.vaw,
        lane_w: dp.lane_w,
        dw: dp.dw,
        ww: dp.ww,
        iw: dp.iw,
        bw: dp.bw,
        pw: dp.pw,
        sw: dp.sw,
        accw: dp.accw,
        wword: dp.wword,
        entry_w: dp.entry_w,
        wrows: mem.wrows,
        wchunks: mem.wchunks,
        wraw: mem.wraw,
        wraw1: mem.wraw + 1,
        wcrep: mem.wraw + dp.wword,
        group_bits: weight_group_bits(mem.wrows),
        wch: chunk_views(dp, mem),
        bdepth: mem.bdepth,
        vdepth: mem.vdepth,
        vq: mem.vq,
        vqw: mem.vqw,
        vwa: mem.vaw - mem.vqw,
        vwords: mem.vwords(),
        vqd: mem.vq as u32 * dp.dw,
        vslots: (0..mem.vq).map(|j| (j, j as u32 * dp.dw)).collect(),
        vbram: mem.vblock,
        vwrep: if mem.vq > 1 {
            mem.vaw - mem.vqw + mem.vq as u32 * dp.dw
        } else {
            mem.vaw + dp.dw
        },
        idx_ext: lanes
            .iter()
            .map(|k| zext(&format!("widx_{k}"), dp.iw, mem.vaw))
            .collect(),
        prod_a: lanes
            .iter()
            .map(|k| sext(&format!("wm_{k}"), dp.ww, dp.pw))
            .collect(),
        prod_b: lanes
            .iter()
            .map(|k| sext(&format!("vm_{k}"), dp.dw, dp.pw))
            .collect(),
        levels,
        tree,
        tree_delay: dp.tree_levels - 1,
        tree_len: dp.tree_levels,
        tree_out: prev[0].clone(),
        sum_ext: sext("sum", dp.sw, dp.accw),
        bias_aligned: if dp.bias_shift > 0 {
            format!("{{{bias}, {}'d0}}", dp.bias_shift)
        } else {
            bias
        },
    }
}
