//! The AXI4-Stream data contract of a device's x input and h output: packed beats.
//!
//! A value of `data_bits` bits sits in a slot of whole bytes (`slot_bits`, sign-extended on
//! output). A beat of `beat_bits` (the tdata width, 8 to 512) carries `per_beat` slots, slot 0
//! in the least significant bits. A vector (one timestep's x, or one device's h units of a
//! timestep) starts on a new beat; its last beat has `tlast` and, when the vector does not fill
//! it, `tkeep` low for the bytes of the empty slots (and always for bytes above the last slot).
//! The hardware cores `partita_unpack` and `partita_pack` implement the same layout; the device
//! counts input beats whose tkeep or tlast differ from it (register STREAM_ERRS).

use crate::frame::{get_bits, set_bits, BeatData, BEAT_WORDS};

/// Widest tdata: 512 bits (64 tkeep bits).
pub const MAX_BEAT_BITS: u32 = 64 * BEAT_WORDS as u32;

/// One AXI4-Stream beat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Beat {
    pub data: BeatData,
    /// One bit per byte of tdata.
    pub keep: u64,
    pub last: bool,
}

/// How values are packed into beats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bits of a value (the data format's width).
    pub data_bits: u32,
    /// Bits of a value's slot: `data_bits` rounded up to whole bytes.
    pub slot_bits: u32,
    /// tdata width.
    pub beat_bits: u32,
    /// Slots per beat.
    pub per_beat: u32,
}

impl Layout {
    /// The layout of `data_bits`-bit values on a `beat_bits`-bit stream. `beat_bits` must be a
    /// whole number of bytes, at most 512, and hold at least one slot.
    pub fn new(data_bits: u32, beat_bits: u32) -> Result<Self, String> {
        if data_bits == 0 || data_bits > 64 {
            return Err(format!("values of {data_bits} bits: 1 to 64 are allowed"));
        }
        let slot_bits = data_bits.div_ceil(8) * 8;
        if !beat_bits.is_multiple_of(8) || beat_bits < slot_bits || beat_bits > MAX_BEAT_BITS {
            return Err(format!(
                "a {beat_bits}-bit stream for {data_bits}-bit values: tdata must be whole bytes, at least one value's {slot_bits} bits and at most {MAX_BEAT_BITS}"
            ));
        }
        Ok(Layout {
            data_bits,
            slot_bits,
            beat_bits,
            per_beat: beat_bits / slot_bits,
        })
    }

    /// One value per beat (tdata = the value's slot).
    pub fn single(data_bits: u32) -> Self {
        let slot_bits = data_bits.clamp(1, 64).div_ceil(8) * 8;
        Layout {
            data_bits: data_bits.clamp(1, 64),
            slot_bits,
            beat_bits: slot_bits,
            per_beat: 1,
        }
    }

    /// tkeep bits.
    pub fn keep_bits(&self) -> u32 {
        self.beat_bits / 8
    }

    /// Beats of a vector of `n` values.
    pub fn beats(&self, n: usize) -> usize {
        n.div_ceil(self.per_beat as usize)
    }

    /// Values in beat `i` of a vector of `vec_len` values (the last beat may be short).
    pub fn values_in(&self, vec_len: usize, i: usize) -> u32 {
        vec_len
            .saturating_sub(i * self.per_beat as usize)
            .min(self.per_beat as usize) as u32
    }

    /// tkeep of a beat holding `values` slots.
    pub fn keep(&self, values: u32) -> u64 {
        let bytes = values.min(self.per_beat) * self.slot_bits / 8;
        if bytes >= 64 {
            u64::MAX
        } else {
            (1u64 << bytes) - 1
        }
    }

