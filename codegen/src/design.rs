//! Runs the passes on a checked plan: load weights, `bbs-prune`, `quantize`, `act-table`,
//! `partition`. The result, a [`Design`], is what the golden model and the emitters consume.

use ndarray::{Array1, Array2, ArrayD, Ix2, IxDyn};

use crate::diag::{Issue, PlanError, SpanIndex};
use crate::fixed::QFormat;
use crate::passes::act_table::{fit_lstm, LstmTables};
use crate::passes::bbs_prune::{self, CsbMatrix, PruneReport};
use crate::passes::partition::{self, PartitionMap};
use crate::passes::quantize::{quantize, TensorReport};
use crate::plan::{self, CheckedPlan, CnnLayer, LayerFormat, ModelShape, QuantSpec};
use crate::weights::{self, FloatWeights};

/// One LSTM layer after pruning and quantization.
#[derive(Clone, Debug)]
pub struct LstmLayer {
    /// Pruned float weights in CSB form, and decoded.
    pub w_ih: CsbMatrix<f64>,
    pub w_hh: CsbMatrix<f64>,
    pub dense_ih: Array2<f64>,
    pub dense_hh: Array2<f64>,
    pub b_ih: Array1<f64>,
    pub b_hh: Array1<f64>,
    /// Weight codes, same positions as `w_ih` / `w_hh`.
    pub q_ih: CsbMatrix<i64>,
    pub q_hh: CsbMatrix<i64>,
    /// `b_ih + b_hh`, quantized once to the bias format.
    pub q_bias: Vec<i64>,
}

#[derive(Clone, Debug)]
pub struct LstmDesign {
    pub input_size: usize,
    pub hidden_size: usize,
    pub layers: Vec<LstmLayer>,
    pub tables: LstmTables,
}

/// A CNN layer with weights, after pruning (of the `out x (in*k*k)` matrix) and quantization.
#[derive(Clone, Debug)]
pub struct CnnWeights {
    pub csb: CsbMatrix<f64>,
    /// Pruned float weights, PyTorch shape.
    pub weight: ArrayD<f64>,
    pub bias: Array1<f64>,
    /// Weight codes in CSB form (same positions as `csb`) and in PyTorch shape.
    pub q_csb: CsbMatrix<i64>,
    pub q_weight: ArrayD<i64>,
    pub q_bias: Vec<i64>,
}

#[derive(Clone, Debug)]
pub struct CnnDesign {
    pub input_shape: [usize; 3],
    pub layers: Vec<CnnLayer>,
    pub shapes: Vec<[usize; 3]>,
    /// Each layer's formats (input, output, weight, bias, accumulator).
    pub formats: Vec<LayerFormat>,
    pub weights: Vec<Option<CnnWeights>>,
    /// One device: each layer's engines and lanes (the `fold` pass).
    pub fold: crate::passes::fold::Fold,
}

#[derive(Clone, Debug)]
pub enum ModelDesign {
    Lstm(LstmDesign),
    Cnn(CnnDesign),
}

/// Everything the passes produced.
#[derive(Clone, Debug)]
pub struct Design {
    pub plan: CheckedPlan,
    pub model: ModelDesign,
    pub partition: PartitionMap,
    pub acc_bits: u32,
    pub quant_reports: Vec<TensorReport>,
    pub prune_reports: Vec<(String, PruneReport)>,
}

impl Design {
    pub fn quant(&self) -> &QuantSpec {
        &self.plan.plan.quant
    }

    /// The format of the model's input values (`[quant].data`).
    pub fn input_format(&self) -> QFormat {
        self.plan.plan.quant.data
    }

    /// The format of the model's output values: `[quant].data`, or a CNN's last layer's.
    pub fn output_format(&self) -> QFormat {
        match &self.model {
            ModelDesign::Cnn(m) => m.formats.last().map_or(self.quant().data, |f| f.output),
            ModelDesign::Lstm(_) => self.quant().data,
        }
    }
}

/// A `rows x (in * k * k)` matrix back to PyTorch's weight shape.
fn reshape<T>(m: Array2<T>, dims: &[usize]) -> ArrayD<T> {
    m.into_shape_with_order(IxDyn(dims))
        .expect("same element count")
}

