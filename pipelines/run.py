"""The front door: `python -m pipelines.run study=<name> [preset=small] [out=runs] [key.path=value ...]`.

Trains the study's stages (pretrain / midtrain / rl, each cached by the hash of its config and inputs),
evaluates every model on the study's splits, tests its findings and writes report.md, plots,
metrics.jsonl and config.yaml into <out>/<study>-<preset>/. Rerunning the same command resumes.
"""
from __future__ import annotations

import shlex
import sys

from gsm_synth.entry import error_line, run
from pipelines.common.config import ConfigError, read_yaml
from pipelines.study.load import available_studies, load_study, study_path

HELP = """usage: python -m pipelines.run study=<name> [preset=tiny|small|paper] [out=runs] [key.path=value ...]

studies: {studies}
presets: tiny (tests, seconds), small (default: a 2-core CPU, minutes), paper (the CMU study's sizes, GPU)

examples:
  python -m pipelines.run study=smoke preset=tiny
  python -m pipelines.run study=rl_difficulty
  python -m pipelines.run study=rl_difficulty rl.lr=3e-4 seeds=[0,1]
  python -m pipelines.run study=rl_difficulty preset=paper pretrain.accelerator=gpu rl.accelerator=gpu
keys: any field of the study config (study, preset, out, seeds, force, task.*, splits.*, pretrain.*,
      midtrain.*, rl.*, eval.*, stages.<name>.*); a typo is rejected with the closest valid key.
maps:  a table (ops, contexts, splits, a stage's set) given as {{...}} replaces the whole table; other maps
      merge; stages.<name>=null removes a stage."""


def describe_studies() -> str:
    out = []
    for name in available_studies():
        try:
            text = str(read_yaml(study_path(name), "study").get("description") or "")
        except ConfigError:  # listing must not fail on one broken file
            text = ""
        out.append(f"  {name:<18}{text.strip().splitlines()[0] if text.strip() else ''}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from pipelines.study.runner import quiet_lightning, run_study

    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_lightning()
    if any(a in ("-h", "--help", "help") for a in argv) or "study=list" in argv:
        print(HELP.format(studies=", ".join(available_studies())))
        print("\n" + describe_studies())
        return 0
    try:
        cfg = load_study(argv)
        run_study(cfg, "python -m pipelines.run " + " ".join(shlex.quote(a) for a in argv))
    except BrokenPipeError:
        raise
    except (ConfigError, ValueError, OSError) as e:
        return error_line(e)
    return 0


if __name__ == "__main__":
    run(main)
