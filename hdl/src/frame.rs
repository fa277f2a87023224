//! The link frame: what devices of a multi-device system send each other over their AXI4-Stream
//! link ports, and the reference CRC. The framer (`rtl/partita_link_tx.v`) and deframer
//! (`rtl/partita_link_rx.v`) implement this format; their testbenches check them against
//! [`Frame::encode`] and [`Frame::decode`], and the cosimulation decodes every frame on every
//! link with [`Decoder`], an oracle independent of the RTL.
//!
//! A frame is a run of beats of the link width `LW` (32 to 512 bits), the last one with tlast:
//!
//! | beat | contents |
//! |---|---|
//! | header | bits 31:30 type (0 h values, 1 partial sums, 2 barrier), 29:27 source device, 26:24 destination device, 23:21 layer, 20:14 count of values, 13 parity (the tick-parity buffer h values go to), 12:0 sequence number; bits above 31 zero |
//! | payload | `count` values packed from bit 0, `LW / width` per beat (at least one): h values are `data`-format codes (zero-extended), partial sums full-width accumulator codes; unused bits zero |
//! | trailer | bits 31:0 the CRC-32 of the header and payload beats; bits above zero; tlast |
//!
//! The CRC is CRC-32/MPEG-2: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection,
//! no final XOR, over every bit of the header and payload beats, most significant bit first
//! (for a beat, the same as its bytes in big-endian order). Its check value (the CRC of the
//! ASCII bytes "123456789") is 0x0376E6E7. Sequence numbers count frames per (source,
//! destination) pair, modulo 2^13.
//!
//! On a one-way ring of three or more devices, a frame whose destination is its own source is
//! a **ring broadcast**: h values every other device reads, and barriers, go once round the
//! ring instead of once per destination. Each device reads and checks it as if addressed to
//! it (its sequence numbers are the pair (source, source), counted apart from the source's
//! frames to that device) and passes it on, except the device before the source. A barrier carries no values (count 0). A partial-sum frame
//! carries at most `min(16 × values per beat, 127)` values, an h frame at most
//! `min(16 × values per beat, 127, max(64, 4 × values per beat))`; a longer run of values is
//! split. h values are produced one per cycle while the rows are still issued, so shorter h
//! frames leave sooner: the last frame of a run (sent after the run's last value) is then at
//! most 64 values or 4 payload beats.

use std::fmt;

/// Devices a frame can address (3-bit fields).
pub const MAX_DEVICES: usize = 8;
/// Layers a frame can name (3-bit field).
pub const MAX_LAYERS: usize = 8;
/// Largest count field.
pub const MAX_COUNT: u32 = 127;
/// Payload beats of one frame at most.
pub const MAX_PAYLOAD_BEATS: u32 = 16;
/// h values of one frame at most, unless [`H_MIN_BEATS`] payload beats hold more.
pub const MAX_H_VALUES: u32 = 64;
/// Payload beats an h frame may always fill.
pub const H_MIN_BEATS: u32 = 4;
/// Sequence numbers wrap at this value (13-bit field).
pub const SEQ_MODULUS: u32 = 1 << 13;
/// Link widths the framer and deframer support.
pub const MIN_LINK_WIDTH: u32 = 32;
pub const MAX_LINK_WIDTH: u32 = 512;
/// Initial value of the CRC.
pub const CRC_INIT: u32 = 0xFFFF_FFFF;
/// The CRC polynomial (normal form).
pub const CRC_POLY: u32 = 0x04C1_1DB7;
/// The CRC of the ASCII bytes "123456789" (the standard check value of CRC-32/MPEG-2).
pub const CRC_CHECK: u32 = 0x0376_E6E7;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Finished h values, for the vector memories of the devices that read them.
    H = 0,
    /// Full-width partial sums, for the layer's finisher.
    Psum = 1,
    /// End of a tick: no values.
    Barrier = 2,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::H => "h",
            Kind::Psum => "psum",
            Kind::Barrier => "barrier",
        }
    }
}

/// The header beat's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub kind: Kind,
    pub src: u8,
    pub dst: u8,
    pub layer: u8,
    pub count: u8,
    pub parity: bool,
    pub seq: u16,
}

