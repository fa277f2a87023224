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
    /// A register that resets to this value.
    Value(u32),
    /// A read-only constant, the same on every device.
    Const(u32),
    /// A read-only constant of the generated design (version, plan hash, geometry), see the doc.
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
    /// One line: what the register holds (regmap.json, partita_regs.h).
    pub doc: &'static str,
    /// More for the register documentation: fields, when it changes, what refuses it.
    pub detail: &'static str,
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
    detail: &'static str,
) -> Reg {
    Reg {
        name,
        offset,
        access,
        reset,
        scope,
        words: 1,
        doc,
        detail,
    }
}

use Access::{R, RW, W};
use Scope::{All, Node};

pub const ID: Reg = reg(
    "ID",
    0x00,
    R,
    Reset::Const(DEVICE_ID),
    All,
    "0x50415254 (\"PART\")",
    "Identifies a partita device.",
);
pub const VERSION: Reg = reg(
    "VERSION",
    0x04,
    R,
    Reset::Design,
    All,
    "generator version: major << 16 | minor << 8 | patch",
    "The partita version that generated the RTL.",
);
pub const PLAN_HASH_LO: Reg = reg(
    "PLAN_HASH_LO",
    0x08,
    R,
    Reset::Design,
    All,
    "plan hash, low 32 bits",
    "64-bit FNV-1a hash of the plan text the RTL was generated from (also in every generated file's header and in regmap.json). A host checks it before it runs anything.",
);
pub const PLAN_HASH_HI: Reg = reg(
    "PLAN_HASH_HI",
    0x0C,
    R,
    Reset::Design,
    All,
    "plan hash, high 32 bits",
    "See PLAN_HASH_LO.",
);
pub const CTRL: Reg = reg(
    "CTRL",
    0x10,
    W,
    Reset::Value(0),
    All,
    "bit 0 start (when idle), bit 1 soft reset (clears the datapath, link state and ERR_COUNT); reads as 0",
    "Bit 0: start a run of SEQ_COUNT sequences of SEQ_LEN timesteps; refused (SLVERR, counted) unless the device is idle. Bit 1: soft reset, accepted at any time: clears the datapath, every counter, STATUS, the link state and ERR_COUNT, like rst_n, but keeps SEQ_LEN, SEQ_COUNT, WSEL, WADDR, LINK_TIMEOUT, the staged WDATA words and the memories. Bit 1 wins when both are set. Reads as 0.",
);
pub const STATUS: Reg = reg(
    "STATUS",
    0x14,
    R,
    Reset::Value(0),
    All,
    "bit 0 busy, bit 1 done (all outputs delivered), bit 2 error (sticky)",
    "Bit 0 busy: a run is in progress. Bit 1 done: the last run delivered all its outputs (cleared by the next start). Bit 2 error, sticky until reset or soft reset: a refused access (see ERR_COUNT) or, on a multi-device node, a link error (LINK_STATUS). A clean run after a refused access still reads 0x6.",
);
pub const SEQ_LEN: Reg = reg(
    "SEQ_LEN",
    0x18,
    RW,
    Reset::Value(1),
    All,
    "timesteps per sequence (reset 1)",
    "Timesteps per sequence. 0 makes a start finish at once (done, no outputs).",
);
pub const SEQ_COUNT: Reg = reg(
    "SEQ_COUNT",
    0x1C,
    RW,
    Reset::Value(1),
    All,
    "sequences per run, streamed back to back (reset 1)",
    "Sequences per run; each starts from zero state (h = c = 0). 0 makes a start finish at once.",
);
pub const CYCLES_LO: Reg = reg(
    "CYCLES_LO",
    0x20,
    R,
    Reset::Value(0),
    All,
    "clock cycles from start to the last result, low 32 bits",
    "Counts while busy; cleared by start.",
);
pub const CYCLES_HI: Reg = reg(
    "CYCLES_HI",
    0x24,
    R,
    Reset::Value(0),
    All,
    "cycle counter, high 32 bits",
    "See CYCLES_LO.",
);
pub const SAT_COUNT: Reg = reg(
    "SAT_COUNT",
    0x28,
    R,
    Reset::Value(0),
    All,
    "saturation events (pre-activations, cell states, h values) in the last run",
    "Values the one rounding-and-overflow step clipped (or wrapped, with overflow = \"wrap\"); cleared by start. Compare with the golden model's count.",
);
pub const ERR_COUNT: Reg = reg(
    "ERR_COUNT",
    0x2C,
    R,
    Reset::Value(0),
    All,
    "refused accesses: unmapped address, wrong direction, start or commit while busy",
    "Counts every access answered with SLVERR: a read or write of an unmapped address, a write to a read-only register, a read of a write-only one (WCOMMIT, WDATA), and a start or weight commit while not idle. Each also sets STATUS bit 2. Cleared by reset and soft reset.",
);
pub const WSEL: Reg = reg(
    "WSEL",
    0x30,
    RW,
    Reset::Value(0),
    All,
    "run-time weight write target: bits 23:16 engine, bit 0 = 0 weights / 1 biases",
    "Which memory WCOMMIT writes: bits 23:16 the engine (regmap.json: engines), bit 0 weights (0) or biases (1).",
);
pub const WADDR: Reg = reg(
    "WADDR",
    0x34,
    RW,
    Reset::Value(0),
    All,
    "run-time weight write address (word index in the engine's memory)",
    "The word WCOMMIT writes: an index into the engine's weight or bias memory, in the order of the .hex images (regmap.json: weight_depth, bias_depth).",
);
pub const WCOMMIT: Reg = reg(
    "WCOMMIT",
    0x38,
    W,
    Reset::None,
    All,
    "write the staged WDATA words to WSEL/WADDR (when idle)",
    "Any value commits: the staged WDATA words are written to the memory word WSEL and WADDR select. Refused (SLVERR, counted) unless idle. Memories keep their contents through reset.",
);
pub const WDATA: Reg = Reg {
    name: "WDATA",
    offset: 0x40,
    access: W,
    reset: Reset::Value(0),
    scope: All,
    words: 16,
    doc: "staged weight word",
    detail: "The weight or bias word WCOMMIT writes, 32 bits per register, least significant first; a device decodes as many as its widest word needs (regmap.json: weight_word_bits, bias_bits). Write-only.",
};
pub const CONFIG0: Reg = reg(
    "CONFIG0",
    0x80,
    R,
    Reset::Design,
    All,
    "input_size << 16 | hidden_size",
    "The model's shape, so a host can check it without the plan.",
);
pub const CONFIG1: Reg = reg(
    "CONFIG1",
    0x84,
    R,
    Reset::Design,
    All,
    "layers << 24 | engines << 16 | lanes << 8 | data width",
    "Layers, row engines per device, lanes per engine, and the data format's width in bits.",
);
pub const LINK_STATUS: Reg = reg(
    "LINK_STATUS",
    0x88,
    R,
    Reset::Value(0),
    Node,
    "sticky link errors: bit 0 CRC, 1 sequence (dropped or reordered frame), 2 malformed frame, 3 timeout",
    "Sticky until reset. Any bit stops the device: it finishes no more layers, so damaged data is never used; STATUS bit 2 is set.",
);
pub const LINK_CRC_ERRS: Reg = reg(
    "LINK_CRC_ERRS",
    0x8C,
    R,
    Reset::Value(0),
    Node,
    "frames with a CRC mismatch",
    "Frames addressed here whose trailer CRC differs (or whose payload was shorter than the count), since reset.",
);
pub const LINK_SEQ_ERRS: Reg = reg(
    "LINK_SEQ_ERRS",
    0x90,
    R,
    Reset::Value(0),
    Node,
    "frames with an unexpected sequence number",
    "Frames addressed here with a sequence number other than the next one from their source (a dropped or reordered frame), since reset.",
);
pub const LINK_FMT_ERRS: Reg = reg(
    "LINK_FMT_ERRS",
    0x94,
    R,
    Reset::Value(0),
    Node,
    "malformed frames",
    "Frames addressed here with a bad header (type 3, an unknown or own source, a layer out of range, a count over the limit, a barrier with values, tlast on the header) or more payload beats than their count, since reset.",
);
pub const LINK_ERR_INFO: Reg = reg(
    "LINK_ERR_INFO",
    0x98,
    R,
    Reset::Value(0),
    Node,
    "first error: kind << 28 | source << 24 | expected seq << 13 | received seq",
    "The first link error since reset: bits 31:28 kind (1 CRC, 2 sequence, 3 malformed, 4 timeout), 26:24 the source device, 23:13 the sequence number expected from it (low 11 bits; sequence errors), 12:0 the sequence number received (CRC errors: the frame's own). 0: no error.",
);
pub const TX_BEATS: Reg = reg(
    "TX_BEATS",
    0x9C,
    R,
    Reset::Value(0),
    Node,
    "link beats of this device's own frames, since reset",
    "Beats of frames this device sent (header, payload, trailer), since reset: not cleared by start, so on a system whose boards start one after another, beats sent and received still add up.",
);
pub const FWD_BEATS: Reg = reg(
    "FWD_BEATS",
    0xA0,
    R,
    Reset::Value(0),
    Node,
    "link beats this device forwarded for others, since reset",
    "Beats of frames addressed to another device that this one passed on (ring, chain), since reset.",
);
pub const RX_BEATS: Reg = reg(
    "RX_BEATS",
    0xA4,
    R,
    Reset::Value(0),
    Node,
    "link beats received, since reset",
    "Beats that arrived on any link port, forwarded ones included, since reset.",
);
pub const MAC_CYCLES: Reg = reg(
    "MAC_CYCLES",
    0xA8,
    R,
    Reset::Value(0),
    Node,
    "cycles the row engine issued work in the last run",
    "Cleared by start. MAC_CYCLES / cycles is the engine's utilization.",
);
pub const WAIT_CYCLES: Reg = reg(
    "WAIT_CYCLES",
    0xAC,
    R,
    Reset::Value(0),
    Node,
    "cycles spent waiting on links (barriers, partial sums) in the last run",
    "Cycles the controller waited for barriers or partial sums from other devices; cleared by start.",
);
pub const LINK_TIMEOUT: Reg = reg(
    "LINK_TIMEOUT",
    0xB0,
    RW,
    Reset::Value(0),
    Node,
    "cycles a link wait may last before LINK_STATUS bit 3 (0: no limit)",
    "A wait for other devices longer than this many cycles sets LINK_STATUS bit 3 (timeout) and stops the device. 0 (the reset value) disables it.",
);
pub const NODE: Reg = reg(
    "NODE",
    0xB4,
    R,
    Reset::Design,
    Node,
    "device index << 8 | device count",
    "Which device of the system this is.",
);

