#!/usr/bin/env python3
"""PyTorch on this machine's CPU next to the generated hardware, for one plan (LSTM or CNN).

    python3 scripts/torch_side_by_side.py PLAN.toml [--clock MHZ] [--steps N] [--threads T]
                                           [--cycles C] [--partita PATH]

The hardware figure is cycles per timestep from `partita sim PLAN --json` (a cosimulation,
bit-exact against the golden model; it must match), or from --cycles if given (e.g. the cost
model's estimate from `partita report`, for plans too large to cosimulate quickly). µs per
step = cycles ÷ clock; the clock is the plan's [target] clock_mhz unless --clock gives the
Fmax that `partita synth --pnr` measured. PyTorch runs the same model size (input, hidden,
layers) as a dense float32 nn.LSTM, batch 1, one timestep at a time with the state carried
(the way a streaming accelerator sees it), and also a whole sequence in one call. For a CNN
plan the same nn.Sequential (dense float32) runs one frame per call (batch 1) and a batch of
64 frames per call; the hardware figure is cycles per frame in steady state.

Without torch the script still prints the hardware figures and says torch is missing
(exit 0); bad arguments or a failed cosimulation exit 2.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def hardware_cycles(args):
    if args.cycles is not None:
        if not args.cycles > 0:
            fail(f"--cycles is {args.cycles}; give cycles per timestep, more than 0")
        return args.cycles, "given (--cycles)"
    cmd = [args.partita, "sim", args.plan, "--json"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except FileNotFoundError:
        fail(f"{args.partita} not found; build it (cargo build --release) or pass --partita PATH")
    except subprocess.TimeoutExpired:
        fail(f"`{' '.join(cmd)}` took longer than {args.timeout} s; pass --cycles from `partita report` instead")
    try:
        rep = json.loads(r.stdout)
    except json.JSONDecodeError:
        fail(f"`{' '.join(cmd)}` exited {r.returncode} without a JSON summary:\n{r.stderr.strip()}")
    if not rep.get("match"):
        fail(f"the cosimulation did not match the golden model: {rep.get('mismatch')}")
    return rep["cycles_per_timestep"], "measured (partita sim, bit-exact)"


def torch_us_per_step(isz, hsz, layers, steps, threads, repeats):
    try:
        import warnings

        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(isz, hsz, layers).eval()
    x = torch.randn(steps, 1, isz)
    step_times, seq_times = [], []
    with torch.inference_mode():
        for _ in range(3):  # warm up
            lstm(x)
        for _ in range(repeats):
            state = None
            t0 = time.perf_counter()
            for t in range(steps):
                _, state = lstm(x[t : t + 1], state)
            step_times.append((time.perf_counter() - t0) / steps)
            t0 = time.perf_counter()
            lstm(x)
            seq_times.append((time.perf_counter() - t0) / steps)
    return (
        statistics.median(step_times) * 1e6,
        statistics.median(seq_times) * 1e6,
        torch.__version__,
    )


def torch_us_per_frame(plan, threads, repeats):
    try:
        import warnings

        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c, h, w = plan["model"]["input_shape"]
    mods, x = [], torch.zeros(1, c, h, w)
    for l in plan["model"].get("layer", []):
        t = l["type"]
        if t == "conv2d":
            m = nn.Conv2d(x.shape[1], l["out_channels"], l["kernel"], l.get("stride", 1), l.get("padding", 0))
        elif t == "relu":
            m = nn.ReLU()
        elif t == "maxpool":
            m = nn.MaxPool2d(l["kernel"], l.get("stride", l["kernel"]))
        elif t == "flatten":
            m = nn.Flatten()
        elif t == "dense":
            m = nn.Linear(x.shape[1], l["out_features"])
        else:
            fail(f"layer type {t!r} is not a partita CNN layer")
        mods.append(m)
        with torch.inference_mode():
            x = m(x)
    net = nn.Sequential(*mods).eval()
    one, batch = torch.randn(1, c, h, w), torch.randn(64, c, h, w)
    t1, t64 = [], []
    with torch.inference_mode():
        for _ in range(3):
            net(one)
            net(batch)
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(16):
                net(one)
            t1.append((time.perf_counter() - t0) / 16)
            t0 = time.perf_counter()
            net(batch)
            t64.append((time.perf_counter() - t0) / 64)
    return statistics.median(t1) * 1e6, statistics.median(t64) * 1e6, torch.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("plan")
    ap.add_argument("--clock", type=float, help="clock in MHz (default: the plan's clock_mhz)")
    ap.add_argument("--steps", type=int, default=64, help="timesteps per PyTorch run (default 64)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cycles", type=float, help="hardware cycles per timestep (skips the cosim)")
    ap.add_argument("--partita", default="target/release/partita")
    ap.add_argument("--timeout", type=float, default=1800, help="cosim deadline in seconds")
    args = ap.parse_args()

    try:
        with open(args.plan, "rb") as f:
            plan = tomllib.load(f)
    except OSError as e:
        fail(f"cannot read {args.plan}: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        fail(f"{args.plan} is not TOML: {e}")
    model = plan.get("model", {})
    if model.get("kind") == "cnn":
        clock = args.clock if args.clock is not None else float(plan.get("target", {}).get("clock_mhz", 200.0))
        if not clock > 0:
            fail(f"the clock is {clock} MHz; give more than 0")
        cycles, how = hardware_cycles(args)
        hw_us = cycles / clock
        print(f"model: CNN, input {model.get('input_shape')} ({args.plan})")
        print(f"hardware: {cycles:.1f} cycles per frame, {how}; at {clock:g} MHz: {hw_us:.2f} us per frame")
        res = torch_us_per_frame(plan, args.threads, args.repeats)
        if res is None:
            print("pytorch: not installed here (pip install torch); no CPU figure")
            return
        one_us, batch_us, version = res
        print(f"pytorch {version}, CPU, {args.threads} thread(s), dense float32:")
        print(f"  one frame per call (batch 1):  {one_us:.1f} us per frame  -> hardware {one_us / hw_us:.1f}x faster")
        print(f"  64 frames per call:            {batch_us:.1f} us per frame  -> hardware {batch_us / hw_us:.1f}x faster")
        return
    if model.get("kind") != "lstm":
        fail(f"{args.plan}: [model] kind is {model.get('kind')!r}; this script compares LSTM and CNN plans")
    try:
        isz, hsz = int(model["input_size"]), int(model["hidden_size"])
    except (KeyError, ValueError):
        fail(f"{args.plan}: [model] needs input_size and hidden_size")
    layers = int(model.get("num_layers", 1))
    clock = args.clock if args.clock is not None else float(plan.get("target", {}).get("clock_mhz", 200.0))
    if not clock > 0:
        fail(f"the clock is {clock} MHz; give more than 0")
    for name in ("steps", "threads", "repeats"):
        if getattr(args, name) < 1:
            fail(f"--{name} is {getattr(args, name)}; give at least 1")

    cycles, how = hardware_cycles(args)
    hw_us = cycles / clock
    print(f"model: LSTM {isz} -> {hsz}, {layers} layer(s) ({args.plan})")
    print(f"hardware: {cycles:.1f} cycles per timestep, {how}; at {clock:g} MHz: {hw_us:.2f} us per step")
    res = torch_us_per_step(isz, hsz, layers, args.steps, args.threads, args.repeats)
    if res is None:
        print("pytorch: not installed here (pip install torch); no CPU figure")
        return
    step_us, seq_us, version = res
    print(f"pytorch {version}, CPU, {args.threads} thread(s), batch 1, dense float32:")
    print(f"  one step per call (state carried): {step_us:.1f} us per step  -> hardware {step_us / hw_us:.1f}x faster")
    print(f"  whole sequence in one call:        {seq_us:.1f} us per step  -> hardware {seq_us / hw_us:.1f}x faster")


if __name__ == "__main__":
    main()