/// Why beats are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Type field 3.
    BadKind,
    /// A field out of its range: which, its value, the largest allowed.
    Field {
        field: &'static str,
        value: u32,
        max: u32,
    },
    /// A barrier with values, or h/partial-sum frames without.
    Count { kind: Kind, count: u32 },
    /// More or fewer beats than the count implies (or tlast before the end).
    Length { expected: usize, got: usize },
    /// The trailer's CRC differs from the CRC of the beats.
    Crc { expected: u32, got: u32 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadKind => {
                write!(f, "frame type 3 does not exist (0 h, 1 psum, 2 barrier)")
            }
            FrameError::Field { field, value, max } => {
                write!(f, "{field} {value} is out of range (at most {max})")
            }
            FrameError::Count { kind, count } => {
                write!(f, "a {} frame with {count} values", kind.name())
            }
            FrameError::Length { expected, got } => {
                write!(f, "{got} beats where the header implies {expected}")
            }
            FrameError::Crc { expected, got } => {
                write!(
                    f,
                    "CRC 0x{got:08x} in the trailer, 0x{expected:08x} computed"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

impl Header {
    /// The 32-bit header word (the low bits of the header beat).
    pub fn encode(&self) -> u32 {
        (self.kind as u32) << 30
            | (self.src as u32 & 7) << 27
            | (self.dst as u32 & 7) << 24
            | (self.layer as u32 & 7) << 21
            | (self.count as u32 & 0x7f) << 14
            | (self.parity as u32) << 13
            | (self.seq as u32 & 0x1fff)
    }

    /// Decode a header word; only the type can be invalid on its own.
    pub fn decode(w: u32) -> Result<Header, FrameError> {
        let kind = match w >> 30 {
            0 => Kind::H,
            1 => Kind::Psum,
            2 => Kind::Barrier,
            _ => return Err(FrameError::BadKind),
        };
        Ok(Header {
            kind,
            src: (w >> 27 & 7) as u8,
            dst: (w >> 24 & 7) as u8,
            layer: (w >> 21 & 7) as u8,
            count: (w >> 14 & 0x7f) as u8,
            parity: w >> 13 & 1 == 1,
            seq: (w & 0x1fff) as u16,
        })
    }
}

/// The widths a system's frames use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Bits per link beat.
    pub link_width: u32,
    /// Bits of an h value (the `data` format).
    pub h_width: u32,
    /// Bits of a partial sum (the accumulator).
    pub psum_width: u32,
}

impl Format {
    /// Bits of one value of `kind` in the payload.
    pub fn value_width(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Psum => self.psum_width,
            _ => self.h_width,
        }
    }

    /// Values of `kind` per payload beat (at least one).
    pub fn values_per_beat(&self, kind: Kind) -> u32 {
        (self.link_width / self.value_width(kind)).max(1)
    }

    /// Values one frame of `kind` carries at most.
    pub fn max_values(&self, kind: Kind) -> u32 {
        let vpb = self.values_per_beat(kind);
        let most = (MAX_PAYLOAD_BEATS * vpb).min(MAX_COUNT);
        match kind {
            Kind::H => most.min(MAX_H_VALUES.max(H_MIN_BEATS * vpb)),
            _ => most,
        }
    }

    /// Beats of one frame with `count` values: header, payload, trailer.
    pub fn frame_beats(&self, kind: Kind, count: u32) -> u64 {
        count.div_ceil(self.values_per_beat(kind)) as u64 + 2
    }

    /// Beats of a run of `n` values of `kind` sent to one destination (split into frames of at
    /// most [`Format::max_values`] values). A barrier is one frame of 2 beats.
    pub fn run_beats(&self, kind: Kind, n: u64) -> u64 {
        if kind == Kind::Barrier {
            return 2;
        }
        let maxv = self.max_values(kind) as u64;
        let full = n / maxv;
        let rest = n % maxv;
        full * self.frame_beats(kind, maxv as u32)
            + if rest > 0 {
                self.frame_beats(kind, rest as u32)
            } else {
                0
            }
    }
}

/// 64-bit words of the widest beat.
pub const BEAT_WORDS: usize = (MAX_LINK_WIDTH / 64) as usize;

/// The bits of one beat, least significant word first (bits above the link width zero).
pub type BeatData = [u64; BEAT_WORDS];

/// A beat holding `w` in its low 64 bits.
pub fn beat_data(w: u64) -> BeatData {
    let mut d = [0u64; BEAT_WORDS];
    d[0] = w;
    d
}

/// Bits `at .. at + width` of a beat (`width` at most 64).
pub fn get_bits(d: &BeatData, at: u32, width: u32) -> u64 {
    let mut v = 0u64;
    for b in 0..width {
        let n = (at + b) as usize;
        v |= (d[n / 64] >> (n % 64) & 1) << b;
    }
    v
}

/// Write the `width` low bits of `v` at bit `at` of a beat.
pub fn set_bits(d: &mut BeatData, at: u32, width: u32, v: u64) {
    for b in 0..width {
        let n = (at + b) as usize;
        let bit = v >> b & 1;
        d[n / 64] = (d[n / 64] & !(1u64 << (n % 64))) | bit << (n % 64);
    }
}

/// Feed the `width` low bits of a beat into `crc`, most significant first.
pub fn crc_beat(crc: u32, d: &BeatData, width: u32) -> u32 {
    (0..width).rev().fold(crc, |c, n| {
        crc_bits(c, d[n as usize / 64] >> (n % 64) & 1, 1)
    })
}

/// One beat on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    pub data: BeatData,
    pub last: bool,
}

