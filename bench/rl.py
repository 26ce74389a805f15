"""Seconds per RL (GRPO) step, split into rollout (batched KV-cache sampling + rewards) and update, and
FLOPs/s, for a preset. Runs the real stage (`pipelines.rl.run_rl_stage`) for a few steps in a temporary
directory and reads its per-step CSV log.

Usage: python bench/rl.py [--preset small] [--init DIR] [--steps 3] [--prompts 8] [--group 8] [--new 256]
                          [--ops 2-4] [--precision auto] [--threads N]

Without --init the model is the preset freshly initialised (with the project's tokenizer): its
completions run to about max_new_tokens, which is the cost a study's rollouts are bounded by, and all
its rewards are 0, so zero-variance groups are kept (skip_zero_variance=False) to time a full update.
With --init DIR (a finished stage's final/) the lengths and rewards are real. The first step includes
warm-up and is reported separately. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import GPT, model_config  # noqa: E402
from pipelines.common.checkpoint import save_model  # noqa: E402
from pipelines.common.mixture import MixtureConfig  # noqa: E402
from pipelines.train.config import RLStageConfig
from pipelines.train.lm import make_tokenizer  # noqa: E402
from pipelines.train.rl import run_rl_stage  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--init", default=None, help="a finished stage's final/ directory (default: random preset)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--ops", default="2-4")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--ppo-epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="fixed torch threads (0: the project's default, "
                    "every core while the machine is quiet, fewer beside busy programs)")
    args = ap.parse_args()
    if args.threads:
        os.environ["GSM_TESTBED_THREADS"] = str(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-rl-") as tmp:
        init = args.init
        if init is None:
            tok = make_tokenizer()
            torch.manual_seed(0)
            init = save_model(Path(tmp) / "init", GPT(model_config(args.preset, tok.vocab_size, 2048)), tok)
        cfg = RLStageConfig(init_from=str(init), mixture=MixtureConfig(ops={args.ops: 1.0}, pool="rl"),
                            prompts_per_step=args.prompts, group_size=args.group, max_new_tokens=args.new,
                            budget_steps=args.steps, precision=args.precision, ppo_epochs=args.ppo_epochs,
                            skip_zero_variance=args.init is not None, checkpoint_every=10 ** 6)
        t0 = time.perf_counter()
        run_rl_stage(cfg, Path(tmp) / "run", progress=False)
        total = time.perf_counter() - t0
        path = next((Path(tmp) / "run" / "logs").glob("version_*/metrics.csv"))
        resolved = json.loads((Path(tmp) / "run" / "final" / "model.json").read_text())["summary"]
        rows = [r for r in csv.DictReader(open(path)) if r.get("reward")]

    def f(r, k):
        return float(r[k])

    timed = rows[1:] or rows
    rollout = statistics.mean(f(r, "rollout_s") for r in timed)
    update = statistics.mean(f(r, "update_s") for r in timed)
    result = {
        "preset": args.preset if args.init is None else f"init={args.init}", "threads": torch.get_num_threads(),
        "precision": f"{resolved['precision']} ({resolved['speed_reasons']['precision']})", "prompts": args.prompts, "group": args.group, "max_new_tokens": args.new,
        "ppo_epochs": args.ppo_epochs, "steps_timed": len(timed),
        "step_s": rollout + update, "rollout_s": rollout, "update_s": update,
        "rollout_share": rollout / (rollout + update),
        "rollout_flops_share": statistics.mean(f(r, "rollout_flops_frac") for r in timed),
        "flops_per_s": statistics.mean(f(r, "flops_per_s") for r in timed),
        "sampled_tok_s": statistics.mean(f(r, "tok_s") for r in timed),
        "resp_len": statistics.mean(f(r, "resp_len") for r in timed),
        "first_step_s": f(rows[0], "rollout_s") + f(rows[0], "update_s"), "wall_s_total": total,
    }
    print(f"machine: {resolved['machine']['cpu']}, isa {resolved['machine']['isa']}")
    for k, v in result.items():
        print(f"{k:>20}: {v:.4g}" if isinstance(v, float) else f"{k:>20}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
