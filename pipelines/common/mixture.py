"""What a stage trains on and which eval problems a split holds: weighted draws of (op, context, mode) from
the generator, and the fixed layout of an eval set. Plain Python (no torch): study loading uses it."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import gsm_synth
from gsm_synth.dataset import parse_ops
from gsm_synth.options import GeneratorOptions, options_of
from pipelines.common.config import table


@dataclass
class MixtureConfig(GeneratorOptions):
    """What a stage trains on: op bins with weights, context and mode weights, and the generator options
    (inherited: modulus, distractors, shuffle, symbols, pool)."""
    pool: Optional[str] = "pretrain"
    ops: dict[str, float] = table({"2-4": 0.2, "5-7": 0.3, "8-10": 0.5})
    contexts: dict[str, float] = table({"zoo": 1.0, "school": 1.0, "movie": 1.0})
    modes: dict[str, float] = table({"forward": 1.0})
    # A share of problems drawn from a second, narrower distribution instead (e.g. context B at op 2 only,
    # as in the context-transfer study); its modes and generator options are the ones above.
    extra_share: float = 0.0
    extra_ops: dict[str, float] = table()
    extra_contexts: dict[str, float] = table()
    # > 0: instead of drawing, visit the eval set that the evaluator builds with problems_per_bin =
    # eval_set and seed = eval_seed for these ops/contexts/modes (pool 'eval'), each problem once per pass
    # in a seeded order: TTRL trains on its unlabeled test set itself. RL stages only.
    eval_set: int = 0
    eval_seed: int = 0


class Mixture:
    """Draws (op, context, mode) from weighted op bins, contexts and modes."""

    def __init__(self, cfg: MixtureConfig):
        if not cfg.ops or not cfg.contexts or not cfg.modes:
            raise ValueError("a mixture needs at least one op bin, context and mode")
        self.bins = [parse_ops(spec) for spec in cfg.ops]
        self.bin_weights = _weights(cfg.ops, "mixture.ops")
        self.contexts, self.context_weights = list(cfg.contexts), _weights(cfg.contexts, "mixture.contexts")
        self.modes, self.mode_weights = list(cfg.modes), _weights(cfg.modes, "mixture.modes")
        self.options = options_of(cfg)
        # the same validation and normal form the evaluator uses, so an eval_set layout matches its problems
        ops, contexts, modes = gsm_synth.dataset.check_mixture(union_ops(cfg.ops), self.contexts, self.modes)
        gsm_synth.problem.check_options(self.options)
        self.eval_set, self.eval_seed = int(cfg.eval_set), int(cfg.eval_seed)
        if self.eval_set < 0:
            raise ValueError(f"mixture.eval_set must be >= 0 (got {cfg.eval_set})")
        if self.eval_set:
            if cfg.pool != "eval":
                raise ValueError(f"mixture.eval_set needs mixture.pool=eval (got {cfg.pool!r})")
            self.layout = problem_layout(ops, contexts, modes, self.eval_set)
        self.extra_share = float(cfg.extra_share)
        if not 0.0 <= self.extra_share <= 1.0:
            raise ValueError(f"mixture.extra_share must be in [0, 1] (got {cfg.extra_share})")
        if self.extra_share > 0:
            if not cfg.extra_ops or not cfg.extra_contexts:
                raise ValueError("mixture.extra_share > 0 needs mixture.extra_ops and mixture.extra_contexts")
            self.extra_bins = [parse_ops(spec) for spec in cfg.extra_ops]
            self.extra_bin_weights = _weights(cfg.extra_ops, "mixture.extra_ops")
            self.extra_contexts = list(cfg.extra_contexts)
            self.extra_context_weights = _weights(cfg.extra_contexts, "mixture.extra_contexts")
            gsm_synth.dataset.check_mixture(union_ops(cfg.extra_ops), self.extra_contexts, self.modes)

    def draw(self, rng: random.Random) -> tuple[int, str, str]:
        bins, bin_weights, contexts, context_weights = self.bins, self.bin_weights, self.contexts, self.context_weights
        if self.extra_share > 0 and rng.random() < self.extra_share:  # no extra draw otherwise: old streams stay
            bins, bin_weights = self.extra_bins, self.extra_bin_weights
            contexts, context_weights = self.extra_contexts, self.extra_context_weights
        ops = rng.choices(bins, bin_weights)[0]
        return rng.choice(ops), rng.choices(contexts, context_weights)[0], \
            rng.choices(self.modes, self.mode_weights)[0]

    def problem(self, seed: int, index: int):
        if self.eval_set:  # every pass visits each eval problem once, in an order drawn from (seed, pass)
            rounds, pos = divmod(index, self.eval_set)
            order = random.Random(f"eval_set:{seed}:{rounds}").sample(range(self.eval_set), self.eval_set)
            return layout_problem(self.layout, order[pos], self.eval_seed, self.options)
        op, context, mode = self.draw(random.Random(f"mixture:{seed}:{index}"))
        return gsm_synth.generate(op, context, mode, seed=seed, index=index, **self.options)


def union_ops(specs) -> list[int]:
    """Every op named by a table of op ranges ({"2-3": w, "6-7": w} -> [2, 3, 6, 7])."""
    return sorted({o for spec in specs for o in parse_ops(spec)})


def problem_layout(ops: list[int], contexts: list[str], modes: list[str], count: int) -> list[tuple[int, str, str]]:
    """(op, context, mode) of eval-set problem i: ops in equal contiguous shares, contexts round-robin
    within them (so op and context are not locked together), modes round-robin over rounds of contexts."""
    return [(ops[i * len(ops) // count], contexts[i % len(contexts)], modes[(i // len(contexts)) % len(modes)])
            for i in range(count)]


def layout_problem(layout: list[tuple[int, str, str]], i: int, seed: int, options: dict, avoid: frozenset = frozenset()):
    """Problem i of an eval set laid out by problem_layout (pool 'eval'). A problem whose text is in
    `avoid` (another eval set's) is replaced by the next one the stream draws for the same slot."""
    op, context, mode = layout[i]
    for attempt in range(1000):
        p = gsm_synth.generate(op, context, mode, seed=seed, index=i + attempt * len(layout), **{**options, "pool": "eval"})
        if problem_text(p) not in avoid:
            return p
    raise ValueError(f"no eval problem at op {op} ({context}, {mode}) outside the avoided set after 1000 draws")


def problem_text(p) -> str:
    """What makes two problems the same problem for a reader (and a model): the text and the question."""
    return f"{p.problem}\n{p.question}"


def _weights(table: dict, key: str) -> list[float]:
    w = [float(v) for v in table.values()]
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"{key} weights must be >= 0 with a positive sum (got {dict(table)})")
    return w
