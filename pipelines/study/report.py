"""A study's report: report.md (what ran, the stage graph, cost per stage, results per split with CIs,
a verdict for each finding), its PNG plots and metrics.jsonl, written atomically into the run folder."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from gsm_synth.atomic import write_atomic, write_jsonl
from gsm_synth.dataset import parse_ops
from pipelines.study.claims import MARGINS, Evidence, check_finding
from pipelines.study.judge import VERDICTS
from pipelines.evaluation.metrics import bootstrap_ci, metric_key, sample_ks
from pipelines.study.cache import duration
from pipelines.study.load import label, stage_seeds
from pipelines.study.schema import StudyConfig

MARGIN_NAMES = {"pass": "pass@k", "maj": "maj@k", "errors": "errors per sample", "rl": "RL log values"}
VERDICT_MARK = {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced",
                "inconclusive": "➖ inconclusive", "untestable": "⚪ untestable",
                "not significant": "➖ not significant"}  # what older runs' metrics.jsonl call inconclusive


def metric_table_keys(n: int) -> list[str]:
    return [metric_key("process", 1), metric_key("process", n), metric_key("outcome", 1), metric_key("maj", n)]


def summary_rows(cfg: StudyConfig, ev: Evidence, models: list[str]) -> list[dict]:
    """Per model x split: mean over problems (each averaged over seeds) with a 95 % bootstrap CI."""
    rows = []
    for model in models:
        for split, ops in cfg.splits.items():
            row = {"model": model, "label": label(cfg, model), "split": split, "ops": ops}
            for key in metric_table_keys(cfg.eval.n_samples) + ["errors:dependency_mismatch", "errors:missing_parameter"]:
                vals = list(ev.per_problem(model, key, split).values())
                if vals:
                    row[key] = float(np.mean(vals))
                    row[key + "_ci"] = list(bootstrap_ci(vals))
                    row["problems"] = len(vals)
            if "problems" in row:
                rows.append(row)
    return rows


def curve_rows(cfg: StudyConfig, ev: Evidence, model: str) -> list[dict]:
    """Rows shaped like pipelines.evaluation.evaluate's bin totals (for plots.plot_pass_at_k), seeds averaged."""
    rows = []
    ks = sample_ks(cfg.eval.n_samples)
    for split, ops in cfg.splits.items():
        row = {"bin": split, "context": "all", "ops": ops, "ks": ks}
        for flavour in ("outcome", "process"):
            for k in ks:
                key = metric_key(flavour, k)
                vals = list(ev.per_problem(model, key, split).values())
                if not vals:
                    break
                row[key], row[key + "_ci"] = float(np.mean(vals)), list(bootstrap_ci(vals))
        if metric_key("process", ks[-1]) in row:
            rows.append(row)
    return rows


def _fmt(row: dict, key: str) -> str:
    if key not in row:
        return "–"
    lo, hi = row[key + "_ci"]
    return f"{row[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def _smooth(ys: list[float], width: int) -> list[float]:
    out, acc = [], []
    for y in ys:
        acc.append(y)
        acc = acc[-width:]
        out.append(float(np.mean(acc)))
    return out


