"""Testing a study's findings: each claim compares numbers with a 95 % bootstrap CI and gets a verdict.

Eval metrics are per problem (pass@k, maj@k, errors per sample of one kind), averaged over seeds, and
compared *paired*: every model of a study is evaluated on the same problems, so the CI is that of the
mean per-problem difference. RL log metrics (`rl:<key>`) are per step, compared paired by step.

Verdicts: reproduced (the CI supports the claim), not reproduced (the CI contradicts it), not significant
(the CI cannot tell). `same` is reproduced when the CI of the difference contains 0.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsm_synth.dataset import parse_ops
from pipelines.evaluation.evaluate import problem_scores
from pipelines.evaluation.metrics import bootstrap_ci, sample_ks
from pipelines.study.schema import Claim, Finding

REPRODUCED, NOT_REPRODUCED, NOT_SIGNIFICANT = "reproduced", "not reproduced", "not significant"


# --------------------------------------------------------------------------------------------- inputs

def read_problems(eval_dir: Path) -> list[dict]:
    path = Path(eval_dir) / "eval_problems.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_rl_log(stage_dir: Path) -> list[dict]:
    """Per-step rows of an RL stage's CSV logs (a resumed run writes version_1, ...; later rows win)."""
    rows: dict[int, dict] = {}
    for path in sorted(Path(stage_dir, "logs").glob("version_*/metrics.csv"),
                       key=lambda p: int(p.parent.name.split("_")[1])):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if not row.get("rl_step"):
                    continue
                step = int(float(row["rl_step"]))
                values = {k: float(v) for k, v in row.items() if v not in ("", None)}
                rows[step] = {**rows.get(step, {}), **values}
    return [rows[s] for s in sorted(rows)]


def problem_metric(record: dict, metric: str, seed: int = 0) -> float:
    if metric.startswith("errors:"):
        return record["errors"].get(metric.split(":", 1)[1], 0) / record["n"]
    # every metric of a record at once, computed once: reports ask for a dozen of them per record
    key = ("_scores", seed)
    if key not in record:
        record[key] = problem_scores(record, sample_ks(record["n"]), seed)
    scores = record[key]
    if metric not in scores:
        raise ValueError(f"unknown metric '{metric}' (e.g. process_pass@1, outcome_pass@128, maj@16, "
                         f"errors:dependency_mismatch; k must be a power of 2 up to n={record['n']})")
    return scores[metric]


@dataclass
class Evidence:
    """What a study measured, for claims and tables: eval records and RL logs per (stage, seed)."""
    problems: dict[tuple[str, int], list[dict]]
    rl_logs: dict[tuple[str, int], list[dict]]
    seeds: list[int]
    splits: dict[str, str]

    def per_problem(self, stage: str, metric: str, split: str, context=None, ops=None) -> dict:
        """(bin, index) -> metric averaged over seeds, for the problems passing the filters."""
        wanted = set(parse_ops(ops)) if ops else None
        sums: dict[tuple, list[float]] = {}
        for seed in self.seeds:
            for r in self.problems.get((stage, seed), []):
                if r["bin"] != split or (context and r["context"] != context) or (wanted and r["op"] not in wanted):
                    continue
                sums.setdefault((r["bin"], r["index"]), []).append(problem_metric(r, metric))
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def per_step(self, stage: str, key: str) -> dict:
        """step -> logged value averaged over seeds."""
        sums: dict[int, list[float]] = {}
        for seed in self.seeds:
            for row in self.rl_logs.get((stage, seed), []):
                if key in row:
                    sums.setdefault(int(row["rl_step"]), []).append(row[key])
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def n_seeds(self, stage: str) -> int:
        """How many of the seeds measured this stage (a stage may run for fewer, or once for all)."""
        return sum((stage, s) in self.problems or (stage, s) in self.rl_logs for s in self.seeds)

    def values(self, stage: str, metric: str, claim: Claim) -> dict:
        if metric.startswith("rl:"):
            return self.per_step(stage, metric[3:])
        return self.per_problem(stage, metric, claim.split, claim.context, claim.ops)


# --------------------------------------------------------------------------------------------- verdicts

def check_claim(claim: Claim, ev: Evidence) -> dict:
    """{'verdict', 'text', 'mean', 'ci', ...}: one claim's numbers and what they say."""
    a = ev.values(claim.model, claim.metric, claim)
    where = _where(claim)
    if claim.kind in ("below", "above"):
        if not a:
            return {"verdict": NOT_SIGNIFICANT, "text": f"{claim.model} {claim.metric}{where}: no data"}
        vals = list(a.values())
        mean, (lo, hi) = float(np.mean(vals)), bootstrap_ci(vals)
        good, bad = (hi < claim.value, lo > claim.value) if claim.kind == "below" else (lo > claim.value, hi < claim.value)
        verdict = REPRODUCED if good else NOT_REPRODUCED if bad else NOT_SIGNIFICANT
        return {"verdict": verdict, "mean": mean, "ci": [lo, hi], "n": len(vals),
                "text": f"{claim.model} {claim.metric}{where} = {mean:.3f} [{lo:.3f}, {hi:.3f}] "
                        f"({claim.kind} {claim.value:g}?)"}
    vs = claim.vs or claim.model
    vs_metric = claim.vs_metric or claim.metric
    b = ev.values(vs, vs_metric, claim)
    shared = sorted(set(a) & set(b))
    if not shared:
        return {"verdict": NOT_SIGNIFICANT, "text": f"{claim.model} vs {vs}{where}: no shared data"}
    diffs = [a[k] - b[k] for k in shared]
    mean, (lo, hi) = float(np.mean(diffs)), bootstrap_ci(diffs)
    ma, mb = float(np.mean([a[k] for k in shared])), float(np.mean([b[k] for k in shared]))
    if claim.kind == "greater":
        verdict = REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else NOT_SIGNIFICANT
        relation = ">"
    elif claim.kind == "not_greater":
        verdict = NOT_REPRODUCED if lo > 0 else REPRODUCED
        relation = "≤"
    else:  # same
        verdict = REPRODUCED if lo <= 0 <= hi else NOT_REPRODUCED
        relation = "≈"
    left = f"{claim.model} {claim.metric}"
    right = f"{vs} {vs_metric}" if (vs != claim.model or vs_metric != claim.metric) else vs
    seeds = (ev.n_seeds(claim.model), ev.n_seeds(vs))
    seed_note = f" (seeds {seeds[0]} vs {seeds[1]})" if seeds[0] != seeds[1] else ""
    return {"verdict": verdict, "mean": mean, "ci": [lo, hi], "a": ma, "b": mb, "n": len(shared),
            "text": f"{left} {relation} {right}{where}: {ma:.3f} vs {mb:.3f}, "
                    f"difference {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]{seed_note}"}


def _where(claim: Claim) -> str:
    if claim.metric.startswith("rl:"):
        return " (per RL step)"
    parts = [f"on {claim.split}"] + ([f"context {claim.context}"] if claim.context else []) + \
        ([f"op {claim.ops}"] if claim.ops else [])
    return " " + ", ".join(parts)


def check_finding(finding: Finding, ev: Evidence) -> dict:
    results = [check_claim(c, ev) for c in finding.claims]
    verdicts = [r["verdict"] for r in results]
    if verdicts and all(v == REPRODUCED for v in verdicts):
        verdict = REPRODUCED
    elif NOT_REPRODUCED in verdicts:
        verdict = NOT_REPRODUCED
    else:
        verdict = NOT_SIGNIFICANT
    return {"id": finding.id, "text": finding.text, "source": finding.source, "verdict": verdict,
            "claims": results}
