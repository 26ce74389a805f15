"""docs/results.md from finished study runs: each run's findings with their verdicts and numbers, the
models' pass@k per split, and the machine it ran on — read from the run folders the runner wrote
(metrics.jsonl, config.yaml, report.md), never typed by hand."""
from __future__ import annotations

import json
import re
from pathlib import Path

from pipelines.common.config import ConfigError, read_yaml
from pipelines.study.along import table_lines
from pipelines.study.report import VERDICT_MARK

HEADER = ("# Results\n\nWritten by `python -m pipelines.results` from the run folders named below; each study's "
          "full report (task, stages, plots) is `<run folder>/report.md`. A verdict is the runner's, by the "
          "rules in docs/design.md §7. Numbers are process-verified unless marked otherwise.\n")


def run_folders(roots: list[Path]) -> list[Path]:
    """Every finished run (a folder with metrics.jsonl and report.md) under the roots, by study and preset."""
    found = {p.parent for root in roots for p in Path(root).glob("*/metrics.jsonl") if (p.parent / "report.md").is_file()}
    return sorted(found, key=lambda p: (p.name, str(p)))  # the same study under two roots: a fixed order


def read_run(folder: Path) -> dict:
    try:
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise ConfigError(f"{folder / 'metrics.jsonl'} is unreadable ({type(e).__name__}); run the study again") from None
    records = [r for r in records if isinstance(r, dict) and "type" in r]
    config = read_yaml(folder / "config.yaml", "run config")
    report = (folder / "report.md").read_text()
    command = re.search(r"^Command: `(.+?)`", report, re.M)
    return {"folder": folder, "config": config, "command": command.group(1) if command else "?",
            "stages": [r for r in records if r["type"] == "stage"],
            "results": [r for r in records if r["type"] == "result"],
            "along": [r for r in records if r["type"] == "along_rl"],
            "findings": lead_findings([r for r in records if r["type"] == "finding"]),
            "design": {f["id"]: f for f in records if f["type"] == "finding" and f.get("eval") == "design"}}


def lead_findings(findings: list[dict]) -> list[dict]:
    """The headline verdicts: the confirmation set's where a run has one (runs before held-out sets: all)."""
    led = [f for f in findings if f.get("lead")]
    return led if led else [f for f in findings if f.get("eval", "design") == "design"]


def machines(stages: list[dict]) -> list[str]:
    from models.machine import describe_machine

    found = [s.get("summary", {}).get("machine") or s.get("machine") for s in stages]  # stages record it in their summary
    return sorted({describe_machine(m) for m in found if m})


def run_section(run: dict) -> list[str]:
    cfg = run["config"]
    n = cfg.get("k") or cfg.get("eval", {}).get("n_samples")  # runs before `k` reported pass@n
    lines = [f"## `{cfg.get('study')}`{seed_note(run)} — preset `{cfg.get('preset')}`", ""]
    if cfg.get("description"):
        lines += [str(cfg["description"]).strip(), ""]
    trained = sum(float(st.get("wall_s", 0.0)) for st in run["stages"]) / 60
    lines += [f"Run folder `{run['folder'].name}`, command `{run['command']}`; its stages took {trained:.1f} min "
              "to train in all (each at its original cost, cached or not; evaluation not included)."]
    lines += [f"Machine: {m}." for m in machines(run["stages"])]
    rl, ev = cfg.get("rl", {}), cfg.get("eval", {})
    lines += [f"Protocol: RL reward {rl.get('reward', {}).get('kind', '?')} (stages may set their own), KL "
              f"{rl.get('kl_coef', 0):g}, flat groups {'dropped' if rl.get('skip_zero_variance') else 'kept'}, eval at "
              f"T = {ev.get('temperature', 1.0):g}; {cfg.get('bases', 1)} base(s)."]
    lines += [""]
    held_out = any(f.get("eval") == "confirmation" for f in run["findings"])
    sets = (f"Verdicts on the held-out confirmation set (eval seed {cfg.get('confirmation_seed')}); the design set's "
            f"(eval seed {cfg.get('eval', {}).get('seed', 0)}) beside them." if held_out else
            f"Verdicts on one eval set (eval seed {cfg.get('eval', {}).get('seed', 0)}); this run has no held-out "
            "confirmation set.")
    lines += [sets, "", "| finding | verdict | design set | claims (difference [90 % CI], margin δ, MDE) |",
              "|---|---|---|---|"]
    for f in run["findings"]:
        design = run["design"].get(f["id"]) if held_out else None
        claims = "<br>".join(f"{VERDICT_MARK.get(c['verdict'], c['verdict'])}: {c['text']}" for c in f["claims"])
        lines.append(f"| **{f['id']}** {f['text']} | {VERDICT_MARK.get(f['verdict'], f['verdict'])} | "
                     f"{VERDICT_MARK.get(design['verdict'], design['verdict']) if design else '–'} | {claims} |")
    if not run["findings"]:
        lines.append("| – | – | – | this study tests no finding |")
    lines += ["", f"| model | split | ops | pass@1 | pass@{n} | outcome pass@1 |", "|---|---|---|---|---|---|"]
    for r in run["results"]:
        cells = [_cell(r, "process_pass@1"), _cell(r, f"process_pass@{n}"), _cell(r, "outcome_pass@1")]
        lines.append(f"| {r['label']} | {r['split']} | {r['ops']} | " + " | ".join(cells) + " |")
    if run["along"]:
        splits = list(dict.fromkeys(r["split"] for r in run["results"]))
        metrics = [m for m in (f"process_pass@1", f"process_pass@{n}", "outcome_pass@1", f"outcome_pass@{n}")
                   if any(f"{s}:{m}" in r for r in run["along"] for s in splits)]
        lines += ["", f"pass@k along RL ({run['along'][0]['eval']} set; step 0 is the starting model):", "",
                  *table_lines(run["along"], splits, metrics)]
    return lines + [""]


def _cell(row: dict, key: str) -> str:
    if key not in row:
        return "–"
    lo, hi = row.get(key + "_ci", (None, None))
    return f"{row[key]:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def seed_note(run: dict) -> str:
    """' (eval seed 1)' for a run on another eval set than the default's (e.g. TTRL's confirmation run)."""
    seed = run["config"].get("eval", {}).get("seed", 0)
    return f" (eval seed {seed})" if seed else ""


def rewards(run: dict) -> str:
    """The RL rewards a run's stages trained with (a stage may set its own), or the study's default."""
    kinds = sorted({st["summary"]["reward_kind"] for st in run["stages"] if st.get("summary", {}).get("reward_kind")})
    return ", ".join(kinds) or str(run["config"].get("rl", {}).get("reward", {}).get("kind", "?"))


def verdict_line(run: dict) -> str:
    """`F1a ✅, F1b ➖, ...`: one line per study for the README's table."""
    return ", ".join(f"{f['id']} {VERDICT_MARK.get(f['verdict'], f['verdict']).split()[0]}" for f in run["findings"])


def write_results(roots: list[Path], path: Path) -> list[dict]:
    from gsm_synth.atomic import write_atomic

    runs = [read_run(folder) for folder in run_folders(roots)]
    lines = [HEADER, "| study | preset | RL reward | verdicts |", "|---|---|---|---|"]
    lines += [f"| `{r['config'].get('study')}`{seed_note(r)} | {r['config'].get('preset')} | {rewards(r)} | "
              f"{verdict_line(r) or '–'} |" for r in runs]
    lines.append("")
    for run in runs:
        lines += run_section(run)
    write_atomic(path, "\n".join(lines))
    return runs
