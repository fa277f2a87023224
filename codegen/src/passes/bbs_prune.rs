//! Pass `bbs-prune`: bank-balanced pruning and CSB ("compressed sparse banks") encoding.
//!
//! Each row is cut into K banks of B = ceil(cols / K) columns; a row that K does not divide is
//! zero-padded to K * B. In every bank the n entries of largest magnitude are kept (ties go to
//! the lower column). CSB stores, for row r, the 1st kept entry of banks 0..K-1, then the 2nd
//! of every bank, and so on: one slice of K entries is one cycle of a K-lane engine. Each entry
//! has its value and its index inside the bank, which is the lane's vector-bank read address.
//!
//! Weights that are already bank-balanced (at most n non-zeros per bank) come through with
//! every value unchanged: the top n of such a bank include all its non-zeros.
//!
//! Example: one row `[0.1, -0.9, 0.3, 0.2, 0.0, 0.5, -0.4, 0.05]`, K = 2 (B = 4), n = 2:
//! - before: banks `[0.1, -0.9, 0.3, 0.2]` and `[0.0, 0.5, -0.4, 0.05]`;
//! - pruned: `[0, -0.9, 0.3, 0, 0, 0.5, -0.4, 0]`;
//! - CSB values `[-0.9, 0.5, 0.3, -0.4]`, in-bank indices `[1, 1, 2, 2]` (slice 0 = the first
//!   kept entry of bank 0 and bank 1; slice 1 = the second of each).

use ndarray::{Array2, ArrayView2};

/// Bank geometry of a matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Banking {
    pub rows: usize,
    pub cols: usize,
    /// K.
    pub banks: usize,
    /// B = ceil(cols / K).
    pub bank_size: usize,
    /// n: entries kept per bank (B for dense).
    pub nnz_per_bank: usize,
}

impl Banking {
    pub fn new(rows: usize, cols: usize, banks: usize, nnz_per_bank: usize) -> Self {
        let bank_size = cols.div_ceil(banks).max(1);
        Self {
            rows,
            cols,
            banks,
            bank_size,
            nnz_per_bank: nnz_per_bank.min(bank_size),
        }
    }

    /// Bits of an in-bank index: ceil(log2 B), at least 1.
    pub fn index_bits(&self) -> u32 {
        (usize::BITS - (self.bank_size - 1).leading_zeros()).max(1)
    }

    /// Padded row width K * B.
    pub fn padded_cols(&self) -> usize {
        self.banks * self.bank_size
    }

    /// Stored entries per row: K * n.
    pub fn entries_per_row(&self) -> usize {
        self.banks * self.nnz_per_bank
    }
}

/// n for a kept fraction: round(density * B), at least 1.
pub use crate::plan::nnz_for_density;

/// A matrix in CSB form. `values[i]` and `indices[i]` for
/// `i = (row * n + slice) * K + bank`.
#[derive(Clone, Debug, PartialEq)]
pub struct CsbMatrix<T> {
    pub shape: Banking,
    pub values: Vec<T>,
    pub indices: Vec<u32>,
}

impl<T: Copy> CsbMatrix<T> {
    /// Entry `(slice, bank)` of `row`: value and in-bank index.
    #[inline]
    pub fn entry(&self, row: usize, slice: usize, bank: usize) -> (T, usize) {
        let i = (row * self.shape.nnz_per_bank + slice) * self.shape.banks + bank;
        (self.values[i], self.indices[i] as usize)
    }

    /// Same positions, new values.
    pub fn map<U>(&self, f: impl FnMut(&T) -> U) -> CsbMatrix<U> {
        CsbMatrix {
            shape: self.shape,
            values: self.values.iter().map(f).collect(),
            indices: self.indices.clone(),
        }
    }
}

impl<T: Copy + Default> CsbMatrix<T> {
    /// Back to a dense rows x cols matrix (padding dropped).
    pub fn decode(&self) -> Array2<T> {
        let s = self.shape;
        let mut out = Array2::from_elem((s.rows, s.cols), T::default());
        for r in 0..s.rows {
            for j in 0..s.nnz_per_bank {
                for k in 0..s.banks {
                    let (v, idx) = self.entry(r, j, k);
                    let col = k * s.bank_size + idx;
                    if col < s.cols {
                        out[[r, col]] = v;
                    }
                }
            }
        }
        out
    }
}

/// What pruning did to a matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PruneReport {
    /// Non-zeros before.
    pub nonzero_before: usize,
    /// Non-zeros dropped by pruning (0 when the weights were already bank-balanced).
    pub dropped: usize,
    /// Largest magnitude dropped.
    pub max_dropped: f64,
}