def draw_plots(cfg: StudyConfig, ev: Evidence, run_dir: Path) -> list[tuple[str, str]]:
    """Draw the study's plots; (title, file name) of each."""
    from pipelines.evaluation import plots

    drawn = []
    for i, spec in enumerate(cfg.plots):
        name = spec.file or f"{spec.kind}_{i}.png"
        title = spec.title or spec.kind
        models = spec.models or [m for m, node in cfg.stages.items() if node.eval]
        if spec.kind == "pass_at_k":
            rows = {label(cfg, m): curve_rows(cfg, ev, m) for m in models}
            rows = {k: v for k, v in rows.items() if v}
            if rows:
                # process-verified only: outcome pass@k at large k measures guessing (1 in modulus)
                plots.plot_pass_at_k(rows, run_dir / name, flavours=("process",))
                drawn.append((title, name))
        elif spec.kind == "rl_curves":
            panels = {}
            for key in spec.keys:
                series = {}
                for m in models:
                    steps = ev.per_step(m, key)
                    if steps:
                        xs = sorted(steps)
                        series[label(cfg, m)] = (xs, _smooth([steps[x] for x in xs], max(1, len(xs) // 20)))
                if series:
                    panels[key] = series
            if panels:
                plots.plot_lines(panels, run_dir / name, "RL step", "value (moving mean)", ylim=None)
                drawn.append((title, name))
        elif spec.kind == "by_op":
            ops = parse_ops(cfg.splits[spec.split]) if spec.split else sorted(
                {o for r in cfg.splits.values() for o in parse_ops(r)})
            series = {}
            for m in models:
                xs, ys = [], []
                for split in cfg.splits:
                    for op in ops:
                        vals = list(ev.per_problem(m, spec.metric, split, spec.context, str(op)).values())
                        if vals:
                            xs.append(op)
                            ys.append(float(np.mean(vals)))
                if xs:
                    order = np.argsort(xs)
                    series[label(cfg, m)] = ([xs[j] for j in order], [ys[j] for j in order])
            if series:
                where = f" (context {spec.context})" if spec.context else ""
                plots.plot_lines({f"{spec.metric}{where}": series}, run_dir / name, "op", spec.metric)
                drawn.append((title, name))
    return drawn


def machine_lines(machine: dict, stage_infos: list[dict]) -> list[str]:
    """The '## Machine' section: this run's machine, and any other machine a cached stage was trained on."""
    from models.machine import describe_machine, same_machine

    lines = ["## Machine", "", f"This run: {describe_machine(machine)}.", ""]
    decisions = {}
    for info in stage_infos:  # precision / compile as resolved for this machine, and why
        if info.get("resolved"):
            text = "; ".join(f"{what} {choice}" for what, choice in info["resolved"].items())
            decisions.setdefault(text, []).append(f"{info['name']} (seed {info['seed']})")
    lines += [f"- {', '.join(stages)}: {text}" for text, stages in decisions.items()] + ([""] if decisions else [])
    others = {}
    for info in stage_infos:
        m = info.get("summary", {}).get("machine")
        if m and not same_machine(m, machine):
            others.setdefault(describe_machine(m), []).append(f"{info['name']} (seed {info['seed']})")
    for text, stages in others.items():
        lines += [f"Trained on another machine (from the cache): {', '.join(stages)}: {text}.", ""]
    unknown = [f"{i['name']} (seed {i['seed']})" for i in stage_infos if "machine" not in i.get("summary", {})]
    if unknown:
        lines += [f"Cached before machines were recorded (machine unknown): {', '.join(unknown)}.", ""]
    return lines


def _speed(info: dict, ev_info: dict) -> str:
    summary = info.get("summary", {})
    train = summary.get("precision") or "?"
    if summary.get("compile"):
        train += " + compile"
    return f"{train}; eval {ev_info['precision']}" if ev_info.get("precision") else train


def write_report(cfg: StudyConfig, ev: Evidence, stage_infos: list[dict], eval_infos: dict, run_dir: Path,
                 command: str, wall_s: float, machine: dict | None = None) -> dict:
    """report.md, plots, metrics.jsonl; returns {'findings': [...], 'rows': [...]}."""
    run_dir = Path(run_dir)
    evaluated = [m for m, node in cfg.stages.items() if node.eval]
    rows = summary_rows(cfg, ev, evaluated)
    findings = [check_finding(f, ev) for f in cfg.findings]
    plots_drawn = draw_plots(cfg, ev, run_dir)
    n = cfg.eval.n_samples
    lines = [f"# Study `{cfg.study}` — preset `{cfg.preset}`", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    if cfg.design_notes:
        lines += [f"Design notes (changes made after seeing data): {' '.join(cfg.design_notes.split())}", ""]
    fewer = [f"{label(cfg, name)}: {', '.join(map(str, stage_seeds(cfg, name)))}" for name, node in cfg.stages.items()
             if node.n_seeds is not None and len(stage_seeds(cfg, name)) < len(cfg.seeds)]
    seeds = ", ".join(map(str, cfg.seeds)) + (f" (only {'; '.join(fewer)})" if fewer else "")
    shared = [label(cfg, name) for name, node in cfg.stages.items() if node.shared and len(cfg.seeds) > 1]
    seeds += f"; trained once for all seeds: {', '.join(shared)}" if shared else ""
    lines += [f"Command: `{command}`  ", f"Seeds: {seeds}; total wall time "
              f"{duration(wall_s)} (stages reused from the cache count at their original cost below).", ""]

    counts = Counter(c["verdict"] for f in findings for c in f["claims"])
    lines += [f"Eval: seed {cfg.eval.seed}, {cfg.eval.problems_per_bin} problems per split and context set, "
              f"{n} samples each at T = {cfg.eval.temperature:g}.", ""]
    if counts:
        lines += ["Claims: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]) + ". Each is judged on "
                  "paired per-problem differences (per-step for RL logs) with a 90 % BCa bootstrap CI (10,000 "
                  "resamples; a block bootstrap for RL logs), whose sides are one-sided 5 % tests; 'no change' claims "
                  "need the whole CI within a margin (" + ", ".join(f"{MARGIN_NAMES[k]} ±{v:g}" for k, v in MARGINS.items()) +
                  "); MDE is the difference detectable with 80 % power (docs/design.md §7). The results tables give 95 % "
                  "percentile-bootstrap CIs of each model's own value.", ""]
    lines += ["## Findings", ""]
    if not findings:
        lines += ["This study tests no finding.", ""]
    for f in findings:
        lines += [f"### {f['id']}: {VERDICT_MARK[f['verdict']]}", "", f"{f['text']}"
                  + (f" ({f['source']})" if f["source"] else ""), ""]
        lines += [f"- {VERDICT_MARK[c['verdict']]}: {c['text']}" for c in f["claims"]] + [""]

    t = cfg.task
    lines += ["## Task", "",
              "| split | ops |", "|---|---|"] + [f"| {s} | {o} |" for s, o in cfg.splits.items()] + [""]
    lines += [(f"Arithmetic mod {t.modulus}" if t.modulus else "Plain integer arithmetic") +
              f"; distractors {t.distractors if t.distractors is not None else 'random 0..ceil(op/2)'}"
              f"; premise shuffle {t.shuffle:g} (0 = topological order, 1 = full shuffle); symbols {t.symbols}. "
              f"Eval: {cfg.eval.problems_per_bin} eval-pool problems per split, contexts "
              f"{', '.join(cfg.eval.contexts)}, {n} samples each at T = {cfg.eval.temperature:g}. "
              "Process pass@k counts a sample only when its answer is right *and* every step verifies; "
              "outcome pass@k at large k is inflated by guessing when answers are residues mod a small prime.", ""]

    if machine is not None:
        lines += machine_lines(machine, stage_infos)
    lines += ["## Stages", "", "| stage | kind | starts from | trains on | seed | wall | FLOPs | precision | result | "
              "cache key |", "|---|---|---|---|---|---|---|---|---|---|"]
    for info in stage_infos:
        node = cfg.stages[info["name"]]
        s = info.get("summary", {})
        result = (f"loss {s['final_loss']:.3f}, {s['tokens'] / 1e6:.1f}M tokens" if "tokens" in s else
                  f"{s.get('steps', 0)} steps, final reward {s.get('final_reward', float('nan')):.3f}")
        ev_info = eval_infos.get((info["name"], info["seed"]), {})
        wall = info["wall_s"] + ev_info.get("wall_s", 0.0)
        lines.append(f"| {label(cfg, info['name'])} | {info['kind']} | {node.after or '–'} | {info.get('trains_on', '–')} | "
                     f"{info['seed']} | {duration(wall)} | {info['flops'] + ev_info.get('flops', 0.0):.2e} | "
                     f"{_speed(info, ev_info)} | {result} | `{info['key']}` |")
    lines += ["", "Wall time and FLOPs include the stage's evaluation (sampling: 2·N FLOPs per token).", ""]

    lines += ["## Results per split (mean over problems, 95 % bootstrap CI; seeds averaged per problem)", "",
              f"| model | split | ops | process pass@1 | process pass@{n} | outcome pass@1 | maj@{n} | "
              "dependency errors / sample | missing-parameter errors / sample |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['split']} | {r['ops']} | " + " | ".join(
            _fmt(r, k) for k in metric_table_keys(n) + ["errors:dependency_mismatch", "errors:missing_parameter"]) + " |")
    lines += [""]
    if plots_drawn:
        lines += ["## Plots", ""] + [f"**{title}**\n\n![{title}]({name})\n" for title, name in plots_drawn]
    write_atomic(run_dir / "report.md", "\n".join(lines) + "\n")
    records = [{"type": "stage", **{k: v for k, v in i.items() if k != "config"}} for i in stage_infos]
    records += [{"type": "result", **r} for r in rows] + [{"type": "finding", **f} for f in findings]
    write_jsonl(records, run_dir / "metrics.jsonl", default=str)
    return {"findings": findings, "rows": rows}
