"""The `paper` preset's real stages on an accelerator, briefly: tokens/s and MFU of pretraining, an RL step's
rollout and update, and a DDP-strategy launch, each through the project's own stage code.

Usage: python bench/gpu.py --out DIR [--steps 30] [--micro-batch 32] [--workers 8] [--rl-prompts 64]
       [--rl-steps 2] [--ddp-steps 4] [--preset paper] [--accelerator gpu]
Parts (each runs even if an earlier one failed; DIR/summary.json holds what each measured):
  peak      a bf16 8192^3 matmul's TFLOP/s on this device (the ceiling MFU is also given against)
  data      the training-block loader alone: tokens/s with --workers processes (does data keep up?)
  pretrain  `steps` optimizer steps of the preset's pretraining (its batch, micro-batched): median tok/s
            after the first 3 steps, MFU = tok/s x training FLOPs per token / peak, peak memory
  rl        `rl-steps` GRPO steps of the preset's RL (fewer prompts) from that model: rollout and update
            seconds, sampled tok/s (an untrained model writes until max_new_tokens: the longest case)
  ddp       the pretraining with strategy=ddp as its own command (`python -m pipelines.lm ... config=`),
            as a study launches a multi-device stage; on one GPU this is a world of one (NCCL, DDP wrapper)
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gsm_synth.atomic import write_atomic  # noqa: E402
from models import GPT, GPTConfig  # noqa: E402
from models.machine import describe_machine  # noqa: E402
from pipelines.common.config import to_yaml  # noqa: E402
from pipelines.common.mixture import Mixture  # noqa: E402
from pipelines.study.load import load_study  # noqa: E402
from pipelines.study.claims import read_rl_log  # noqa: E402
from pipelines.train.config import micro_batch_size  # noqa: E402
from pipelines.train.lm import (block_loader, global_tokens_per_step, make_tokenizer,  # noqa: E402
                                 model_config_for, run_lm_stage)
from pipelines.train.rl import run_rl_stage  # noqa: E402

DATASHEET_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, by the vendor's datasheets


def metrics(stage_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(stage_dir.glob("logs/version_*/metrics.csv")):
        rows += list(csv.DictReader(open(path)))
    return rows


def column(rows, key) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) not in (None, "")]


def measure_peak(device: str) -> float | None:
    if device != "cuda":
        return None
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192 ** 3 / (time.perf_counter() - t)


def measure_data(cfg, tokenizer, micro_batches: int) -> dict:
    it = iter(block_loader(Mixture(cfg.mixture), tokenizer, cfg))
    next(it)  # workers started
    t = time.perf_counter()
    tokens = 0
    for _ in range(micro_batches):
        tokens += next(it)[0].numel()
    return {"workers": cfg.data_workers, "tok_s": tokens / (time.perf_counter() - t)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="paper")
    p.add_argument("--accelerator", default="gpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--micro-batch", type=int, default=None, help="default: the preset's")
    p.add_argument("--workers", type=int, default=None, help="data workers; default: the preset's")
    p.add_argument("--rl-prompts", type=int, default=64)
    p.add_argument("--rl-steps", type=int, default=2)
    p.add_argument("--ddp-steps", type=int, default=4)
    p.add_argument("--parts", default="peak,data,pretrain,rl,ddp")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")

    acc = args.accelerator
    study = load_study(["study=rl_difficulty", f"preset={args.preset}", f"out={out}", "bases=1",
                        f"pretrain.accelerator={acc}", f"rl.accelerator={acc}", f"midtrain.accelerator={acc}"])
    pre = study.pretrain
    pre = replace(pre, micro_batch=args.micro_batch or pre.micro_batch,
                  data_workers=pre.data_workers if args.workers is None else args.workers,
                  budget_tokens=args.steps * pre.batch_size * pre.seq_len, budget_flops=None,
                  checkpoint_every=10 ** 6, compile="true", precision="auto")
    device = "cuda" if acc in ("gpu", "cuda") else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    summary: dict = {"machine": describe_machine(), "device": name, "torch": torch.__version__,
                     "preset": args.preset, "batch": pre.batch_size, "micro_batch": pre.micro_batch,
                     "seq_len": pre.seq_len, "data_workers": pre.data_workers}
    tokenizer = make_tokenizer()
    with torch.device("meta"):
        shape = GPT(GPTConfig(**model_config_for(pre, tokenizer.vocab_size)))
    flops_per_token = shape.flops_per_token(pre.seq_len)
    summary["params_m"] = shape.num_params() / 1e6
    summary["train_flops_per_token"] = flops_per_token

    def part(label, fn):
        if label not in parts:
            return
        t = time.perf_counter()
        try:
            summary[label] = fn()
        except Exception as e:  # one part failing must not lose the others' numbers
            traceback.print_exc()
            summary[label] = {"error": f"{type(e).__name__}: {e}"[:500]}
        summary[label] = {**summary[label], "wall_s": round(time.perf_counter() - t, 1)}
        print(f"== {label}: {json.dumps(summary[label])}", flush=True)
        write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")

    def peak():
        return {"bf16_matmul_tflops": (measure_peak(device) or 0) / 1e12}

    def data():
        return measure_data(pre, tokenizer, micro_batches=2 * pre.batch_size // micro_batch_size(pre))

    def pretrain():
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        run_lm_stage(pre, out / "pretrain", progress=False)
        logged = [r for r in metrics(out / "pretrain") if r.get("tok_s") not in (None, "")]
        tok_s = column(logged, "tok_s")
        steady = statistics.median(tok_s[3:] or tok_s)
        # past 100 steps the stage logs every 10th: the first row is then not the compiling first step
        result = {"logged_steps": len(tok_s), "first_logged_step": int(float(logged[0]["step"])) + 1,
                  "first_logged_step_s": global_tokens_per_step(pre) / tok_s[0],
                  "tok_s_median": steady, "model_tflops": steady * flops_per_token / 1e12}
        measured = summary.get("peak", {}).get("bf16_matmul_tflops")
        if measured:
            result["mfu_vs_measured_peak"] = steady * flops_per_token / (measured * 1e12)
        sheet = next((v for k, v in DATASHEET_BF16.items() if k in name), None)
        if sheet:
            result["mfu_vs_datasheet"] = steady * flops_per_token / sheet
        if device == "cuda":
            result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        return result

    def rl():
        rl_cfg = replace(study.rl, init_from=str(out / "pretrain" / "final"), prompts_per_step=args.rl_prompts,
                         budget_steps=args.rl_steps, budget_samples=None, budget_flops=None,
                         mixture=replace(study.rl.mixture, ops={study.splits["edge"]: 1.0}))
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        run_rl_stage(rl_cfg, out / "rl", progress=False)
        rows = read_rl_log(out / "rl")
        result = {k: [round(r[k], 3) for r in rows] for k in ("rollout_s", "update_s", "tok_s", "resp_len")
                  if rows and k in rows[0]}
        result["prompts"], result["group"] = rl_cfg.prompts_per_step, rl_cfg.group_size
        if device == "cuda":
            result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        return result

    def ddp():
        cfg = replace(pre, strategy="ddp", devices=1, budget_tokens=args.ddp_steps * pre.batch_size * pre.seq_len)
        config_file = out / "ddp.yaml"
        write_atomic(config_file, to_yaml(cfg))
        cmd = [sys.executable, "-m", "pipelines.lm", f"out={out / 'ddp'}", f"config={config_file}"]
        rc = subprocess.run(cmd).returncode
        tok_s = column(metrics(out / "ddp"), "tok_s")
        return {"returncode": rc, "steps": len(tok_s), "tok_s_last": tok_s[-1] if tok_s else None,
                "final": (out / "ddp" / "final").is_dir()}

    for label, fn in (("peak", peak), ("data", data), ("pretrain", pretrain), ("rl", rl), ("ddp", ddp)):
        part(label, fn)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
