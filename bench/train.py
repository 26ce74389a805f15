"""Training throughput of a preset: the `auto` default against every explicit precision x compile mode,
side by side.

Usage: python bench/train.py [--preset small] [--batch 16] [--seq 512] [--steps 3] [--modes ...]
Every mode gets its own copy of the same initial model and AdamW; timed steps are interleaved
round-robin, so load from other jobs on the machine hits all modes alike. A step = forward, loss,
backward, optimizer step. `auto` is what a long pretraining stage resolves to on this machine
(models/speed.py). Reports the machine, the median tok/s per mode, its ratio to eager fp32 and auto's
ratio to the best explicit mode.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import GPT, autocast_context, maybe_compile, model_config  # noqa: E402
from models.machine import LoadMeter, describe_machine  # noqa: E402
from models.speed import COMPILE_MIN_STEPS, resolve_compile, resolve_precision, uses_bf16  # noqa: E402

VOCAB = 2000
MODES = {  # name -> (bf16 autocast, torch.compile)
    "eager-fp32": (False, False),
    "eager-bf16": (True, False),
    "compile-fp32": (False, True),
    "compile-bf16": (True, True),
}


def make_step(model, bf16: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

    def step(x, y):
        with autocast_context("cpu", bf16):
            _, loss = model(x, targets=y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--modes", default="auto,eager-fp32,eager-bf16,compile-fp32,compile-bf16")
    p.add_argument("--model", default="", help='overrides of the preset, e.g. "n_layer=4,ffn_hidden=384"')
    args = p.parse_args()
    torch.set_num_threads(2)

    torch.manual_seed(0)
    cfg = model_config(args.preset, VOCAB, args.seq)
    for item in filter(None, args.model.split(",")):
        key, value = item.split("=")
        setattr(cfg, key, int(value))
    base = GPT(cfg)
    data = torch.randint(10, VOCAB, (args.batch, args.seq + 1))
    x, y = data[:, :-1], data[:, 1:]
    tokens = args.batch * args.seq
    print(f"preset={args.preset} params={base.num_params() / 1e6:.2f}M batch={args.batch}x{args.seq} "
          f"flops/token={base.flops_per_token(args.seq) / 1e6:.1f}M threads=2 torch={torch.__version__}")
    print(f"machine: {describe_machine()}")
    precision = resolve_precision("auto", "cpu", base, tokens)
    compiled = resolve_compile("auto", "cpu", steps=COMPILE_MIN_STEPS)  # as a long pretraining resolves
    MODES["auto"] = (uses_bf16(precision.value), compiled.value)
    print(f"auto: precision {precision}, compile {compiled}")

    steps, times = {}, {}
    for name in args.modes.split(","):
        bf16, compiled = MODES[name]
        model = maybe_compile(copy.deepcopy(base).train(), compiled)
        steps[name], times[name] = make_step(model, bf16), []
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            loss = steps[name](x, y)
        print(f"{name:13s} warm-up {time.perf_counter() - t0:6.1f} s (loss {loss:.3f})", flush=True)

    meter = LoadMeter()
    for _ in range(args.steps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step(x, y)
            times[name].append(time.perf_counter() - t0)
    print(f"other processes used {meter.foreign_cores():.2f} cores on average "
          f"while timing (0 = quiet machine)")

    flops = base.flops_per_token(args.seq)
    baseline = statistics.median(times["eager-fp32"]) if "eager-fp32" in times else None
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = f"  {baseline / med:.2f}x eager-fp32" if baseline else ""
        print(f"{name:13s} {tokens / med:7.0f} tok/s  step {med * 1000:6.0f} ms (median of "
              f"{len(ts)}: {', '.join(f'{t:.2f}' for t in ts)} s)  {tokens * flops / med / 1e9:5.1f} "
              f"GFLOP/s{ratio}")
    explicit = {n: statistics.median(ts) for n, ts in times.items() if n != "auto"}
    if "auto" in times and explicit:
        best = min(explicit, key=explicit.get)
        print(f"auto / best explicit ({best}): {explicit[best] / statistics.median(times['auto']):.2f}x")


if __name__ == "__main__":
    main()
