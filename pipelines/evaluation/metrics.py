"""The metrics of an evaluation, as plain functions of counts: unbiased pass@k, maj@k, a bootstrap CI, and
the names their rows use. No torch: claims, reports and plots read them too."""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from numbers import Integral

import numpy as np

FLAVOURS = ("outcome", "process")
MAJ_SUBSETS = 32  # random k-subsets averaged by maj@k when enumerating them all would cost more


def _whole(name: str, value) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"pass@k needs whole numbers (got {name}={value!r})")
    return int(value)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    The ratio is computed as prod_{i=n-c+1..n} (1 - k/i): every factor lies in [0, 1), so nothing
    overflows at n = 128 (C(128, 64) ~ 2e37 would be fine in Python ints but not as floats).
    """
    n, c, k = _whole("n", n), _whole("c", c), _whole("k", k)
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n (got k={k}, n={n})")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n (got c={c}, n={n})")
    if c == 0:
        return 0.0
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        all_wrong *= 1.0 - k / i
    return 1.0 - all_wrong


def majority_score(votes, truth: int) -> float:
    """1 if the most frequent answer is `truth`, 0 if not. None never votes (no votes scores 0).

    A tie between t answers scores 1/t when truth is among them: the expected score of breaking the
    tie uniformly at random, which is deterministic and favours no answer.
    """
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    winners = [a for a, c in counts.items() if c == top]
    return (truth in winners) / len(winners)


def maj_at_k(answers: list[int | None], truth: int, k: int, rng=None, n_subsets: int = MAJ_SUBSETS) -> float:
    """Probability that the majority answer of k of the samples (drawn without replacement) is right.

    Exact when there are at most n_subsets k-subsets (k = n, k = 1, small n): they are all enumerated.
    Otherwise the mean over n_subsets random k-subsets from `rng` (a random.Random or an int seed).
    """
    n = len(answers)
    if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n:
        raise ValueError(f"maj@k needs 1 <= k <= n (got k={k!r}, n={n})")
    if k == 1:  # a lone vote always wins: exactly the fraction of right answers
        return sum(a is not None and a == truth for a in answers) / n
    if math.comb(n, k) <= n_subsets:
        subsets = itertools.combinations(answers, k)
    else:
        rng = rng if isinstance(rng, random.Random) else random.Random(rng or 0)
        subsets = (rng.sample(answers, k) for _ in range(n_subsets))
    scores = [majority_score(s, truth) for s in subsets]
    return sum(scores) / len(scores)


def bootstrap_ci(values, stat=np.mean, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of stat(values), resampling the values (problems) with replacement."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    if stat is np.mean:  # the common case, vectorised
        boots = x[idx].mean(axis=1)
    else:
        boots = np.array([stat(x[i]) for i in idx], dtype=float)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(boots, [tail, 1.0 - tail])
    return float(lo), float(hi)


def sample_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself when it is not a power of two."""
    ks = [1 << e for e in range(n.bit_length()) if 1 << e <= n]
    return ks if ks[-1] == n else ks + [n]


def metric_key(metric: str, k: int) -> str:
    """Row key of a metric: metric_key('outcome', 8) -> 'outcome_pass@8'; metric_key('maj', 8) -> 'maj@8'."""
    return f"maj@{k}" if metric == "maj" else f"{metric}_pass@{k}"
