"""What an evaluation is: the spec (bins, contexts, samples, seed) and the problems it names.

Torch-free: a study's config holds an EvalSpec, and loading a study imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from gsm_synth.dataset import check_mixture
from pipelines.common.config import table
from pipelines.common.mixture import layout_problem, problem_layout, problem_text

DEFAULT_BINS = {"id": "2-10", "edge": "11-14", "hard": "15-20"}
EVAL_PRECISIONS = ("auto", "32-true", "bf16-mixed")  # sampling: bf16 autocast or not


@dataclass
class EvalSpec:
    """What to evaluate. Problems are index 0..problems_per_bin-1 of stream `seed` in pool 'eval': the
    same spec gives the same problems; samples are reproducible for the same spec (batch_size included)."""
    bins: dict[str, Optional[str]] = table(DEFAULT_BINS)  # name -> ops; null drops a bin
    contexts: list[str] = field(default_factory=lambda: ["zoo", "school", "movie"])
    modes: list[str] = field(default_factory=lambda: ["forward"])
    problems_per_bin: int = 64
    n_samples: int = 128
    temperature: float = 0.7  # the CMU study's evaluation temperature
    top_p: float = 1.0
    max_new_tokens: int = 384  # a completion cut at this limit counts as wrong
    seed: int = 0  # problem stream, sampling and bootstrap
    # a held-out set: any problem identical to one of this seed's set (same spec otherwise) is replaced,
    # so a confirmation set never repeats a problem of the design set
    avoid_seed: Optional[int] = None
    batch_size: int = 256  # prompts x samples per sampler forward pass
    problem_options: dict[str, Any] = field(default_factory=dict)  # gsm_synth.generate options
    precision: str = "auto"  # sampling: auto (from the machine, models/speed.py) | 32-true | bf16-mixed


def active_bins(spec: EvalSpec) -> dict[str, str]:
    return {name: str(ops) for name, ops in spec.bins.items() if ops not in (None, "")}


def check_spec(spec: EvalSpec) -> None:
    """Fail before any work, with one line, on a spec that cannot run."""
    for name in ("problems_per_bin", "n_samples", "max_new_tokens", "batch_size"):
        if getattr(spec, name) < 1:
            raise ValueError(f"{name} must be >= 1 (got {getattr(spec, name)})")
    if spec.temperature < 0:
        raise ValueError(f"temperature must be >= 0 (got {spec.temperature})")
    if not 0 < spec.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (got {spec.top_p})")
    if not active_bins(spec):
        raise ValueError("no bins to evaluate (every bin is empty)")
    if not spec.modes:
        raise ValueError("modes is empty")
    for name, ops in active_bins(spec).items():
        try:
            check_mixture(ops, spec.contexts, spec.modes)
        except ValueError as e:
            raise ValueError(f"bin '{name}': {e}") from None
    if spec.precision not in EVAL_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(EVAL_PRECISIONS)} (got '{spec.precision}')")
    pool = spec.problem_options.get("pool", "eval")
    if pool != "eval":
        raise ValueError(f"eval problems always come from pool 'eval' (got problem_options.pool={pool!r})")


def eval_problems(spec: EvalSpec) -> dict[str, list]:
    """bin name -> its problems; deterministic in the spec (index i of stream spec.seed, pool 'eval')."""
    check_spec(spec)
    if spec.avoid_seed is not None and spec.avoid_seed == spec.seed:
        raise ValueError(f"avoid_seed must differ from seed (both {spec.seed})")
    options = {**spec.problem_options, "pool": "eval"}
    avoid = frozenset()
    if spec.avoid_seed is not None:
        avoided = eval_problems(replace(spec, seed=spec.avoid_seed, avoid_seed=None))
        avoid = frozenset(problem_text(p) for problems in avoided.values() for p in problems)
    out = {}
    for name, ops_range in active_bins(spec).items():
        ops, contexts, modes = check_mixture(ops_range, spec.contexts, spec.modes)  # also accepts "zoo,movie"
        layout = problem_layout(ops, contexts, modes, spec.problems_per_bin)
        out[name] = [layout_problem(layout, i, spec.seed, options, avoid) for i in range(len(layout))]
    return out