/// Prune every bank of every row to its n largest-magnitude entries and encode as CSB.
pub fn encode(
    w: ArrayView2<f64>,
    banks: usize,
    nnz_per_bank: usize,
) -> (CsbMatrix<f64>, PruneReport) {
    let (rows, cols) = w.dim();
    let shape = Banking::new(rows, cols, banks, nnz_per_bank);
    let (b, n) = (shape.bank_size, shape.nnz_per_bank);
    let mut values = vec![0.0; rows * n * banks];
    let mut indices = vec![0u32; rows * n * banks];
    let mut report = PruneReport::default();
    let mut bank: Vec<(usize, f64)> = Vec::with_capacity(b);
    for r in 0..rows {
        for k in 0..banks {
            bank.clear();
            for i in 0..b {
                let col = k * b + i;
                bank.push((i, if col < cols { w[[r, col]] } else { 0.0 }));
            }
            report.nonzero_before += bank.iter().filter(|(_, v)| *v != 0.0).count();
            // Largest magnitude first; ties to the lower index. Stable and total.
            bank.sort_by(|a, c| c.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&c.0)));
            for &(_, v) in &bank[n..] {
                if v != 0.0 {
                    report.dropped += 1;
                    report.max_dropped = report.max_dropped.max(v.abs());
                }
            }
            let kept = &mut bank[..n];
            kept.sort_by_key(|e| e.0);
            for (j, &(i, v)) in kept.iter().enumerate() {
                let at = (r * n + j) * banks + k;
                values[at] = v;
                indices[at] = i as u32;
            }
        }
    }
    (
        CsbMatrix {
            shape,
            values,
            indices,
        },
        report,
    )
}

/// Largest non-zero count of any bank: the n that keeps the matrix exactly as it is.
pub fn max_nonzeros_per_bank(w: ArrayView2<f64>, banks: usize) -> usize {
    let (rows, cols) = w.dim();
    let b = cols.div_ceil(banks).max(1);
    let mut most = 0;
    for r in 0..rows {
        for k in 0..banks {
            let n = (k * b..((k + 1) * b).min(cols))
                .filter(|&c| w[[r, c]] != 0.0)
                .count();
            most = most.max(n);
        }
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use proptest::prelude::*;

    #[test]
    fn doc_example() {
        let w = array![[0.1, -0.9, 0.3, 0.2, 0.0, 0.5, -0.4, 0.05]];
        let (csb, rep) = encode(w.view(), 2, 2);
        assert_eq!(csb.values, vec![-0.9, 0.5, 0.3, -0.4]);
        assert_eq!(csb.indices, vec![1, 1, 2, 2]);
        assert_eq!(
            csb.decode(),
            array![[0.0, -0.9, 0.3, 0.0, 0.0, 0.5, -0.4, 0.0]]
        );
        assert_eq!(rep.dropped, 3);
        assert_eq!(rep.max_dropped, 0.2);
    }

    #[test]
    fn padding_when_banks_do_not_divide() {
        // 5 columns, 2 banks -> B = 3, the last bank has a padded column.
        let w = array![[1.0, 2.0, 3.0, 4.0, 5.0]];
        let (csb, _) = encode(w.view(), 2, 2);
        assert_eq!(csb.shape.bank_size, 3);
        assert_eq!(csb.shape.padded_cols(), 6);
        assert_eq!(csb.decode(), array![[0.0, 2.0, 3.0, 4.0, 5.0]]);
        // Dense with padding keeps everything.
        let (csb, rep) = encode(w.view(), 2, 3);
        assert_eq!(csb.decode(), w);
        assert_eq!(rep.dropped, 0);
        assert_eq!(csb.shape.index_bits(), 2);
    }

    fn matrix() -> impl proptest::strategy::Strategy<Value = (Array2<f64>, usize, usize)> {
        (1usize..6, 1usize..24, 1usize..6).prop_flat_map(|(r, c, k)| {
            let k = k.min(c);
            let b = c.div_ceil(k);
            (
                proptest::collection::vec(prop_oneof![3 => -4.0f64..4.0, 1 => Just(0.0)], r * c),
                1..=b,
            )
                .prop_map(move |(v, n)| (Array2::from_shape_vec((r, c), v).unwrap(), k, n))
        })
    }

    proptest! {
        /// Every bank of every row holds exactly n stored entries, and no bank keeps more
        /// non-zeros than n.
        #[test]
        fn banks_are_balanced((w, k, n) in matrix()) {
            let (csb, _) = encode(w.view(), k, n);
            let s = csb.shape;
            prop_assert_eq!(csb.values.len(), s.rows * s.banks * s.nnz_per_bank);
            let pruned = csb.decode();
            prop_assert!(max_nonzeros_per_bank(pruned.view(), k) <= n);
            for r in 0..s.rows {
                for b in 0..s.banks {
                    let idx: Vec<usize> = (0..n).map(|j| csb.entry(r, j, b).1).collect();
                    // Distinct, ascending, in range.
                    prop_assert!(idx.windows(2).all(|p| p[0] < p[1]));
                    prop_assert!(idx.iter().all(|&i| i < s.bank_size));
                }
            }
        }

        /// decode(encode(W)) is the pruned W, and encoding that again changes nothing.
        #[test]
        fn csb_round_trips((w, k, n) in matrix()) {
            let (csb, _) = encode(w.view(), k, n);
            let pruned = csb.decode();
            let (again, rep) = encode(pruned.view(), k, n);
            prop_assert_eq!(&again.decode(), &pruned);
            prop_assert_eq!(rep.dropped, 0);
            // Every kept entry is one of W's, in place; every dropped one is no larger
            // than the smallest kept in its bank.
            for ((r, c), v) in pruned.indexed_iter() {
                prop_assert!(*v == 0.0 || *v == w[[r, c]]);
            }
        }

        /// Weights that already are bank-balanced pass unchanged.
        #[test]
        fn pre_pruned_weights_kept_exactly((w, k, _n) in matrix()) {
            let n = max_nonzeros_per_bank(w.view(), k).max(1);
            let (csb, rep) = encode(w.view(), k, n);
            prop_assert_eq!(csb.decode(), w);
            prop_assert_eq!(rep.dropped, 0);
        }
    }
}
