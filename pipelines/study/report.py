"""A study's report: report.md (what ran, the stage graph, cost per stage, results per split with CIs,
a verdict for each finding), its PNG plots and metrics.jsonl, written atomically into the run folder."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gsm_synth.atomic import write_atomic, write_jsonl
from gsm_synth.dataset import parse_ops
from pipelines.study.along import FIGURE as ALONG_FIGURE, along_lines, along_rows, ci_cell, draw_along
from pipelines.study.claims import MARGINS, Evidence, check_finding
from pipelines.study.judge import VERDICTS
from pipelines.evaluation.metrics import bootstrap_ci, metric_key, sample_ks
from pipelines.study.cache import duration
from pipelines.study.load import CONFIRMATION, DESIGN, eval_spec, headline, label, stage_seeds
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
            for key in metric_table_keys(cfg.k) + ["errors:dependency_mismatch", "errors:missing_parameter"]:
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


def across_bases(cfg: StudyConfig, ev: Evidence, findings: list[dict]) -> list[str]:
    """'## Across bases': each claim's difference and verdict per base, the between-base SD, the combined
    verdict; and each pretrained base's pass@1 / pass@k per split."""
    heads = " | ".join(f"base {b}" for b in range(cfg.bases))
    lines = ["## Across bases", "", f"Claims combine the {cfg.bases} bases by the rule `{cfg.bases_rule}` "
             f"(declared in the study before it ran): {BASES_RULE_TEXT[cfg.bases_rule]}", "",
             f"| finding | claim | {heads} | between-base SD | combined |", "|---|---|" + "---|" * cfg.bases + "---|---|"]
    for f in findings:
        for i, c in enumerate(f["claims"]):
            cells = [f"{p['diff']:+.3f} {VERDICT_MARK[p['verdict']].split()[0]}" for p in c.get("per_base", [])]
            cells += ["–"] * (cfg.bases - len(cells))
            sd = c.get("between_base_sd")
            lines.append(f"| {f['id']} | {i + 1} | " + " | ".join(cells) + f" | {'–' if sd is None else f'{sd:.3f}'} | "
                         f"{VERDICT_MARK[c['verdict']]} |")
    lines += ["", "Per base: the difference of each claim (the value, for below / above claims) on that base alone.", ""]
    pretrained = [m for m, node in cfg.stages.items() if node.kind == "pretrain" and node.eval]
    if pretrained:
        lines += [f"| model | base | " + " | ".join(f"{s} pass@1 | {s} pass@{cfg.k}" for s in cfg.splits) + " |",
                  "|---|---|" + "---|---|" * len(cfg.splits)]
        for m in pretrained:
            for b in range(cfg.bases):
                cells = []
                for split in cfg.splits:
                    for key in (metric_key("process", 1), metric_key("process", cfg.k)):
                        vals = list(ev.per_problem(m, key, split, base=b).values())
                        cells.append(f"{np.mean(vals):.3f}" if vals else "–")
                lines.append(f"| {label(cfg, m)} | {b} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


BASES_RULE_TEXT = {
    "crossed": "the CI resamples bases and problems independently (every base is scored on the same problems), "
               "so it widens when bases disagree; the MDE is read from that bootstrap's standard error.",
    "pooled": "per-problem values are averaged over bases and only problems are resampled, so the CI ignores "
              "the base draw (state why when a study uses it).",
}


PAPER_PROTOCOL = "outcome reward, KL 1e-3 to the start, flat groups kept in the token mean, eval at T = 0.7, mid-training 20 % ID + 80 % edge"


def protocol_line(cfg: StudyConfig) -> str:
    """One line: the CMU study's protocol, and every section default of this study that departs from it
    (a stage's own override, e.g. a reward variant, is the study's design and shows in its stage table)."""
    out = []
    if cfg.rl.reward.kind != "outcome":
        out.append(f"RL reward {cfg.rl.reward.kind} (paper §3/§5: outcome)")
    if cfg.rl.kl_coef != 1e-3:
        out.append(f"KL coefficient {cfg.rl.kl_coef:g} (paper: 1e-3)")
    if cfg.rl.skip_zero_variance:
        out.append("groups with equal rewards dropped from the loss and its token count (paper/verl: kept)")
    if cfg.eval.temperature != 0.7:
        out.append(f"eval at T = {cfg.eval.temperature:g} (paper: 0.7)")
    id_ops = set(parse_ops(next(iter(cfg.splits.values())))) if cfg.splits else set()
    mid_ops = {o for spec in cfg.midtrain.mixture.ops for o in parse_ops(spec)}
    if any(node.kind == "midtrain" for node in cfg.stages.values()) and not (mid_ops & id_ops):
        out.append("mid-training without ID data (paper: 20 % ID + 80 % edge)")
    if not out:
        return f"Protocol: the CMU study's ({PAPER_PROTOCOL})."
    return "Protocol departures from the CMU study's (" + PAPER_PROTOCOL + "): " + "; ".join(out) + "."


def base_source_lines(cfg: StudyConfig, stage_infos: list[dict], design: Evidence | None) -> list[str]:
    """Where each pretrained base came from: a shipped base (who trained it, how) or trained here, and
    then how far it lands from the shipped base of the same recipe, on the same eval set."""
    from pipelines.study import shipped

    lines = []
    known = shipped.records()
    for info in stage_infos:
        if info["kind"] != "pretrain":
            continue
        who = f"{info['name']} (base {info.get('base', 0)})"
        if info.get("shipped"):
            sh = info["shipped"]
            lines.append(f"- {who}: shipped base `{sh['name']}`, trained by {sh['trained_by']} (`{sh['command']}`).")
            continue
        folder, twin = next(((f, r) for f, r in known if info.get("recipe") and r.get("key") == info["recipe"]),
                            (None, None))
        line = f"- {who}: trained from scratch here (key `{info['key']}`)"
        if twin is None:
            lines.append(line + "; no shipped base has its recipe.")
            continue
        same_set = {k: v for k, v in twin["eval"]["spec"].items() if k != "precision"} == \
            {k: v for k, v in asdict(eval_spec(cfg)).items() if k != "precision"}
        if design is None or not same_set or not cfg.stages[info["name"]].eval:
            lines.append(line + f"; it is not bit-identical to the shipped base `{folder.name}` of the same recipe "
                         "(torch.compile, precision; docs/experiments.md), compare their eval tables.")
            continue
        diffs = []
        for row in twin["eval"]["rows"]:
            vals = list(design.per_problem(info["name"], "process_pass@1", row["split"], base=info.get("base", 0)).values())
            if vals and "process_pass@1" in row:
                diffs.append(f"{row['split']} pass@1 {np.mean(vals):.3f} vs {row['process_pass@1']:.3f}")
        lines.append(line + f"; against the shipped base `{folder.name}` of the same recipe (a retrain is not bit-identical: "
                     "torch.compile, precision): " + ", ".join(diffs) + " (here vs shipped, design eval set).")
    return ["Where the bases come from:", ""] + lines + [""] if lines else []


def finding_lines(f: dict, design: dict | None) -> list[str]:
    """One finding: its headline verdict (and the design set's beside it), then each claim."""
    beside = f" (design set: {VERDICT_MARK[design['verdict']]})" if design else ""
    lines = [f"### {f['id']}: {VERDICT_MARK[f['verdict']]}{beside}", "", f"{f['text']}"
             + (f" ({f['source']})" if f["source"] else ""), ""]
    for i, c in enumerate(f["claims"]):
        lines.append(f"- {VERDICT_MARK[c['verdict']]}: {c['text']}")
        if design:
            d = design["claims"][i]
            lines.append(f"  - design set: {VERDICT_MARK[d['verdict']]}: {d['text']}")
    return lines + [""]


def write_report(cfg: StudyConfig, evidence: dict, stage_infos: list[dict], eval_infos: dict, run_dir: Path,
                 command: str, wall_s: float, machine: dict | None = None, along: list[dict] = ()) -> dict:
    """report.md, plots, metrics.jsonl; returns {'findings': [...], 'rows': [...], 'along': [...]}. evidence
    and eval_infos map each eval set ('design', 'confirmation') to its Evidence and to its evaluations'
    records; `along`: one record per point along RL and eval set (pipelines/study/runner.py)."""
    run_dir = Path(run_dir)
    lead = headline(evidence)
    ev = evidence[lead]
    evaluated = [m for m, node in cfg.stages.items() if node.eval]
    rows = summary_rows(cfg, ev, evaluated)
    judged = {which: [check_finding(f, e) for f in cfg.findings] for which, e in evidence.items()}
    findings = judged[lead]
    design = judged[DESIGN] if lead != DESIGN else [None] * len(findings)
    plots_drawn = draw_plots(cfg, ev, run_dir)
    along_table = along_rows(cfg, ev, list(along), lead) if along else []
    if along_table and draw_along(cfg, along_table, run_dir / ALONG_FIGURE):
        plots_drawn.append(("change in pass@1 and pass@k along RL from its start, paired on bases and problems, "
                            "against RL samples (95 % CI bands)", ALONG_FIGURE))
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
    bases = f"{cfg.bases} (pretraining seeds 0–{cfg.bases - 1}; every later stage runs on each)" if cfg.bases > 1 else \
        "1 (pretraining seed 0)"
    lines += [f"Command: `{command}`  ", f"Bases: {bases}; RL / mid-training seeds: {seeds}; total wall time "
              f"{duration(wall_s)} (stages reused from the cache count at their original cost below).", ""]
    lines += base_source_lines(cfg, stage_infos, evidence.get(DESIGN))

    counts = Counter(c["verdict"] for f in findings for c in f["claims"])
    sets = (f"headline verdicts on the held-out confirmation set (eval seed {cfg.confirmation_seed}, no problem in "
            f"common with the design set), the design set's (eval seed {cfg.eval.seed}) beside them"
            if lead == CONFIRMATION else f"one eval set (seed {cfg.eval.seed}); this study declares no held-out "
            "confirmation set (confirmation_seed), so its verdicts are those of the set its design was chosen on")
    lines += [f"Eval: {sets}; {cfg.eval.problems_per_bin} problems per split, {n} samples each at "
              f"T = {cfg.eval.temperature:g}.", ""]
    if counts:
        lines += ["Claims: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]) + ". Each is judged on "
                  "paired per-problem differences (per-step for RL logs) with a 90 % BCa bootstrap CI (10,000 "
                  "resamples; a block bootstrap for RL logs; bases resampled too when there are several), whose "
                  "sides are one-sided 5 % tests; 'no change' claims need the whole CI within a margin (" +
                  ", ".join(f"{MARGIN_NAMES[k]} ±{v:g}" for k, v in MARGINS.items()) + "); MDE is the difference "
                  "detectable with 80 % power (docs/design.md §7). The results tables give 95 % percentile-bootstrap "
                  "CIs of each model's own value.", ""]
    lines += ["## Findings", ""]
    if not findings:
        lines += ["This study tests no finding.", ""]
    for f, d in zip(findings, design):
        lines += finding_lines(f, d)
    if cfg.bases > 1:
        lines += across_bases(cfg, ev, findings)

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
    lines += [protocol_line(cfg), ""]

    if machine is not None:
        lines += machine_lines(machine, stage_infos)
    lines += ["## Stages", "", "| stage | kind | starts from | trains on | base | seed | wall | FLOPs | precision | result | "
              "cache key |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for info in stage_infos:
        node = cfg.stages[info["name"]]
        s = info.get("summary", {})
        result = (f"loss {s['final_loss']:.3f}, {s['tokens'] / 1e6:.1f}M tokens" if "tokens" in s else
                  f"{s.get('steps', 0)} steps, final reward {s.get('final_reward', float('nan')):.3f}")
        where = (info["name"], info.get("base", 0), info["seed"])
        evals = [infos[where] for infos in eval_infos.values() if where in infos]
        ev_info = evals[0] if evals else {}
        wall = info["wall_s"] + sum(e.get("wall_s", 0.0) for e in evals)
        flops = info["flops"] + sum(e.get("flops", 0.0) for e in evals)
        lines.append(f"| {label(cfg, info['name'])} | {info['kind']} | {node.after or '–'} | {info.get('trains_on', '–')} | "
                     f"{info.get('base', 0)} | {info['seed']} | {duration(wall)} | {flops:.2e} | "
                     f"{_speed(info, ev_info)} | {result} | `{info['key']}` |")
    lines += ["", "Wall time and FLOPs include the stage's evaluations on every eval set (sampling: 2·N FLOPs per "
              "token); a shipped base counts at the cost its record states.", ""]

    lines += ["## Results per split (mean over problems, 95 % bootstrap CI; seeds averaged per problem)", "",
              f"| model | split | ops | process pass@1 | process pass@{cfg.k} | outcome pass@1 | maj@{cfg.k} | "
              "dependency errors / sample | missing-parameter errors / sample |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['split']} | {r['ops']} | " + " | ".join(
            ci_cell(r, k) for k in metric_table_keys(cfg.k) + ["errors:dependency_mismatch", "errors:missing_parameter"]) + " |")
    lines += [""]
    if along_table:
        lines += along_lines(cfg, ev, along_table, [r for r in along if r["eval"] == lead], lead)
    if plots_drawn:
        lines += ["## Plots", ""] + [f"**{title}**\n\n![{title}]({name})\n" for title, name in plots_drawn]
    write_atomic(run_dir / "report.md", "\n".join(lines) + "\n")
    records = [{"type": "stage", **{k: v for k, v in i.items() if k != "config"}} for i in stage_infos]
    records += [{"type": "result", **r} for r in rows]
    records += [{"type": "finding", "eval": which, "lead": which == lead, **f} for which, fs in judged.items() for f in fs]
    records += [{"type": "along_rl", **r} for r in along_table]
    write_jsonl(records, run_dir / "metrics.jsonl", default=str)
    return {"findings": findings, "rows": rows, "along": along_table}
