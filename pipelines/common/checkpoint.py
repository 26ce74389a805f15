"""A trained model on disk: weights (state dict, loaded with weights_only=True), config, tokenizer.

A model directory holds model.pt, model.json and tokenizer.json. It is published atomically: written to
a temporary sibling directory and renamed, so a reader never sees half a model. model.json records the
sha256 of the other two files, and loading checks them: a flipped byte or a file copied in from
another model is refused with one line.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from models import GPT, GPTConfig, Tokenizer

WEIGHTS, META, TOKENIZER = "model.pt", "model.json", "tokenizer.json"
RETRAIN = "retrain the stage that wrote it (in a study: rerun with force=true)"


class CheckpointError(ValueError):
    """A model directory that is missing, corrupted or not ours; the message is one line."""


def save_model(directory: str | Path, model: GPT, tokenizer: Tokenizer, meta: dict | None = None) -> Path:
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        tokenizer.save(tmp)
        digests = {name: sha256(tmp / name) for name in (WEIGHTS, TOKENIZER)}
        (tmp / META).write_text(json.dumps({"config": asdict(model.config), **(meta or {}), "sha256": digests},
                                           indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(directory: Path, meta: dict, what: str = "checkpoint", where: str = f"recorded in {META}",
                fix: str = RETRAIN) -> None:
    """The recorded sha256 of each file (model directories written before checksums have none); a missing
    or changed file is one line: '<what> <path> ... the sha256 <where> ...; <fix>'."""
    for name, recorded in (meta.get("sha256") or {}).items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{what} {path} is missing; {fix}")
        if sha256(path) != recorded:
            raise CheckpointError(f"{what} {path} does not match the sha256 {where} (corrupted or replaced); {fix}")


def load_meta(directory: str | Path) -> dict:
    path = Path(directory) / META
    if not path.is_file():
        raise CheckpointError(f"no model at {directory} ({META} missing)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupted ({e.__class__.__name__}); {RETRAIN}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} is corrupted (not a JSON object); {RETRAIN}")
    return meta


def model_config_of(directory: str | Path, meta: dict | None = None) -> GPTConfig:
    """The architecture a model directory records (its model.json), checked."""
    meta = load_meta(directory) if meta is None else meta
    try:
        return GPTConfig(**meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {Path(directory) / META} has no valid model config ({e}); {RETRAIN}") from None


def load_model(directory: str | Path, device: str = "cpu") -> tuple[GPT, Tokenizer, dict]:
    """A model directory (final/), or a stage's resumable Lightning checkpoint (ckpt/last.ckpt) whose
    tokenizer is the stage's tokenizer.json: so a run can be evaluated while it trains."""
    directory = Path(directory)
    if directory.suffix == ".ckpt":
        return _load_lightning(directory, device)
    meta = load_meta(directory)
    config = model_config_of(directory, meta)
    check_files(directory, meta)
    tokenizer = Tokenizer.load(directory)
    try:
        state = torch.load(directory / WEIGHTS, map_location=device, weights_only=True)
    except Exception as e:  # truncated file, foreign pickle, anything: never executed (weights_only)
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint {directory / WEIGHTS} is corrupted or not a model ({reason})") from None
    return _build(config, state, directory / WEIGHTS).to(device), tokenizer, meta


def _build(config: GPTConfig, state: dict, path: Path) -> GPT:
    """A GPT with `state` loaded; a state that does not fit the config is a one-line CheckpointError."""
    model = GPT(config)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} does not match its config ({str(e).splitlines()[0][:120]})") from None
    return model


def _load_lightning(path: Path, device: str) -> tuple[GPT, Tokenizer, dict]:
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        config = GPTConfig(**ckpt["hyper_parameters"]["model"])
        state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is corrupted or not a training checkpoint ({reason})") from None
    return _build(config, state, path).to(device), Tokenizer.load(path.parent.parent), {"step": ckpt.get("global_step")}
