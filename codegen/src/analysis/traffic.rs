//! Link traffic: the one model `check`, `report` and `sim --json` agree on.
//!
//! For a multi-device LSTM the generated hardware exists, and the model counts its frames
//! exactly: per tick, every run of the schedule (partial sums to finishers, h values to the
//! devices that read them) as frames of the link width (header, payload, CRC trailer), plus a
//! barrier from every device to every other. A sequence of S timesteps takes S + L - 1 ticks,
//! so per-timestep figures depend on the sequence length; they are given for
//! [`DEFAULT_STEPS`], the cosimulation's default input. Forwarding hops are not counted again:
//! TX_BEATS counts a device's own frames.
//!
//! For plans without generated multi-device hardware (CNNs, and LSTM plans the node emitter
//! refuses), the model counts raw payload point to point: every value a device needs and does
//! not produce is one transfer from its producer, whatever the topology.

use crate::arch::lstm::System;
use crate::design::{Design, ModelDesign};
use crate::passes::partition::LayerPartition;

/// Timesteps per sequence the per-step figures assume (the cosimulation's default input).
pub const DEFAULT_STEPS: usize = 8;

/// What the figures count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// One device: no links.
    None,
    /// The generated frames, exactly.
    Frames,
    /// Raw payload point to point (no generated multi-device hardware).
    Payload,
}

/// Bytes one device sends and receives per timestep (LSTM) or inference (CNN).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkBytes {
    pub tx: f64,
    pub rx: f64,
}

/// The traffic of a design.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    pub basis: Basis,
    pub devices: Vec<LinkBytes>,
}

impl Traffic {
    /// All link bytes per timestep (or inference).
    pub fn total(&self) -> f64 {
        self.devices.iter().map(|d| d.tx).sum()
    }
}

/// The traffic of `design`.
pub fn traffic(design: &Design) -> Traffic {
    let n = design.plan.devices;
    if n == 1 {
        return Traffic {
            basis: Basis::None,
            devices: vec![LinkBytes::default()],
        };
    }
    if let (ModelDesign::Lstm(_), Ok(sys)) = (&design.model, System::new(design)) {
        return Traffic {
            basis: Basis::Frames,
            devices: frames(&sys, DEFAULT_STEPS),
        };
    }
    let bits = payload_bits(design, None);
    Traffic {
        basis: Basis::Payload,
        devices: bits
            .iter()
            .map(|(tx, rx)| LinkBytes {
                tx: *tx as f64 / 8.0,
                rx: *rx as f64 / 8.0,
            })
            .collect(),
    }
}

/// Per device, the bytes of the frames it sends and the frames addressed to it, per timestep,
/// over sequences of `steps` timesteps.
pub fn frames(sys: &System, steps: usize) -> Vec<LinkBytes> {
    let s = &sys.schedule;
    let d = s.nodes.len();
    let mut beats = vec![(0u64, 0u64); d];
    for t in 0..s.ticks(steps) {
        let mut runs = s.barriers();
        for l in (0..s.layers).filter(|l| s.active(*l, t, steps)) {
            runs.extend(s.runs(l));
        }
        for r in runs {
            let b = sys.beats(&r);
            beats[r.src].0 += b;
            for c in s.receivers(&r) {
                beats[c].1 += b;
            }
        }
    }
    let bytes = sys.frame.link_width as f64 / 8.0 / steps as f64;
    beats
        .into_iter()
        .map(|(tx, rx)| LinkBytes {
            tx: tx as f64 * bytes,
            rx: rx as f64 * bytes,
        })
        .collect()
}

