//! Pass `partition`: give every unit of a layer's work to exactly one device.
//!
//! A layer's work is a grid of (row, column block) units. For an LSTM layer the rows are the
//! 4H gate rows (PyTorch order i, f, g, o) and the blocks are the K banks of `W_ih` followed by
//! the K banks of `W_hh`. For a CNN conv/dense layer the rows are output channels (features)
//! and the blocks are input channels. Each device gets a set of rows times a set of blocks;
//! partial sums over blocks are reduced at full width on the layer's *finisher* for that
//! output unit, which also applies the bias and the activation.
//!
//! Example: LSTM with H = 4, K = 2, strategy `rows` over 2 devices.
//! - before: 16 rows x 4 blocks, all on one device;
//! - after: device 0 owns hidden units 0-1, i.e. rows {0, 1, 4, 5, 8, 9, 12, 13} x all 4
//!   blocks, and finishes units 0-1; device 1 owns units 2-3 (rows {2, 3, 6, 7, ...}).

use std::ops::Range;

use crate::plan::{CheckedPlan, CnnLayer, LayerAssignment, ModelShape, Strategy};

/// One device's part of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub device: usize,
    /// Row indices, ascending.
    pub rows: Vec<usize>,
    /// Column block indices, ascending.
    pub blocks: Vec<usize>,
}

/// The partition of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPartition {
    pub strategy: Strategy,
    pub devices: Vec<usize>,
    pub rows: usize,
    pub blocks: usize,
    pub shares: Vec<Share>,
    /// Device that finishes each output unit (LSTM hidden unit, CNN output channel).
    pub finisher: Vec<usize>,
}

/// The partition of the whole model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMap {
    pub layers: Vec<LayerPartition>,
}

/// `n` items in `parts` contiguous ranges whose sizes differ by at most one.
pub fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|p| (p * n / parts)..((p + 1) * n / parts))
        .collect()
}

/// `n` items in contiguous ranges, one per weight, sized in proportion to the weights (range p
/// ends at floor(n x (w_0 + .. + w_p) / total)); each range holds at least one item when
/// `n` allows. Equal weights give [`split`].
pub fn split_weighted(n: usize, weights: &[usize]) -> Vec<Range<usize>> {
    let parts = weights.len();
    let total: u128 = weights.iter().map(|w| *w as u128).sum::<u128>().max(1);
    let mut ends = Vec::with_capacity(parts);
    let (mut cum, mut prev) = (0u128, 0usize);
    for (p, w) in weights.iter().enumerate() {
        cum += *w as u128;
        let mut e = (n as u128 * cum / total) as usize;
        // At least one item per range while there are enough to go round.
        if n >= parts {
            e = e.max(prev + 1).min(n - (parts - 1 - p));
        }
        ends.push(e);
        prev = e;
    }
    let mut start = 0;
    ends.into_iter()
        .map(|e| {
            let e = e.max(start);
            let r = start..e;
            start = e;
            r
        })
        .collect()
}

/// Rows and blocks of each layer's work grid, and its output units.
pub fn layer_grid(shape: &ModelShape, banks: usize, layer: usize) -> (usize, usize, usize) {
    match shape {
        ModelShape::Lstm { hidden_size, .. } => (4 * hidden_size, 2 * banks, *hidden_size),
        ModelShape::Cnn {
            input_shape,
            layers,
            shapes,
            ..
        } => {
            let in_c = if layer == 0 {
                input_shape[0]
            } else {
                shapes[layer - 1][0]
            };
            match &layers[layer] {
                CnnLayer::Conv2d { out_channels, .. } => (*out_channels, in_c, *out_channels),
                CnnLayer::Dense { out_features, .. } => (*out_features, in_c, *out_features),
                _ => (shapes[layer][0], 1, shapes[layer][0]),
            }
        }
    }
}

