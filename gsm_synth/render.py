"""Text of a problem: statements, question, gold solution, and the solution template (iGSM's sketch)."""
from __future__ import annotations

import hashlib
import heapq
import random
import string

from .arith import Arithmetic, format_form
from .build import AGGREGATE, Node
from .context import Context

_SYMBOLS = list(string.ascii_letters)
# Expression of each form over operand symbols/values A, B, C and constant k, as the solution writes it.
EXPRESSIONS = {
    "const": "{k}", "copy": "{A}", "add_const": "{A} + {k}", "sub_const": "{A} - {k}", "mul_const": "{k} * {A}",
    "add": "{A} + {B}", "sub": "{A} - {B}", "mul": "{A} * {B}", "add_const2": "{A} + {B} + {k}",
    "mul_const2": "{k} * ({A} + {B})", "add3": "{A} + {B} + {C}", "add_sub": "{A} + {B} - {C}",
}


def _pool(n: int) -> list[str]:
    return _SYMBOLS if n <= len(_SYMBOLS) else _SYMBOLS + [a + d for a in _SYMBOLS for d in string.digits]


def symbols(n: int, rng: random.Random) -> list[str]:
    """Random distinct letters, as iGSM (a solver must not rely on which letter means what)."""
    return rng.sample(_pool(n), n)


def ordered(n: int) -> list[str]:
    """a, b, c, ... in step order: no randomness for a small model to waste capacity on."""
    return _pool(n)[:n]


class Namer:
    def __init__(self, ctx: Context, groups: list[str], items: list[str]):
        self.ctx, self.groups, self.items = ctx, groups, items

    def _fill(self, templates: dict, n: Node) -> str:
        if n.kind == AGGREGATE:
            return templates[AGGREGATE].format(group=self.groups[n.group])
        return templates["instance"].format(item=self.items[n.item], group=self.groups[n.group])

    def name(self, n: Node) -> str:
        return self._fill(self.ctx.names, n)

    def ref(self, n: Node) -> str:
        return self._fill(self.ctx.refs, n)

    def question(self, n: Node) -> str:
        return self._fill(self.ctx.questions, n)


def _sentence_start(ref: str) -> str:
    # Only a leading article is capitalised: names themselves (e.g. symbolic 'v1 of P') keep their case.
    return "The" + ref[3:] if ref.startswith("the ") else ref


def statements(nodes: list[Node], namer: Namer, sink: int, reverse: bool, shuffle: float,
               rng: random.Random) -> tuple[list[str], list[int]]:
    """Statement texts in problem order, and for each the node it defines (-1: the given value of the
    sink in reverse mode)."""
    st = namer.ctx.statements
    refs = [namer.ref(n) for n in nodes]
    keyed = []
    for j, n in enumerate(nodes):
        if n.kind == AGGREGATE:
            continue  # implicit: never stated
        T = _sentence_start(refs[j])
        if n.unknown:
            text = st["unknown"].format(T=T)
        else:
            ops = dict(zip("ABC", (refs[p] for p in n.params)))
            text = st[n.form].format(T=T, k=n.const, **ops)
        keyed.append((n.pos, j, text))
    if reverse:
        keyed.append((nodes[sink].pos + 1e-6, -1,
                      st["known"].format(T=_sentence_start(refs[sink]), k=nodes[sink].true)))
    keyed.sort()
    if shuffle >= 1.0:
        rng.shuffle(keyed)
    elif shuffle > 0.0:  # local shuffle: each statement moves about shuffle * len places
        noisy = sorted(range(len(keyed)), key=lambda i: i + shuffle * len(keyed) * rng.random())
        keyed = [keyed[i] for i in noisy]
    return [t for _, _, t in keyed], [j for _, j, _ in keyed]


def reading_order(nodes: list[Node], owners: list[int]) -> list[int]:
    """The gold step order: repeatedly take a ready aggregate (all its members known), else the ready
    parameter whose statement comes first in the problem - what a reader scanning the text would do."""
    position = {j: i for i, j in enumerate(owners) if j >= 0}
    return _kahn(nodes, lambda j: (0, 0) if nodes[j].kind == AGGREGATE else (1, position[j]))


