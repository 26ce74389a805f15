"""Testing a study's findings: each claim's numbers go to the judge (pipelines/study/judge.py).

Eval metrics are per problem (pass@k, maj@k, errors per sample of one kind), averaged over seeds, and
compared *paired*: every model of a study is evaluated on the same problems, so the CI is that of the
mean per-problem difference. RL log metrics (`rl:<key>`) are per step, compared paired by step with a
block bootstrap. `same` and `not_greater` claims use an equivalence margin: the claim's own `margin`, or
the default for its metric (MARGINS).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gsm_synth.dataset import parse_ops
from pipelines.evaluation.evaluate import problem_scores
from pipelines.evaluation.metrics import sample_ks
from pipelines.study.judge import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, UNTESTABLE, judge
from pipelines.study.schema import RL_RATES, Claim, Finding

# Equivalence margins by metric family, declared before any run: a "no change" claim is reproduced only
# when the whole 90 % CI of the difference lies within ±margin.
MARGINS = {"pass": 0.05, "maj": 0.05, "errors": 0.05, "rl": 0.02}


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
    """What a study measured, for claims and tables: eval records and RL logs per (stage, base, seed).
    bases_rule: how claims combine bases (schema.BASES_RULES)."""
    problems: dict[tuple[str, int, int], list[dict]]
    rl_logs: dict[tuple[str, int, int], list[dict]]
    seeds: list[int]
    splits: dict[str, str]
    bases: int = 1
    bases_rule: str = "crossed"

    def _bases(self, base) -> list[int]:
        return list(range(self.bases)) if base is None else [base]

    def per_problem(self, stage: str, metric: str, split: str, context=None, ops=None, base=None) -> dict:
        """(bin, index) -> metric averaged over seeds (and over bases unless one is named), for the problems
        passing the filters."""
        wanted = set(parse_ops(ops)) if ops else None
        sums: dict[tuple, list[float]] = {}
        for b in self._bases(base):
            for seed in self.seeds:
                for r in self.problems.get((stage, b, seed), []):
                    if r["bin"] != split or (context and r["context"] != context) or (wanted and r["op"] not in wanted):
                        continue
                    sums.setdefault((r["bin"], r["index"]), []).append(problem_metric(r, metric))
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def per_step(self, stage: str, key: str, base=None) -> dict:
        """step -> logged value averaged over seeds (and over bases unless one is named)."""
        sums: dict[int, list[float]] = {}
        for b in self._bases(base):
            for seed in self.seeds:
                for row in self.rl_logs.get((stage, b, seed), []):
                    if key in row and math.isfinite(row[key]):  # a step that could not measure it logs nan
                        sums.setdefault(int(row["rl_step"]), []).append(row[key])
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def n_seeds(self, stage: str) -> int:
        """How many of the seeds measured this stage on base 0 (a stage may run for fewer, or once for all)."""
        return sum((stage, 0, s) in self.problems or (stage, 0, s) in self.rl_logs for s in self.seeds)

    def values(self, stage: str, metric: str, claim: Claim, base=None) -> dict:
        if metric.startswith("rl:"):
            return self.per_step(stage, metric[3:], base)
        return self.per_problem(stage, metric, claim.split, claim.context, claim.ops, base)

    def rows(self, stage: str, metric: str, claim: Claim) -> list[dict]:
        """One dict per base (or a single base-averaged one under the pooled rule)."""
        if self.bases == 1 or self.bases_rule == "pooled":
            return [self.values(stage, metric, claim)]
        return [self.values(stage, metric, claim, b) for b in range(self.bases)]


# --------------------------------------------------------------------------------------------- verdicts

def family(metric: str) -> str:
    return "rl" if metric.startswith("rl:") else "errors" if metric.startswith("errors:") else \
        "maj" if metric.startswith("maj@") else "pass"


def bounds(metric: str) -> tuple[float, float] | None:
    if metric.startswith("errors:") or (metric.startswith("rl:") and metric[3:] not in RL_RATES):
        return None
    return (0.0, 1.0)


def check_claim(claim: Claim, ev: Evidence) -> dict:
    """{'verdict', 'text', 'mean', 'ci', 'mde', 'margin', 'per_base', ...}: one claim's numbers and what they
    say. With several bases, the verdict combines them (ev.bases_rule) and per_base holds each base's own."""
    series = claim.metric.startswith("rl:")
    margin = claim.margin if claim.margin is not None else MARGINS[family(claim.metric)]
    where = _where(claim)
    single = claim.kind in ("below", "above")
    vs = claim.vs or claim.model
    vs_metric = claim.vs_metric or claim.metric
    a_rows = ev.rows(claim.model, claim.metric, claim)
    b_rows = [] if single else ev.rows(vs, vs_metric, claim)
    keys = set(a_rows[0])
    for row in a_rows[1:] + b_rows:
        keys &= set(row)
    keys = sorted(keys)
    if not keys:
        who = f"{claim.model} {claim.metric}" if single else f"{claim.model} vs {vs}"
        return {"verdict": UNTESTABLE, "text": f"{who}{where}: no {'data' if single else 'shared data'}", "per_base": []}
    a = [[row[k] for k in keys] for row in a_rows]
    b = None if single else [[row[k] for k in keys] for row in b_rows]

    def verdict_on(a_, b_):
        return judge(claim.kind, a_, b_, value=claim.value if single else None,
                     margin=margin if claim.kind in ("same", "not_greater") else None,
                     bounds=bounds(claim.metric), series=series)

    j = verdict_on(a, b)
    per_base = []
    if len(a) > 1:
        for i in range(len(a)):
            jb = verdict_on([a[i]], None if single else [b[i]])
            shift = claim.value if single else 0.0
            per_base.append({"base": i, "verdict": jb.verdict, "diff": jb.diff + shift,
                             "ci": [jb.ci[0] + shift, jb.ci[1] + shift]})
    spread = float(np.std([p["diff"] for p in per_base], ddof=1)) if len(per_base) > 1 else None
    levels = f", {len(a)} bases × {j.n} {'steps' if series else 'problems'}" if len(a) > 1 else ""
    out = {"verdict": j.verdict, "n": j.n, "mde": j.mde, "margin": j.margin, "per_base": per_base,
           "between_base_sd": spread}
    if single:
        lo, hi, mean = j.ci[0] + claim.value, j.ci[1] + claim.value, j.diff + claim.value
        return {**out, "mean": mean, "ci": [lo, hi],
                "text": f"{claim.model} {claim.metric}{where} = {mean:.3f} [{lo:.3f}, {hi:.3f}] "
                        f"({claim.kind} {claim.value:g}?), MDE {j.mde:.3f}{levels}" + _why(j)}
    ma, mb = float(np.mean(a)), float(np.mean(b))
    relation = {"greater": ">", "not_greater": "≤", "same": "≈"}[claim.kind]
    left = f"{claim.model} {claim.metric}"
    right = f"{vs} {vs_metric}" if (vs != claim.model or vs_metric != claim.metric) else vs
    seeds = (ev.n_seeds(claim.model), ev.n_seeds(vs))
    seed_note = f" (seeds {seeds[0]} vs {seeds[1]})" if seeds[0] != seeds[1] else ""
    within = f", margin ±{j.margin:g}" if j.margin is not None else ""
    return {**out, "mean": j.diff, "ci": list(j.ci), "a": ma, "b": mb,
            "text": f"{left} {relation} {right}{where}: {ma:.3f} vs {mb:.3f}, difference {j.diff:+.3f} "
                    f"[{j.ci[0]:+.3f}, {j.ci[1]:+.3f}]{within}, MDE {j.mde:.3f}{levels}{seed_note}" + _why(j)}


def _why(j) -> str:
    return f"; untestable: {j.why}" if j.why else ""


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
    elif verdicts and all(v == UNTESTABLE for v in verdicts):
        verdict = UNTESTABLE
    else:
        verdict = INCONCLUSIVE
    return {"id": finding.id, "text": finding.text, "source": finding.source, "verdict": verdict,
            "claims": results}
