"""The scale-out path on a CPU: Lightning DDP (gloo) with 2 processes, as GPU users run it with 8.

2-process pretraining with half the batch per process follows the loss trajectory of 1 process with
the whole batch; an RL stage under DDP splits its rollouts across the ranks and writes one model; a
study starts multi-device stages as their own commands (pipelines.study.cache.launch)."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipelines.common.checkpoint import load_model
from pipelines.common.config import to_yaml
from pipelines.common.mixture import MixtureConfig
from pipelines.train.config import LMStageConfig, OptimConfig
from pipelines.train.lm import run_lm_stage

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 300  # a collective that waits for a dead rank would otherwise hang the suite
# Tolerance: the gradient all-reduce sums in another order than one process does (float rounding).
LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-4

pytestmark = pytest.mark.slow


def lm_config(**kw) -> LMStageConfig:
    base = dict(preset="tiny", budget_tokens=8 * 4 * 64, batch_size=4, seq_len=64, max_seq_len=128,
                precision="32-true", compile="false", checkpoint_every=100, prompt_loss_weight=0.1,
                mixture=MixtureConfig(ops={"2-3": 1.0}), optim=OptimConfig(lr=3e-3, warmup_frac=0.1))
    base.update(kw)
    return LMStageConfig(**base)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # its own probe memory: the conftest's machine-independent stubs do not reach a subprocess
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GSM_TESTBED_CACHE_DIR": str(cwd / "speed-memory")}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def logged(stage_dir: Path, key: str = "loss") -> list[float]:
    rows = csv.DictReader(open(next((stage_dir / "logs").glob("version_*/metrics.csv"))))
    return [float(r[key]) for r in rows if r.get(key)]


def test_two_process_pretraining_follows_one_process_with_the_same_global_batch(tmp_path):
    one = run_lm_stage(lm_config(), tmp_path / "one", progress=False)
    config = tmp_path / "ddp.yaml"
    config.write_text(to_yaml(lm_config(batch_size=2, devices=2, strategy="ddp")))
    run_cli(["-m", "pipelines.lm", f"out={tmp_path / 'two'}", f"config={config}"], tmp_path)

    a, b = logged(tmp_path / "one"), logged(tmp_path / "two")
    assert len(a) == len(b) == 8
    assert max(abs(x - y) for x, y in zip(a, b)) < LOSS_TOLERANCE, (a, b)
    assert a[-1] < a[0]  # it trained
    wa, wb = load_model(one)[0].state_dict(), load_model(tmp_path / "two" / "final")[0].state_dict()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < WEIGHT_TOLERANCE
    summary = json.loads((tmp_path / "two" / "final" / "model.json").read_text())["summary"]
    assert summary["devices"] == 2 and summary["tokens"] == 8 * 4 * 64
    # throughput and FLOPs are logged over all ranks, as the one-process run with the whole batch logs them
    assert logged(tmp_path / "two", "flops")[-1] == logged(tmp_path / "one", "flops")[-1] == summary["flops"]


def test_a_study_runs_rl_under_ddp_split_across_ranks(tmp_path):
    """smoke with both RL stages on 2 processes: each RL step samples prompts_per_step prompts per rank."""
    fp32 = [f"{section}.precision=32-true" for section in ("pretrain", "midtrain", "rl", "eval")]  # no probe
    run_cli(["-m", "pipelines.run", "study=smoke", "progress=false", f"out={tmp_path}", "rl.devices=2",
             "rl.strategy=ddp", *fp32], tmp_path)
    records = [json.loads(line) for line in open(tmp_path / "smoke-tiny" / "metrics.jsonl")]
    rl = [r for r in records if r.get("type") == "stage" and r["kind"] == "rl"]
    assert len(rl) == 2
    for stage in rl:
        s = stage["summary"]
        assert s["devices"] == 2 and s["steps"] == 2
        assert s["samples"] == 2 * 2 * 4 * 2  # steps x prompts per rank x group x ranks (tiny preset)
        final = tmp_path / "cache" / f"rl-{stage['key']}" / "final"
        assert load_model(final)[0] is not None
        assert len(list((final.parent / "logs").glob("version_*"))) == 1  # one run, logged once
    assert (tmp_path / "smoke-tiny" / "report.md").is_file()
