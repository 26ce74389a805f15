"""Running a study: every stage trained or reused from the cache, every model evaluated, the findings
tested, and the report written into <out>/<study>-<preset>/ (report.md, plots, metrics.jsonl, config.yaml).
Rerunning the same study resumes where it stopped."""
from __future__ import annotations

import time
from pathlib import Path

from gsm_synth.atomic import ensure_dir, write_atomic
from pipelines.common.config import to_yaml
from pipelines.study.load import along_specs, along_stages, eval_specs
from pipelines.study.schema import StudyConfig


def run_study(cfg: StudyConfig, command: str = "") -> Path:
    """Run (or resume) every stage, evaluate, and write the report; returns the run folder."""
    # torch, Lightning and matplotlib load here, once the study's config is known to be good
    from models.machine import configure_threads, describe_machine, machine_info
    from pipelines.study.cache import describe, eval_key, log, plan, points_along, run_eval, run_stage
    from pipelines.study.claims import Evidence, read_problems, read_rl_log
    from pipelines.study.report import write_report

    started = time.time()
    ensure_dir(cfg.out)  # a file in the way or a read-only place: one line before any work
    configure_threads()
    runs = plan(cfg)  # resolves precision / compile per stage: a bad stage config fails here, before any output
    machine = machine_info()
    log(f"machine: {describe_machine(machine)}")
    run_dir = Path(cfg.out) / f"{cfg.study}-{cfg.preset}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", to_yaml(cfg))
    specs = eval_specs(cfg)  # design, then the held-out confirmation set where the study declares one
    forced: set[str] = set()
    stage_infos: list[dict] = []
    eval_infos: dict[str, dict] = {which: {} for which in specs}
    problems: dict[str, dict] = {which: {} for which in specs}
    rl_logs: dict = {}
    points: list[dict] = []  # one record per point along RL and eval set
    followed, along = set(along_stages(cfg)), along_specs(cfg)
    for i, run in enumerate(runs, 1):
        speed = "; ".join(f"{what} {choice}" for what, choice in run.speed.items()) or "shipped weights"
        log(f"stage {i}/{len(runs)}: {run.name} (base {run.base}, seed {run.seed}, {run.kind} on "
            f"{run.config.accelerator}; {speed}) -> {run.dir}")
        info = run_stage(run, cfg.progress, force=cfg.force and run.key not in forced)
        forced.add(run.key)
        info["trains_on"] = ", ".join(f"op {ops}" for ops in run.config.mixture.ops)
        stage_infos.append(info)
        log(describe(run, info))
        if run.kind == "rl":
            rl_logs[(run.name, run.base, run.seed)] = read_rl_log(run.dir)
        if run.name in followed:
            for point in points_along(run, info):
                for which, spec in along.items():
                    tag = eval_key(spec, point.key)  # the final eval's tag when the specs agree: forced once
                    out, ev_info = run_eval(point.owner, spec, cfg.progress, cfg.force and tag not in forced,
                                            point.model_dir, point.key)
                    forced.add(tag)
                    problems[which][(f"{run.name}@{point.step}", run.base, run.seed)] = read_problems(out)
                    points.append({"stage": run.name, "base": run.base, "seed": run.seed, "step": point.step,
                                  "samples": point.samples, "flops": point.flops, "eval": which,
                                  "wall_s": ev_info.get("wall_s", 0.0), "cached": ev_info.get("cached", False)})
                    log(describe(run, ev_info, what=f"eval at RL step {point.step} ({which} set, along RL)"))
        if not cfg.stages[run.name].eval:
            continue
        for which, spec in specs.items():
            tag = eval_key(spec, run.key)
            out, ev_info = run_eval(run, spec, cfg.progress, force=cfg.force and tag not in forced)
            forced.add(tag)
            eval_infos[which][(run.name, run.base, run.seed)] = ev_info
            problems[which][(run.name, run.base, run.seed)] = read_problems(out)
            log(describe(run, ev_info, what=f"eval ({which} set, seed {spec.seed})"))
    evidence = {which: Evidence(problems[which], rl_logs, list(cfg.seeds), dict(cfg.splits), cfg.bases, cfg.bases_rule)
                for which in specs}
    result = write_report(cfg, evidence, stage_infos, eval_infos, run_dir, command, time.time() - started, machine,
                          points)
    for f in result["findings"]:
        log(f"{f['id']}: {f['verdict']}")
    log(f"report: {run_dir / 'report.md'}")
    return run_dir


def quiet_lightning() -> None:
    """Our one-line stage summaries replace Lightning's per-fit banners (device lines, tips, stop reasons);
    its warnings and progress bars stay."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.trainer.connectors",
                 "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # a deprecation inside Lightning itself