    /// The beats of `codes`, vectors of `vec_len` values (the last may be short), each value
    /// sign-extended to its slot.
    pub fn pack(&self, codes: &[i64], vec_len: usize) -> Vec<Beat> {
        let vec_len = vec_len.max(1);
        let mut out = Vec::with_capacity(self.beats(codes.len()));
        for v in codes.chunks(vec_len) {
            for (i, c) in v.chunks(self.per_beat as usize).enumerate() {
                let mut data = [0u64; BEAT_WORDS];
                for (j, x) in c.iter().enumerate() {
                    set_bits(
                        &mut data,
                        j as u32 * self.slot_bits,
                        self.slot_bits,
                        *x as u64,
                    );
                }
                out.push(Beat {
                    data,
                    keep: self.keep(c.len() as u32),
                    last: (i + 1) * self.per_beat as usize >= v.len(),
                });
            }
        }
        out
    }

    /// The values of `beats` (vectors of `vec_len` values), sign-extended from `data_bits`.
    /// Refuses a beat whose tkeep or tlast differ from the layout, naming it.
    pub fn unpack(&self, beats: &[Beat], vec_len: usize) -> Result<Vec<i64>, String> {
        let vec_len = vec_len.max(1);
        let per_vec = self.beats(vec_len);
        let shift = 64 - self.data_bits;
        let mut out = Vec::with_capacity(beats.len() * self.per_beat as usize);
        for (n, b) in beats.iter().enumerate() {
            let i = n % per_vec;
            let here = self.values_in(vec_len, i);
            let last = i + 1 == per_vec;
            if b.keep != self.keep(here) || b.last != last {
                return Err(format!(
                    "beat {n} (beat {i} of a {vec_len}-value vector): tkeep {:#x}, tlast {}; the layout ({} values of {} bits per {}-bit beat) has tkeep {:#x}, tlast {last}",
                    b.keep,
                    b.last,
                    self.per_beat,
                    self.slot_bits,
                    self.beat_bits,
                    self.keep(here)
                ));
            }
            for j in 0..here {
                let v = get_bits(&b.data, j * self.slot_bits, self.data_bits);
                out.push(((v << shift) as i64) >> shift);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_with_tkeep_on_short_beats() {
        let l = Layout::new(12, 64).unwrap();
        assert_eq!((l.slot_bits, l.per_beat, l.keep_bits()), (16, 4, 8));
        let codes: Vec<i64> = (0..10).map(|i| i * 300 - 1500).collect();
        let beats = l.pack(&codes, 5);
        // Two vectors of 5: beats of 4 + 1 each.
        assert_eq!(beats.len(), 4);
        assert_eq!(beats[0].keep, 0xff);
        assert!(!beats[0].last);
        assert_eq!(beats[1].keep, 0x03);
        assert!(beats[1].last);
        assert_eq!(beats[1].data[0], (codes[4] as u64) & 0xffff);
        assert_eq!(l.unpack(&beats, 5).unwrap(), codes);
        // A wrong tkeep or tlast is named.
        let mut bad = beats.clone();
        bad[1].keep = 0x0f;
        assert!(l.unpack(&bad, 5).unwrap_err().contains("beat 1"));
        let mut bad = beats;
        bad[2].last = true;
        assert!(l.unpack(&bad, 5).unwrap_err().contains("tlast true"));
    }

    #[test]
    fn wide_beats_and_odd_slots() {
        let l = Layout::new(24, 512).unwrap();
        assert_eq!((l.per_beat, l.keep(21)), (21, (1u64 << 63) - 1));
        let codes: Vec<i64> = (0..50).map(|i| (i - 25) * 100_003).collect();
        assert_eq!(l.unpack(&l.pack(&codes, 50), 50).unwrap(), codes);
        let w = Layout::new(16, 512).unwrap();
        assert_eq!(w.keep(32), u64::MAX);
        assert!(Layout::new(16, 12).is_err());
        assert!(Layout::new(16, 8).is_err());
        assert!(Layout::new(16, 1024).is_err());
        assert_eq!(Layout::single(16), Layout::new(16, 16).unwrap());
    }
}
