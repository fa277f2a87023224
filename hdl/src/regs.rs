//! The register map: the one table every consumer derives from. The generated Verilog decode
//! (`templates/partita_regs.v`), `regmap.json`, `partita_regs.h`, the generated testbench, the
//! host driver, the cosimulation and `hdl/REGISTERS.md` all read [`TABLE`].
//!
//! The map is AXI4-Lite, 32-bit data, 12-bit byte addresses; every register is one 32-bit word
//! at a 4-aligned offset. Registers with [`Scope::Node`] exist only on the devices of a
//! multi-device system.

/// How software may access a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only: a write is refused (SLVERR).
    R,
    /// Write-only: a read is refused (SLVERR), except CTRL, which reads as 0.
    W,
    /// Read-write.
    RW,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::R => "R",
            Access::W => "W",
            Access::RW => "RW",
        }
    }
}

/// Which devices have a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every device.
    All,
    /// Devices of a multi-device system (the link registers).
    Node,
}

/// Value after reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    Value(u32),
    /// A constant of the generated design (version, plan hash, geometry), see the doc.
    Design,
    /// Write-only strobe: nothing to reset.
    None,
}

/// One register (or, with `words > 1`, an array of consecutive words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub name: &'static str,
    /// Byte offset of the first word.
    pub offset: u32,
    pub access: Access,
    pub reset: Reset,
    pub scope: Scope,
    /// Words of an array register (the WDATA staging words); 1 otherwise. A device decodes as
    /// many as its weight words need.
    pub words: u32,
    /// One line: what the register holds.
    pub doc: &'static str,
}

impl Reg {
    /// The AXI4-Lite word index (byte offset / 4) of word `j`.
    pub const fn index(&self, j: u32) -> u32 {
        (self.offset >> 2) + j
    }

    /// Byte offset of word `j`.
    pub const fn at(&self, j: u32) -> u32 {
        self.offset + 4 * j
    }
}

/// Magic value of the ID register: "PART".
pub const DEVICE_ID: u32 = 0x5041_5254;

/// Bytes of AXI4-Lite address space a device decodes (12 address bits).
pub const ADDR_BITS: u32 = 12;

const fn reg(
    name: &'static str,
    offset: u32,
    access: Access,
    reset: Reset,
    scope: Scope,
    doc: &'static str,
) -> Reg {
    Reg {
        name,
        offset,
        access,
        reset,
        scope,
        words: 1,
        doc,
    }
}

use Access::{R, RW, W};
use Scope::{All, Node};

