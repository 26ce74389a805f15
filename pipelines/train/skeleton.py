"""What every training stage does around its own loop, written once for the LM and RL stages.

A stage directory holds `config.yaml` (the resolved config), `tokenizer.json`, `ckpt/last.ckpt` (the
resumable Lightning checkpoint, replaced atomically) and, once the stage has finished, `final/` (model,
tokenizer and summary; see pipelines/common/checkpoint.py). A stage whose final/ exists is done. An RL
stage with a snapshot schedule also keeps `snapshots/step-<N>/`, models of the same layout as final/.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from gsm_synth.atomic import write_atomic
from pipelines.common.checkpoint import save_model
from pipelines.common.config import ConfigError, to_yaml

from .cli import announce, is_rank_zero

FINAL, CKPT, LAST = "final", "ckpt", "last.ckpt"


def warmup_cosine(step: int, total: int, warmup: int, floor: float) -> float:
    """The learning-rate multiplier at optimizer step `step`: linear warmup over `warmup` steps, then a cosine
    down to `floor` at step `total`."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def snapshot_dir(stage_dir: Path, step: int) -> Path:
    """Where an RL stage keeps its policy after `step` RL steps."""
    return Path(stage_dir) / "snapshots" / f"step-{step:06d}"


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
    return resume_point(out / CKPT / LAST)


def resume_point(last: Path) -> Path | None:
    """`last` if it is a readable checkpoint of plain data. One that is not (truncated, garbage, or a
    pickle that would run code) is never unpickled: it is moved aside to `last.ckpt.bad` and the stage
    starts from the beginning, which ends where an unbroken run would (the data stream is seeded)."""
    if not last.exists():
        return None
    try:
        torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        return last
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
    if is_rank_zero():
        bad = last.with_name(last.name + ".bad")
        os.replace(last, bad)
        announce(f"warning: {last} cannot be read as a plain-data checkpoint ({reason}); moved to {bad.name}, "
                 "training this stage from its start")
    return None


ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def check_accelerator(accelerator: str, devices: int) -> None:
    """Fail before any work, in one line, when the accelerator asked for is not on this machine."""
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"accelerator '{accelerator}' is not one of {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda"):
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found < devices:
            raise ConfigError(f"accelerator={accelerator} devices={devices}, but this machine has {found} CUDA "
                             "GPU(s); use accelerator=cpu (or fewer devices)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("accelerator=mps, but this machine has no Apple GPU (MPS); use accelerator=cpu")


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
