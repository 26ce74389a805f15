"""Running a study's stages through a cache: each stage's output lives under a key that hashes its
resolved config and the keys of its inputs, so studies sharing a base model train it once, a killed
study resumes where it stopped, and a changed setting re-runs only what depends on it.

<out>/cache/<kind>-<key>/        a trained stage (final/, ckpt/, logs/, config.yaml, stage.json)
<out>/cache/<kind>-<key>/eval-<key>/   its evaluation on the study's splits (eval.jsonl, ..., done.json)
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gsm_synth.atomic import write_atomic
from pipelines.common.checkpoint import META, CheckpointError, sha256
from pipelines.common.config import to_yaml
from pipelines.evaluation.evaluate import evaluate, resolve_eval_precision, write_results
from pipelines.evaluation.spec import EvalSpec
from pipelines.study.load import order, serves_all_seeds, stage_config, stage_seeds
from pipelines.study.schema import StudyConfig

# Bump when a code change alters what a stage produces (the data stream, the model, the loss, the
# sampler): old cache entries then stop matching instead of being silently reused.
CODE_VERSION = 3
# Bump when sampled tokens change (the sampler's arithmetic): RL stages and evaluations carry it in their
# keys, pretraining and mid-training do not (they sample nothing), so shipped bases stay valid.
# 2: samples share their prompt's keys/values (bf16 autocast then samples other tokens after an ulp).
SAMPLER_VERSION = 2
# Settings that change how a stage runs but not what it produces: left out of the key. Precision and
# compile are in it, resolved for the machine: they change the trained model (compile by float ulps).
# micro_batch changes it by ulps too (sums in another order) but is what fits a machine's memory, so a
# stage cached on one machine serves another.
NOT_IN_KEY = {"checkpoint_every", "init_from", "max_batch", "micro_batch", "data_workers"}
STAGE_INFO = "stage.json"
SPEED_MEMORY = "speed.json"  # the precision / compile decisions the keys of this cache were built on


def digest(payload) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# Options added after CODE_VERSION 1 enter the key only when set away from their "off" value, so adding
# an option does not invalidate every cached stage.
# (section None: a top-level field of the stage's config)
KEY_ONLY_WHEN_SET = {("mixture", "eval_set"): 0, ("mixture", "eval_seed"): 0, (None, "snapshots"): [],
                     (None, "lr_schedule"): "constant"}
# Bumped when what an option does changes, so stages cached under the old meaning are not reused
# (eval_set 2: seeded visiting order per pass instead of index order).
OPTION_REVISIONS = {("mixture", "eval_set"): 2}


def stage_key(kind: str, config, upstream: str | None) -> str:
    fields = {k: v for k, v in asdict(config).items() if k not in NOT_IN_KEY}
    for (section, name), off in KEY_ONLY_WHEN_SET.items():
        if section is None:
            if fields.get(name, off) == off:
                fields.pop(name, None)
        elif isinstance(fields.get(section), dict) and fields[section].get(name, off) == off:
            fields[section] = {k: v for k, v in fields[section].items() if k != name}
    for (section, name), revision in OPTION_REVISIONS.items():
        if isinstance(fields.get(section), dict) and name in fields[section]:
            fields[section][f"{name}@revision"] = revision
    sampler = {"sampler": SAMPLER_VERSION} if kind == "rl" else {}
    return digest({"kind": kind, "config": fields, "after": upstream, "code": CODE_VERSION, **sampler})


def eval_key(spec: EvalSpec, model_key: str) -> str:
    # every field counts, batch_size too: the sampler's seeds follow its call order
    return digest({"eval": asdict(spec), "model": model_key, "code": CODE_VERSION, "sampler": SAMPLER_VERSION})


@dataclass
class StageRun:
    name: str
    seed: int
    kind: str
    key: str
    dir: Path
    config: object
    after: str | None = None  # upstream stage name
    model: dict = field(default_factory=dict)  # the architecture it trains (GPTConfig fields)
    speed: dict = field(default_factory=dict)  # precision / compile: models.speed.Choice, resolved at plan time
    base: int = 0  # which of the study's bases (independent pretraining seeds) this run descends from
    shipped: Path | None = None  # a shipped base (pipelines/study/shipped.py) installed instead of training
    recipe: str | None = None  # a pretraining's recipe key (recipe_key): how a retrain finds its shipped twin
    upstream: "StageRun | None" = None  # the run whose final model this one starts from

    @property
    def final(self) -> Path:
        return self.dir / "final"

    @property
    def who(self) -> str:
        return f"{self.name} seed {self.seed}" + (f" base {self.base}" if self.base else "")


def recipe_key(kind: str, config, upstream: str | None) -> str:
    """A stage's key before precision and compile are resolved for a machine: what a shipped base is
    filed under, so every machine finds the same weights (the record says how they were trained)."""
    return stage_key(kind, config, upstream)


def plan(cfg: StudyConfig, say=None) -> list[StageRun]:
    """Every (stage, base, seed) of the study in dependency order, with its cache directory and its
    precision and compile resolved for this machine (they enter the key). A pretraining is trained once
    per base, with seed = the base's index; later stages use the study's seeds. `say` gets one line per
    shipped base that is used or passed over."""
    import torch

    from models import GPT, GPTConfig
    from pipelines.study import shipped
    from pipelines.train.lm import make_tokenizer, model_config_for, resolve_speed as lm_speed

    say = say or log
    cache = Path(cfg.out) / "cache"
    memory = cache / SPEED_MEMORY
    vocab = make_tokenizer().vocab_size
    runs: list[StageRun] = []
    notes: list[str] = []  # said once the whole plan holds: a bad setting is the one line a user sees
    by_name: dict[tuple[str, int, int], StageRun] = {}
    rl_precision: dict = {}  # model shape -> the study's one RL precision
    for base in range(cfg.bases):
        for seed in cfg.seeds:
            for name in order(cfg):
                node = cfg.stages[name]
                if serves_all_seeds(node) and seed != cfg.seeds[0]:
                    by_name[(name, base, seed)] = by_name[(name, base, cfg.seeds[0])]  # one run serves every seed
                    continue
                if seed not in stage_seeds(cfg, name):
                    continue
                config = stage_config(cfg, name, base if node.kind == "pretrain" else seed)
                upstream = by_name[(node.after, base, seed)] if node.after else None
                if upstream is not None:
                    config = replace(config, init_from=str(upstream.final))
                model = upstream.model if upstream is not None else model_config_for(config, vocab)
                found = recipe = None
                if node.kind == "pretrain":
                    recipe = recipe_key(node.kind, config, None)
                if recipe and cfg.base == "shipped" and not cfg.force:
                    key = recipe
                    found, why = shipped.lookup(key, cfg.preset, name, config.seed)
                    if why:
                        notes.append(f"[{name} base {base}] {why}")
                if found is not None:
                    run = StageRun(name, seed, node.kind, key, cache / f"{node.kind}-{key}", config, node.after,
                                   model, {}, base, found, recipe)
                else:
                    with torch.device("meta"):  # shapes only: no memory, no initialisation
                        shape = GPT(GPTConfig(**model))
                    if node.kind == "rl":
                        config, speed = shared_rl_precision(config, shape, model, memory, rl_precision)
                    else:
                        config, speed = lm_speed(config, shape, memory)
                    key = stage_key(node.kind, config, upstream.key if upstream else None)
                    run = StageRun(name, seed, node.kind, key, cache / f"{node.kind}-{key}", config, node.after,
                                   model, speed, base, None, recipe)
                run.upstream = upstream
                by_name[(name, base, seed)] = run
                runs.append(run)
    for line in notes:
        say(line)
    return runs


def shared_rl_precision(config, shape, model: dict, memory: Path, decided: dict) -> tuple:
    """An RL stage's config and speed choices, its `auto` precision the one the study's first RL stage of
    this model shape resolved. Arms of one comparison differ in their rollout batch, so each would probe
    at its own batch; one landing near 1.0x would compare an fp32 arm with bf16 ones."""
    from models.speed import Choice
    from pipelines.train.rl import resolve_speed as rl_speed

    shape_key = json.dumps(model, sort_keys=True)
    first = decided.get(shape_key) if config.precision == "auto" else None
    if first is not None:  # resolved as set: the config is still checked, nothing is probed
        resolved, _ = rl_speed(replace(config, precision=first.value), shape, memory)
        return resolved, {"precision": Choice(first.value, f"{first.reason}, shared by the study's RL stages")}
    resolved, speed = rl_speed(config, shape, memory)
    if config.precision == "auto":
        decided[shape_key] = speed["precision"]
    return resolved, speed


def run_stage(run: StageRun, progress: bool, force: bool) -> dict:
    """Train (or resume, or reuse) one stage; returns its stage.json record."""
    from pipelines.train.lm import run_lm_stage
    from pipelines.train.rl import run_rl_stage

    info_path = run.dir / STAGE_INFO
    if force and run.dir.exists():
        shutil.rmtree(run.dir)
    if info_path.is_file() and (run.final / META).is_file():
        # another study may have trained it under another name: the same key means the same stage
        return {**cached_info(run, info_path), "name": run.name, "seed": run.seed, "base": run.base,
                "after": run.after, "recipe": run.recipe, "cached": True}
    started = time.time()
    if run.shipped is not None:
        return install_shipped(run)
    if run.config.devices > 1:
        final = launch(run)
    else:
        runner = run_rl_stage if run.kind == "rl" else run_lm_stage
        final = runner(run.config, run.dir, progress=progress)
    meta = json.loads((final / "model.json").read_text())
    summary = meta.get("summary", {})
    info = {"name": run.name, "seed": run.seed, "base": run.base, "kind": run.kind, "key": run.key, "after": run.after,
            "recipe": run.recipe,
            # an RL stage carries its training time through resumes; an LM stage's killed part is not counted
            "wall_s": max(time.time() - started, float(summary.get("wall_s", 0.0))),
            "flops": summary.get("flops", 0.0), "resolved": {k: str(c) for k, c in run.speed.items()},
            "summary": summary, "final_sha256": sha256(final / META)}
    write_atomic(info_path, json.dumps(info, indent=2) + "\n")
    return {**info, "cached": False}


def install_shipped(run: StageRun) -> dict:
    """A shipped base written into the cache as this stage's final model, with a stage.json that says
    where it came from and what it cost when it was trained."""
    from pipelines.study.shipped import install

    record = install(run.shipped, run.final)
    info = {"name": run.name, "seed": run.seed, "base": run.base, "kind": run.kind, "key": run.key,
            "after": run.after, "wall_s": float(record.get("wall_s", 0.0)), "flops": record.get("summary", {}).get("flops", 0.0),
            "resolved": record.get("resolved", {}), "summary": record.get("summary", {}),
            "shipped": {"name": run.shipped.name, "trained_by": record.get("trained_by", "?"),
                        "command": record.get("command", "?")},
            "final_sha256": sha256(run.final / META)}
    write_atomic(run.dir / STAGE_INFO, json.dumps(info, indent=2) + "\n")
    return {**info, "cached": False}


def read_record(path: Path, again: str) -> dict:
    """A JSON record this cache wrote (stage.json, done.json), or one line naming the file and the way on."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is unreadable ({type(e).__name__}); {again}") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{path} is corrupted (not a JSON object); {again}")
    return record