pub const ID: Reg = reg(
    "ID",
    0x00,
    R,
    Reset::Value(DEVICE_ID),
    All,
    "0x50415254 (\"PART\")",
);
pub const VERSION: Reg = reg(
    "VERSION",
    0x04,
    R,
    Reset::Design,
    All,
    "generator version: major << 16 | minor << 8 | patch",
);
pub const PLAN_HASH_LO: Reg = reg(
    "PLAN_HASH_LO",
    0x08,
    R,
    Reset::Design,
    All,
    "plan hash, low 32 bits",
);
pub const PLAN_HASH_HI: Reg = reg(
    "PLAN_HASH_HI",
    0x0C,
    R,
    Reset::Design,
    All,
    "plan hash, high 32 bits",
);
pub const CTRL: Reg = reg(
    "CTRL",
    0x10,
    W,
    Reset::Value(0),
    All,
    "bit 0 start (when idle), bit 1 soft reset (clears the datapath and error state)",
);
pub const STATUS: Reg = reg(
    "STATUS",
    0x14,
    R,
    Reset::Value(0),
    All,
    "bit 0 busy, bit 1 done (all outputs delivered), bit 2 error (sticky)",
);
pub const SEQ_LEN: Reg = reg(
    "SEQ_LEN",
    0x18,
    RW,
    Reset::Value(1),
    All,
    "timesteps per sequence",
);
pub const SEQ_COUNT: Reg = reg(
    "SEQ_COUNT",
    0x1C,
    RW,
    Reset::Value(1),
    All,
    "sequences per run, streamed back to back",
);
pub const CYCLES_LO: Reg = reg(
    "CYCLES_LO",
    0x20,
    R,
    Reset::Value(0),
    All,
    "clock cycles from start to the last result, low 32 bits",
);
pub const CYCLES_HI: Reg = reg(
    "CYCLES_HI",
    0x24,
    R,
    Reset::Value(0),
    All,
    "cycle counter, high 32 bits",
);
pub const SAT_COUNT: Reg = reg(
    "SAT_COUNT",
    0x28,
    R,
    Reset::Value(0),
    All,
    "saturation events (pre-activations, cell states, h values) in the last run",
);
pub const ERR_COUNT: Reg = reg(
    "ERR_COUNT",
    0x2C,
    R,
    Reset::Value(0),
    All,
    "refused accesses: unknown address, start or weight write while busy",
);
pub const WSEL: Reg = reg(
    "WSEL",
    0x30,
    RW,
    Reset::Value(0),
    All,
    "run-time weight write target: bits 23:16 engine, bit 0 = 0 weights / 1 biases",
);
pub const WADDR: Reg = reg(
    "WADDR",
    0x34,
    RW,
    Reset::Value(0),
    All,
    "run-time weight write address (word index in the engine's memory)",
);
pub const WCOMMIT: Reg = reg(
    "WCOMMIT",
    0x38,
    W,
    Reset::None,
    All,
    "write the staged WDATA words to WSEL/WADDR (when idle)",
);
pub const WDATA: Reg = Reg {
    name: "WDATA",
    offset: 0x40,
    access: W,
    reset: Reset::Value(0),
    scope: All,
    words: 16,
    doc: "staged weight word",
};
pub const CONFIG0: Reg = reg(
    "CONFIG0",
    0x80,
    R,
    Reset::Design,
    All,
    "input_size << 16 | hidden_size",
);
pub const CONFIG1: Reg = reg(
    "CONFIG1",
    0x84,
    R,
    Reset::Design,
    All,
    "layers << 24 | engines << 16 | lanes << 8 | data width",
);
pub const LINK_STATUS: Reg = reg(
    "LINK_STATUS",
    0x88,
    R,
    Reset::Value(0),
    Node,
    "sticky link errors: bit 0 CRC, 1 sequence (dropped or reordered frame), 2 malformed frame, 3 timeout",
);
pub const LINK_CRC_ERRS: Reg = reg(
    "LINK_CRC_ERRS",
    0x8C,
    R,
    Reset::Value(0),
    Node,
    "frames with a CRC mismatch",
);
pub const LINK_SEQ_ERRS: Reg = reg(
    "LINK_SEQ_ERRS",
    0x90,
    R,
    Reset::Value(0),
    Node,
    "frames with an unexpected sequence number",
);
pub const LINK_FMT_ERRS: Reg = reg(
    "LINK_FMT_ERRS",
    0x94,
    R,
    Reset::Value(0),
    Node,
    "malformed frames",
);
pub const LINK_ERR_INFO: Reg = reg(
    "LINK_ERR_INFO",
    0x98,
    R,
    Reset::Value(0),
    Node,
    "first error: kind << 28 | source << 24 | expected seq << 13 | received seq",
);
pub const TX_BEATS: Reg = reg(
    "TX_BEATS",
    0x9C,
    R,
    Reset::Value(0),
    Node,
    "link beats this device sent (its own frames)",
);
pub const FWD_BEATS: Reg = reg(
    "FWD_BEATS",
    0xA0,
    R,
    Reset::Value(0),
    Node,
    "link beats this device forwarded for others",
);
pub const RX_BEATS: Reg = reg(
    "RX_BEATS",
    0xA4,
    R,
    Reset::Value(0),
    Node,
    "link beats received",
);
pub const MAC_CYCLES: Reg = reg(
    "MAC_CYCLES",
    0xA8,
    R,
    Reset::Value(0),
    Node,
    "cycles the row engine issued work in the last run",
);
pub const WAIT_CYCLES: Reg = reg(
    "WAIT_CYCLES",
    0xAC,
    R,
    Reset::Value(0),
    Node,
    "cycles spent waiting on links (barriers, partial sums) in the last run",
);
pub const LINK_TIMEOUT: Reg = reg(
    "LINK_TIMEOUT",
    0xB0,
    RW,
    Reset::Value(0),
    Node,
    "cycles a link wait may last before LINK_STATUS bit 3 (0: no limit)",
);
pub const NODE: Reg = reg(
    "NODE",
    0xB4,
    R,
    Reset::Design,
    Node,
    "device index << 8 | device count",
);

