//! Pass `act-table`: fit sigmoid/tanh to the plan's fixed-point formats and report the error.
//!
//! The input range `[lo, hi)` is cut into `n` equal pieces whose width is a power of two of the
//! input LSB, so the piece index is a bit slice of `x - lo`. Inputs outside the range clamp to
//! its ends.
//!
//! - `lut`: one output code per piece, the midpoint of f over the piece (f is monotone, so this
//!   is the minimax constant).
//! - `pwl`: per piece an intercept `C0` and a slope `C1` per input code, both with `G` guard
//!   bits; `y = round((C0 + C1 * offset) / 2^G)`. `C0` is f at the piece's start and `C1` the
//!   chord slope to the next piece's start, floored, so the table is monotone like f.
//!
//! Hardware and the golden model both call [`ActTable::eval`] semantics on integer codes.
//!
//! Example (sigmoid, input `s3.12`, output `s1.14`, `pwl` with 64 segments over [-8, 8)):
//! before, `sigmoid(0.5) = 0.622459`; after, input code 2048 gives output code 10198
//! (0.622437), and the table's max abs error over all 65536 inputs is 7.8e-4.

use crate::fixed::{grid, round_shift, Grid, Overflow, QFormat, Rounding};
use crate::plan::ActMethod;

/// Which function a table approximates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Sigmoid,
    Tanh,
}

impl Func {
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Tanh => x.tanh(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Func::Sigmoid => "sigmoid",
            Func::Tanh => "tanh",
        }
    }
}

/// A fitted, quantized activation table.
#[derive(Clone, Debug, PartialEq)]
pub struct ActTable {
    pub func: Func,
    pub method: ActMethod,
    pub input: QFormat,
    pub output: QFormat,
    pub rounding: Rounding,
    pub grid: Grid,
    /// `lut`: output codes. `pwl`: intercepts C0, scaled by 2^(output frac + guard).
    pub values: Vec<i64>,
    /// `pwl`: slopes C1 per input code, scaled like `values`. Empty for `lut`.
    pub slopes: Vec<i64>,
    /// `pwl`: guard bits dropped by the final rounding. 0 for `lut`.
    pub guard: u32,
    /// Max |table(x) - f(x)| over the input format (every code, or an even sample of 2^20
    /// codes for formats wider than 20 bits).
    pub max_abs_error: f64,
    /// Where that maximum occurs.
    pub worst_input: f64,
}

impl ActTable {
    /// Fit `func` over `range` with `pieces` segments (pwl) or entries (lut).
    pub fn fit(
        func: Func,
        method: ActMethod,
        range: [f64; 2],
        pieces: usize,
        input: QFormat,
        output: QFormat,
        rounding: Rounding,
    ) -> Result<Self, String> {
        let g = grid(range, input, pieces)?;
        let step = 1i64 << g.step_shift;
        let at = |code: i64| func.eval(input.to_f64(code));
        let out_scale = |guard: u32| ((output.frac_bits + guard) as f64).exp2();
        let (values, slopes, guard) = match method {
            ActMethod::Lut => {
                let v = (0..pieces as i64)
                    .map(|k| {
                        let first = g.lo_code + k * step;
                        let mid = 0.5 * (at(first) + at(first + step - 1));
                        output
                            .quantize(mid, Rounding::NearestEven, Overflow::Saturate)
                            .code
                    })
                    .collect();
                (v, Vec::new(), 0)
            }
            ActMethod::Pwl => {
                let guard = g.step_shift + 4;
                let scale = out_scale(guard);
                // Knots: f at every piece boundary, quantized with the guard bits.
                let knots: Vec<i64> = (0..=pieces as i64)
                    .map(|k| (at(g.lo_code + k * step) * scale).round() as i64)
                    .collect();
                let c0s = knots[..pieces].to_vec();
                // Floored chord slope: the last offset of a piece never passes the next knot,
                // so the table is continuous to within an LSB and exactly monotone.
                let c1s = knots
                    .windows(2)
                    .map(|w| (w[1] - w[0]).div_euclid(step))
                    .collect();
                (c0s, c1s, guard)
            }
        };
        let mut t = ActTable {
            func,
            method,
            input,
            output,
            rounding,
            grid: g,
            values,
            slopes,
            guard,
            max_abs_error: 0.0,
            worst_input: 0.0,
        };
        t.measure();
        Ok(t)
    }

    /// Evaluate on an input code, exactly as the hardware does.
    pub fn eval(&self, x: i64) -> i64 {
        let last = ((self.grid.pieces as i64) << self.grid.step_shift) - 1;
        let rel = (x - self.grid.lo_code).clamp(0, last);
        let k = (rel >> self.grid.step_shift) as usize;
        match self.method {
            ActMethod::Lut => self.values[k],
            ActMethod::Pwl => {
                let off = rel & ((1i64 << self.grid.step_shift) - 1);
                let acc = self.values[k] as i128 + self.slopes[k] as i128 * off as i128;
                self.output
                    .fit(
                        round_shift(acc, self.guard, self.rounding),
                        Overflow::Saturate,
                    )
                    .code
            }
        }
    }

