"""`python -m pipelines.lm out=<dir> [config=<file.yaml>] [key=value ...]`: one pretrain or mid-train stage
(pipelines/train/lm.py; its keys are LMStageConfig in pipelines/train/config.py)."""
from __future__ import annotations


from gsm_synth.entry import run
from pipelines.train.cli import stage_main
from pipelines.train.config import LMStageConfig
from pipelines.train.lm import run_lm_stage


def main(argv: list[str] | None = None) -> int:
    return stage_main(LMStageConfig, run_lm_stage, argv)


if __name__ == "__main__":
    run(main)
