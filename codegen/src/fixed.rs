//! Signed two's-complement fixed-point formats and the one rounding/saturation primitive that
//! every result in partita goes through.
//!
//! A format is written `sI.F`: one sign bit, `I` integer bits and `F` fraction bits, so the
//! word is `1 + I + F` bits wide. `s2.5` is an 8-bit word with LSB 2^-5 and range
//! [-4, 4 - 2^-5]. A value `v` is stored as the integer code `round(v * 2^F)`.

use std::fmt;

use serde::Deserialize;

/// Widest word partita accepts for any single format. Accumulators are checked separately.
pub const MAX_FORMAT_BITS: u32 = 32;

/// A signed fixed-point format `sI.F` (width `1 + I + F`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct QFormat {
    pub int_bits: u32,
    pub frac_bits: u32,
}

impl QFormat {
    pub const fn new(int_bits: u32, frac_bits: u32) -> Self {
        Self {
            int_bits,
            frac_bits,
        }
    }

    /// Total word width in bits, sign included.
    pub const fn width(&self) -> u32 {
        1 + self.int_bits + self.frac_bits
    }

    pub const fn min_code(&self) -> i64 {
        -(1i64 << (self.width() - 1))
    }

    pub const fn max_code(&self) -> i64 {
        (1i64 << (self.width() - 1)) - 1
    }

    /// Value of one LSB.
    pub fn lsb(&self) -> f64 {
        (-(self.frac_bits as f64)).exp2()
    }

    pub fn min_value(&self) -> f64 {
        self.min_code() as f64 * self.lsb()
    }

    pub fn max_value(&self) -> f64 {
        self.max_code() as f64 * self.lsb()
    }

    pub fn to_f64(&self, code: i64) -> f64 {
        code as f64 * self.lsb()
    }

    /// Quantize a real value: scale, round once, then apply the overflow mode.
    pub fn quantize(&self, x: f64, rounding: Rounding, overflow: Overflow) -> Quantized {
        let scaled = x * (self.frac_bits as f64).exp2();
        let r = match rounding {
            Rounding::NearestEven => scaled.round_ties_even(),
            Rounding::Truncate => scaled.floor(),
        };
        // f64 -> i128 saturates at the i128 range, which is far outside any format.
        self.fit(r as i128, overflow)
    }

    /// Bring an integer that already has this format's scaling into range.
    pub fn fit(&self, v: i128, overflow: Overflow) -> Quantized {
        let (lo, hi) = (self.min_code() as i128, self.max_code() as i128);
        if (lo..=hi).contains(&v) {
            return Quantized {
                code: v as i64,
                clipped: false,
            };
        }
        let code = match overflow {
            Overflow::Saturate => v.clamp(lo, hi) as i64,
            Overflow::Wrap => {
                let w = self.width();
                let m = v & ((1i128 << w) - 1);
                (if m >> (w - 1) != 0 {
                    m - (1i128 << w)
                } else {
                    m
                }) as i64
            }
        };
        Quantized {
            code,
            clipped: true,
        }
    }

    /// Parse `sI.F`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a fixed-point format; write `sI.F` (sign, I integer bits, F \
                 fraction bits), e.g. \"s3.12\" for a 16-bit word"
            )
        };
        let body = s.strip_prefix('s').ok_or_else(bad)?;
        let (i, f) = body.split_once('.').ok_or_else(bad)?;
        let int_bits: u64 = i.parse().map_err(|_| bad())?;
        let frac_bits: u64 = f.parse().map_err(|_| bad())?;
        let width = 1 + int_bits + frac_bits;
        if !(2..=MAX_FORMAT_BITS as u64).contains(&width) {
            return Err(format!(
                "`{s}` is {width} bits wide; formats must be 2 to {MAX_FORMAT_BITS} bits (1 + I + F)"
            ));
        }
        Ok(QFormat::new(int_bits as u32, frac_bits as u32))
    }
}

impl TryFrom<String> for QFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        QFormat::parse(&s)
    }
}

impl fmt::Display for QFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}.{}", self.int_bits, self.frac_bits)
    }
}

