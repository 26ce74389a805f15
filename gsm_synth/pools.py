"""Split hygiene: which pool a problem belongs to, and how much two pools overlap.

Every problem belongs to exactly one pool, decided by its own hashes, so pools are disjoint by
construction:
- From op >= TEMPLATE_SPLIT_MIN_OP, iGSM's template rule: a problem is an eval problem iff its solution
  template hashes into buckets 16..22 of 23. The template is a canonical form of the computation graph
  (render.template: names, numbers, symbols and statement order abstracted, operands sorted where the
  operation commutes), so isomorphic computation graphs always share a pool: no eval computation graph
  occurs in a training pool (bench/split_hygiene.py measures it with networkx isomorphism).
- Below that op there are too few templates to split (each op level would vanish from one side), so
  the canonical problem hash decides instead (EVAL_SHARE of the hash space).
- Training problems are split between pretrain / midtrain / rl by another slice of the problem hash.
"""
from __future__ import annotations

from collections.abc import Iterable

POOLS = ("pretrain", "midtrain", "rl", "eval")
TEMPLATE_BUCKETS = 23
EVAL_BUCKETS = range(16, 23)
TEMPLATE_SPLIT_MIN_OP = 5  # below, an op level has <= ~40 templates (measured: 1, 2, 6, 33 for op 1-4)
EVAL_SHARE = 0.10
TRAIN_SHARES = (("pretrain", 0.6), ("midtrain", 0.2), ("rl", 0.2))
MAX_POOL_ATTEMPTS = 2000


def is_eval(op: int, problem_id: str, template_hash: str) -> bool:
    if op >= TEMPLATE_SPLIT_MIN_OP:
        return int(template_hash, 16) % TEMPLATE_BUCKETS in EVAL_BUCKETS
    return int(problem_id[:8], 16) / 16**8 < EVAL_SHARE


def pool_of(problem) -> str:
    """The pool of a Problem or of a row dict with op, id and template_hash."""
    get = problem.get if isinstance(problem, dict) else lambda k: getattr(problem, k)
    if is_eval(get("op"), get("id"), get("template_hash")):
        return "eval"
    u = int(get("id")[8:16], 16) / 16**8
    for name, share in TRAIN_SHARES:
        if u < share:
            return name
        u -= share
    return TRAIN_SHARES[-1][0]


def overlap(a: Iterable, b: Iterable) -> dict:
    """Shared problem ids and shared solution templates between two collections of problems/rows.

    Returns counts and a few examples: {'ids': n, 'templates': n, 'id_examples': [...], ...}.
    Templates are only compared from op >= TEMPLATE_SPLIT_MIN_OP, where the template rule applies.
    """
    def keys(rows):
        ids, templates = set(), set()
        for r in rows:
            get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k)
            ids.add(get("id"))
            if get("op") >= TEMPLATE_SPLIT_MIN_OP:
                templates.add(get("template_hash"))
        return ids, templates

    ia, ta = keys(a)
    ib, tb = keys(b)
    shared_ids, shared_t = ia & ib, ta & tb
    return {"ids": len(shared_ids), "templates": len(shared_t),
            "id_examples": sorted(shared_ids)[:5], "template_examples": sorted(shared_t)[:5],
            "sizes": (len(ia), len(ib))}


def computation_graph(problem):
    """The question and its ancestors as a networkx DiGraph labelled for isomorphism checks: node
    'label' = kind, operation and whether it is the unknown; edge 'role' = the operand's position where
    the operation does not commute (A - B; the C of A + B - C), else 0."""
    import networkx as nx

    g = problem.graph
    question = g.graph["question"]
    keep = nx.ancestors(g, question) | {question}
    out = nx.DiGraph()
    for v in keep:
        d = g.nodes[v]
        out.add_node(v, label=(d["kind"], d.get("form", ""), bool(d.get("unknown"))))
    for a, b, d in g.subgraph(keep).edges(data=True):
        form, i = g.nodes[b].get("form", ""), d.get("operand", 0)
        role = i if form == "sub" else int(i >= 2) if form == "add_sub" else 0
        out.add_edge(a, b, role=role)
    return out
