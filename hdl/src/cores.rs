//! The library Verilog cores under `hdl/rtl/`: parameterised Verilog-2005 that does not depend
//! on the plan. Generated designs instantiate them and carry copies of the ones they use, so an
//! RTL directory stands alone. Each core has a self-checking testbench under `hdl/tb/`
//! (run by `tests/tests/cores.rs`, against the Rust references of this crate and of
//! `partita_codegen::fixed`) and lints clean with `verilator -Wall` on its own.

/// One core: its module (and file) name, what it needs, and its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Core {
    pub name: &'static str,
    /// Cores it instantiates.
    pub needs: &'static [&'static str],
    pub source: &'static str,
}

impl Core {
    pub fn file(&self) -> String {
        format!("{}.v", self.name)
    }
}

macro_rules! core {
    ($name:literal, [$($need:literal),*]) => {
        Core {
            name: $name,
            needs: &[$($need),*],
            source: include_str!(concat!("../rtl/", $name, ".v")),
        }
    };
}

/// The requantizer: one rounding and one overflow step.
pub const REQUANT: Core = core!("partita_requant", []);
/// The data's share of a link CRC step: a beat's XOR sets, combinational.
pub const CRC32_SHARE: Core = core!("partita_crc32_share", []);
/// The link CRC register (CRC-32/MPEG-2): start, continue or hold, one beat per edge.
pub const CRC32: Core = core!("partita_crc32", ["partita_rep", "partita_crc32_share"]);
/// Synchronous FIFO, first word fall-through.
pub const FIFO: Core = core!("partita_fifo", []);
/// Stream FIFO on block RAM (registered read, two-entry output queue).
pub const SFIFO: Core = core!("partita_sfifo", []);
/// The gather of a split CNN stack: per period a device's own values (waiting in a stream
/// FIFO), then the link's; a tail of link values after the last period.
pub const GATHER: Core = core!("partita_gather", ["partita_sfifo"]);
/// The merge of several streams, per period a fixed run of each in turn (the all-gather of a
/// `filters` stack).
pub const MERGE: Core = core!("partita_merge", []);
/// The box of a map (rows, columns, channels) out of its raster-order stream, the rest dropped
/// (a device's part of a map every device of a stack holds whole).
pub const CROP: Core = core!("partita_crop", []);
/// A received stream's queue: whole payload beats in (as the link receiver offers them), one
/// value per cycle out.
pub const RXQ: Core = core!("partita_rxq", ["partita_sfifo"]);
/// AXI4-Stream skid buffer (register slice).
pub const SKID: Core = core!("partita_skid", []);
/// Link framer.
pub const LINK_TX: Core = core!("partita_link_tx", ["partita_crc32"]);
/// Link deframer with header, sequence and CRC checks.
pub const LINK_RX: Core = core!(
    "partita_link_rx",
    ["partita_fifo", "partita_skid", "partita_crc32"]
);
/// Link transmit port arbiter.
pub const TX_ARB: Core = core!("partita_tx_arb", []);
/// Several runs sharing a link hub's transmit queue, whole frames at a time (staging FIFOs,
/// fixed priority, a lock until a frame's end).
pub const TX_RUNS: Core = core!("partita_tx_runs", ["partita_sfifo"]);
/// AXI4-Lite slave in front of a register decode.
pub const AXIL: Core = core!("partita_axil", []);
/// A device's link ports: receive ports, transmit queue, framer, arbiter, barrier count,
/// link errors and beat counters.
pub const LINK_HUB: Core = core!(
    "partita_link_hub",
    [
        "partita_fifo",
        "partita_link_tx",
        "partita_link_rx",
        "partita_tx_arb",
        "partita_skid"
    ]
);

/// AXI4-Stream unpacker: packed beats in (the layout of `crate::stream`), one value per cycle
/// out, tkeep and tlast checked.
pub const UNPACK: Core = core!("partita_unpack", ["partita_skid"]);
/// AXI4-Stream packer: one value per cycle in, packed beats with tkeep and tlast out.
pub const PACK: Core = core!("partita_pack", ["partita_skid"]);

/// A register copy of a high-fanout signal group, kept apart from its siblings in synthesis.
pub const REP: Core = core!("partita_rep", []);

/// Every core.
pub const ALL: &[Core] = &[
    REQUANT,
    CRC32_SHARE,
    CRC32,
    FIFO,
    SFIFO,
    GATHER,
    MERGE,
    CROP,
    RXQ,
    SKID,
    LINK_TX,
    LINK_RX,
    TX_ARB,
    TX_RUNS,
    AXIL,
    LINK_HUB,
    UNPACK,
    PACK,
    REP,
];

/// A core by name.
pub fn by_name(name: &str) -> Option<Core> {
    ALL.iter().copied().find(|c| c.name == name)
}

/// `cores` and everything they instantiate, each once, dependencies first.
pub fn closure(cores: &[Core]) -> Vec<Core> {
    fn add(c: Core, out: &mut Vec<Core>) {
        if out.contains(&c) {
            return;
        }
        for n in c.needs {
            if let Some(d) = by_name(n) {
                add(d, out);
            }
        }
        out.push(c);
    }
    let mut out = Vec::new();
    for c in cores {
        add(*c, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_defines_its_module_and_resolves_its_needs() {
        for c in ALL {
            assert!(
                c.source.contains(&format!("module {} ", c.name))
                    || c.source.contains(&format!("module {} #", c.name))
                    || c.source.contains(&format!("module {} (", c.name)),
                "{} does not define its module",
                c.name
            );
            for n in c.needs {
                assert!(by_name(n).is_some(), "{} needs unknown {n}", c.name);
                assert!(
                    c.source.contains(n),
                    "{} lists {n} but does not use it",
                    c.name
                );
            }
            assert!(!c.source.contains("lint_off"), "{} has a lint_off", c.name);
        }
        let names: Vec<&str> = closure(&[LINK_RX]).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "partita_fifo",
                "partita_skid",
                "partita_rep",
                "partita_crc32_share",
                "partita_crc32",
                "partita_link_rx"
            ]
        );
    }
}
