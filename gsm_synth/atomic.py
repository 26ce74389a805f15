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
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # name the file the user asked for, not our temporary one
        raise OSError(f"cannot write {path} ({e.strerror or e})") from None
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


def ensure_dir(path) -> Path:
    """`path` as an existing, writable directory (created if need be), or an OSError whose message is
    one line naming the real problem: a file in the way, no permission, a read-only place."""
    path = Path(path)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OSError(f"cannot write into {path} (permission denied)")
        return path
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise OSError(f"cannot use {path} as a directory: it is a file" if ancestor == path
                      else f"cannot create {path}: {ancestor} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create {path} ({e.strerror or e})") from None
    return path
