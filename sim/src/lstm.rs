//! LSTM golden models.
//!
//! - [`float`]: f64 with PyTorch `nn.LSTM` semantics (gate order i, f, g, o; zero initial
//!   state), on the plan's weights after pruning.
//! - [`fixed`]: the bit-exact hardware contract. Products are accumulated at full width over
//!   the CSB entries; the bias is aligned and added without rounding; each result is rounded
//!   and saturated once; sigmoid/tanh go through the fitted tables. The partial sums of a
//!   partition are added at full width, so the output does not depend on the partition.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use partita_codegen::design::{LstmDesign, LstmLayer};
use partita_codegen::fixed::{requantize, QFormat};
use partita_codegen::passes::bbs_prune::CsbMatrix;
use partita_codegen::passes::partition::{LayerPartition, Share};
use partita_codegen::plan::QuantSpec;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One layer in float over a whole sequence `(seq, in)`; returns `(seq, H)`.
pub fn float_layer(layer: &LstmLayer, x: ArrayView2<f64>) -> Array2<f64> {
    float_layer_seen(layer, x, &mut Seen::default())
}

/// The largest magnitudes the float model saw, over every layer, step and unit (for
/// `calibrate`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Seen {
    pub h: f64,
    pub cell: f64,
    pub preact: f64,
}

fn float_layer_seen(layer: &LstmLayer, x: ArrayView2<f64>, seen: &mut Seen) -> Array2<f64> {
    let hsz = layer.dense_hh.ncols();
    let (mut h, mut c) = (Array1::<f64>::zeros(hsz), Array1::<f64>::zeros(hsz));
    let mut out = Array2::zeros((x.nrows(), hsz));
    for (t, xt) in x.rows().into_iter().enumerate() {
        let pre = layer.dense_ih.dot(&xt) + &layer.b_ih + layer.dense_hh.dot(&h) + &layer.b_hh;
        seen.preact = pre.iter().fold(seen.preact, |m, v| m.max(v.abs()));
        for u in 0..hsz {
            let i = sigmoid(pre[u]);
            let f = sigmoid(pre[hsz + u]);
            let g = pre[2 * hsz + u].tanh();
            let o = sigmoid(pre[3 * hsz + u]);
            c[u] = f * c[u] + i * g;
            h[u] = o * c[u].tanh();
            seen.cell = seen.cell.max(c[u].abs());
            seen.h = seen.h.max(h[u].abs());
        }
        out.row_mut(t).assign(&h);
    }
    out
}

/// The float model over one sequence `(seq, input)`: the last layer's h at every step.
pub fn float(m: &LstmDesign, x: ArrayView2<f64>) -> Array2<f64> {
    float_seen(m, x, &mut Seen::default())
}

/// [`float`], recording the largest magnitudes it sees in `seen`.
pub fn float_seen(m: &LstmDesign, x: ArrayView2<f64>, seen: &mut Seen) -> Array2<f64> {
    let mut cur = x.to_owned();
    for layer in &m.layers {
        cur = float_layer_seen(layer, cur.view(), seen);
    }
    cur
}

/// Saturation and clipping events seen by the fixed model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Events {
    /// Inputs clipped when quantized.
    pub input_clipped: u64,
    /// Pre-activations, cell states or h values the overflow mode had to act on.
    pub saturations: u64,
    /// Where they happened: one record per layer and quantity (the inputs as `layer: None`),
    /// in the order first seen.
    pub sites: Vec<Saturated>,
}

/// Values of one quantity of one layer that did not fit their format: how many, and the
/// largest magnitude among them (before saturation or wrapping), in real units.
#[derive(Clone, Debug, PartialEq)]
pub struct Saturated {
    /// The layer, or `None` for the inputs.
    pub layer: Option<usize>,
    /// What the values are ("gate pre-activations", "cell states", ...).
    pub what: &'static str,
    /// The format they did not fit.
    pub format: QFormat,
    pub count: u64,
    pub largest: f64,
}

impl Saturated {
    /// The narrowest format of the same width whose range holds `largest`: more integer bits,
    /// as many fewer fraction bits. `None` when even an all-integer format of that width
    /// would not.
    pub fn holding_format(&self) -> Option<QFormat> {
        let width = self.format.int_bits + self.format.frac_bits;
        (self.format.int_bits..=width)
            .map(|i| QFormat::new(i, width - i))
            .find(|f| self.largest <= f.max_value().abs().max(f.min_value().abs()))
    }

    /// One line for a warning.
    pub fn describe(&self) -> String {
        let whose = match self.layer {
            Some(l) => format!("layer {l}"),
            None => "input".to_string(),
        };
        let fix = match self.holding_format() {
            Some(f) => format!("{f} would hold them"),
            None => format!(
                "no {}-bit format holds them; use a wider one",
                self.format.int_bits + self.format.frac_bits + 1
            ),
        };
        format!(
            "{whose}: {} {} did not fit {} (largest |value| {:.4}); {fix}",
            self.count, self.what, self.format, self.largest
        )
    }
}

