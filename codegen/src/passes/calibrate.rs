//! `calibrate`: picks each fixed-point format's integer bits from the range of the values it
//! holds, observed by the float model on sample inputs, with a margin; every word keeps its
//! width (what the plan gave), so the hardware's widths do not change, only where the binary
//! point sits. The result is the user's plan with those formats written in (comments and order
//! kept), checked like any plan before it is returned.
//!
//! - CNN: `[quant].data` (the input), and on each conv2d and dense layer its own `data` (its
//!   output, before any ReLU), `weight` and `bias`. ReLU, max-pool and flatten keep their
//!   input's format.
//! - LSTM: `[quant]` `weight`, `bias`, `data` (x and h), `cell` and `preact`. `preact` and
//!   `cell` keep at least the integer bits the activation tables' ranges need (the tables are
//!   fitted over those ranges); `gate` (sigmoid/tanh outputs, within [-1, 1]) is not changed.
//!
//! Weights and biases are known exactly, so they get no margin; a bias keeps at most as many
//! fraction bits as a product of a weight and the layer's input (it is added to the
//! accumulator without rounding), taking more integer bits where that binds.

use std::path::Path;

use toml_edit::{value, DocumentMut, Item};

use crate::design::{Design, ModelDesign};
use crate::fixed::QFormat;
use crate::plan::{self, CheckedPlan, CnnLayer};

/// The largest magnitudes the float model saw on the samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranges {
    /// Samples (CNN inputs or LSTM sequences) behind these figures.
    pub samples: usize,
    /// Largest |input value|.
    pub input: f64,
    /// CNN: each layer's largest |output| (conv2d and dense before any ReLU). LSTM: empty.
    pub layers: Vec<f64>,
    /// LSTM: largest |h|, |c| and |gate pre-activation| over every layer, step and unit.
    pub h: f64,
    pub cell: f64,
    pub preact: f64,
}

/// One format calibrate chose.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// What it is for, e.g. "layer 3 conv2d output" or "[quant] cell".
    pub what: String,
    /// The largest |value| it must hold (observed, or the weights').
    pub largest: f64,
    pub from: QFormat,
    pub to: QFormat,
}

/// A calibrated plan: its text and what changed.
#[derive(Clone, Debug)]
pub struct Calibrated {
    pub text: String,
    pub choices: Vec<Choice>,
    pub plan: CheckedPlan,
}

/// The format of the same width as `like` that holds `largest * (1 + margin)` with the most
/// fraction bits, and at least `min_int` integer bits.
pub fn fit_format(
    largest: f64,
    margin: f64,
    like: QFormat,
    min_int: u32,
) -> Result<QFormat, String> {
    let bits = like.int_bits + like.frac_bits;
    let want = largest * (1.0 + margin);
    (min_int.min(bits)..=bits)
        .map(|i| QFormat::new(i, bits - i))
        .find(|f| want <= f.max_value())
        .ok_or_else(|| {
            format!(
                "values up to {want:.6} (largest {largest:.6} plus the margin) do not fit any {}-bit format (s{bits}.0 holds up to {}); give it a wider format in the plan, or scale the values",
                like.width(),
                (2f64).powi(bits as i32) - 1.0
            )
        })
}

/// Integer bits that cover `[-r, r]` for each range end r (a table's range end may equal
/// 2^I: the tables' grids allow their upper end one LSB past the format's largest code).
fn int_bits_covering(ranges: &[[f64; 2]]) -> u32 {
    let r = ranges
        .iter()
        .flat_map(|[lo, hi]| [lo.abs(), hi.abs()])
        .fold(0.0f64, f64::max);
    (0..31).find(|&i| (i as f64).exp2() >= r).unwrap_or(31)
}

/// A bias format holding `largest` with at most `prod_frac` fraction bits.
fn bias_format(largest: f64, like: QFormat, prod_frac: u32) -> Result<QFormat, String> {
    let f = fit_format(largest, 0.0, like, 0)?;
    if f.frac_bits <= prod_frac {
        return Ok(f);
    }
    let bits = like.int_bits + like.frac_bits;
    Ok(QFormat::new(bits - prod_frac, prod_frac))
}

