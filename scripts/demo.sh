#!/usr/bin/env bash
# The main job on the built-in example: a 2-layer 64 -> 256 LSTM at 75% bank-balanced sparsity
# split by rows over 4 FPGAs. Today it checks the plan (per-device work, memory, link traffic)
# and runs the bit-exact golden model against float. RTL generation and cosimulation are not
# built yet (see README, "Status").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --bin partita
p=target/release/partita
plan=${1:-examples/lstm_4dev_bbs.toml}
input=${2:-examples/inputs/lstm64_b2_seq16.npy}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== partita check $plan"
$p check "$plan"
echo
echo "== partita golden $plan (bit-exact fixed point vs float)"
$p golden "$plan" --input "$input" --output "$out/h_fixed.npy" --vs-float
$p golden "$plan" --input "$input" --output "$out/h_float.npy" --float
echo
echo "== not built yet: partita gen (RTL), partita sim (Verilator cosim), partita run (host driver)"
