"""How a claim is judged: four verdicts from paired values, with a CI that is stable at this size, an
equivalence margin where the claim is about no change, and the effect the data could have detected.

    judge("greater", a, b)                  # a, b: paired per-problem values (equal length)
    judge("same", a, b, margin=0.05)        # two one-sided tests against ±margin
    judge("below", a, value=0.05, series=True)   # a per-step RL log against a bar (block bootstrap)

- greater: reproduced when the one-sided 95 % bound of the mean difference a − b is above 0, not
  reproduced when the other one-sided bound is below 0, else inconclusive.
- same: reproduced when the 90 % CI (two one-sided tests at 5 %) lies inside (−margin, +margin), not
  reproduced when it lies wholly outside, else inconclusive. not_greater: reproduced when the upper bound
  is below +margin, not reproduced when the lower bound is above it, else inconclusive.
- below / above: the mean of a against `value`, one-sided like greater.
- untestable: both sides sit at the metric's floor or ceiling on (nearly) every problem, or the minimal
  detectable effect is larger than the room the metric has to move.

The CI is a BCa bootstrap with 10,000 resamples (a moving-block bootstrap for per-step series, whose
steps are not independent). With several bases (rows of a and b), bases are resampled as well as
problems, independently: every base is scored on the same problems, so the design is crossed. The minimal detectable effect (MDE) is the true difference a one-sided 5 %
test finds with 80 % power at this number of problems and this spread of the differences (for series:
from the block bootstrap's standard error). Untestable replaces an inconclusive verdict only: a clear
difference found near a ceiling still counts. Fewer than 2 values, or only non-finite ones: untestable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from pipelines.study.schema import CLAIM_KINDS as KINDS

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, UNTESTABLE = "reproduced", "not reproduced", "inconclusive", "untestable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, UNTESTABLE)
ALPHA, POWER, N_BOOT = 0.05, 0.80, 10_000
AT_BOUND_SHARE = 0.95  # untestable when both sides sit at one bound on this share of the problems
_Z = NormalDist()


@dataclass(frozen=True)
class Judgement:
    verdict: str
    diff: float  # mean of a - b (or of a, for below / above)
    ci: tuple[float, float]  # the 90 % two-sided interval: each side is a one-sided 95 % bound
    mde: float
    margin: float | None
    n: int
    why: str = ""  # for untestable: what makes the claim untestable here


def _boot_means(x: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """Bootstrap means of a (bases, n) array: the column draws `cols` (n_boot, n) are shared by every base,
    as every base is scored on the same problems (steps); with several bases, bases are drawn too,
    independently (a crossed two-level bootstrap). One base, or bases that agree exactly: the base draw
    changes nothing and this is the one-level bootstrap of the base-averaged values."""
    per_base = x[:, cols].mean(axis=2)  # (bases, n_boot)
    if x.shape[0] == 1:
        return per_base[0]
    picks = np.random.default_rng([seed, 1]).integers(0, x.shape[0], size=(cols.shape[0], x.shape[0]))
    return per_base[picks.T, np.arange(cols.shape[0])].mean(axis=0)


def bca_ci(x, level: float = 1 - 2 * ALPHA, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Bias-corrected and accelerated bootstrap CI of the mean of x, and the bootstrap standard error.
    x: values per problem, or a (bases, problems) array (see _boot_means)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    theta = float(x.mean())
    n = x.shape[1]
    if x.size < 2 or np.all(x == x.flat[0]):
        return theta, theta, 0.0
    cols = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boots = _boot_means(x, cols, seed)
    below = float(np.mean(boots < theta)) + 0.5 * float(np.mean(boots == theta))
    z0 = _Z.inv_cdf(min(max(below, 1e-6), 1 - 1e-6))
    col = x.mean(axis=0)  # acceleration from the leave-one-problem-out means of the base-averaged values
    accel = 0.0
    if n > 1:
        jack = (col.sum() - col) / (n - 1)
        d = jack.mean() - jack
        denom = 6.0 * float((d ** 2).sum()) ** 1.5
        accel = float((d ** 3).sum()) / denom if denom > 0 else 0.0
    tail = (1 - level) / 2
    qs = []
    for z in (_Z.inv_cdf(tail), _Z.inv_cdf(1 - tail)):
        adjusted = z0 + (z0 + z) / (1 - accel * (z0 + z))
        qs.append(_Z.cdf(adjusted))
    lo, hi = np.quantile(boots, qs)
    return float(lo), float(hi), float(boots.std(ddof=1))


def block_ci(x, level: float = 1 - 2 * ALPHA, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Moving-block bootstrap (percentile) CI of the mean of a series whose neighbours are correlated, and
    the bootstrap standard error. Blocks of about sqrt(n) steps keep most of the correlation inside them.
    x: one series, or a (bases, steps) array whose bases are drawn too (see _boot_means)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    n = x.shape[1]
    if x.size < 2 or np.all(x == x.flat[0]):
        return float(x.mean()), float(x.mean()), 0.0
    block = max(1, math.ceil(math.sqrt(n)))
    starts = np.random.default_rng(seed).integers(0, n - block + 1, size=(n_boot, math.ceil(n / block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :n]
    boots = _boot_means(x, idx, seed)
    tail = (1 - level) / 2
    lo, hi = np.quantile(boots, [tail, 1 - tail])
    return float(lo), float(hi), float(boots.std(ddof=1))


def mde(diffs) -> float:
    """Minimal detectable mean difference: one-sided 5 % test, 80 % power, this n and spread."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.inf
    return (_Z.inv_cdf(1 - ALPHA) + _Z.inv_cdf(POWER)) * float(d.std(ddof=1)) / math.sqrt(d.size)


