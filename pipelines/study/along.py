"""pass@k along RL: the report section `## pass@k along RL`, its figure rl_pass_at_k.png and its
metrics.jsonl rows. Each followed RL stage is a curve of points (the starting model at step 0, each
snapshot, the final model), every point evaluated on the same problems with along_rl's spec, so a curve
shows sharpening (pass@1 rises, pass@k stays) apart from widening (pass@k rises)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.evaluation.metrics import metric_key
from pipelines.study.claims import Evidence
from pipelines.study.judge import bca_ci, judge
from pipelines.study.load import along_specs, along_stages, label
from pipelines.study.schema import Claim, StudyConfig

FIGURE = "rl_pass_at_k.png"
N_BOOT = 2_000  # per point: a band to read a curve by, not a verdict (claims use the judge's 10,000)


def along_metrics(cfg: StudyConfig) -> list[str]:
    return [metric_key(cfg.along_rl.metric, 1), metric_key(cfg.along_rl.metric, cfg.k)]


def _values(ev: Evidence, model: str, metric: str, split: str) -> np.ndarray | None:
    """(bases, problems) values of one point (one row when bases are pooled); None without data."""
    rows = ev.rows(model, metric, Claim(split=split))
    keys = sorted(set.intersection(*(set(r) for r in rows)))
    if not keys:
        return None
    return np.array([[r[k] for k in keys] for r in rows])


def along_rows(cfg: StudyConfig, ev: Evidence, records: list[dict], which: str) -> list[dict]:
    """One row per (stage, point), in RL order within each stage (samples never decrease down a stage's
    rows): samples and FLOPs of RL so far (means over bases and seeds), and per split and metric the mean
    with a 95 % BCa CI over bases and problems, and the change from the stage's first point, paired on the
    same bases and problems (`<split>:<metric>:change`), with its own CI: the levels' CIs hold how far
    bases lie apart, which RL does not change, so only the paired change shows what RL did."""
    rows = []
    for stage in along_stages(cfg):
        mine = [r for r in records if r["stage"] == stage and r["eval"] == which]
        steps = sorted({r["step"] for r in mine})
        start = {(split, metric): _values(ev, f"{stage}@{steps[0]}", metric, split)
                 for split in cfg.splits for metric in along_metrics(cfg)} if steps else {}
        for step in steps:
            at = [r for r in mine if r["step"] == step]
            row = {"stage": stage, "label": label(cfg, stage), "step": step, "eval": which,
                   "samples": float(np.mean([r["samples"] for r in at])),
                   "flops": float(np.mean([r["flops"] for r in at]))}
            for split in cfg.splits:
                for metric in along_metrics(cfg):
                    x = _values(ev, f"{stage}@{step}", metric, split)
                    if x is None:
                        continue
                    key = f"{split}:{metric}"
                    lo, hi, _ = bca_ci(x, level=0.95, n_boot=N_BOOT)
                    row[key], row[f"{key}_ci"] = float(x.mean()), [lo, hi]
                    x0 = start[split, metric]
                    if x0 is not None and x0.shape == x.shape:  # paired on the same bases and problems
                        lo, hi, _ = bca_ci(x - x0, level=0.95, n_boot=N_BOOT)
                        row[f"{key}:change"], row[f"{key}:change_ci"] = float((x - x0).mean()), [lo, hi]
            rows.append(row)
    return rows


def change(cfg: StudyConfig, ev: Evidence, stage: str, first: int, last: int, split: str, metric: str):
    """The paired change of a metric from one point to another (the judge's 90 % CI), or None."""
    a, b = _values(ev, f"{stage}@{last}", metric, split), _values(ev, f"{stage}@{first}", metric, split)
    if a is None or b is None or a.shape != b.shape:
        return None
    return judge("greater", a, b)


def ci_cell(row: dict, key: str) -> str:
    """A table cell: the value and its CI (row[key + '_ci']), or – where the row has none."""
    if key not in row:
        return "–"
    lo, hi = row[key + "_ci"]
    return f"{row[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def table_lines(rows: list[dict], splits: list[str], metrics: list[str]) -> list[str]:
    """The along-RL table: a row per point, a column per split and metric (report and docs/results.md)."""
    lines = ["| RL stage | step | samples | RL FLOPs | " + " | ".join(f"{s} {m}" for s in splits for m in metrics) + " |",
             "|---|---|---|---|" + "---|" * (len(splits) * len(metrics))]
    for r in rows:
        lines.append(f"| {r['label']} | {r['step']} | {r['samples']:.0f} | {r['flops']:.2e} | " +
                     " | ".join(ci_cell(r, f"{s}:{m}") for s in splits for m in metrics) + " |")
    return lines


def along_lines(cfg: StudyConfig, ev: Evidence, rows: list[dict], records: list[dict], which: str) -> list[str]:
    spec = along_specs(cfg)[which]
    metrics = along_metrics(cfg)
    fresh = [r for r in records if not r["cached"]]
    lines = ["## pass@k along RL", "",
             f"Each followed RL stage's policy evaluated at RL steps {', '.join(str(s) for s in sorted({r['step'] for r in rows}))} "
             f"(step 0: the model RL starts from; the last: the final model) on the {which} set, "
             f"{spec.problems_per_bin} problems per split, {spec.n_samples} samples each at T = {spec.temperature:g}"
             + ("" if (spec.problems_per_bin, spec.n_samples) == (cfg.eval.problems_per_bin, cfg.eval.n_samples) else
                f" (fewer than the final evaluation's {cfg.eval.problems_per_bin} × {cfg.eval.n_samples}: these "
                "numbers are comparable along a curve, not with the results table)") +
             f". Means over bases, seeds and problems with 95 % BCa CIs over bases and problems ({N_BOOT:,} resamples). "
             f"Samples and FLOPs are RL's own. {len(records)} evaluations, {len(fresh)} run now "
             f"({sum(r['wall_s'] for r in fresh) / 60:.1f} min).", "",
             *table_lines(rows, list(cfg.splits), metrics)]
    lines += ["", f"Change from step 0 to the last point, paired over problems (90 % CI as the claims use): pass@1 up "
              f"with pass@{cfg.k} flat is sharpening, pass@{cfg.k} up is widening.", "",
              "| RL stage | steps | split | " + " | ".join(f"Δ {m}" for m in metrics) + " |",
              "|---|---|---|" + "---|" * len(metrics)]
    for stage in along_stages(cfg):
        steps = [r["step"] for r in rows if r["stage"] == stage]
        for split in cfg.splits if len(steps) > 1 else ():
            found = [change(cfg, ev, stage, steps[0], steps[-1], split, m) for m in metrics]
            if any(found):
                lines.append(f"| {label(cfg, stage)} | {steps[0]} → {steps[-1]} | {split} | " + " | ".join(
                    "–" if j is None else f"{j.diff:+.3f} [{j.ci[0]:+.3f}, {j.ci[1]:+.3f}]" for j in found) + " |")
    return lines + [""]


def draw_along(cfg: StudyConfig, rows: list[dict], path: Path) -> Path | None:
    """Panels: one per split and metric (metrics as rows of the grid); a line per RL stage against samples,
    the paired change from its first point with a 95 % band."""
    from pipelines.evaluation import plots

    panels = {}
    for metric in along_metrics(cfg):
        for split, ops in cfg.splits.items():
            key, series = f"{split}:{metric}:change", {}
            for stage in along_stages(cfg):
                mine = [r for r in rows if r["stage"] == stage and key in r]
                if mine:
                    series[label(cfg, stage)] = ([r["samples"] / 1000 for r in mine], [r[key] for r in mine],
                                                 [r[key + "_ci"][0] for r in mine], [r[key + "_ci"][1] for r in mine])
            if series:
                panels[f"{split} (op {ops}): Δ {metric}"] = series
    if not panels:
        return None
    return plots.plot_lines(panels, path, "RL samples, thousands (prompts × group size)", "change from RL step 0",
                            ylim=None, columns=len(cfg.splits))
