"""Shipped bases: pretrained models the repository carries (bases/<name>/), so a study on a laptop starts
from the same pinned weights instead of a 15-30 minute pretraining that no two machines reproduce.

A shipped base is a folder with model.safetensors (bf16 storage: loading runs no code), tokenizer.json and
record.json: how it was made (command, resolved config, machine, wall time), its recipe key, its eval
table and a greedy fingerprint that a test re-scores. The runner treats bases/ as a read-only cache layer:
a pretraining stage whose recipe key (pipelines.study.cache.recipe_key: its config before the machine's
precision / compile are resolved) equals a record's is installed into the cache instead of trained.
"""
from __future__ import annotations

import json
from pathlib import Path

from gsm_synth.atomic import write_atomic
from pipelines.common.checkpoint import CheckpointError, check_files, sha256
from pipelines.common.paths import data_dir

WEIGHTS, RECORD, TOKENIZER = "model.safetensors", "record.json", "tokenizer.json"
TIED_HEAD, TIED_TABLE = "lm_head.weight", "embed.weight"
FINGERPRINT_PROBLEMS = 4  # per split: greedy (T = 0) fp32 completions, re-scored by the tests


SHIPPED_DIR = data_dir("bases", f"*/{RECORD}")  # an installed copy's, or the checkout's


def records(root: Path = SHIPPED_DIR) -> list[tuple[Path, dict]]:
    """(folder, record) of every shipped base; an unreadable record is one clear error."""
    out = []
    for path in sorted(Path(root).glob(f"*/{RECORD}")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"shipped base record {path} is unreadable ({type(e).__name__}); restore it "
                                  "from git (git checkout -- bases/) or run with base=scratch") from None
        out.append((path.parent, record))
    return out


def lookup(key: str, preset: str, stage: str, seed: int, root: Path = SHIPPED_DIR) -> tuple[Path | None, str]:
    """The shipped base with this recipe key, or None and why not (a line for the console, '' when no base
    was ever shipped for this stage)."""
    shipped = records(root)
    for folder, record in shipped:
        if record.get("key") == key:
            return folder, ""
    stale = [folder.name for folder, r in shipped if (r.get("preset"), r.get("stage"), r.get("seed")) == (preset, stage, seed)]
    if stale:
        return None, (f"shipped base {stale[0]} is not used: it was made by another recipe (its key is not {key}; "
                      "the pretraining config or the code changed since), so this base is trained from scratch")
    return None, ""


def install(folder: Path, final: Path) -> dict:
    """Write the shipped base at `folder` as a model directory at `final` (fp32 weights, checksummed); returns
    its record. A shipped file that does not match its record is one clear error, never a silent retrain."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from models import GPT, GPTConfig, Tokenizer
    from pipelines.common.checkpoint import save_model

    record = json.loads((folder / RECORD).read_text())
    fix = f"restore it from git (git checkout -- {folder.name}) or run with base=scratch"
    check_files(folder, record, what="shipped base file", where=f"in its {RECORD}", fix=fix)
    try:
        state = load_file(folder / WEIGHTS)
        model = GPT(GPTConfig(**record["model"]))
        state = {k: v.to(torch.float32) for k, v in state.items()}
        if model.config.tie_embeddings:  # stored once (safetensors keeps no aliases)
            state[TIED_HEAD] = state[TIED_TABLE]
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"shipped base {folder} cannot be loaded ({str(e).splitlines()[0][:120]}); {fix}") from None
    meta = {"summary": record.get("summary", {}), "shipped": folder.name}
    save_model(final, model, Tokenizer.load(folder), meta)
    return record


def find_base(preset: str = "small", index: int = 0, root: Path = SHIPPED_DIR) -> tuple[Path, dict]:
    """(folder, record) of shipped base `index` of a preset, or one line naming what is shipped."""
    found = [(f, r) for f, r in records(root) if r.get("preset") == preset and r.get("seed") == index]
    if not found:
        have = sorted(f"{r.get('preset')}/{r.get('seed')}" for _, r in records(root))
        raise CheckpointError(f"no shipped base {preset}/{index}; shipped: {', '.join(have) or 'none'}")
    return found[0]


def install_base(preset: str, index: int, final: Path, root: Path = SHIPPED_DIR) -> Path:
    """Shipped base `index` of a preset written as a model directory at `final` (what a stage's init_from
    names): e.g. to run RL from it in a notebook."""
    folder, _ = find_base(preset, index, root)
    install(folder, Path(final))
    return Path(final)


def load_base(preset: str = "small", index: int = 0, root: Path = SHIPPED_DIR):
    """(model, tokenizer, record) of shipped base `index` of a preset, for notebooks and scripts; the model
    is fp32 on the CPU, in eval mode."""
    import tempfile

    from pipelines.common.checkpoint import load_model

    _, record = find_base(preset, index, root)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, _ = load_model(install_base(preset, index, Path(tmp) / "final", root))
    return model.eval(), tokenizer, record


def fingerprint_spec(spec) -> "EvalSpec":
    """A few problems per split of a study's design eval set, greedy and in fp32: a shipped base's
    fingerprint, which any machine can recompute (tests/pipelines/study/test_shipped.py)."""
    from dataclasses import replace

    return replace(spec, problems_per_bin=FINGERPRINT_PROBLEMS, n_samples=1, temperature=0.0,
                   precision="32-true", avoid_seed=None)


def fingerprint(model, tokenizer, spec) -> list[dict]:
    """Per problem of fingerprint_spec(spec): its split, index, the greedy completion's answer, length and
    error counts, and whether it verifies: a changed weight shows up as a changed completion."""
    from pipelines.evaluation.evaluate import evaluate

    results = evaluate(model, tokenizer, fingerprint_spec(spec), progress=False)
    return [{"bin": r["bin"], "index": r["index"], "answer": r["answers"][0], "process_correct": r["c_process"],
             "tokens": r["tokens"], "errors": r["errors"]} for r in results["problems"]]


def export(final: Path, dest: Path, record: dict) -> Path:
    """Write a trained model directory as a shipped base (bf16 safetensors + tokenizer + record), atomically:
    into a temporary sibling first, renamed into place when complete."""
    import shutil
    import tempfile

    import torch
    from safetensors.torch import save_file

    from pipelines.common.checkpoint import load_model

    model, tokenizer, _ = load_model(final)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
                 if not (model.config.tie_embeddings and k == TIED_HEAD)}
        save_file(state, tmp / WEIGHTS)
        tokenizer.save(tmp)
        record = {**record, "model": {**model.config.__dict__},
                  "sha256": {name: sha256(tmp / name) for name in (WEIGHTS, TOKENIZER)}}
        (tmp / RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