    fn measure(&mut self) {
        let (lo, hi) = (self.input.min_code(), self.input.max_code());
        let total = (hi - lo + 1) as u64;
        let stride = (total >> 20).max(1) as i64;
        let (mut worst, mut at) = (0.0f64, 0.0);
        let mut x = lo;
        loop {
            let xr = self.input.to_f64(x);
            let e = (self.output.to_f64(self.eval(x)) - self.func.eval(xr)).abs();
            if e > worst {
                worst = e;
                at = xr;
            }
            if x == hi {
                break;
            }
            x = (x + stride).min(hi);
        }
        self.max_abs_error = worst;
        self.worst_input = at;
    }
}

/// The three tables an LSTM needs: sigmoid and tanh on pre-activations, tanh on the cell.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmTables {
    pub sigmoid: ActTable,
    pub tanh: ActTable,
    pub tanh_cell: ActTable,
}

/// Fit the tables an LSTM plan needs.
pub fn fit_lstm(plan: &crate::plan::Plan) -> Result<LstmTables, String> {
    let a = &plan.activation;
    let q = &plan.quant;
    let n = match a.method {
        ActMethod::Pwl => a.segments,
        ActMethod::Lut => a.entries,
    } as usize;
    let fit = |f, range, input| ActTable::fit(f, a.method, range, n, input, q.gate, q.rounding);
    Ok(LstmTables {
        sigmoid: fit(Func::Sigmoid, a.sigmoid_range, q.preact)?,
        tanh: fit(Func::Tanh, a.tanh_range, q.preact)?,
        tanh_cell: fit(Func::Tanh, a.tanh_range, q.cell)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_12: QFormat = QFormat::new(3, 12);
    const S1_14: QFormat = QFormat::new(1, 14);

    fn table(f: Func, m: ActMethod, range: [f64; 2], n: usize) -> ActTable {
        ActTable::fit(f, m, range, n, S3_12, S1_14, Rounding::NearestEven).unwrap()
    }

    #[test]
    fn default_sigmoid_within_0_004() {
        let t = table(Func::Sigmoid, ActMethod::Pwl, [-8.0, 8.0], 64);
        assert!(t.max_abs_error <= 0.004, "{}", t.max_abs_error);
        let t = table(Func::Sigmoid, ActMethod::Lut, [-8.0, 8.0], 1024);
        assert!(t.max_abs_error <= 0.004, "{}", t.max_abs_error);
    }

    #[test]
    fn lut_errors_match_reference_notes() {
        // hardware-notes.md: 1024-entry sigmoid LUT over [-8, 8) with round-to-nearest index
        // has max error 0.0020; 256 entries, about 0.0156 with truncating index (half that
        // with a centred bin value, which this fit uses).
        let t = table(Func::Sigmoid, ActMethod::Lut, [-8.0, 8.0], 1024);
        assert!(
            (t.max_abs_error - 0.0020).abs() < 0.0003,
            "{}",
            t.max_abs_error
        );
        let t = table(Func::Sigmoid, ActMethod::Lut, [-8.0, 8.0], 256);
        assert!(
            (t.max_abs_error - 0.0078).abs() < 0.0008,
            "{}",
            t.max_abs_error
        );
    }

    #[test]
    fn tanh_tail_sets_error_floor() {
        // 1 - tanh(4) = 6.7e-4 is the floor for a [-4, 4) range.
        let t = table(Func::Tanh, ActMethod::Pwl, [-4.0, 4.0], 256);
        assert!(
            t.max_abs_error >= 6.7e-4 && t.max_abs_error < 1.0e-3,
            "{}",
            t.max_abs_error
        );
    }

    #[test]
    fn monotone_and_in_range() {
        for m in [ActMethod::Pwl, ActMethod::Lut] {
            let t = table(Func::Sigmoid, m, [-8.0, 8.0], 64);
            let mut prev = i64::MIN;
            for x in S3_12.min_code()..=S3_12.max_code() {
                let y = t.eval(x);
                assert!(y >= prev, "{m:?} not monotone at {x}");
                assert!((0..=1 << 14).contains(&y));
                prev = y;
            }
        }
    }

    #[test]
    fn rejects_off_grid_ranges() {
        assert!(grid([-8.0, 8.0], S3_12, 48).is_err());
        assert!(grid([-8.0, 9.0], S3_12, 64).is_err());
        assert!(grid([-8.00001, 8.0], S3_12, 64).is_err());
        assert!(grid([8.0, -8.0], S3_12, 64).is_err());
        assert!(grid([-4.0, 4.0], S3_12, 64).is_ok());
    }
}

#[cfg(test)]
mod doc_example {
    use super::*;

    #[test]
    fn module_doc_example_holds() {
        let t = ActTable::fit(
            Func::Sigmoid,
            ActMethod::Pwl,
            [-8.0, 8.0],
            64,
            QFormat::new(3, 12),
            QFormat::new(1, 14),
            Rounding::NearestEven,
        )
        .unwrap();
        // sigmoid(0.5) = 0.622459; code 10198 / 2^14 = 0.622437.
        assert_eq!(t.eval(2048), 10198);
        assert!(
            (t.max_abs_error - 7.8e-4).abs() < 1e-5,
            "{}",
            t.max_abs_error
        );
    }
}