def cached_info(run: StageRun, info_path: Path) -> dict:
    """A finished stage's record, checked: readable, of this key, and its final/ the model it trained."""
    again = f"rerun with force=true to retrain stage {run.name}"
    info = read_record(info_path, again)
    if info.get("key") != run.key:
        raise CheckpointError(f"{info_path} does not belong to this stage (key {run.key}); {again}")
    recorded = info.get("final_sha256")  # stages cached before checksums have none
    if recorded and sha256(run.final / META) != recorded:
        raise CheckpointError(f"{run.final} is not the model stage {run.name} trained ({META} changed since); {again}")
    return info


def launch(run: StageRun) -> Path:
    """Run a multi-device stage as its own command (`python -m pipelines.lm|rl out=... config=...`), so
    that Lightning can start one process per device (DDP) without re-running the whole study."""
    config_file = run.dir / "launch.yaml"
    write_atomic(config_file, to_yaml(run.config))
    module = "pipelines.rl" if run.kind == "rl" else "pipelines.lm"
    cmd = [sys.executable, "-m", module, f"out={run.dir}", f"config={config_file}"]
    log(f"[{run.who}] {run.config.devices} processes ({run.config.strategy}): {' '.join(cmd)}")
    if subprocess.run(cmd).returncode != 0:
        raise ValueError(f"stage {run.name} (seed {run.seed}) failed in its {run.config.devices}-process run; "
                         "its error is printed above")
    return run.final