/// Quantize the stored entries of a CSB matrix (padding and pruned positions stay zero).
fn quantize_csb(
    name: &str,
    m: &CsbMatrix<f64>,
    format: QFormat,
    q: &QuantSpec,
    reports: &mut Vec<TensorReport>,
) -> CsbMatrix<i64> {
    let (codes, rep) = quantize(name, &m.values, format, q.rounding, q.overflow);
    reports.push(rep);
    CsbMatrix {
        shape: m.shape,
        values: codes,
        indices: m.indices.clone(),
    }
}

fn plan_issue(plan: &CheckedPlan, path: &[&str], message: String, help: &str) -> crate::Error {
    let spans = SpanIndex::new(&plan.text);
    let issue = Issue::new(message).help(help).at(spans.value(path), "here");
    crate::Error::Plan(Box::new(PlanError::new(
        &plan.name,
        &plan.text,
        vec![issue],
    )))
}

/// Run every pass.
pub fn build(plan: CheckedPlan) -> Result<Design, crate::Error> {
    let float = weights::load(&plan)?;
    tracing::info!(source = ?plan.weights, "weights loaded");
    let q = plan.plan.quant.clone();
    let (r, o) = (q.rounding, q.overflow);
    let mut quant_reports = Vec::new();
    let mut prune_reports = Vec::new();
    let mut prune = |name: &str,
                     w: &Array2<f64>,
                     banks: usize|
     -> Result<CsbMatrix<f64>, crate::Error> {
        let bank_size = w.ncols().div_ceil(banks).max(1);
        let n = match plan.keep.nnz(bank_size) {
            Some(n) if n > bank_size => {
                return Err(plan_issue(
                    &plan,
                    &["sparsity", "nnz_per_bank"],
                    format!("`nnz_per_bank` is {n}, but `{name}` has banks of {bank_size} columns"),
                    "nnz_per_bank can be at most the bank size, ceil(columns / banks)",
                ))
            }
            Some(n) => n,
            None => {
                let n = bbs_prune::max_nonzeros_per_bank(w.view(), banks).max(1);
                if n == bank_size && bank_size > 1 {
                    return Err(plan_issue(
                        &plan,
                        &["sparsity"],
                        format!("`{name}` is not bank-balanced sparse: a bank has all {bank_size} entries non-zero"),
                        "give `density` or `nnz_per_bank` to prune it, or use kind = \"dense\"",
                    ));
                }
                n
            }
        };
        let (csb, rep) = bbs_prune::encode(w.view(), banks, n);
        tracing::info!(
            tensor = name,
            banks,
            nnz_per_bank = csb.shape.nnz_per_bank,
            dropped = rep.dropped,
            "bbs-prune"
        );
        prune_reports.push((name.to_string(), rep));
        Ok(csb)
    };
    let model = match float {
        FloatWeights::Lstm(layers) => {
            let ModelShape::Lstm {
                input_size,
                hidden_size,
                ..
            } = plan.shape
            else {
                unreachable!("weights follow the shape")
            };
            let mut out = Vec::new();
            for (l, w) in layers.into_iter().enumerate() {
                let w_ih = prune(&format!("weight_ih_l{l}"), &w.w_ih, plan.banks)?;
                let w_hh = prune(&format!("weight_hh_l{l}"), &w.w_hh, plan.banks)?;
                let q_ih = quantize_csb(
                    &format!("weight_ih_l{l}"),
                    &w_ih,
                    q.weight,
                    &q,
                    &mut quant_reports,
                );
                let q_hh = quantize_csb(
                    &format!("weight_hh_l{l}"),
                    &w_hh,
                    q.weight,
                    &q,
                    &mut quant_reports,
                );
                let bias: Vec<f64> = (&w.b_ih + &w.b_hh).to_vec();
                let (q_bias, rep) = quantize(&format!("bias_l{l} (ih + hh)"), &bias, q.bias, r, o);
                quant_reports.push(rep);
                out.push(LstmLayer {
                    dense_ih: w_ih.decode(),
                    dense_hh: w_hh.decode(),
                    w_ih,
                    w_hh,
                    b_ih: w.b_ih,
                    b_hh: w.b_hh,
                    q_ih,
                    q_hh,
                    q_bias,
                });
            }
            let tables = fit_lstm(&plan.plan).map_err(|e| {
                plan_issue(&plan, &["activation"], e, "see [activation] in README.md")
            })?;
            ModelDesign::Lstm(LstmDesign {
                input_size,
                hidden_size,
                layers: out,
                tables,
            })
        }
        FloatWeights::Cnn(ws) => {
            let ModelShape::Cnn {
                input_shape,
                layers,
                shapes,
                formats,
            } = plan.shape.clone()
            else {
                unreachable!("weights follow the shape")
            };
            // Lanes per layer first (with dense weights `fold` may choose them; otherwise the
            // plan's banks), so each matrix is banked for its layer's lanes.
            let cols = plan.shape.cnn_columns();
            let pre = if plan.keep == plan::Keep::All {
                crate::passes::fold::fold(&plan, &|l, lanes| cols[l].div_ceil(lanes.max(1))).ok()
            } else {
                None
            };
            let lanes_of = |l: usize| {
                pre.as_ref()
                    .map(|f| f.lanes[l])
                    .filter(|v| *v > 0)
                    .unwrap_or(plan.banks)
            };
            let mut out = Vec::new();
            for (l, ((layer, w), f)) in layers.iter().zip(ws).zip(&formats).enumerate() {
                let Some(w) = w else {
                    out.push(None);
                    continue;
                };
                let name = match layer {
                    CnnLayer::Conv2d { name, .. } | CnnLayer::Dense { name, .. } => name.clone(),
                    _ => unreachable!("only conv/dense carry weights"),
                };
                let dims = w.weight.shape().to_vec();
                let rows = dims[0];
                let cols: usize = dims[1..].iter().product();
                let m = w
                    .weight
                    .to_shape((rows, cols))
                    .map(|v| v.to_owned())
                    .expect("contiguous weight");
                let csb = prune(
                    &format!("{name}.weight"),
                    &m.into_dimensionality::<Ix2>().expect("2-D"),
                    lanes_of(l),
                )?;
                let q_csb = quantize_csb(
                    &format!("{name}.weight"),
                    &csb,
                    f.weight,
                    &q,
                    &mut quant_reports,
                );
                let weight = reshape(csb.decode(), &dims);
                let q_weight = reshape(q_csb.decode(), &dims);
                let (q_bias, rep) = quantize(
                    &format!("{name}.bias"),
                    w.bias.as_slice().expect("contiguous"),
                    f.bias,
                    r,
                    o,
                );
                quant_reports.push(rep);
                out.push(Some(CnnWeights {
                    csb,
                    q_csb,
                    q_weight,
                    weight,
                    bias: w.bias,
                    q_bias,
                }));
            }
            // Engines and lanes per layer with the slices pruning kept, for one device's budget
            // (a multi-device system splits these stages).
            let fold = {
                let nnz: Vec<usize> = out
                    .iter()
                    .map(|w| w.as_ref().map_or(0, |w| w.q_csb.shape.nnz_per_bank))
                    .collect();
                let banks: Vec<usize> = out
                    .iter()
                    .map(|w| w.as_ref().map_or(0, |w| w.q_csb.shape.banks))
                    .collect();
                crate::passes::fold::fold(&plan, &|l, lanes| {
                    if lanes == banks[l] {
                        nnz[l]
                    } else {
                        cols[l].div_ceil(lanes.max(1))
                    }
                })
                .map_err(|e| {
                    plan_issue(
                        &plan,
                        &["target"],
                        e,
                        "raise the budget, or give fewer engines",
                    )
                })?
            };
            ModelDesign::Cnn(CnnDesign {
                input_shape,
                layers,
                shapes,
                formats,
                weights: out,
                fold,
            })
        }
    };
    for r in &quant_reports {
        tracing::info!(tensor = %r.name, format = %r.format, clipped = r.clipped, max_abs_error = r.max_abs_error, "quantize");
    }
    let partition = partition::build(&plan).map_err(|e| {
        plan_issue(
            &plan,
            &["partition"],
            e,
            "use fewer devices for that layer, or another strategy",
        )
    })?;
    let acc_bits = plan::acc_bits(&plan);
    Ok(Design {
        plan,
        model,
        partition,
        acc_bits,
        quant_reports,
        prune_reports,
    })
}

/// Load, validate and run every pass on a plan file.
pub fn from_path(path: &std::path::Path) -> Result<Design, crate::Error> {
    build(plan::load(path)?)
}