/// Result of one quantization: the code and whether the overflow mode had to act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantized {
    pub code: i64,
    pub clipped: bool,
}

/// How dropped fraction bits are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Round to nearest, ties to even (convergent rounding).
    #[default]
    NearestEven,
    /// Drop the bits: floor towards minus infinity, as a plain arithmetic shift does.
    Truncate,
}

/// What happens to a value outside the target format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Clamp to the most positive / most negative code.
    #[default]
    Saturate,
    /// Keep the low bits (two's-complement wrap-around).
    Wrap,
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rounding::NearestEven => "nearest-even",
            Rounding::Truncate => "truncate",
        })
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overflow::Saturate => "saturate",
            Overflow::Wrap => "wrap",
        })
    }
}

/// Arithmetic right shift by `shift` bits with the given rounding. This is the only place an
/// integer result loses precision.
pub fn round_shift(v: i128, shift: u32, rounding: Rounding) -> i128 {
    if shift == 0 {
        return v;
    }
    let floor = v >> shift;
    match rounding {
        Rounding::Truncate => floor,
        Rounding::NearestEven => {
            let rem = v - (floor << shift);
            let half = 1i128 << (shift - 1);
            if rem > half || (rem == half && floor & 1 == 1) {
                floor + 1
            } else {
                floor
            }
        }
    }
}

/// Requantize a full-width integer with `from_frac` fraction bits into `to`: one rounding, one
/// overflow step. Moving to more fraction bits is an exact left shift.
pub fn requantize(
    v: i128,
    from_frac: u32,
    to: QFormat,
    rounding: Rounding,
    overflow: Overflow,
) -> Quantized {
    let aligned = if to.frac_bits >= from_frac {
        v << (to.frac_bits - from_frac)
    } else {
        round_shift(v, from_frac - to.frac_bits, rounding)
    };
    to.fit(aligned, overflow)
}

/// The piece grid of an activation table (pass `act-table`): where it starts, and the piece width as a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub lo_code: i64,
    pub step_shift: u32,
    pub pieces: usize,
}

/// Check that `pieces` equal pieces of `range` sit on the grid of `fmt`: each piece a power of
/// two of the LSB wide, so a piece index is a bit slice of `x - lo`.
pub fn grid(range: [f64; 2], fmt: QFormat, pieces: usize) -> Result<Grid, String> {
    let [lo, hi] = range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err("lo must be less than hi".into());
    }
    let scale = (fmt.frac_bits as f64).exp2();
    let (lo_s, hi_s) = (lo * scale, hi * scale);
    if lo_s.fract() != 0.0 || hi_s.fract() != 0.0 {
        return Err(format!(
            "the ends are not multiples of the LSB {}",
            fmt.lsb()
        ));
    }
    let (lo_code, hi_code) = (lo_s as i64, hi_s as i64);
    if lo_code < fmt.min_code() || hi_code > fmt.max_code() + 1 {
        return Err(format!(
            "it reaches outside the format's range [{}, {}]",
            fmt.min_value(),
            fmt.max_value()
        ));
    }
    let span = (hi_code - lo_code) as u64;
    let step = span / pieces as u64;
    if step == 0 || step * pieces as u64 != span || !step.is_power_of_two() {
        return Err(format!(
            "{span} input codes do not split into {pieces} power-of-two pieces"
        ));
    }
    Ok(Grid {
        lo_code,
        step_shift: step.trailing_zeros(),
        pieces,
    })
}

/// Two's-complement bits that hold every value in `values` (at least 1).
pub fn signed_bits(values: &[i64]) -> u32 {
    values
        .iter()
        .map(|x| {
            65 - if *x < 0 {
                x.leading_ones()
            } else {
                x.leading_zeros()
            }
        })
        .max()
        .unwrap_or(1)
}

