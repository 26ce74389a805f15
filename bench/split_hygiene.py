"""Split hygiene, measured independently of the template hash: which eval problems have a computation
graph isomorphic (networkx, labelled) to one in a training pool, and how often two indices of one
stream give the same problem.

    python bench/split_hygiene.py [--ops 5-10] [--eval 400] [--train 2000] [--contexts zoo,school,movie]

The graph of a problem is built here from its nodes (the question and its ancestors; node label = kind,
operation, constant operand, unknown; edge role = operand position where the operation does not
commute), not from gsm_synth's template, so the check does not trust what it checks.
"""
import argparse
import sys
from collections import defaultdict
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gsm_synth  # noqa: E402


def graph(problem) -> nx.DiGraph:
    nodes = problem._nodes
    keep, todo = set(), [problem._sink]
    while todo:
        j = todo.pop()
        if j not in keep:
            keep.add(j)
            todo.extend(nodes[j].params)
    g = nx.DiGraph()
    for j in keep:
        n = nodes[j]
        g.add_node(j, label=f"{n.kind}|{n.form}|{n.has_const}|{n.unknown}")
        for i, p in enumerate(n.params):
            role = i if n.form == "sub" else int(i >= 2) if n.form == "add_sub" else 0
            g.add_edge(p, j, role=str(role))
    return g


def wl(g: nx.DiGraph) -> str:
    return nx.weisfeiler_lehman_graph_hash(g, node_attr="label", edge_attr="role", iterations=4)


def same(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    return nx.is_isomorphic(a, b, node_match=lambda x, y: x["label"] == y["label"],
                            edge_match=lambda x, y: x["role"] == y["role"])


def draw(op, contexts, modes, pools, n):
    out = []
    per = max(1, n // (len(contexts) * len(modes) * len(pools)))
    for pool in pools:
        for context in contexts:
            for mode in modes:
                out += [gsm_synth.generate(op, context, mode, seed=7, index=i, pool=pool) for i in range(per)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="5-10")
    ap.add_argument("--eval", type=int, default=400, help="eval problems per op")
    ap.add_argument("--train", type=int, default=2000, help="training-pool problems per op")
    ap.add_argument("--contexts", default="zoo,school,movie")
    ap.add_argument("--modes", default="forward,reverse")
    a = ap.parse_args()
    lo, hi = (int(x) for x in a.ops.split("-"))
    contexts, modes = a.contexts.split(","), a.modes.split(",")
    leaked = total = merged = classes = 0
    for op in range(lo, hi + 1):
        ev = draw(op, contexts, modes, ["eval"], a.eval)
        tr = draw(op, contexts, modes, ["pretrain", "midtrain", "rl"], a.train)
        graphs = {id(p): graph(p) for p in ev + tr}  # each problem's graph, built once
        buckets = defaultdict(list)
        for p in tr:
            buckets[wl(graphs[id(p)])].append(graphs[id(p)])
        hits = sum(any(same(graphs[id(p)], h) for h in buckets.get(wl(graphs[id(p)]), ())) for p in ev)
        # the template's collision check: graphs sharing a template hash that are not isomorphic
        by_template = defaultdict(list)
        for p in ev + tr:
            by_template[p.template_hash].append(graphs[id(p)])
        for gs in by_template.values():
            reps = []
            for g in gs:
                if not any(same(g, r) for r in reps):
                    reps.append(g)
            classes += len(reps)
            merged += len(reps) - 1
        leaked, total = leaked + hits, total + len(ev)
        print(f"op {op}: {hits} of {len(ev)} eval graphs isomorphic to one of {len(tr)} training graphs", flush=True)
    print(f"ops {a.ops}: {leaked} of {total} eval graphs ({leaked / total:.1%}) are isomorphic to a training graph; "
          f"{merged} of {classes} isomorphism classes share a template hash with another class")
    # the same problem from two indices of one stream (within a pool, op and mode)
    for op in (1, 2, 3, 4, 5, 8):
        ids = [gsm_synth.generate(op, "zoo", "forward", seed=0, index=i, pool="pretrain").id for i in range(3000)]
        print(f"op {op}: {len(ids) - len(set(ids))} repeated problems in 3,000 indices (zoo, forward, pretrain)")


if __name__ == "__main__":
    main()
