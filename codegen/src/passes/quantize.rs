//! Pass `quantize`: round and saturate float tensors into their fixed-point format, counting
//! the values the overflow mode had to clip and measuring the float-vs-fixed error.
//!
//! Example, format `s1.2` (LSB 0.25, range [-2, 1.75]), nearest-even, saturate:
//! before `[0.3, -0.125, 1.9, -3.0]`; after codes `[1, 0, 7, -8]` = `[0.25, 0.0, 1.75, -2.0]`,
//! 2 clipped. The unclipped values are within half an LSB (0.125); the max error, 1.0, comes
//! from clipping -3.0 to -2.0.

use crate::fixed::{Overflow, QFormat, Rounding};

/// What quantizing one tensor did.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    pub name: String,
    pub format: QFormat,
    pub count: usize,
    /// Values outside the format's range.
    pub clipped: usize,
    /// Max |fixed - float| over all values, clipped ones included.
    pub max_abs_error: f64,
    /// Root-mean-square error over all values.
    pub rms_error: f64,
}

/// Quantize `values` into `format`. Returns the codes and the report.
pub fn quantize(
    name: &str,
    values: &[f64],
    format: QFormat,
    rounding: Rounding,
    overflow: Overflow,
) -> (Vec<i64>, TensorReport) {
    let mut codes = Vec::with_capacity(values.len());
    let (mut clipped, mut max_e, mut sq) = (0usize, 0.0f64, 0.0f64);
    for &v in values {
        let q = format.quantize(v, rounding, overflow);
        clipped += q.clipped as usize;
        let e = (format.to_f64(q.code) - v).abs();
        max_e = max_e.max(e);
        sq += e * e;
        codes.push(q.code);
    }
    let n = values.len().max(1);
    (
        codes,
        TensorReport {
            name: name.to_string(),
            format,
            count: values.len(),
            clipped,
            max_abs_error: max_e,
            rms_error: (sq / n as f64).sqrt(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_example() {
        let (codes, r) = quantize(
            "t",
            &[0.3, -0.125, 1.9, -3.0],
            QFormat::new(1, 2),
            Rounding::NearestEven,
            Overflow::Saturate,
        );
        assert_eq!(codes, vec![1, 0, 7, -8]);
        assert_eq!(r.clipped, 2);
        assert_eq!(r.count, 4);
        assert_eq!(r.max_abs_error, 1.0); // -3.0 clipped to -2.0
    }
}