fn max_abs<'a>(it: impl IntoIterator<Item = &'a f64>) -> f64 {
    it.into_iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Calibrate `design`'s plan from `ranges`. `out_dir` is where the plan will be written: a
/// relative weights path is rewritten to stay valid from there.
pub fn calibrate(
    design: &Design,
    ranges: &Ranges,
    margin: f64,
    out_dir: &Path,
) -> Result<Calibrated, String> {
    if !(0.0..=10.0).contains(&margin) || margin.is_nan() {
        return Err(format!(
            "the margin is {margin}; it is a fraction of the observed range from 0 to 10 (0.25 = 25% headroom)"
        ));
    }
    let plan = &design.plan;
    let q = &plan.plan.quant;
    let mut doc: DocumentMut = plan
        .text
        .parse()
        .map_err(|e| format!("the plan is not TOML that can be edited: {e}"))?;
    if !doc.contains_key("quant") {
        // A `[quant]` table of its own, after the others (indexing would make an inline one).
        doc.insert("quant", toml_edit::table());
    }
    let mut choices = Vec::new();
    let mut choose = |what: String, largest: f64, from: QFormat, to: QFormat| {
        choices.push(Choice {
            what,
            largest,
            from,
            to,
        });
        to.to_string()
    };
    match &design.model {
        ModelDesign::Cnn(m) => {
            let data = fit_format(ranges.input, margin, q.data, 0)
                .map_err(|e| format!("the inputs ([quant] data): {e}"))?;
            doc["quant"]["data"] = value(choose(
                "input ([quant] data)".into(),
                ranges.input,
                q.data,
                data,
            ));
            let mut input = data;
            for (l, (layer, f)) in m.layers.iter().zip(&m.formats).enumerate() {
                let Some(w) = &m.weights[l] else { continue };
                let largest = ranges.layers.get(l).copied().unwrap_or(0.0);
                let what = |x: &str| format!("layer {l} {} {x}", layer.kind());
                let weight = fit_format(max_abs(&w.csb.values), 0.0, f.weight, 0)
                    .map_err(|e| format!("{}: {e}", what("weights")))?;
                let output = fit_format(largest, margin, f.output, 0)
                    .map_err(|e| format!("{}: {e}", what("outputs")))?;
                let prod_frac = weight.frac_bits + input.frac_bits;
                let bias = bias_format(max_abs(&w.bias), f.bias, prod_frac)
                    .map_err(|e| format!("{}: {e}", what("biases")))?;
                let t = &mut doc["model"]["layer"][l];
                t["data"] = value(choose(what("output"), largest, f.output, output));
                t["weight"] = value(choose(
                    what("weights"),
                    max_abs(&w.csb.values),
                    f.weight,
                    weight,
                ));
                t["bias"] = value(choose(what("biases"), max_abs(&w.bias), f.bias, bias));
                input = output;
                debug_assert!(matches!(
                    layer,
                    CnnLayer::Conv2d { .. } | CnnLayer::Dense { .. }
                ));
            }
        }
        ModelDesign::Lstm(m) => {
            let a = &plan.plan.activation;
            let w_max = m
                .layers
                .iter()
                .map(|l| max_abs(&l.w_ih.values).max(max_abs(&l.w_hh.values)))
                .fold(0.0, f64::max);
            let b_max = m
                .layers
                .iter()
                .map(|l| max_abs((&l.b_ih + &l.b_hh).iter()))
                .fold(0.0, f64::max);
            let weight =
                fit_format(w_max, 0.0, q.weight, 0).map_err(|e| format!("weights: {e}"))?;
            let x_h = ranges.input.max(ranges.h);
            let data = fit_format(x_h, margin, q.data, 0).map_err(|e| format!("x and h: {e}"))?;
            let preact_min = int_bits_covering(&[a.sigmoid_range, a.tanh_range]);
            let preact = fit_format(ranges.preact, margin, q.preact, preact_min)
                .map_err(|e| format!("gate pre-activations: {e}"))?;
            let cell = fit_format(
                ranges.cell,
                margin,
                q.cell,
                int_bits_covering(&[a.tanh_range]),
            )
            .map_err(|e| format!("cell states: {e}"))?;
            let bias = bias_format(b_max, q.bias, weight.frac_bits + data.frac_bits)
                .map_err(|e| format!("biases: {e}"))?;
            let t = &mut doc["quant"];
            t["weight"] = value(choose("[quant] weight".into(), w_max, q.weight, weight));
            t["bias"] = value(choose(
                "[quant] bias (b_ih + b_hh)".into(),
                b_max,
                q.bias,
                bias,
            ));
            t["data"] = value(choose("[quant] data (x and h)".into(), x_h, q.data, data));
            t["cell"] = value(choose("[quant] cell".into(), ranges.cell, q.cell, cell));
            t["preact"] = value(choose(
                "[quant] preact".into(),
                ranges.preact,
                q.preact,
                preact,
            ));
        }
    }
    rebase_weights(&mut doc, plan, out_dir);
    let header = header(plan, ranges, margin, &choices);
    let body = doc.to_string();
    let body = strip_header(&body);
    let text = format!("{header}{body}");
    let checked = plan::check_text(&plan.name, &text, out_dir).map_err(|e| {
        format!(
            "the calibrated plan does not pass `check`: {e}; adjust the formats' widths or accumulator_bits in the plan and calibrate again"
        )
    })?;
    Ok(Calibrated {
        text,
        choices,
        plan: checked,
    })
}

/// A relative `weights` path, made to point at the same file from `out_dir`.
fn rebase_weights(doc: &mut DocumentMut, plan: &CheckedPlan, out_dir: &Path) {
    let Some(w) = plan.plan.model.weights.as_deref() else {
        return;
    };
    let p = Path::new(w);
    if p.is_absolute() {
        return;
    }
    let same = match (plan.dir.canonicalize(), out_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => plan.dir == out_dir,
    };
    if same {
        return;
    }
    let full = plan.dir.join(p);
    let full = full.canonicalize().unwrap_or(full);
    if let Item::Table(_) = &doc["model"] {
        doc["model"]["weights"] = value(full.display().to_string());
    }
}

const HEADER: &str = "# Calibrated by `partita calibrate`";

fn header(plan: &CheckedPlan, ranges: &Ranges, margin: f64, choices: &[Choice]) -> String {
    let mut s = format!(
        "{HEADER} {} from `{}` on {} sample(s), margin {margin}:\n",
        env!("CARGO_PKG_VERSION"),
        plan.name,
        ranges.samples
    );
    for c in choices {
        s.push_str(&format!(
            "#   {:<32} largest |value| {:<12.6} {} -> {}\n",
            c.what, c.largest, c.from, c.to
        ));
    }
    s.push('\n');
    s
}

/// The plan without the header an earlier `calibrate` wrote.
fn strip_header(text: &str) -> &str {
    if !text.starts_with(HEADER) {
        return text;
    }
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_hold_the_range_with_the_most_fraction_bits() {
        let s3_12 = QFormat::new(3, 12);
        assert_eq!(fit_format(0.9, 0.0, s3_12, 0).unwrap(), QFormat::new(0, 15));
        assert_eq!(fit_format(1.0, 0.0, s3_12, 0).unwrap(), QFormat::new(1, 14));
        assert_eq!(
            fit_format(25.0, 0.25, s3_12, 0).unwrap(),
            QFormat::new(5, 10)
        );
        assert_eq!(fit_format(0.1, 0.0, s3_12, 3).unwrap(), s3_12);
        assert!(fit_format(1e9, 0.0, s3_12, 0).is_err());
        // The largest code of the chosen format is at least the value.
        for v in [0.3, 1.7, 7.99, 8.0, 100.0] {
            let f = fit_format(v, 0.0, s3_12, 0).unwrap();
            assert!(f.max_value() >= v, "{f} for {v}");
            if f.int_bits > 0 {
                let tighter = QFormat::new(f.int_bits - 1, f.frac_bits + 1);
                assert!(tighter.max_value() < v, "{tighter} would hold {v}");
            }
        }
    }

    #[test]
    fn biases_keep_at_most_the_products_fraction_bits() {
        let f = bias_format(0.01, QFormat::new(3, 12), 10).unwrap();
        assert_eq!(f, QFormat::new(5, 10));
        assert_eq!(int_bits_covering(&[[-8.0, 8.0], [-4.0, 4.0]]), 3);
        assert_eq!(int_bits_covering(&[[-4.0, 4.0]]), 2);
    }

    #[test]
    fn a_second_calibration_replaces_the_first_header() {
        let text =
            format!("{HEADER} 0.1 from `p` on 4 sample(s), margin 0.25:\n#   x\n\n[model]\n");
        assert_eq!(strip_header(&text), "[model]\n");
        assert_eq!(strip_header("# mine\n[model]\n"), "# mine\n[model]\n");
    }
}