/// A whole frame: its header and its values (raw fields of the value width).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub values: Vec<u64>,
}

/// CRC-32/MPEG-2 of `bytes`.
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(CRC_INIT, |c, b| crc_bits(c, *b as u64, 8))
}

/// Feed the `width` low bits of `data` into `crc`, most significant first.
pub fn crc_bits(mut crc: u32, data: u64, width: u32) -> u32 {
    for n in (0..width).rev() {
        let bit = (data >> n & 1) as u32;
        let top = crc >> 31;
        crc <<= 1;
        if top ^ bit == 1 {
            crc ^= CRC_POLY;
        }
    }
    crc
}

impl Frame {
    /// The beats of this frame on a link of `f.link_width` bits, trailer last.
    pub fn encode(&self, f: &Format) -> Vec<Beat> {
        let kind = self.header.kind;
        let vw = f.value_width(kind);
        let vpb = f.values_per_beat(kind) as usize;
        let vmask = if vw >= 64 { u64::MAX } else { (1u64 << vw) - 1 };
        let mut beats = vec![beat_data(self.header.encode() as u64)];
        for chunk in self.values.chunks(vpb) {
            let mut w = [0u64; BEAT_WORDS];
            for (j, v) in chunk.iter().enumerate() {
                set_bits(&mut w, j as u32 * vw, vw, v & vmask);
            }
            beats.push(w);
        }
        let crc = beats
            .iter()
            .fold(CRC_INIT, |c, b| crc_beat(c, b, f.link_width));
        beats.push(beat_data(crc as u64));
        let n = beats.len();
        beats
            .into_iter()
            .enumerate()
            .map(|(i, data)| Beat {
                data,
                last: i + 1 == n,
            })
            .collect()
    }

    /// Decode the beats of one frame (tlast only on the last one) and check every field that
    /// can be checked without knowing the system: type, count against the widths, length, CRC.
    pub fn decode(beats: &[Beat], f: &Format) -> Result<Frame, FrameError> {
        let first = beats.first().ok_or(FrameError::Length {
            expected: 2,
            got: 0,
        })?;
        let header = Header::decode(first.data[0] as u32)?;
        let count = header.count as u32;
        match header.kind {
            Kind::Barrier if count != 0 => {
                return Err(FrameError::Count {
                    kind: Kind::Barrier,
                    count,
                })
            }
            Kind::H | Kind::Psum if count == 0 => {
                return Err(FrameError::Count {
                    kind: header.kind,
                    count,
                })
            }
            _ => {}
        }
        let max = f.max_values(header.kind);
        if count > max {
            return Err(FrameError::Field {
                field: "count",
                value: count,
                max,
            });
        }
        let expected = f.frame_beats(header.kind, count) as usize;
        let ends_early = beats[..beats.len() - 1].iter().any(|b| b.last);
        if beats.len() != expected || ends_early || !beats[beats.len() - 1].last {
            return Err(FrameError::Length {
                expected,
                got: beats.len(),
            });
        }
        let crc = beats[..expected - 1]
            .iter()
            .fold(CRC_INIT, |c, b| crc_beat(c, &b.data, f.link_width));
        let got = (beats[expected - 1].data[0] & 0xffff_ffff) as u32;
        if crc != got {
            return Err(FrameError::Crc { expected: crc, got });
        }
        let vw = f.value_width(header.kind);
        let vpb = f.values_per_beat(header.kind);
        let vmask = if vw >= 64 { u64::MAX } else { (1u64 << vw) - 1 };
        let values = (0..count)
            .map(|i| get_bits(&beats[1 + (i / vpb) as usize].data, (i % vpb) * vw, vw) & vmask)
            .collect();
        Ok(Frame { header, values })
    }
}