def run_eval(run: StageRun, spec: EvalSpec, progress: bool, force: bool, model_dir: Path | None = None,
             model_key: str | None = None) -> tuple[Path, dict]:
    """Evaluate a stage's final model (or another model it wrote, `model_dir` under the key `model_key`: a
    snapshot along RL) on the study's splits, cached like a stage, at the precision resolved for this
    machine (part of the eval key). The evaluation is written beside the model it scores."""
    import torch

    from models import GPT
    from models.machine import machine_info
    from pipelines.common.checkpoint import load_model, model_config_of

    device = "cuda" if run.config.accelerator in ("gpu", "cuda") else "cpu"  # sample where the stage trained
    if (model_dir is None) != (model_key is None):
        raise ValueError("run_eval: give model_dir and model_key together (another model's evaluations need its own key)")
    model_dir, model_key = Path(model_dir or run.final), model_key or run.key
    with torch.device("meta"):  # the precision is decided from the shape: a cached evaluation loads nothing
        shape = GPT(model_config_of(model_dir))
    spec, choice = resolve_eval_precision(shape, spec, device, memory=run.dir.parent / SPEED_MEMORY)
    out = model_dir.parent / f"eval-{eval_key(spec, model_key)}"
    done = out / "done.json"
    if force and out.exists():
        shutil.rmtree(out)
    if done.is_file():
        return out, {**read_record(done, f"rerun with force=true to evaluate stage {run.name} again"), "cached": True}
    started = time.time()
    model, tokenizer, _ = load_model(model_dir, device=device)
    results = evaluate(model, tokenizer, spec, progress=progress)
    write_results(results, out)
    tokens = sum(r["tokens"] for r in results["problems"])
    info = {"wall_s": time.time() - started, "sampled_tokens": tokens,
            "flops": tokens * model.flops_per_token(spec.max_new_tokens) / 3.0,  # forward only: 2N of 6N
            "precision": spec.precision, "precision_reason": choice.reason, "machine": machine_info(device)}
    write_atomic(done, json.dumps(info, indent=2) + "\n")
    return out, {**info, "cached": False}