impl Events {
    /// Count a value that did not fit `format`: `v` with `frac` fraction bits, of `what` in
    /// `layer` (`None`: the inputs).
    pub fn record(
        &mut self,
        layer: Option<usize>,
        what: &'static str,
        format: QFormat,
        v: i128,
        frac: u32,
    ) {
        let mag = (v as f64).abs() / (frac as f64).exp2();
        match self
            .sites
            .iter_mut()
            .find(|s| s.layer == layer && s.what == what && s.format == format)
        {
            Some(s) => {
                s.count += 1;
                s.largest = s.largest.max(mag);
            }
            None => self.sites.push(Saturated {
                layer,
                what,
                format,
                count: 1,
                largest: mag,
            }),
        }
    }

    /// Count an input value that did not fit the data format.
    pub fn record_input(&mut self, format: QFormat, v: f64) {
        // Exact enough: the magnitude only picks a format.
        let scaled = (v * 1048576.0) as i128;
        self.record(None, "values", format, scaled, 20);
    }

    /// Warning lines, one per record.
    pub fn warnings(&self) -> Vec<String> {
        self.sites.iter().map(|s| s.describe()).collect()
    }
}

/// Full-width dot product of `row` with `vec` (padded to K * B) over one bank.
#[inline]
fn bank_dot(m: &CsbMatrix<i64>, row: usize, bank: usize, vec: &[i64]) -> i64 {
    let s = m.shape;
    let base = bank * s.bank_size;
    let mut acc = 0i64;
    for j in 0..s.nnz_per_bank {
        let (v, idx) = m.entry(row, j, bank);
        acc += v * vec[base + idx];
    }
    acc
}

fn padded(v: ArrayView1<i64>, m: &CsbMatrix<i64>) -> Vec<i64> {
    let mut out = vec![0i64; m.shape.padded_cols()];
    for (o, x) in out.iter_mut().zip(v.iter()) {
        *o = *x;
    }
    out
}

/// The whole layer as one share: every row, every block.
pub fn whole_layer(layer: &LstmLayer) -> Vec<Share> {
    let rows = layer.q_ih.shape.rows;
    let blocks = layer.q_ih.shape.banks + layer.q_hh.shape.banks;
    vec![Share {
        device: 0,
        rows: (0..rows).collect(),
        blocks: (0..blocks).collect(),
    }]
}

/// One layer in fixed point over a sequence of input codes `(seq, in)`; returns h codes
/// `(seq, H)`. `shares` says which device computes which partial sums; they are reduced in
/// share order at full width.
pub fn fixed_layer(
    layer: &LstmLayer,
    index: usize,
    m: &LstmDesign,
    q: &QuantSpec,
    shares: &[Share],
    x: ArrayView2<i64>,
    ev: &mut Events,
) -> Array2<i64> {
    let hsz = layer.q_hh.shape.cols;
    let rows = 4 * hsz;
    let k = layer.q_ih.shape.banks;
    let prod_frac = q.weight.frac_bits + q.data.frac_bits;
    let bias_shift = prod_frac - q.bias.frac_bits;
    let (r, o) = (q.rounding, q.overflow);
    let mut fit = |v: i128, from: u32, to: QFormat, what: &'static str| {
        let y = requantize(v, from, to, r, o);
        if y.clipped {
            ev.saturations += 1;
            ev.record(Some(index), what, to, v, from);
        }
        y.code
    };
    let mut h = Array1::<i64>::zeros(hsz);
    let mut c = vec![0i64; hsz];
    let mut acc = vec![0i64; rows];
    let mut out = Array2::zeros((x.nrows(), hsz));
    // c' = f*c + i*g: both products brought to a common fraction, exactly.
    let fc_frac = q.gate.frac_bits + q.cell.frac_bits;
    let ig_frac = 2 * q.gate.frac_bits;
    let c_frac = fc_frac.max(ig_frac);
    let t = &m.tables;
    for (step, xt) in x.rows().into_iter().enumerate() {
        let xv = padded(xt, &layer.q_ih);
        let hv = padded(h.view(), &layer.q_hh);
        acc.iter_mut().for_each(|a| *a = 0);
        for share in shares {
            for &row in &share.rows {
                let mut part = 0i64;
                for &b in &share.blocks {
                    part += if b < k {
                        bank_dot(&layer.q_ih, row, b, &xv)
                    } else {
                        bank_dot(&layer.q_hh, row, b - k, &hv)
                    };
                }
                acc[row] += part;
            }
        }
        for u in 0..hsz {
            let pre = |g: usize, fit: &mut dyn FnMut(i128, u32, QFormat, &'static str) -> i64| {
                let row = g * hsz + u;
                let a = acc[row] as i128 + ((layer.q_bias[row] as i128) << bias_shift);
                fit(a, prod_frac, q.preact, "gate pre-activations")
            };
            let i = t.sigmoid.eval(pre(0, &mut fit));
            let f = t.sigmoid.eval(pre(1, &mut fit));
            let g = t.tanh.eval(pre(2, &mut fit));
            let o_ = t.sigmoid.eval(pre(3, &mut fit));
            let fc = ((f as i128) * (c[u] as i128)) << (c_frac - fc_frac);
            let ig = ((i as i128) * (g as i128)) << (c_frac - ig_frac);
            c[u] = fit(fc + ig, c_frac, q.cell, "cell states");
            let tc = t.tanh_cell.eval(c[u]);
            h[u] = fit((o_ as i128) * (tc as i128), ig_frac, q.data, "h values");
        }
        out.row_mut(step).assign(&h);
    }
    out
}

