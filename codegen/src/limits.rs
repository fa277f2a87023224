//! Every limit partita enforces, in one table (README.md, "Limits", lists the same rows; a
//! test keeps them in step). Each is checked before the memory or time it bounds is spent.
//!
//! A limit can be lowered, never raised, with `PARTITA_LIMIT_<NAME>` in the environment
//! (e.g. `PARTITA_LIMIT_WEIGHTS=1000`); the hostile-input battery uses this to test every
//! limit just under, at and just over its value without spending the memory.

/// One limit: its name, default value, unit and what it bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Lower-case name; the environment variable is `PARTITA_LIMIT_` + upper case.
    pub name: &'static str,
    pub default: u64,
    pub unit: &'static str,
    pub what: &'static str,
}

impl Limit {
    /// The limit in force: the default, or a lower value from the environment.
    pub fn value(&self) -> u64 {
        let var = format!("PARTITA_LIMIT_{}", self.name.to_ascii_uppercase());
        std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(self.default, |v| v.min(self.default))
    }
}

/// Weights in the model (dense count, before pruning). The passes hold each weight in a few
/// forms at once (float, pruned CSB value and index, quantized code); measured peak is about
/// 40 bytes per weight (README, "Limits"), so this bounds `check`/`gen`/`golden` at 2.5 GB.
pub const WEIGHTS: Limit = Limit {
    name: "weights",
    default: 64_000_000,
    unit: "weights",
    what: "weights in the model, dense count before pruning (about 40 bytes of memory each)",
};

/// Values in one CNN feature map, the input included (8 bytes each in the golden model).
pub const FEATURE_MAP: Limit = Limit {
    name: "feature_map",
    default: 1 << 24,
    unit: "values",
    what: "values in one CNN feature map C x H x W, input included (8 bytes each)",
};

/// Multiply-accumulates of one CNN sample through every conv and dense layer.
pub const CNN_MACS: Limit = Limit {
    name: "cnn_macs",
    default: 1 << 32,
    unit: "MACs",
    what: "multiply-accumulates of one CNN sample (golden model time)",
};

/// Values in an input or output array (batch x sequence x features, or n x C x H x W).
pub const INPUT_VALUES: Limit = Limit {
    name: "input_values",
    default: 1 << 26,
    unit: "values",
    what: "values in an input .npy array, and in the output it gives",
};

/// Multiply-accumulates of one run of the golden model over a whole input array.
pub const GOLDEN_MACS: Limit = Limit {
    name: "golden_macs",
    default: 1 << 37,
    unit: "MACs",
    what: "multiply-accumulates of one golden-model run over a whole input, dense count (about 500 M/s measured: under 5 minutes)",
};

/// Timesteps in one input sequence.
pub const SEQUENCE: Limit = Limit {
    name: "sequence",
    default: 1 << 20,
    unit: "timesteps",
    what: "timesteps in one LSTM input sequence",
};

/// Cycles one cosimulation may run. A run's own bound is 4 x the cost model's cycles plus
/// slack; a run whose bound is above this limit is refused before it starts.
pub const SIM_CYCLES: Limit = Limit {
    name: "sim_cycles",
    default: 2_000_000_000,
    unit: "cycles",
    what: "simulated cycles of one cosimulation (bound: 4 x the cost model's cycles + slack)",
};

/// One-way link latency of a plan.
pub const LINK_LATENCY: Limit = Limit {
    name: "link_latency",
    default: 1 << 20,
    unit: "cycles",
    what: "one-way link latency in a plan",
};

/// Size of a plan file.
pub const PLAN_BYTES: Limit = Limit {
    name: "plan_bytes",
    default: 1 << 20,
    unit: "bytes",
    what: "size of a plan (.toml) file",
};

/// Size of a weights file.
pub const WEIGHTS_BYTES: Limit = Limit {
    name: "weights_bytes",
    default: 1 << 30,
    unit: "bytes",
    what: "size of a weights (.safetensors) file",
};

/// Size of an input array file.
pub const INPUT_BYTES: Limit = Limit {
    name: "input_bytes",
    default: (1 << 29) + 4096,
    unit: "bytes",
    what: "size of an input (.npy) file",
};

/// Size of one file read from an RTL directory (Verilog source, `$readmemh` image).
pub const RTL_FILE_BYTES: Limit = Limit {
    name: "rtl_file_bytes",
    default: 256 << 20,
    unit: "bytes",
    what: "size of one file in an RTL directory (Verilog, .hex)",
};

/// Every limit, in README order.
pub const ALL: &[Limit] = &[
    WEIGHTS,
    FEATURE_MAP,
    CNN_MACS,
    INPUT_VALUES,
    GOLDEN_MACS,
    SEQUENCE,
    SIM_CYCLES,
    LINK_LATENCY,
    PLAN_BYTES,
    WEIGHTS_BYTES,
    INPUT_BYTES,
    RTL_FILE_BYTES,
];

/// Open `path` for reading only if it is a regular file of at most `limit` bytes; `what`
/// names the file in messages ("plan", "weights file", ...). Returns the bytes.
pub fn read_file(path: &std::path::Path, limit: &Limit, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {what} `{shown}`: {e}"))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a device, pipe or socket)"
        };
        return Err(format!(
            "{what} `{shown}` is {kind}; give the path of a regular file"
        ));
    }
    let max = limit.value();
    if meta.len() > max {
        return Err(format!(
            "{what} `{shown}` is {} bytes, more than the limit of {max} bytes ({}; README.md, \"Limits\")",
            meta.len(),
            limit.what
        ));
    }
    // Read at most max + 1 bytes, in case the file grows while it is read.
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {what} `{shown}`: {e}"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what} `{shown}`: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{what} `{shown}` grew past the limit of {max} bytes while it was read"
        ));
    }
    Ok(bytes)
}

/// The README's table of limits (between `<!-- limits -->` markers), rendered from [`ALL`].
pub fn markdown_table() -> String {
    let mut s = String::from("| limit | default | bounds | lower it with |\n|---|---|---|---|\n");
    for l in ALL {
        s += &format!(
            "| `{}` | {} {} | {} | `PARTITA_LIMIT_{}` |\n",
            l.name,
            l.default,
            l.unit,
            l.what,
            l.name.to_ascii_uppercase()
        );
    }
    s
}
