#!/usr/bin/env bash
# Run partita's test suite, installing what it needs first.
# Long property sweeps: PROPTEST_CASES=2000 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# HDL tools: Verilator 5.006, Icarus 11, Yosys 0.23 and ccache from Debian; zlib for FST waves;
# nextpnr for ECP5 (YoWASP, from the Python package index) for the place-and-route test;
# PyTorch for the test of scripts/torch_export.py.
bash scripts/ensure-tools.sh --pnr --torch verilator iverilog yosys ccache g++ make zlib1g-dev openssl
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
# The driver stands alone: a board host builds it without the generator or its templates.
cargo check --locked -p partita-host --no-default-features --lib
if cargo tree --locked -p partita-host --no-default-features -e normal --prefix none |
    grep -qE '^(partita-codegen|partita-sim|askama) '; then
  echo "error: partita-host without default features depends on the generator" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# One closing line over every test binary (cargo's own last line is often a 0-test doc run).
# "skipped": a test that needs a missing tool (its ignore reason starts with "needs"); a long
# sweep or benchmark behind --ignored is counted apart.
awk '/^test result:/ { p += $4; f += $6 }
     / \.\.\. ignored/ { if ($0 ~ /ignored, needs /) s++; else l++ }
     END { printf "tests: %d passed, %d failed, %d skipped (a tool missing), %d long tests not run (sweeps and benchmarks behind --ignored)\n", p, f, s, l }' "$log"