@dataclass
class Point:
    """A model on an RL stage's curve: the starting model (step 0), a snapshot, or the final model."""
    step: int
    owner: StageRun  # the stage that wrote the model (the upstream stage for step 0)
    model_dir: Path
    key: str  # the model's key, for its evaluations' keys
    samples: int
    flops: float


def points_along(run: StageRun, info: dict) -> list[Point]:
    """The points of a finished RL stage's curve, in RL order. Samples and FLOPs are RL's own (the
    snapshot's record), not the upstream stages'."""
    from pipelines.common.checkpoint import load_meta
    from pipelines.train.skeleton import snapshot_dir

    summary = info.get("summary", {})
    total = int(summary.get("steps", 0))
    points = [Point(0, run.upstream, run.upstream.final, run.upstream.key, 0, 0.0)]
    for step in run.config.snapshots:
        if step >= total:  # a FLOPs budget that ran out first
            continue
        where = snapshot_dir(run.dir, step)
        if not (where / META).is_file():
            raise CheckpointError(f"{where} is missing: stage {run.name} finished without its snapshot at step {step}; "
                                  f"rerun with force=true to retrain it")
        s = load_meta(where).get("summary", {})
        points.append(Point(step, run, where, f"{run.key}@{step}", int(s.get("samples", 0)), float(s.get("flops", 0.0))))
    points.append(Point(total, run, run.final, run.key, int(summary.get("samples", 0)), float(summary.get("flops", 0.0))))
    return points


def describe(run: StageRun, info: dict, what: str = "") -> str:
    """The one-line summary printed when a stage finishes."""
    s = info.get("summary", {})
    bits = [f"[{run.who}] {what or run.kind}"]
    if "tokens" in s:
        bits.append(f"{s['tokens'] / 1e6:.1f}M tokens, loss {s.get('final_loss', float('nan')):.3f}")
    if "steps" in s and run.kind == "rl" and not what:
        bits.append(f"{s['steps']} steps, reward {s.get('final_reward', float('nan')):.3f}")
    bits.append(f"{duration(info.get('wall_s', 0.0))}, {info.get('flops', 0.0):.2e} FLOPs")
    if what and info.get("precision"):
        bits.append(f"precision {info['precision']}")
    if info.get("shipped") and not what:
        bits.append(f"shipped base {info['shipped']['name']}, trained by {info['shipped']['trained_by']}")
    if info.get("cached"):
        bits.append("(cached)")
    return ", ".join(bits)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