/// Bits needed to hold any signed value in `[-(2^(w-1)) * n, (2^(w-1)) * n]`: a sum of `n`
/// terms each at most `w` bits wide.
pub fn sum_bits(term_bits: u32, terms: u64) -> u32 {
    let grow = if terms <= 1 {
        0
    } else {
        64 - (terms - 1).leading_zeros()
    };
    term_bits + grow
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_display() {
        let q = QFormat::parse("s2.5").unwrap();
        assert_eq!(q.width(), 8);
        assert_eq!(q.to_string(), "s2.5");
        assert_eq!(q.min_value(), -4.0);
        assert_eq!(q.max_value(), 4.0 - 1.0 / 32.0);
        assert!(QFormat::parse("q3.4").is_err());
        assert!(QFormat::parse("s3").is_err());
        assert!(QFormat::parse("s0.0").is_err());
        assert!(QFormat::parse("s20.20").is_err());
        assert!(QFormat::parse("s4294967295.1").is_err());
        assert!(QFormat::parse("s99999999999999999999.1").is_err());
    }

    #[test]
    fn round_shift_modes() {
        // 5/4 = 1.25 -> 1, 6/4 = 1.5 -> 2 (even), 10/4 = 2.5 -> 2 (even), -6/4 = -1.5 -> -2
        assert_eq!(round_shift(5, 2, Rounding::NearestEven), 1);
        assert_eq!(round_shift(6, 2, Rounding::NearestEven), 2);
        assert_eq!(round_shift(10, 2, Rounding::NearestEven), 2);
        assert_eq!(round_shift(-6, 2, Rounding::NearestEven), -2);
        assert_eq!(round_shift(-5, 2, Rounding::Truncate), -2);
        assert_eq!(round_shift(7, 2, Rounding::Truncate), 1);
    }

    #[test]
    fn wrap_and_saturate() {
        let q = QFormat::new(2, 0); // 3 bits: -4..=3
        assert_eq!(q.fit(5, Overflow::Saturate).code, 3);
        assert_eq!(q.fit(5, Overflow::Wrap).code, -3);
        assert_eq!(q.fit(-9, Overflow::Wrap).code, -1);
        assert!(q.fit(-9, Overflow::Wrap).clipped);
        assert!(!q.fit(-4, Overflow::Wrap).clipped);
    }

    #[test]
    fn signed_bits_of_values() {
        assert_eq!(signed_bits(&[0]), 1);
        assert_eq!(signed_bits(&[-1]), 1);
        assert_eq!(signed_bits(&[1]), 2);
        assert_eq!(signed_bits(&[-128, 127]), 8);
        assert_eq!(signed_bits(&[128]), 9);
    }

    #[test]
    fn sum_bits_grows_by_log2() {
        assert_eq!(sum_bits(16, 1), 16);
        assert_eq!(sum_bits(16, 2), 17);
        assert_eq!(sum_bits(16, 4), 18);
        assert_eq!(sum_bits(16, 5), 19);
    }

    proptest! {
        /// Quantization error is at most half an LSB whenever the value is not saturated.
        #[test]
        fn nearest_error_at_most_half_lsb(i in 0u32..8, f in 0u32..20, x in -300.0f64..300.0) {
            let q = QFormat::new(i, f);
            let r = q.quantize(x, Rounding::NearestEven, Overflow::Saturate);
            if !r.clipped {
                prop_assert!((q.to_f64(r.code) - x).abs() <= q.lsb() / 2.0);
            } else {
                prop_assert!(x > q.max_value() || x < q.min_value());
            }
        }

        /// Truncation error is in [0, 1 LSB) whenever the value is not saturated.
        #[test]
        fn truncate_error_below_one_lsb(i in 0u32..8, f in 0u32..20, x in -300.0f64..300.0) {
            let q = QFormat::new(i, f);
            let r = q.quantize(x, Rounding::Truncate, Overflow::Saturate);
            if !r.clipped {
                let e = x - q.to_f64(r.code);
                prop_assert!((0.0..q.lsb()).contains(&e));
            }
        }

        /// round_shift agrees with quantizing the exact rational value.
        #[test]
        fn round_shift_matches_float(v in -1_000_000i64..1_000_000, s in 0u32..12) {
            let exact = v as f64 / (s as f64).exp2();
            prop_assert_eq!(round_shift(v as i128, s, Rounding::NearestEven) as f64, exact.round_ties_even());
            prop_assert_eq!(round_shift(v as i128, s, Rounding::Truncate) as f64, exact.floor());
        }
    }
}
