"""Training speed on a quiet machine and beside one busy neighbour, per thread policy, side by side.

Usage: python bench/shared_machine.py [--rounds 3] [--steps 12] [--precision auto] [--policies ...]

A laptop also runs a browser and an IDE. Each round runs every policy twice, once alone and once beside
a busy single-threaded neighbour (a Python spin loop), each in a fresh process so that the OpenMP
settings take effect. The model and batch are the `small` study's (4 x 128, batch 8 x 512, eager).
Reports the median tok/s per policy and case, and the slowdown beside the neighbour; the fair share on
2 cores with one busy neighbour is about 1.5x (we get 2 of 3 runnable threads' worth of 2 cores, at best).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> environment for the child (set before torch loads its OpenMP runtime) and a thread count
# (None: the project's default, models.machine.configure_threads)
POLICIES = {
    "active-2": ({"OMP_WAIT_POLICY": "ACTIVE"}, 2),
    "default-2": ({}, 2),
    "passive-2": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2),
    "spin10k-2": ({"GOMP_SPINCOUNT": "10000"}, 2),
    "spin100k-2": ({"GOMP_SPINCOUNT": "100000"}, 2),
    "threads-1": ({}, 1),
    "governor": ({}, None),  # the project's default: models.machine.ThreadGovernor
}
NEIGHBOUR = "while True: pass"


def child(args) -> None:
    import torch

    from models import GPT, model_config
    from models.machine import ThreadGovernor, configure_threads
    from models.speed import autocast_for, resolve_precision

    env, threads = POLICIES[args.only]
    governor = ThreadGovernor(enabled=threads is None)
    configure_threads(threads)
    torch.manual_seed(0)
    cfg = model_config("small", 2000, 512)
    cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_kv_head, cfg.ffn_hidden = 4, 128, 2, 1, 384
    model = GPT(cfg).train()
    precision = resolve_precision(args.precision, "cpu", model=model, tokens=8 * 512).value
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(10, 2000, (8, 513))
    times = []
    for i in range(args.steps + 2):
        governor.step()
        t0 = time.perf_counter()
        with autocast_for(precision, "cpu"):
            _, loss = model(x[:, :-1], targets=x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"tok_s": 8 * 512 / statistics.median(times), "precision": precision,
                      "threads": torch.get_num_threads()}))


def run_child(args, policy: str, busy: bool) -> dict:
    env = {**os.environ, **POLICIES[policy][0]}
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        cmd = [sys.executable, __file__, "--only", policy, "--steps", str(args.steps), "--precision", args.precision]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--precision", default="auto")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--only", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        return child(args)
    from models.machine import describe_machine

    print(describe_machine())
    policies = args.policies.split(",")
    rates = {(pol, busy): [] for pol in policies for busy in (False, True)}
    info = {}
    for _ in range(args.rounds):
        for pol in policies:
            for busy in (False, True):
                r = run_child(args, pol, busy)
                rates[(pol, busy)].append(r["tok_s"])
                info[pol] = r
    print(f"small study model (4 x 128), batch 8 x 512, eager, precision {info[policies[0]]['precision']}; "
          f"median of {args.rounds} rounds of {args.steps} steps")
    for pol in policies:
        quiet, busy = statistics.median(rates[(pol, False)]), statistics.median(rates[(pol, True)])
        print(f"{pol:10s} threads {info[pol]['threads']}: quiet {quiet:7.0f} tok/s, beside a busy neighbour "
              f"{busy:7.0f} tok/s, slowdown {quiet / busy:4.1f}x")


if __name__ == "__main__":
    main()