/// Collects beats seen on one link and decodes each frame at its tlast.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    beats: Vec<Beat>,
}

impl Decoder {
    /// Take one beat; at a frame's last beat, return the decoded frame (or why it is not one).
    pub fn push(&mut self, beat: Beat, f: &Format) -> Option<Result<Frame, FrameError>> {
        self.beats.push(beat);
        if !beat.last {
            return None;
        }
        let frame = std::mem::take(&mut self.beats);
        Some(Frame::decode(&frame, f))
    }
}

/// The kinds of link error a device records in LINK_ERR_INFO (bits 31:28).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrKind {
    Crc = 1,
    Sequence = 2,
    Format = 3,
    Timeout = 4,
}

/// LINK_ERR_INFO, decoded: the first link error since reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrInfo {
    pub kind: ErrKind,
    /// Source device of the damaged frame.
    pub src: u8,
    /// Sequence number expected from that source (low 11 bits; sequence errors only).
    pub expected: u16,
    /// Sequence number received (CRC errors: the frame's expected one).
    pub received: u16,
}

impl ErrInfo {
    /// Encode as the register value: kind << 28 | source << 24 | expected << 13 | received.
    pub fn encode(&self) -> u32 {
        (self.kind as u32) << 28
            | (self.src as u32 & 7) << 24
            | (self.expected as u32 & 0x7ff) << 13
            | (self.received as u32 & 0x1fff)
    }

    /// Decode LINK_ERR_INFO; None when no error was recorded (kind 0) or the kind is unknown.
    pub fn decode(v: u32) -> Option<ErrInfo> {
        let kind = match v >> 28 {
            1 => ErrKind::Crc,
            2 => ErrKind::Sequence,
            3 => ErrKind::Format,
            4 => ErrKind::Timeout,
            _ => return None,
        };
        Some(ErrInfo {
            kind,
            src: (v >> 24 & 7) as u8,
            expected: (v >> 13 & 0x7ff) as u16,
            received: (v & 0x1fff) as u16,
        })
    }
}

