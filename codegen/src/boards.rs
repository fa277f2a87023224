//! Board presets: real parts with their multipliers, block memory, LUTs and flip-flops, from
//! the vendors' data sheets (cited per row). `[target] board = "NAME"` sizes `engines = "auto"`
//! against them, and `check` reports each device's estimated use and refuses a plan that does
//! not fit.
//!
//! Multipliers are counted as hard multipliers of at least 18 x 18 bits: one per DSP48E1/E2
//! slice (AMD), two 18 x 19 per variable-precision DSP block (Intel Arria 10), one per
//! 18 x 18 sysDSP multiplier (Lattice ECP5). Memory is block RAM plus UltraRAM, in bits
//! (1 Kb = 1024 bits); distributed (LUT) RAM is not counted. On Alveo cards the shell
//! (platform) takes part of the device; the figures are the whole device's.

/// One board's FPGA and what it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Board {
    /// The plan's name for it.
    pub name: &'static str,
    /// Board and part, as the vendor names them.
    pub part: &'static str,
    /// Hard multipliers of at least 18 x 18 bits.
    pub multipliers: u64,
    /// What a multiplier is on this part.
    pub dsp_kind: &'static str,
    /// Block RAM bits (36 Kb BRAM, M20K, or 18 Kb sysMEM blocks).
    pub bram_bits: u64,
    /// UltraRAM bits (0 where the part has none).
    pub uram_bits: u64,
    pub luts: u64,
    pub flip_flops: u64,
    /// The data sheet the figures come from.
    pub source: &'static str,
    /// The Vivado part of a card with a PCIe endpoint the XDMA core can use (`gen --board
    /// xdma`); None where the board has none or the part is not AMD's.
    pub xdma_part: Option<&'static str>,
}

impl Board {
    /// On-chip block memory partita may place weights and state in.
    pub fn memory_bits(&self) -> u64 {
        self.bram_bits + self.uram_bits
    }
}

const KB: u64 = 1024;

/// Every preset.
pub const BOARDS: &[Board] = &[
    Board {
        name: "pynq-z2",
        part: "TUL PYNQ-Z2, AMD Zynq-7000 XC7Z020-1CLG400C",
        multipliers: 220,
        dsp_kind: "DSP48E1 slices",
        bram_bits: 140 * 36 * KB,
        uram_bits: 0,
        luts: 53_200,
        flip_flops: 106_400,
        source: "AMD DS190, Zynq-7000 SoC Data Sheet: Overview, family table (Z-7020: 53,200 LUTs, 106,400 FFs, 140 x 36 Kb block RAM = 4.9 Mb, 220 DSP slices)",
        xdma_part: None,
    },
    Board {
        name: "zcu102",
        part: "AMD ZCU102, Zynq UltraScale+ XCZU9EG-2FFVB1156E",
        multipliers: 2_520,
        dsp_kind: "DSP48E2 slices",
        bram_bits: 912 * 36 * KB,
        uram_bits: 0,
        luts: 274_080,
        flip_flops: 548_160,
        source: "AMD DS891, Zynq UltraScale+ MPSoC Data Sheet: Overview, EG devices table (ZU9EG: 274,080 CLB LUTs, 548,160 CLB flip-flops, 912 x 36 Kb block RAM = 32.1 Mb, no UltraRAM, 2,520 DSP slices)",
        xdma_part: None,
    },
    Board {
        name: "alveo-u280",
        part: "AMD Alveo U280, XCU280 (the Virtex UltraScale+ VU37P die)",
        multipliers: 9_024,
        dsp_kind: "DSP48E2 slices",
        bram_bits: 2_016 * 36 * KB,
        uram_bits: 960 * 288 * KB,
        luts: 1_303_680,
        flip_flops: 2_607_360,
        source: "AMD DS923, Virtex UltraScale+ FPGA Data Sheet, device table (VU37P: 1,303,680 CLB LUTs, 2,607,360 flip-flops, 2,016 x 36 Kb block RAM = 70.9 Mb, 960 x 288 Kb UltraRAM = 270 Mb, 9,024 DSP slices); DS963 (Alveo U280) for the card",
        xdma_part: Some("xcu280-fsvh2892-2L-e"),
    },
    Board {
        name: "arria10-gx1150",
        part: "Intel Arria 10 GX 1150 (10AX115), e.g. on the Arria 10 GX FPGA Development Kit",
        multipliers: 3_036,
        dsp_kind: "18 x 19 multipliers (1,518 variable-precision DSP blocks)",
        bram_bits: 2_713 * 20 * KB,
        uram_bits: 0,
        // ALMs hold two adaptive LUTs each; 427,200 ALMs.
        luts: 854_400,
        flip_flops: 1_708_800,
        source: "Intel Arria 10 Device Overview (A10-OVERVIEW), Arria 10 GX table (GX 1150: 427,200 ALMs, 1,708,800 registers, 2,713 M20K blocks = 54,260 Kb, 1,518 DSP blocks = 3,036 18 x 19 multipliers); LUTs counted as 2 per ALM",
        xdma_part: None,
    },
    Board {
        name: "ecp5-85f",
        part: "Lattice ECP5-85F (LFE5U-85F), e.g. on the ECP5 Evaluation Board",
        multipliers: 156,
        dsp_kind: "18 x 18 sysDSP multipliers",
        bram_bits: 208 * 18 * KB,
        uram_bits: 0,
        luts: 83_640,
        flip_flops: 83_640,
        source: "Lattice FPGA-DS-02012, ECP5 and ECP5-5G Family Data Sheet, selection guide table (LFE5U-85: 84K LUTs, 208 sysMEM blocks = 3,744 Kb, 156 18 x 18 multipliers); one flip-flop per LUT4 in each slice",
        xdma_part: None,
    },
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

/// The preset names, for messages.
pub fn names() -> String {
    BOARDS
        .iter()
        .map(|b| format!("\"{}\"", b.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README's table of boards (between `<!-- boards -->` markers), rendered from [`BOARDS`].
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| board | part | multipliers | block RAM + UltraRAM | LUTs | flip-flops | source |\n|---|---|---|---|---|---|---|\n",
    );
    for b in BOARDS {
        s += &format!(
            "| `{}` | {} | {} ({}) | {:.1} Mb | {} | {} | {} |\n",
            b.name,
            b.part,
            b.multipliers,
            b.dsp_kind,
            b.memory_bits() as f64 / (1 << 20) as f64,
            b.luts,
            b.flip_flops,
            b.source
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_match_the_data_sheets_rounded_totals() {
        // The data sheets print these totals in Mb (2^20 bits).
        let mb = |name: &str| find(name).unwrap().memory_bits() as f64 / (1u64 << 20) as f64;
        assert!((mb("pynq-z2") - 4.9).abs() < 0.05);
        assert!((mb("zcu102") - 32.1).abs() < 0.05);
        assert!(
            (find("alveo-u280").unwrap().bram_bits as f64 / (1u64 << 20) as f64 - 70.9).abs()
                < 0.05
        );
        assert!(
            (find("alveo-u280").unwrap().uram_bits as f64 / (1u64 << 20) as f64 - 270.0).abs()
                < 0.05
        );
        assert_eq!(find("arria10-gx1150").unwrap().bram_bits / KB, 54_260);
        assert_eq!(find("ecp5-85f").unwrap().bram_bits / KB, 3_744);
        assert!(find("nope").is_none());
        let mut names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
        names.dedup();
        assert_eq!(names.len(), BOARDS.len());
    }
}
