"""What every training stage does around its own loop, written once for the LM and RL stages.

A stage directory holds `config.yaml` (the resolved config), `tokenizer.json`, `ckpt/last.ckpt` (the
resumable Lightning checkpoint, replaced atomically) and, once the stage has finished, `final/` (model,
tokenizer and summary; see pipelines/common/checkpoint.py). A stage whose final/ exists is done.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from gsm_synth.atomic import write_atomic
from pipelines.common.checkpoint import save_model
from pipelines.common.config import to_yaml

FINAL, CKPT, LAST = "final", "ckpt", "last.ckpt"


def finished(out: Path) -> Path | None:
    """The stage's final/ directory if the stage has finished, else None."""
    final = Path(out) / FINAL
    return final if (final / "model.json").exists() else None


def prepare(out: Path, cfg, tokenizer) -> Path | None:
    """Create the stage directory, record its resolved config and tokenizer (beside ckpt/, so a
    checkpoint can be evaluated before the stage ends); the checkpoint to resume from, if any."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.yaml", to_yaml(cfg))
    tokenizer.save(out)
    last = out / CKPT / LAST
    return last if last.exists() else None


def adamw(model: torch.nn.Module, lr: float, betas: tuple[float, float], weight_decay: float):
    """AdamW that decays the matrices only (not norms' gains or other vectors)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


def save_checkpoint(trainer, path: Path, weights_only: bool = False) -> None:
    """trainer.save_checkpoint through a temporary file renamed into place: a kill never leaves half a file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    trainer.save_checkpoint(tmp, weights_only)
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier()


def publish(out: Path, trainer, model, tokenizer, summary: dict) -> Path:
    """Write final/ (rank zero only): the stage is done."""
    final = Path(out) / FINAL
    if trainer.is_global_zero:
        save_model(final, model, tokenizer, {"summary": summary})
    return final