/// Frames each device sends in a run of `seqs` sequences of `steps` timesteps, per kind
/// (h values, partial sums, barriers): one per run of values that fits a frame, more for
/// longer runs.
pub fn frames_per_device(sys: &System, steps: usize, seqs: usize) -> Vec<[usize; 3]> {
    let s = &sys.schedule;
    let mut counts = vec![[0usize; 3]; s.nodes.len()];
    for t in 0..s.ticks(steps) {
        let mut runs = s.barriers();
        for l in (0..s.layers).filter(|l| s.active(*l, t, steps)) {
            runs.extend(s.runs(l));
        }
        for r in runs {
            let frames = if r.kind == partita_hdl::frame::Kind::Barrier {
                1
            } else {
                r.values.div_ceil(sys.frame.max_values(r.kind) as usize)
            };
            counts[r.src][r.kind as usize] += frames * seqs;
        }
    }
    counts
}

/// Raw payload bits each device sends and receives, point to point, for every layer or only
/// layer `only`: full-width partial sums to the device that completes a unit, finished values
/// to the finisher, and each layer's outputs to every device that reads them.
pub fn payload_bits(design: &Design, only: Option<usize>) -> Vec<(u64, u64)> {
    let q = design.quant();
    let mut bits = vec![(0u64, 0u64); design.plan.devices];
    let mut send = |from: usize, to: usize, b: u64| {
        if from != to {
            bits[from].0 += b;
            bits[to].1 += b;
        }
    };
    let (d_bits, acc) = (q.data.width() as u64, design.acc_bits as u64);
    let parts = &design.partition.layers;
    let skip = |l: usize| only.is_some_and(|o| o != l);
    match &design.model {
        ModelDesign::Lstm(m) => {
            let h = m.hidden_size;
            let k = design.plan.banks;
            for (l, p) in parts.iter().enumerate() {
                if skip(l) {
                    continue;
                }
                for s in &p.shares {
                    let full = s.blocks.len() == p.blocks;
                    for &r in &s.rows {
                        let u = r % h;
                        if !full {
                            send(s.device, p.completer(s.device, u), acc);
                        } else {
                            send(s.device, p.finisher[u], q.gate.width() as u64);
                        }
                    }
                }
                // h: from each unit's finisher to every device that reads that column.
                let bh = m.layers[l].q_hh.shape.bank_size;
                for u in 0..h {
                    let mut readers = readers_of(p, |b| b == k + u / bh);
                    if let (Some(next), Some(nl)) = (parts.get(l + 1), m.layers.get(l + 1)) {
                        let bi = nl.q_ih.shape.bank_size;
                        readers.extend(readers_of(next, |b| b == u / bi));
                    }
                    readers.sort_unstable();
                    readers.dedup();
                    for to in readers {
                        send(p.finisher[u], to, d_bits);
                    }
                }
            }
        }
        ModelDesign::Cnn(m) => {
            for (l, p) in parts.iter().enumerate() {
                if skip(l) {
                    continue;
                }
                let out = m.shapes[l];
                let pixels = (out[1] * out[2]) as u64;
                let f = m.formats[l];
                let (d_bits, acc) = (f.output.width() as u64, f.acc_bits as u64);
                if m.weights[l].is_some() {
                    for s in &p.shares {
                        if s.blocks.len() != p.blocks {
                            for &r in &s.rows {
                                send(s.device, p.completer(s.device, r), acc * pixels);
                            }
                        }
                    }
                }
                if let Some(next) = parts.get(l + 1) {
                    let next_weighted = m.weights[l + 1].is_some();
                    for u in 0..out[0] {
                        let mut readers: Vec<usize> = next
                            .shares
                            .iter()
                            .filter(|s| {
                                if next_weighted {
                                    s.blocks.contains(&u)
                                } else {
                                    s.rows.contains(&u)
                                }
                            })
                            .map(|s| s.device)
                            .collect();
                        readers.dedup();
                        for to in readers {
                            send(p.finisher[u], to, d_bits * pixels);
                        }
                    }
                }
            }
        }
    }
    bits
}

/// Devices of `p` holding a column block that satisfies `pred`.
fn readers_of(p: &LayerPartition, pred: impl Fn(usize) -> bool) -> Vec<usize> {
    p.shares
        .iter()
        .filter(|s| s.blocks.iter().any(|b| pred(*b)))
        .map(|s| s.device)
        .collect()
}