/// Build the partition for a checked plan.
pub fn build(plan: &CheckedPlan) -> Result<PartitionMap, String> {
    let layers = plan
        .layers
        .iter()
        .enumerate()
        .map(|(l, a)| {
            let (rows, blocks, units) = layer_grid(&plan.shape, plan.banks, l);
            let weighted = match &plan.shape {
                ModelShape::Lstm { .. } => true,
                ModelShape::Cnn { layers, .. } => {
                    matches!(layers[l], CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. })
                }
            };
            let weights: Vec<usize> = a.devices.iter().map(|&d| plan.engines_of(d)).collect();
            layer(a, rows, blocks, units, weighted, l, &weights)
        })
        .collect::<Result<_, _>>()?;
    Ok(PartitionMap { layers })
}

/// Partition one layer. `units` output units; for LSTMs the rows of unit u are
/// `{g * units + u}` for the four gates, for CNNs row u itself. `capacity` weighs each of the
/// layer's devices (its engines): units, column blocks or gates are split in proportion.
pub fn layer(
    a: &LayerAssignment,
    rows: usize,
    blocks: usize,
    units: usize,
    weighted: bool,
    index: usize,
    capacity: &[usize],
) -> Result<LayerPartition, String> {
    let d = a.devices.len();
    let gates = rows / units; // 4 for LSTM, 1 for CNN
    let all_rows: Vec<usize> = (0..rows).collect();
    let all_blocks: Vec<usize> = (0..blocks).collect();
    let unit_rows = |r: Range<usize>| -> Vec<usize> {
        let mut v: Vec<usize> = (0..gates)
            .flat_map(|g| r.clone().map(move |u| g * units + u))
            .collect();
        v.sort_unstable();
        v
    };
    let mut finisher = vec![a.devices[0]; units];
    // Layers without weights split their channels, like filters (spatial splits keep them,
    // and a ReLU after a `channels` layer runs whole on the layer's finisher, after the sums
    // are reduced: one share, like a spatial split's).
    let strategy = if weighted || matches!(a.strategy, Strategy::Tiles | Strategy::Fused) {
        a.strategy
    } else if a.strategy == Strategy::Channels {
        Strategy::Fused
    } else {
        Strategy::Filters
    };
    let shares: Vec<Share> = match strategy {
        Strategy::Rows | Strategy::Filters => {
            if d > units {
                return Err(format!(
                    "layer {index}: {d} devices but only {units} output units to share"
                ));
            }
            split_weighted(units, capacity)
                .into_iter()
                .zip(&a.devices)
                .map(|(r, &dev)| {
                    for u in r.clone() {
                        finisher[u] = dev;
                    }
                    Share {
                        device: dev,
                        rows: unit_rows(r),
                        blocks: all_blocks.clone(),
                    }
                })
                .collect()
        }
        Strategy::Cols | Strategy::Channels | Strategy::Ops => {
            let max = if strategy == Strategy::Ops { 2 } else { blocks };
            if d > max {
                return Err(format!(
                    "layer {index}: strategy \"{strategy}\" splits {max} column blocks, but {d} devices are given"
                ));
            }
            split_weighted(blocks, capacity)
                .into_iter()
                .zip(&a.devices)
                .map(|(b, &dev)| Share {
                    device: dev,
                    rows: all_rows.clone(),
                    blocks: b.collect(),
                })
                .collect()
        }
        Strategy::Gates => {
            if d > gates {
                return Err(format!("layer {index}: {d} devices for {gates} gates"));
            }
            split_weighted(gates, capacity)
                .into_iter()
                .zip(&a.devices)
                .map(|(g, &dev)| Share {
                    device: dev,
                    rows: g.flat_map(|g| g * units..(g + 1) * units).collect(),
                    blocks: all_blocks.clone(),
                })
                .collect()
        }
        // Spatial splits: every device computes every output channel and input channel of its
        // own pixels, so the channel grid is one share (the pixels' split is the
        // architecture's, `arch::cnn_system`).
        Strategy::Tiles | Strategy::Fused => vec![Share {
            device: a.devices[0],
            rows: all_rows,
            blocks: all_blocks,
        }],
        Strategy::Layers => {
            if d != 1 {
                return Err(format!(
                    "layer {index}: strategy \"{strategy}\" needs exactly one device for the layer"
                ));
            }
            vec![Share {
                device: a.devices[0],
                rows: all_rows,
                blocks: all_blocks,
            }]
        }
    };
    Ok(LayerPartition {
        strategy: a.strategy,
        devices: a.devices.clone(),
        rows,
        blocks,
        shares,
        finisher,
    })
}

