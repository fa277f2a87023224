#!/usr/bin/env bash
# The main job on the built-in example: a 2-layer 64 -> 256 LSTM at 75% bank-balanced sparsity,
# split by rows over 4 simulated FPGAs on a ring. It checks the plan, generates every device's
# RTL (with its link ports), cosimulates the 4 devices in lockstep in Verilator over modelled
# links, checks every output word against the bit-exact golden model, runs the same input
# through the host's system driver (as on boards), and prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh verilator ccache g++ make zlib1g-dev
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
echo "== partita gen $plan (one directory per FPGA, plus system.json)"
$p gen "$plan" -o "$out/rtl"
echo
echo "== partita sim $plan (all devices in lockstep, every word checked against golden)"
$p sim "$plan" --rtl "$out/rtl" --input "$input" --output "$out/h.npy"
echo
echo "== partita golden $plan --vs-float (how far the bit-exact model is from float)"
$p golden "$plan" --input "$input" --output "$out/h_fixed.npy" --vs-float
echo
echo "== partita run $plan (the host's system driver brings up the 4 simulated devices, as it would boards)"
$p run "$plan" --rtl "$out/rtl" --input "$input" --output "$out/h_run.npy"
cmp "$out/h_run.npy" "$out/h_fixed.npy" && echo "run: the output equals golden, bit for bit"
echo
echo "== partita report $plan --sweep devices=1,2,4 (cost model; add --measure to cosimulate each)"
$p report "$plan" --sweep devices=1,2,4
