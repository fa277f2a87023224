#!/usr/bin/env bash
# Cycle equivalence of two partita binaries, for RTL restructurings that must not change
# behaviour: every LSTM example and every plan in scripts/equivalence/ (2 to 4 devices, every
# strategy and topology, dense and BBS, 32-bit links, odd sizes) is cosimulated by both, and
# the reports are compared field by field: output match, words, saturations, link bytes and
# beats per channel, and every device's cycle, MAC, link-wait, byte and error counters.
# Timing fields (seconds, cycles/s, build cache) are ignored; the system cycle count of the
# host's run, which includes register-access latency, is printed when it differs. Fields only
# one binary reports are ignored. Exit 0 when equivalent, 1 when not, 2 on bad usage.
#
#   bash scripts/equivalence.sh OLD_BINARY NEW_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    echo "usage: bash scripts/equivalence.sh OLD_BINARY NEW_BINARY (two executable partita binaries)" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "error: python3 is needed to compare the reports" >&2; exit 2; }
old=$(realpath "$1")
new=$(realpath "$2")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
plans=(examples/lstm_*.toml scripts/equivalence/*.toml)
for p in "${plans[@]}"; do
    n=$(basename "$p" .toml)
    for side in old new; do
        bin=$old
        [ "$side" = new ] && bin=$new
        # Exit 1 (mismatch) still writes a report; anything else is a failure to run.
        rc=0
        "$bin" sim "$p" --json >"$out/$side.$n.json" 2>"$out/$side.$n.err" || rc=$?
        if [ "$rc" -gt 1 ]; then
            echo "error: $side binary failed on $p (exit $rc):" >&2
            cat "$out/$side.$n.err" >&2
            exit 2
        fi
    done
done
python3 - "$out" "${plans[@]}" <<'EOF'
import json, os, sys
out, plans = sys.argv[1], sys.argv[2:]
TIMING = {"sim_seconds", "sim_cycles_per_second", "build_seconds", "build_cached", "rtl_dir"}
def strip(a, b):
    """The fields both reports have, timing removed."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (a.keys() & b.keys()) - TIMING
        return {k: strip(a[k], b[k])[0] for k in keys}, {k: strip(a[k], b[k])[1] for k in keys}
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = [strip(x, y) for x, y in zip(a, b)]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return a, b
bad = 0
for p in plans:
    n = os.path.splitext(os.path.basename(p))[0]
    o = json.load(open(os.path.join(out, f"old.{n}.json")))
    w = json.load(open(os.path.join(out, f"new.{n}.json")))
    oc, wc = o.pop("sim_cycles", None), w.pop("sim_cycles", None)
    so, sw = strip(o, w)
    if so != sw:
        bad += 1
        diff = sorted(k for k in so if so[k] != sw[k])
        print(f"DIFFERENT  {p}: {', '.join(diff)}")
    elif oc != wc:
        print(f"same       {p} (system cycles {oc} -> {wc})")
    else:
        print(f"same       {p}")
print(f"{len(plans) - bad} of {len(plans)} plans equivalent")
sys.exit(1 if bad else 0)
EOF