/// The fixed model over one sequence of input codes. `partition` gives each layer's shares;
/// `None` runs every layer as a single share.
pub fn fixed(
    m: &LstmDesign,
    q: &QuantSpec,
    partition: Option<&[LayerPartition]>,
    x: ArrayView2<i64>,
    ev: &mut Events,
) -> Array2<i64> {
    let mut cur = x.to_owned();
    for (l, layer) in m.layers.iter().enumerate() {
        let whole;
        let shares = match partition {
            Some(p) => &p[l].shares[..],
            None => {
                whole = whole_layer(layer);
                &whole[..]
            }
        };
        cur = fixed_layer(layer, l, m, q, shares, cur.view(), ev);
    }
    cur
}

/// Quantize an input sequence into the data format.
pub fn quantize_input(q: &QuantSpec, x: ArrayView2<f64>, ev: &mut Events) -> Array2<i64> {
    x.mapv(|v| {
        let y = q.data.quantize(v, q.rounding, q.overflow);
        if y.clipped {
            ev.input_clipped += 1;
            ev.record_input(q.data, v);
        }
        y.code
    })
}

/// A straightforward loop reference of the float model, independent of ndarray's dot and of
/// the CSB form: it reads the dense pruned weights element by element.
pub fn float_reference(m: &LstmDesign, x: ArrayView2<f64>) -> Array2<f64> {
    let mut cur: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    for layer in &m.layers {
        let hsz = layer.dense_hh.ncols();
        let mut h = vec![0.0; hsz];
        let mut c = vec![0.0; hsz];
        let mut next = Vec::new();
        for xt in &cur {
            let mut gates = [
                vec![0.0; hsz],
                vec![0.0; hsz],
                vec![0.0; hsz],
                vec![0.0; hsz],
            ];
            for (g, gate) in gates.iter_mut().enumerate() {
                for (u, val) in gate.iter_mut().enumerate() {
                    let row = g * hsz + u;
                    let mut sum = layer.b_ih[row] + layer.b_hh[row];
                    for (j, xj) in xt.iter().enumerate() {
                        sum += layer.dense_ih[[row, j]] * xj;
                    }
                    for (j, hj) in h.iter().enumerate() {
                        sum += layer.dense_hh[[row, j]] * hj;
                    }
                    *val = sum;
                }
            }
            for u in 0..hsz {
                let (i, f) = (sigmoid(gates[0][u]), sigmoid(gates[1][u]));
                let (g, o) = (gates[2][u].tanh(), sigmoid(gates[3][u]));
                c[u] = f * c[u] + i * g;
                h[u] = o * c[u].tanh();
            }
            next.push(h.clone());
        }
        cur = next;
    }
    let seq = cur.len();
    let hsz = cur.first().map_or(0, Vec::len);
    Array2::from_shape_vec((seq, hsz), cur.concat()).expect("rectangular")
}

#[cfg(test)]
mod saturation_tests {
    use super::*;

    fn site(format: QFormat, largest: f64) -> Saturated {
        Saturated {
            layer: Some(2),
            what: "outputs",
            format,
            count: 187,
            largest,
        }
    }

    /// Logits up to about 25 in s3.12 (the digits CNN of issue 11) need s5.10.
    #[test]
    fn holding_format_adds_integer_bits() {
        let s = site(QFormat::new(3, 12), 24.7);
        assert_eq!(s.holding_format(), Some(QFormat::new(5, 10)));
        assert!(s
            .describe()
            .contains("layer 2: 187 outputs did not fit s3.12"));
        assert!(s.describe().contains("s5.10 would hold them"));
        // Just inside the range: no more integer bits.
        assert_eq!(
            site(QFormat::new(3, 12), 7.9).holding_format(),
            Some(QFormat::new(3, 12))
        );
        // Nothing of 16 bits holds 1e6.
        let big = site(QFormat::new(3, 12), 1e6);
        assert_eq!(big.holding_format(), None);
        assert!(big.describe().contains("use a wider one"));
    }

    #[test]
    fn records_merge_by_layer_quantity_and_format() {
        let mut ev = Events::default();
        let f = QFormat::new(1, 4);
        ev.record(Some(0), "cell states", f, 3 << 4, 4);
        ev.record(Some(0), "cell states", f, -(5 << 4), 4);
        ev.record(Some(1), "cell states", f, 2 << 4, 4);
        ev.record_input(f, -2.5);
        assert_eq!(ev.sites.len(), 3);
        assert_eq!(ev.sites[0].count, 2);
        assert_eq!(ev.sites[0].largest, 5.0);
        assert_eq!(ev.sites[2].layer, None);
        assert_eq!(ev.sites[2].largest, 2.5);
        assert_eq!(ev.warnings().len(), 3);
    }
}
