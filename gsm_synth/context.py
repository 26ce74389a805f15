"""Contexts are data: one YAML file each (name pools, naming, implicit aggregation, sentence templates).

Built-in contexts live in `gsm_synth/contexts/`. Users add one by dropping a YAML file into a directory
registered with `register_context_dir` (or listed in the env var GSM_SYNTH_CONTEXTS, separated by ':'),
or by passing the file's path as the context name. A malformed file is rejected with one line naming the
bad field.
"""
from __future__ import annotations

import os
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .words import PUNCTUATION

BUILTIN_DIR = Path(__file__).parent / "contexts"
_user_dirs: list[Path] = []

# Statement forms and the placeholders each template must use (exactly these).
FORM_FIELDS = {
    "const": {"T", "k"},
    "copy": {"T", "A"},
    "add_const": {"T", "A", "k"},
    "sub_const": {"T", "A", "k"},
    "mul_const": {"T", "A", "k"},
    "add": {"T", "A", "B"},
    "sub": {"T", "A", "B"},
    "mul": {"T", "A", "B"},
    "add_const2": {"T", "A", "B", "k"},
    "mul_const2": {"T", "A", "B", "k"},
    "add3": {"T", "A", "B", "C"},
    "add_sub": {"T", "A", "B", "C"},
    "unknown": {"T"},
    "known": {"T", "k"},
}
KIND_FIELDS = {"instance": {"item", "group"}, "aggregate": {"group"}}
# Characters a name may not hold: the solution format and the verifier split on them.
_FORBIDDEN_IN_NAMES = set(PUNCTUATION) | set("{}<>\n\t")


class ContextError(ValueError):
    """A context that cannot be used; the message is one line naming the file and field."""


@dataclass(frozen=True)
class Context:
    name: str
    description: str
    groups: dict[str, tuple[str, ...]]  # sub-pool name -> names (layer 0)
    items: dict[str, tuple[str, ...]]  # sub-pool name -> names (layer 1)
    names: dict[str, str]
    refs: dict[str, str]
    questions: dict[str, str]
    statements: dict[str, str]
    aggregate_hint: str
    source: str

    @property
    def n_groups(self) -> int:
        return len({g for pool in self.groups.values() for g in pool})

    @property
    def n_items(self) -> int:
        return len({i for pool in self.items.values() for i in pool})

    @property
    def max_op(self) -> int:
        """Largest op this context can hit exactly: every necessary instance parameter needs its own
        (group, item) slot, and each parameter costs at least one edge."""
        return self.n_groups * self.n_items


def register_context_dir(path: str | os.PathLike) -> None:
    """Make every `*.yaml` in `path` available by its `name` field."""
    p = Path(path)
    if not p.is_dir():
        raise ContextError(f"context directory {p} does not exist")
    if p not in _user_dirs:
        _user_dirs.append(p)
    _index.cache_clear()


def _search_dirs() -> list[Path]:
    env = [Path(d) for d in os.environ.get("GSM_SYNTH_CONTEXTS", "").split(":") if d]
    return [BUILTIN_DIR, *_user_dirs, *env]


@lru_cache(maxsize=None)
def _index() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in _search_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def list_contexts() -> list[str]:
    return sorted(_index())


def get_context(name: str) -> Context:
    """A context by registered name, or by the path of a YAML file."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        return _load_file(str(Path(name).resolve()))
    path = _index().get(name)
    if path is None:
        raise ContextError(f"unknown context '{name}' (available: {', '.join(list_contexts())})")
    return _load_file(str(path))


@lru_cache(maxsize=None)
def _load_file(path: str) -> Context:
    p = Path(path)
    if not p.is_file():
        raise ContextError(f"context file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ContextError(f"context file {p}: not valid YAML ({first})") from None
    return parse_context(raw, source=str(p))


def parse_context(raw, source: str = "<dict>") -> Context:
    """Validate a loaded YAML mapping and build a Context."""

    def fail(field: str, why: str):
        raise ContextError(f"context file {source}: field '{field}' {why}")

    if not isinstance(raw, dict):
        fail("<top>", "must be a mapping")
    known = {"name", "description", "groups", "items", "names", "refs", "questions", "statements", "aggregate_hint"}
    for key in raw:
        if key not in known:
            fail(str(key), f"is not a context field (expected one of: {', '.join(sorted(known))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or not name.replace("_", "").replace("-", "").isalnum():
        fail("name", "must be a non-empty word (letters, digits, '-' or '_')")

    def pools(field: str) -> dict[str, tuple[str, ...]]:
        value = raw.get(field)
        if isinstance(value, list) and value:
            value = {"all": value}
        if not isinstance(value, dict) or not value:
            fail(field, "must be a non-empty mapping of sub-pool name -> list of names")
        out = {}
        for sub, names in value.items():
            where = f"{field}.{sub}"
            if not isinstance(names, list) or not names:
                fail(where, "must be a non-empty list of names")
            for n in names:
                if not isinstance(n, str) or not n.strip() or n != n.strip():
                    fail(where, f"has an empty or padded name: {n!r}")
                bad = set(n) & _FORBIDDEN_IN_NAMES
                if bad or " as " in f" {n} " or "Define" in n or n.isdigit():
                    fail(where, f"name {n!r} may not be digits only, contain 'as' or 'Define', or any of {PUNCTUATION}{{}}<>")
            if len(set(names)) != len(names):
                fail(where, "has duplicate names")
            out[str(sub)] = tuple(names)
        return out

    groups, items = pools("groups"), pools("items")

    def templates(field: str, required: dict[str, set[str]]) -> dict[str, str]:
        value = raw.get(field)
        if not isinstance(value, dict):
            fail(field, f"must be a mapping with keys {', '.join(required)}")
        for key in value:
            if key not in required:
                fail(f"{field}.{key}", f"is not a known key (expected: {', '.join(required)})")
        out = {}
        for key, need in required.items():
            t = value.get(key)
            if not isinstance(t, str) or not t.strip():
                fail(f"{field}.{key}", "is missing or not a string")
            try:
                used = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
            except ValueError as e:
                fail(f"{field}.{key}", f"is not a valid template ({e})")
            if used != need:
                fail(f"{field}.{key}", f"must use exactly the placeholders {{{'}, {'.join(sorted(need))}}} (found {sorted(used)})")
            out[key] = t
        return out

    names = templates("names", KIND_FIELDS)
    refs = templates("refs", KIND_FIELDS)
    questions = templates("questions", KIND_FIELDS)
    statements = templates("statements", FORM_FIELDS)
    hint = raw.get("aggregate_hint", "")
    if not isinstance(hint, str):
        fail("aggregate_hint", "must be a string")
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        fail("description", "must be a string")
    return Context(name, desc, groups, items, names, refs, questions, statements, hint.strip(), source)