pub const CONFIG2: Reg = reg(
    "CONFIG2",
    0xB8,
    R,
    Reset::Design,
    All,
    "stream: values per beat << 16 | tdata bits",
    "The AXI4-Stream layout of x and h (partita_hdl::stream): tdata bits (bits 15:0) and values per beat (bits 31:16). A vector starts on a new beat; its last beat has tlast, and tkeep low for empty slots.",
);
pub const STREAM_ERRS: Reg = reg(
    "STREAM_ERRS",
    0xBC,
    R,
    Reset::Value(0),
    All,
    "input beats whose tkeep or tlast differ from the stream layout",
    "Counts x beats whose tkeep or tlast differ from the layout CONFIG2 describes (a vector's last beat has tlast and tkeep low for its empty slots; other beats have every slot's bytes kept and no tlast). Values are still taken by position, as the layout fixes them. Cleared by start, reset and soft reset.",
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
    CONFIG2,
    STREAM_ERRS,
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

/// The register documentation (`hdl/REGISTERS.md`), generated from [`TABLE`].
pub fn markdown() -> String {
    let mut s = String::from(
        "# partita register map\n\n\
         Generated from the register table in `hdl/src/regs.rs`, which the Verilog decode, \
         `regmap.json`, `partita_regs.h`, the testbench, the host driver and the cosimulation \
         all derive from. Regenerate with `INSTA_UPDATE=always cargo test -p partita-tests \
         --test docs`.\n\n\
         AXI4-Lite slave: 32-bit data, 12-bit byte addresses (`s_axil_*`), every register one \
         32-bit word at a 4-aligned offset. `wstrb` is ignored (registers are written whole) \
         and so are the two low address bits. AWREADY, WREADY and ARREADY are registers, high \
         while their channel is free; the write address and data may arrive in different \
         cycles. The request and the decode are registered: a write taken at one rising \
         edge (the later of address and data) is answered (BVALID high) two edges later, a \
         read (RVALID high) four edges later (its decode takes three registered steps): \
         OKAY, or SLVERR for \
         a refused one (an unmapped address, a write to a read-only register, a read of a \
         write-only one, a start or commit while busy), which also increments ERR_COUNT and \
         sets STATUS bit 2. Reads of a refused access return 0. A response waits for \
         `bready` / `rready`; the channel's ready rises again the cycle after it is taken.\n\n\
         Registers marked *node* exist only on the devices of a multi-device system.\n\n\
         | offset | name | access | reset | devices | what |\n|---|---|---|---|---|---|\n",
    );
    for r in TABLE {
        let offset = if r.words > 1 {
            format!("0x{:03X}..0x{:03X}", r.offset, r.at(r.words - 1))
        } else {
            format!("0x{:03X}", r.offset)
        };
        let reset = match r.reset {
            Reset::Value(v) => format!("0x{v:X}"),
            Reset::Const(v) => format!("0x{v:08X}"),
            Reset::Design => "design".into(),
            Reset::None => "-".into(),
        };
        let scope = match r.scope {
            Scope::All => "all",
            Scope::Node => "node",
        };
        s += &format!(
            "| {offset} | {} | {} | {reset} | {scope} | {} |\n",
            r.name,
            r.access.name(),
            r.doc
        );
    }
    s += "\n\"design\": a constant of the generated design (see regmap.json).\n\n## Details\n";
    for r in TABLE {
        s += &format!(
            "\n**{}** (0x{:03X}, {}): {}\n",
            r.name,
            r.offset,
            r.access.name(),
            r.detail
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
        // Every word of a single device sits at the same offset on a node; the rest are the
        // node's own (link) registers.
        assert!(one.iter().all(|w| node.contains(w)));
        assert!(node
            .iter()
            .filter(|w| !one.contains(w))
            .all(|w| w.reg.scope == Scope::Node));
        assert_eq!(
            node.len(),
            one.len() + TABLE.iter().filter(|r| r.scope == Scope::Node).count()
        );
        assert!(one.iter().all(|w| w.reg.scope == Scope::All));
        assert_eq!(one.iter().filter(|w| w.reg.name == "WDATA").count(), 3);
        assert!(node.iter().any(|w| w.reg.name == "LINK_TIMEOUT"));
    }
}