impl LayerPartition {
    /// The device that completes output `unit` of `dev`'s work: `dev` itself when it holds
    /// every column block of its rows (nothing to reduce), else the unit's finisher.
    pub fn completer(&self, dev: usize, unit: usize) -> usize {
        if self
            .shares
            .iter()
            .any(|s| s.device == dev && s.blocks.len() == self.blocks)
        {
            dev
        } else {
            self.finisher[unit]
        }
    }

    /// How many shares hold each (row, block) unit; all ones for a valid partition.
    pub fn coverage(&self) -> Vec<Vec<u32>> {
        let mut c = vec![vec![0u32; self.blocks]; self.rows];
        for s in &self.shares {
            for &r in &s.rows {
                for &b in &s.blocks {
                    c[r][b] += 1;
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop, prop_assert, proptest};

    #[test]
    fn doc_example() {
        let a = LayerAssignment {
            strategy: Strategy::Rows,
            devices: vec![0, 1],
        };
        let p = layer(&a, 16, 4, 4, true, 0, &[1, 1]).unwrap();
        assert_eq!(p.shares[0].rows, vec![0, 1, 4, 5, 8, 9, 12, 13]);
        assert_eq!(p.shares[1].rows, vec![2, 3, 6, 7, 10, 11, 14, 15]);
        assert_eq!(p.finisher, vec![0, 0, 1, 1]);
    }

    #[test]
    fn weighted_split_follows_the_weights() {
        assert_eq!(split_weighted(12, &[1, 1, 1]), split(12, 3));
        assert_eq!(split_weighted(10, &[3, 3, 3, 3]), split(10, 4));
        assert_eq!(split_weighted(12, &[2, 1, 1]), vec![0..6, 6..9, 9..12]);
        // Every device gets at least one unit while there are enough.
        assert_eq!(split_weighted(3, &[100, 1, 1]), vec![0..1, 1..2, 2..3]);
        assert_eq!(split_weighted(4, &[100, 1, 1]), vec![0..2, 2..3, 3..4]);
        for n in 0..40 {
            for w in [[1usize, 2, 3, 4], [7, 1, 1, 7], [1, 1, 1, 1]] {
                let r = split_weighted(n, &w);
                assert_eq!(r.len(), 4);
                assert_eq!(r[0].start, 0);
                assert_eq!(r[3].end, n);
                assert!(r.windows(2).all(|p| p[0].end == p[1].start));
                if n >= 4 {
                    assert!(r.iter().all(|x| !x.is_empty()), "{n} {w:?} {r:?}");
                }
            }
        }
    }

    #[test]
    fn split_is_balanced() {
        let s = split(10, 3);
        assert_eq!(s, vec![0..3, 3..6, 6..10]);
    }

    proptest! {
        /// Every (row, block) unit goes to exactly one device, for every strategy.
        #[test]
        fn every_unit_exactly_once(
            units in 1usize..40,
            banks in 1usize..9,
            ndev in 1usize..9,
            s in prop::sample::select(vec![Strategy::Rows, Strategy::Cols, Strategy::Gates, Strategy::Ops, Strategy::Layers]),
            offset in 0usize..4,
        ) {
            let max = match s {
                Strategy::Rows => units,
                Strategy::Cols => 2 * banks,
                Strategy::Gates => 4,
                Strategy::Ops => 2,
                _ => 1,
            };
            let d = ndev.min(max);
            let devices: Vec<usize> = (offset..offset + d).collect();
            let a = LayerAssignment { strategy: s, devices: devices.clone() };
            let p = layer(&a, 4 * units, 2 * banks, units, true, 0, &vec![1; d]).unwrap();
            for row in p.coverage() {
                prop_assert!(row.iter().all(|&c| c == 1));
            }
            prop_assert!(p.finisher.iter().all(|f| devices.contains(f)));
            prop_assert!(p.shares.iter().all(|s| !s.rows.is_empty() && !s.blocks.is_empty()));
        }
    }
}
