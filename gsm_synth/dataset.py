"""Many problems at once: op/context/mode mixtures, deterministic rows, several processes, JSONL files."""
from __future__ import annotations

import multiprocessing as mp
import random
import sys
import time
from collections.abc import Iterator, Sequence

from . import atomic
from .context import get_context
from .problem import MODES, generate

_CHUNK = 256


def parse_ops(spec) -> list[int]:
    """'2-10', '5', '2,4,8' or '2-4,9' -> sorted list of ops."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    if isinstance(spec, (list, tuple)):
        return sorted({o for s in spec for o in parse_ops(s)})
    ops = set()
    for part in str(spec).replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"ops must look like '2-10', '5' or '2,4,8' (got '{spec}')")
        lo_i, hi_i = int(lo), int(hi or lo)
        if lo_i > hi_i:
            raise ValueError(f"op range '{part}' is empty (start > end)")
        ops.update(range(lo_i, hi_i + 1))
    return sorted(ops)


def _names(spec) -> list[str]:
    return [s for s in (spec.split(",") if isinstance(spec, str) else list(spec)) if s]


def check_mixture(ops, contexts, modes) -> tuple[list[int], list[str], list[str]]:
    """Validate a mixture up front so that bad input fails before any work, with one clear line."""
    ops, contexts, modes = parse_ops(ops), _names(contexts), _names(modes)
    if not contexts:
        raise ValueError("contexts is empty")
    for c in contexts:
        ctx = get_context(c)
        if ops[0] < 1 or ops[-1] > ctx.max_op:
            raise ValueError(f"op must be from 1 to {ctx.max_op} for context '{ctx.name}' (got ops {ops[0]}-{ops[-1]})")
    for m in modes or [""]:
        if m not in MODES:
            raise ValueError(f"unknown mode '{m}' (valid: {', '.join(MODES)})")
    return ops, contexts, modes


def row(j: int, ops: Sequence[int], contexts: Sequence[str], modes: Sequence[str], seed: int, options: dict) -> dict:
    """Row j of a mixture: its op/context/mode are drawn from (seed, j) alone, so rows are independent."""
    rng = random.Random(f"mix:{seed}:{j}")
    op, context, mode = rng.choice(ops), rng.choice(contexts), rng.choice(modes)
    return generate(op, context, mode, seed=seed, index=j, **options).to_dict()


def _rows_chunk(args) -> list[dict]:
    start, stop, ops, contexts, modes, seed, options = args
    return [row(j, ops, contexts, modes, seed, options) for j in range(start, stop)]


def rows(ops="2-10", contexts="zoo", modes="forward", n: int = 1000, seed: int = 0, workers: int = 1,
         progress: bool = False, **options) -> Iterator[dict]:
    """Rows 0..n-1 of a mixture; the same with any number of workers."""
    ops, contexts, modes = check_mixture(ops, contexts, modes)
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (got {workers})")
    # Workers get file paths, so contexts registered in this process resolve there too.
    paths = [get_context(c).source for c in contexts]
    jobs = [(s, min(s + _CHUNK, n), ops, paths, modes, seed, options) for s in range(0, n, _CHUNK)]
    bar = _Progress(n) if progress else None
    if workers == 1 or len(jobs) <= 1:
        results = map(_rows_chunk, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(workers)
        results = pool.imap(_rows_chunk, jobs)
    try:
        for chunk in results:
            yield from chunk
            if bar:
                bar.update(len(chunk))
    finally:
        if pool:
            pool.terminate()
        if bar:
            bar.close()


def write_jsonl(items, out: str) -> int:
    """Write rows to `out` atomically (a temporary file renamed at the end); returns the count."""
    return atomic.write_jsonl(items, out, ensure_ascii=False)


class _Progress:
    """A one-line progress bar on stderr (no dependency: gsm_synth stays plain Python)."""

    def __init__(self, total: int):
        self.total, self.done, self.start, self.last = total, 0, time.monotonic(), 0.0
        self.tty = sys.stderr.isatty()

    def update(self, k: int) -> None:
        self.done += k
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 5.0) and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0.0
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(30 * frac)
        line = f"generating [{bar:<30}] {self.done}/{self.total} {rate:,.0f}/s eta {eta:.0f}s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
