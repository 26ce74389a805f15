"""Atomic file writes: readers see the old file or the new one, never half of one (a killed run loses
nothing it had finished). The one place every layer writes files through."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_open(path, mode: str = "w"):
    """Write to a temporary sibling of `path`; it replaces `path` only when the block ends cleanly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path, data: bytes | str) -> None:
    """`data` (text is written as UTF-8) replaces `path` in one step."""
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def write_jsonl(items, path, **dumps) -> int:
    """One JSON object per line (json.dumps keyword arguments in `dumps`), atomically; returns the count."""
    count = 0
    with atomic_open(path) as f:
        for item in items:
            f.write(json.dumps(item, **dumps) + "\n")
            count += 1
    return count
