//! CNN golden models with `nn.Conv2d` (cross-correlation, zero padding), `nn.ReLU`,
//! `nn.MaxPool2d` (floor mode), `nn.Flatten` and `nn.Linear` semantics. Maps are `(C, H, W)`;
//! a flattened vector of n features is `(n, 1, 1)`.
//!
//! The fixed model accumulates every conv/dense output at full width (bias aligned, not
//! rounded), then rounds and saturates once into the layer's output format (its own `data`,
//! or `[quant].data`). ReLU and max-pool act on codes and never round.

use ndarray::{Array3, ArrayView3};
use partita_codegen::design::CnnDesign;
use partita_codegen::fixed::requantize;
use partita_codegen::passes::partition::{LayerPartition, Share};
use partita_codegen::plan::{CnnLayer, QuantSpec};

use crate::lstm::Events;

/// Element type of a feature map: f64 for the float model, i64 codes for the fixed one.
trait Elem: Copy + PartialOrd + Default {}
impl Elem for f64 {}
impl Elem for i64 {}

fn maxpool<T: Elem>(x: ArrayView3<T>, k: usize, s: usize) -> Array3<T> {
    let (c, h, w) = x.dim();
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    Array3::from_shape_fn((c, oh, ow), |(ch, y, xx)| {
        let mut m = x[[ch, y * s, xx * s]];
        for dy in 0..k {
            for dx in 0..k {
                let v = x[[ch, y * s + dy, xx * s + dx]];
                if v > m {
                    m = v;
                }
            }
        }
        m
    })
}

fn flatten<T: Elem>(x: ArrayView3<T>) -> Array3<T> {
    let n = x.len();
    Array3::from_shape_vec((n, 1, 1), x.iter().copied().collect()).expect("same length")
}

/// Sum over one (output channel, input channel) pair of a conv, or one (output feature, input
/// channel) pair of a dense layer, at output position (y, x).
fn partial<T, A>(
    layer: &CnnLayer,
    w: &ndarray::ArrayD<T>,
    x: ArrayView3<T>,
    (o, i, y, xx): (usize, usize, usize, usize),
    mul: impl Fn(T, T) -> A,
) -> A
where
    T: Copy,
    A: std::ops::AddAssign + Default,
{
    let (_, h, wd) = x.dim();
    let mut acc = A::default();
    match layer {
        CnnLayer::Conv2d {
            kernel,
            stride,
            padding,
            ..
        } => {
            for ky in 0..*kernel {
                for kx in 0..*kernel {
                    let iy = (y * stride + ky) as isize - *padding as isize;
                    let ix = (xx * stride + kx) as isize - *padding as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                        acc += mul(w[[o, i, ky, kx]], x[[i, iy as usize, ix as usize]]);
                    }
                }
            }
        }
        CnnLayer::Dense { .. } => {
            let px = h * wd;
            for p in 0..px {
                acc += mul(w[[o, i * px + p]], x[[i, p / wd, p % wd]]);
            }
        }
        _ => unreachable!("only conv/dense have weights"),
    }
    acc
}

/// The float model on one input map.
pub fn float(m: &CnnDesign, x: ArrayView3<f64>) -> Array3<f64> {
    float_seen(m, x, &mut [])
}

/// [`float`], raising `seen[l]` to the largest |value| layer l outputs (for `calibrate`;
/// `seen` may be shorter than the stack).
pub fn float_seen(m: &CnnDesign, x: ArrayView3<f64>, seen: &mut [f64]) -> Array3<f64> {
    let mut cur = x.to_owned();
    for (l, layer) in m.layers.iter().enumerate() {
        let out = m.shapes[l];
        cur = match layer {
            CnnLayer::Relu => cur.mapv(|v| v.max(0.0)),
            CnnLayer::Maxpool { kernel, stride } => maxpool(cur.view(), *kernel, *stride),
            CnnLayer::Flatten => flatten(cur.view()),
            CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. } => {
                let w = m.weights[l].as_ref().expect("weights for conv/dense");
                let in_c = cur.dim().0;
                Array3::from_shape_fn((out[0], out[1], out[2]), |(o, y, xx)| {
                    let mut s = w.bias[o];
                    for i in 0..in_c {
                        s += partial(layer, &w.weight, cur.view(), (o, i, y, xx), |a, b| a * b);
                    }
                    s
                })
            }
        };
        if let Some(m) = seen.get_mut(l) {
            *m = cur.iter().fold(*m, |a, v| a.max(v.abs()));
        }
    }
    cur
}

/// The fixed model on one input map of codes. `partition` gives each layer's shares (rows =
/// output channels, blocks = input channels); `None` runs each layer as one share.
pub fn fixed(
    m: &CnnDesign,
    q: &QuantSpec,
    partition: Option<&[LayerPartition]>,
    x: ArrayView3<i64>,
    ev: &mut Events,
) -> Array3<i64> {
    let mut cur = x.to_owned();
    for (l, layer) in m.layers.iter().enumerate() {
        let out = m.shapes[l];
        let f = m.formats[l];
        let prod_frac = f.prod_frac();
        let bias_shift = prod_frac - f.bias.frac_bits;
        cur = match layer {
            CnnLayer::Relu => cur.mapv(|v| v.max(0)),
            CnnLayer::Maxpool { kernel, stride } => maxpool(cur.view(), *kernel, *stride),
            CnnLayer::Flatten => flatten(cur.view()),
            CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. } => {
                let w = m.weights[l].as_ref().expect("weights for conv/dense");
                let in_c = cur.dim().0;
                let whole = [Share {
                    device: 0,
                    rows: (0..out[0]).collect(),
                    blocks: (0..in_c).collect(),
                }];
                let shares = partition.map_or(&whole[..], |p| &p[l].shares[..]);
                let mut acc = Array3::<i64>::zeros((out[0], out[1], out[2]));
                for share in shares {
                    for &o in &share.rows {
                        for y in 0..out[1] {
                            for xx in 0..out[2] {
                                let mut part = 0i64;
                                for &i in &share.blocks {
                                    part += partial(
                                        layer,
                                        &w.q_weight,
                                        cur.view(),
                                        (o, i, y, xx),
                                        |a, b| a * b,
                                    );
                                }
                                acc[[o, y, xx]] += part;
                            }
                        }
                    }
                }
                Array3::from_shape_fn(acc.dim(), |(o, y, xx)| {
                    let v = acc[[o, y, xx]] as i128 + ((w.q_bias[o] as i128) << bias_shift);
                    let r = requantize(v, prod_frac, f.output, q.rounding, q.overflow);
                    if r.clipped {
                        ev.saturations += 1;
                        ev.record(Some(l), "outputs", f.output, v, prod_frac);
                    }
                    r.code
                })
            }
        };
    }
    cur
}