def judge(kind: str, a, b=None, *, margin: float | None = None, value: float | None = None,
          bounds: tuple[float, float] | None = (0.0, 1.0), series: bool = False, seed: int = 0) -> Judgement:
    """The verdict on one claim (see the module doc). `bounds` are the metric's floor and ceiling (None
    for an unbounded one such as errors per sample); `series`: a and b are per-step logs. a and b may be
    (bases, problems) arrays, paired by column: the CI then resamples bases and problems (crossed), and
    the MDE is read from that bootstrap's standard error, so it counts both levels."""
    if kind not in KINDS:
        raise ValueError(f"claim kind must be one of {', '.join(KINDS)} (got '{kind}')")
    a = np.asarray(a, dtype=float)
    levels = a.ndim
    if levels not in (1, 2):
        raise ValueError(f"values must be one row per base or a flat list (got {levels} dimensions)")
    a = np.atleast_2d(a)
    paired = kind in ("greater", "same", "not_greater")
    if paired:
        b = np.atleast_2d(np.asarray(b, dtype=float))
        if b.shape != a.shape:
            raise ValueError(f"paired values must have equal length (got {a.shape[-1]} and {b.shape[-1]})"
                             if a.shape[0] == b.shape[0] else f"paired values need the same bases (got {a.shape[0]} "
                             f"and {b.shape[0]})")
        keep = np.all(np.isfinite(a) & np.isfinite(b), axis=0)  # a step that did not log the metric is not evidence
        a, b = a[:, keep], b[:, keep]
        x = a - b
    else:
        if value is None:
            raise ValueError(f"a '{kind}' claim needs value=")
        a = a[:, np.all(np.isfinite(a), axis=0)]
        x = a - value
    if kind in ("same", "not_greater") and margin is None:
        raise ValueError(f"a '{kind}' claim needs an equivalence margin")
    unit = "steps" if series else "problems"
    n = x.shape[1]
    if n < 2:
        return Judgement(UNTESTABLE, float(x.mean()) if x.size else math.nan, (math.nan, math.nan), math.inf,
                         margin, int(n), f"fewer than 2 {unit} with data")
    z = _Z.inv_cdf(1 - ALPHA) + _Z.inv_cdf(POWER)
    if series:  # correlated steps carry less information than their count: the block bootstrap's SE
        lo, hi, se = block_ci(x, seed=seed)
        effect = z * se
    else:
        lo, hi, se = bca_ci(x, seed=seed)
        effect = mde(x[0]) if x.shape[0] == 1 else z * se
    diff = float(x.mean())
    verdict = _verdict(kind, lo, hi, margin)
    # at a floor or ceiling, or with no room to detect a gain, agreement proves nothing; a clear
    # difference that was nevertheless found still counts
    if verdict == INCONCLUSIVE or kind in ("same", "not_greater"):
        why = _untestable(kind, a, b if paired else None, effect, bounds, value, unit)
        if why:
            return Judgement(UNTESTABLE, diff, (lo, hi), effect, margin, int(n), why)
    return Judgement(verdict, diff, (lo, hi), effect, margin, int(n))


def _verdict(kind: str, lo: float, hi: float, margin: float | None) -> str:
    if kind in ("greater", "above"):
        return REPRODUCED if lo > 0 else NOT_REPRODUCED if hi < 0 else INCONCLUSIVE
    if kind == "below":
        return REPRODUCED if hi < 0 else NOT_REPRODUCED if lo > 0 else INCONCLUSIVE
    if kind == "same":
        return (REPRODUCED if -margin < lo and hi < margin else
                NOT_REPRODUCED if lo >= margin or hi <= -margin else INCONCLUSIVE)
    return REPRODUCED if hi < margin else NOT_REPRODUCED if lo >= margin else INCONCLUSIVE  # not_greater


def _untestable(kind: str, a, b, effect: float, bounds, value, unit: str) -> str:
    if bounds is None:
        return ""
    floor, ceiling = bounds
    sides = [a] if b is None else [a, b]
    for bound, name in ((floor, "floor"), (ceiling, "ceiling")):
        at = np.all([np.isclose(s, bound) for s in sides], axis=0)
        if at.size and at.mean() >= AT_BOUND_SHARE and (b is not None or np.isclose(bound, value)):
            return f"both sides at the {name} ({bound:g}) on {int(at.sum())} of {at.size} {unit}"
    if kind == "greater":
        room = ceiling - float(b.mean())
        if effect > room:
            return f"the smallest detectable gain ({effect:.3f}) exceeds the room above the baseline ({room:.3f})"
    return ""
