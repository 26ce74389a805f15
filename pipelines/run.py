"""The front door: `python -m pipelines.run study=<name> [preset=small] [out=runs] [key.path=value ...]`.

Trains the study's stages (pretrain / midtrain / rl, each cached by the hash of its config and inputs),
evaluates every model on the study's splits, tests its findings and writes report.md, plots,
metrics.jsonl and config.yaml into <out>/<study>-<preset>/. Rerunning the same command resumes.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from pipelines.config import ConfigError
from pipelines.study import StudyConfig, available_studies, eval_spec, load_study, study_path

HELP = """usage: python -m pipelines.run study=<name> [preset=tiny|small|paper] [out=runs] [key.path=value ...]

studies: {studies}
presets: tiny (tests, seconds), small (default: a 2-core CPU, minutes), paper (the CMU study's sizes, GPU)

examples:
  python -m pipelines.run study=smoke preset=tiny
  python -m pipelines.run study=rl_difficulty
  python -m pipelines.run study=rl_difficulty rl.lr=3e-4 seeds=[0,1]
  python -m pipelines.run study=rl_difficulty preset=paper pretrain.accelerator=gpu rl.accelerator=gpu
keys: any field of the study config (study, preset, out, seeds, force, task.*, splits.*, pretrain.*,
      midtrain.*, rl.*, eval.*, stages.<name>.*); a typo is rejected with the closest valid key."""


def describe_studies() -> str:
    out = []
    for name in available_studies():
        try:
            text = OmegaConf.load(study_path(name)).get("description", "") or ""
        except Exception:  # listing must not fail on one broken file
            text = ""
        out.append(f"  {name:<18}{text.strip().splitlines()[0] if text.strip() else ''}")
    return "\n".join(out)


def run_study(cfg: StudyConfig, command: str = "") -> Path:
    """Run (or resume) every stage, evaluate, and write the report; returns the run folder."""
    from models.machine import configure_threads, describe_machine, machine_info
    from pipelines.claims import Evidence, read_problems, read_rl_log
    from pipelines.config import to_yaml
    from gsm_synth.atomic import write_atomic
    from pipelines.report import write_report
    from pipelines.stages import describe, log, plan, run_eval, run_stage

    started = time.time()
    configure_threads()
    runs = plan(cfg)  # resolves precision / compile per stage: a bad stage config fails here, before any output
    machine = machine_info()
    log(f"machine: {describe_machine(machine)}")
    run_dir = Path(cfg.out) / f"{cfg.study}-{cfg.preset}"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", to_yaml(cfg))
    spec = eval_spec(cfg)
    forced: set[str] = set()
    stage_infos, eval_infos, problems, rl_logs = [], {}, {}, {}
    for i, run in enumerate(runs, 1):
        speed = "; ".join(f"{what} {choice}" for what, choice in run.speed.items())
        log(f"stage {i}/{len(runs)}: {run.name} (seed {run.seed}, {run.kind} on {run.config.accelerator}; {speed}) -> {run.dir}")
        info = run_stage(run, cfg.progress, force=cfg.force and run.key not in forced)
        forced.add(run.key)
        info["trains_on"] = ", ".join(f"op {ops}" for ops in run.config.mixture.ops)
        stage_infos.append(info)
        log(describe(run, info))
        if run.kind == "rl":
            rl_logs[(run.name, run.seed)] = read_rl_log(run.dir)
        if cfg.stages[run.name].eval:
            out, ev_info = run_eval(run, spec, cfg.progress, force=cfg.force and (run.key + ":eval") not in forced)
            forced.add(run.key + ":eval")
            eval_infos[(run.name, run.seed)] = ev_info
            problems[(run.name, run.seed)] = read_problems(out)
            log(describe(run, ev_info, what="eval"))
    evidence = Evidence(problems, rl_logs, list(cfg.seeds), dict(cfg.splits))
    result = write_report(cfg, evidence, stage_infos, eval_infos, run_dir, command, time.time() - started, machine)
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_lightning()
    if any(a in ("-h", "--help", "help") for a in argv) or "study=list" in argv:
        print(HELP.format(studies=", ".join(available_studies())))
        print("\n" + describe_studies())
        return 0
    try:
        cfg = load_study(argv)
        run_study(cfg, "python -m pipelines.run " + " ".join(shlex.quote(a) for a in argv))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