impl fmt::Display for ErrInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrKind::Crc => write!(
                f,
                "CRC mismatch on frame {} from device {}",
                self.received, self.src
            ),
            ErrKind::Sequence => write!(
                f,
                "from device {} expected frame {}, got frame {}",
                self.src, self.expected, self.received
            ),
            ErrKind::Format => write!(f, "malformed frame from device {}", self.src),
            ErrKind::Timeout => write!(f, "waited longer than LINK_TIMEOUT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Format = Format {
        link_width: 64,
        h_width: 16,
        psum_width: 40,
    };

    #[test]
    fn crc_is_crc32_mpeg2() {
        // The catalogue's check value for CRC-32/MPEG-2 (poly 04C11DB7, init FFFFFFFF,
        // refin/refout false, xorout 0).
        assert_eq!(crc32_mpeg2(b"123456789"), CRC_CHECK);
        assert_eq!(crc32_mpeg2(b""), CRC_INIT);
        // A 64-bit beat is its 8 bytes, big-endian.
        let beat = 0x0123_4567_89ab_cdefu64;
        assert_eq!(
            crc_bits(CRC_INIT, beat, 64),
            crc32_mpeg2(&beat.to_be_bytes())
        );
        // The same bits in narrower pieces give the same CRC.
        let c = crc_bits(crc_bits(CRC_INIT, beat >> 32, 32), beat & 0xffff_ffff, 32);
        assert_eq!(c, crc_bits(CRC_INIT, beat, 64));
        // A wide beat is its bytes, most significant first.
        let mut wide = [0u64; BEAT_WORDS];
        for (i, w) in wide.iter_mut().enumerate() {
            *w = beat.rotate_left(8 * i as u32);
        }
        let bytes: Vec<u8> = wide.iter().rev().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(crc_beat(CRC_INIT, &wide, 512), crc32_mpeg2(&bytes));
        assert_eq!(
            crc_beat(CRC_INIT, &beat_data(beat), 64),
            crc_bits(CRC_INIT, beat, 64)
        );
    }

    #[test]
    fn wide_frames_pack_values_across_words() {
        // 256-bit beats: 16 h values of 16 bits, or 6 partial sums of 40 bits (the fourth
        // straddles bits 120..160, across two words).
        let w = Format {
            link_width: 256,
            ..F
        };
        assert_eq!(w.values_per_beat(Kind::H), 16);
        assert_eq!(w.values_per_beat(Kind::Psum), 6);
        // 64 h values (4 payload beats) a frame: the last frame of a run leaves soon after
        // its last value.
        assert_eq!(w.max_values(Kind::H), 64);
        let values: Vec<u64> = (0..13)
            .map(|i| (i * 0x1234_5678_9) & 0xff_ffff_ffff)
            .collect();
        let fr = Frame {
            header: Header {
                kind: Kind::Psum,
                src: 2,
                dst: 7,
                layer: 0,
                count: 13,
                parity: true,
                seq: 77,
            },
            values: values.clone(),
        };
        let beats = fr.encode(&w);
        assert_eq!(beats.len() as u64, w.frame_beats(Kind::Psum, 13));
        assert_eq!(get_bits(&beats[1].data, 120, 40), values[3]);
        assert_eq!(Frame::decode(&beats, &w), Ok(fr));
        let mut bad = beats.clone();
        bad[2].data[3] ^= 1 << 60;
        assert!(matches!(
            Frame::decode(&bad, &w),
            Err(FrameError::Crc { .. })
        ));
    }

    #[test]
    fn header_fields_round_trip() {
        let h = Header {
            kind: Kind::Psum,
            src: 5,
            dst: 2,
            layer: 3,
            count: 99,
            parity: true,
            seq: 8000,
        };
        assert_eq!(Header::decode(h.encode()), Ok(h));
        assert_eq!(h.encode() >> 30, 1);
        assert_eq!(Header::decode(3 << 30), Err(FrameError::BadKind));
    }

    #[test]
    fn frames_round_trip_and_catch_damage() {
        let values: Vec<u64> = (0..9).map(|i| (i * 7919) & 0xffff).collect();
        let fr = Frame {
            header: Header {
                kind: Kind::H,
                src: 1,
                dst: 0,
                layer: 1,
                count: 9,
                parity: false,
                seq: 3,
            },
            values,
        };
        let beats = fr.encode(&F);
        assert_eq!(beats.len() as u64, F.frame_beats(Kind::H, 9));
        assert_eq!(beats.len(), 1 + 3 + 1);
        assert_eq!(Frame::decode(&beats, &F), Ok(fr.clone()));
        for i in 0..beats.len() - 1 {
            let mut bad = beats.clone();
            bad[i].data[0] ^= 1 << 17;
            assert!(Frame::decode(&bad, &F).is_err(), "flip in beat {i} missed");
        }
        let mut short = beats.clone();
        short.remove(2);
        assert!(matches!(
            Frame::decode(&short, &F),
            Err(FrameError::Length { .. })
        ));
        // A barrier is a header and a trailer.
        let bar = Frame {
            header: Header {
                kind: Kind::Barrier,
                count: 0,
                ..fr.header
            },
            values: vec![],
        };
        assert_eq!(bar.encode(&F).len(), 2);
        assert_eq!(Frame::decode(&bar.encode(&F), &F), Ok(bar));
    }

    #[test]
    fn runs_split_into_frames() {
        // 16 payload beats of 4 h values: 64 values a frame.
        assert_eq!(F.max_values(Kind::H), 64);
        assert_eq!(F.run_beats(Kind::H, 64), 18);
        assert_eq!(F.run_beats(Kind::H, 65), 18 + 3);
        // One 40-bit partial sum per beat: 16 a frame.
        assert_eq!(F.max_values(Kind::Psum), 16);
        assert_eq!(F.run_beats(Kind::Psum, 17), 18 + 3);
        // 8-bit values on 64-bit beats: 128 would fit, h frames stop at 64.
        let narrow = Format { h_width: 8, ..F };
        assert_eq!(narrow.max_values(Kind::H), 64);
        // 8-bit values on 512-bit beats: 4 payload beats hold 256, the count field stops at 127.
        let wide = Format {
            h_width: 8,
            link_width: 512,
            ..F
        };
        assert_eq!(wide.max_values(Kind::H), 127);
    }

    #[test]
    fn error_info_round_trips() {
        let e = ErrInfo {
            kind: ErrKind::Sequence,
            src: 3,
            expected: 12,
            received: 14,
        };
        assert_eq!(ErrInfo::decode(e.encode()), Some(e));
        assert_eq!(ErrInfo::decode(0), None);
        assert_eq!(
            e.to_string(),
            "from device 3 expected frame 12, got frame 14"
        );
    }
}