def canonical_order(nodes: list[Node], names: list[str]) -> list[int]:
    """A topological order that ignores statement order (ties broken by name): values are assigned in
    this order, so shuffled versions of one problem share their values."""
    return _kahn(nodes, lambda j: names[j])


def _kahn(nodes: list[Node], key) -> list[int]:
    need = [j for j, n in enumerate(nodes) if n.necessary]
    indeg = {j: len(nodes[j].params) for j in need}
    children: dict[int, list[int]] = {j: [] for j in need}
    for j in need:
        for p in nodes[j].params:
            children[p].append(j)
    heap = [(key(j), j) for j in need if indeg[j] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, j = heapq.heappop(heap)
        order.append(j)
        for c in children[j]:
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(heap, (key(c), c))
    return order


def template(nodes: list[Node], sink: int, reverse: bool) -> str:
    """The solution template as a canonical form of the computation graph (the question and its
    ancestors): each node is its kind, operation and whether it holds a constant or the unknown, over
    its operands' forms, so names, numbers, symbols and statement order are all abstracted away and
    isomorphic graphs give the same text. Operands are sorted where the operation commutes."""
    memo: dict[int, str] = {}

    def form(j: int) -> str:
        if j not in memo:
            n = nodes[j]
            operands = [form(p) for p in n.params]
            if n.form == "sub":  # A - B: the order is the operation
                pass
            elif n.form == "add_sub":  # A + B - C: A and B commute
                operands = sorted(operands[:2]) + operands[2:]
            else:
                operands = sorted(operands)
            label = f"{n.kind[0]}{n.form}{n.has_const:d}{n.unknown:d}"
            # a digest per node keeps the text short however often a sub-graph is shared
            memo[j] = hashlib.sha256(f"{label}({','.join(operands)})".encode()).hexdigest()[:16]
        return memo[j]

    return ("R" if reverse else "F") + "|" + form(sink)


def _atom(text: str) -> str:
    return f"({text})" if " " in text else text


def solution(nodes: list[Node], order: list[int], names: list[str], sink: int, reverse: bool,
             ar: Arithmetic, rng: random.Random, ordered_symbols: bool = False) -> tuple[list[str], list[str], int]:
    """(steps, tail equations, answer) of the gold solution, one step per node of `order`."""
    syms = dict(zip(order, ordered(len(order)) if ordered_symbols else symbols(len(order), rng)))
    unknown = next((syms[j] for j in order if nodes[j].unknown), "x")
    steps = []
    for j in order:
        n, s = nodes[j], syms[j]
        if n.unknown:
            steps.append(f"Define {names[j]} as {s}; so {s} is unknown.")
            continue
        result = format_form(n.value, unknown)
        # An operand that is itself a sum of terms is bracketed, unless it stands alone.
        wrap = str if n.form == "copy" or (n.form == "sum" and len(n.params) == 1) else _atom
        vals = [wrap(format_form(nodes[p].value, unknown)) for p in n.params]
        if n.form == "sum":
            by_sym = " + ".join(syms[p] for p in n.params)
            by_val = " + ".join(vals)
        else:
            tmpl = EXPRESSIONS[n.form]
            by_sym = tmpl.format(k=n.const, **dict(zip("ABC", (syms[p] for p in n.params))))
            by_val = tmpl.format(k=n.const, **dict(zip("ABC", vals)))
        chain = [by_sym]
        for e in (by_val, result):
            if e != chain[-1]:
                chain.append(e)
        steps.append(f"Define {names[j]} as {s}; so {s} = {' = '.join(chain)}.")
    tail = []
    if reverse:
        (a, b), v = nodes[sink].value, nodes[sink].true
        eqs = [(format_form((a, b), unknown), v)]
        lhs, rhs = ((-a, 0), b - v) if a < 0 else ((a, 0), ar.norm(v - b))
        eqs.append((format_form(lhs, unknown), rhs))
        eqs.append((unknown, ar.solve(lhs, rhs)))
        tail.append(f"We know {syms[sink]} = {v}")
        for left, right in eqs:
            if f"so {left} = {right}" != tail[-1]:
                tail.append(f"so {left} = {right}")
        answer = next(nodes[j].true for j in order if nodes[j].unknown)
    else:
        answer = nodes[sink].true
    return steps, tail, answer
