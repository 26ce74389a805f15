"""A golden corpus: a small, versioned set of generated problems written once and checked later, so a
change that alters what the generator makes (a template word, a value, a pool) shows at once.

    python -m gsm_synth golden out=golden/ ops=1-20 contexts=zoo,school n=2 [modes=forward,reverse seed=0]
    python -m gsm_synth check-golden golden/

A corpus folder holds corpus.jsonl (per problem: the problem, question, gold solution, answer, ids,
template hash, pool and a graph summary) and manifest.json (how to regenerate it, its row count and
sha256). Checking regenerates every row from the manifest and names the first fields that differ.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .atomic import write_atomic, write_jsonl
from .dataset import check_mixture
from .problem import generate

FORMAT = 1
CORPUS, MANIFEST = "corpus.jsonl", "manifest.json"


def golden_rows(ops: list[int], contexts: list[str], modes: list[str], n: int, seed: int, options: dict):
    for op in ops:
        for context in contexts:
            for mode in modes:
                for index in range(n):
                    p = generate(op, context, mode, seed=seed, index=index, **options)
                    g = p.graph
                    yield {**p.to_dict(), "pool": p.pool,
                           "graph": {"nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
                                     "necessary": sum(1 for _, d in g.nodes(data=True) if d.get("necessary"))}}


def write_golden(out, ops: str, contexts, modes, n: int, seed: int, options: dict) -> int:
    op_list, context_list, mode_list = check_mixture(ops, contexts, modes)
    out = Path(out)
    rows = list(golden_rows(op_list, context_list, mode_list, n, seed, options))
    write_jsonl(rows, out / CORPUS, ensure_ascii=False)
    manifest = {"format": FORMAT, "ops": ops, "contexts": context_list, "modes": mode_list, "n": n, "seed": seed,
                "options": options, "rows": len(rows), "sha256": _sha256(out / CORPUS)}
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return len(rows)


def check_golden(folder) -> list[str]:
    """The differences between a corpus and what the generator makes now (empty: unchanged)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        stored = [json.loads(line) for line in (folder / CORPUS).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder} is not a golden corpus ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or not all(isinstance(r, dict) for r in stored):
        raise ValueError(f"{folder} is not a golden corpus (its manifest or rows are not JSON objects)")
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder}: corpus format {manifest.get('format')} is not {FORMAT}; write it again")
    problems = []
    if _sha256(folder / CORPUS) != manifest.get("sha256"):
        problems.append(f"{CORPUS} was edited after it was written (its sha256 differs from the manifest's)")
    try:
        op_list, contexts, modes = check_mixture(manifest["ops"], manifest["contexts"], manifest["modes"])
        fresh = list(golden_rows(op_list, contexts, modes, int(manifest["n"]), int(manifest["seed"]),
                                 dict(manifest["options"])))
    except (KeyError, TypeError) as e:
        raise ValueError(f"{folder}/{MANIFEST} is damaged ({type(e).__name__}: {e}); write the corpus again") from None
    if len(fresh) != len(stored):
        problems.append(f"{len(stored)} rows stored, {len(fresh)} generated")
    for old, new in zip(stored, fresh):
        fields = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if fields:
            problems.append(f"op {new['op']} {new['context']} {new['mode']} index {new['index']}: "
                            f"{', '.join(fields)} changed")
    return problems


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
