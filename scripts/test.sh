#!/usr/bin/env bash
# Run partita's test suite, installing what it needs first.
# Long property sweeps: PROPTEST_CASES=2000 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo build --release --locked --bin partita
cargo test --workspace --locked
