"""`python -m pipelines.rl out=<dir> [config=<file.yaml>] [key=value ...]`: one RL (GRPO) stage
(pipelines/train/rl.py; its keys are RLStageConfig in pipelines/train/config.py)."""
from __future__ import annotations


from gsm_synth.entry import run
from pipelines.train.cli import stage_main
from pipelines.train.config import RLStageConfig
from pipelines.train.rl import run_rl_stage


def main(argv: list[str] | None = None) -> int:
    return stage_main(RLStageConfig, run_rl_stage, argv)


if __name__ == "__main__":
    run(main)