/// Every register, in address order.
pub const TABLE: &[Reg] = &[
    ID,
    VERSION,
    PLAN_HASH_LO,
    PLAN_HASH_HI,
    CTRL,
    STATUS,
    SEQ_LEN,
    SEQ_COUNT,
    CYCLES_LO,
    CYCLES_HI,
    SAT_COUNT,
    ERR_COUNT,
    WSEL,
    WADDR,
    WCOMMIT,
    WDATA,
    CONFIG0,
    CONFIG1,
    LINK_STATUS,
    LINK_CRC_ERRS,
    LINK_SEQ_ERRS,
    LINK_FMT_ERRS,
    LINK_ERR_INFO,
    TX_BEATS,
    FWD_BEATS,
    RX_BEATS,
    MAC_CYCLES,
    WAIT_CYCLES,
    LINK_TIMEOUT,
    NODE,
];

/// One decoded word of a device's map: a register, or word `word` of an array register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub reg: Reg,
    pub word: u32,
}

impl Word {
    pub fn offset(&self) -> u32 {
        self.reg.at(self.word)
    }

    pub fn index(&self) -> u32 {
        self.reg.index(self.word)
    }

    /// The word's description (array words say which bits they stage).
    pub fn doc(&self) -> String {
        if self.reg.words > 1 {
            format!(
                "{}, bits {}..{}",
                self.reg.doc,
                32 * self.word + 31,
                32 * self.word
            )
        } else {
            self.reg.doc.to_string()
        }
    }
}

/// The words a device decodes: every register of its scope, and `wdata_words` WDATA words.
pub fn device_map(node: bool, wdata_words: u32) -> Vec<Word> {
    TABLE
        .iter()
        .filter(|r| node || r.scope == Scope::All)
        .flat_map(|r| {
            let n = if r.words > 1 {
                wdata_words.min(r.words)
            } else {
                1
            };
            (0..n).map(move |word| Word { reg: *r, word })
        })
        .collect()
}

/// `#define` lines of a C header for a device's map (`partita_regs.h` wraps them).
pub fn c_defines(map: &[Word]) -> String {
    let mut s = String::new();
    for w in map {
        if w.reg.words > 1 {
            if w.word == 0 {
                s += &format!(
                    "/* {} ({}) */\n#define PARTITA_{}(j) (0x{:03X}u + 4u * (j))\n",
                    w.doc(),
                    w.reg.access.name(),
                    w.reg.name,
                    w.reg.offset
                );
            }
            continue;
        }
        s += &format!(
            "/* {} ({}) */\n#define PARTITA_{} 0x{:03X}u\n",
            w.doc(),
            w.reg.access.name(),
            w.reg.name,
            w.reg.offset
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_ordered_and_distinct() {
        let mut end = 0;
        for r in TABLE {
            assert_eq!(r.offset % 4, 0, "{}", r.name);
            assert!(
                r.offset >= end,
                "{} overlaps the register before it",
                r.name
            );
            end = r.offset + 4 * r.words;
            assert!(end <= 1 << ADDR_BITS, "{} lies outside the map", r.name);
        }
    }

    #[test]
    fn node_map_extends_the_device_map() {
        let one = device_map(false, 3);
        let node = device_map(true, 3);
        assert_eq!(&node[..one.len()], &one[..]);
        assert!(one.iter().all(|w| w.reg.scope == Scope::All));
        assert_eq!(one.iter().filter(|w| w.reg.name == "WDATA").count(), 3);
        assert!(node.iter().any(|w| w.reg.name == "LINK_TIMEOUT"));
    }
}
