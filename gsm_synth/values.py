"""Operations and numbers for a built DAG: which form each statement takes and every parameter's value.

The DAG fixes each statement's operand *signature* (how many parameters, whether a constant); op only
counts edges, so the operation itself (+, -, *) is free. It is chosen here, in topological order, so that
plain-integer values stay within GSM-Infinite's bounds and, in reverse mode, every value stays linear in
the unknown with a non-zero coefficient (so the final equation has exactly one solution).
"""
from __future__ import annotations

import itertools
import random

from .arith import Arithmetic
from .build import AGGREGATE, Node

FORMS = {
    (0, True): ("const",),
    (1, False): ("copy",),
    (1, True): ("add_const", "sub_const", "mul_const"),
    (2, False): ("add", "sub", "mul"),
    (2, True): ("add_const2", "mul_const2"),
    (3, False): ("add3", "add_sub"),
}
_ORDER_MATTERS = {"sub", "add_sub"}
_CONST_ROLE = {"const": "value", "add_const": "add", "sub_const": "add", "add_const2": "add",
               "mul_const": "mul", "mul_const2": "mul"}


class Retry(Exception):
    """No operation fits this node with the values drawn so far; draw the values again."""


def combine(form: str, operands: list, k: int, ar: Arithmetic):
    """Value of a form given operand values (linear forms) and its constant; None if not linear."""
    c = (0, ar.norm(k))
    if form == "sum":
        v = (0, 0)
        for o in operands:
            v = ar.add(v, o)
        return v
    if form == "const":
        return c
    if form == "copy":
        return operands[0]
    a = operands[0]
    if form == "add_const":
        return ar.add(a, c)
    if form == "sub_const":
        return ar.sub(a, c)
    if form == "mul_const":
        return ar.mul(c, a)
    b = operands[1]
    if form == "add":
        return ar.add(a, b)
    if form == "sub":
        return ar.sub(a, b)
    if form == "mul":
        return ar.mul(a, b)
    if form == "add_const2":
        return ar.add(ar.add(a, b), c)
    if form == "mul_const2":
        return ar.mul(c, ar.add(a, b))
    if form == "add3":
        return ar.add(ar.add(a, b), operands[2])
    if form == "add_sub":
        return ar.sub(ar.add(a, b), operands[2])
    raise KeyError(form)


def assign(nodes: list[Node], order: list[int], ar: Arithmetic, rng: random.Random, unknown: int | None) -> None:
    """Choose form, constant and value of every node, visiting `order` (a topological order)."""
    x_true = 0
    for j in order:
        n = nodes[j]
        if n.kind == AGGREGATE:
            n.form = "sum"
            n.value = combine("sum", [nodes[p].value for p in n.params], 0, ar)
        elif j == unknown:
            n.form, n.unknown = "const", True
            x_true = n.const = rng.randint(*ar.const_range("value"))
            n.value = (1, 0)
        else:
            _choose(n, nodes, ar, rng, x_true)
            continue
        n.true = ar.norm(n.value[0] * x_true + n.value[1])
        if not ar.in_range(n.true) or (any(nodes[p].value[0] for p in n.params) and not n.value[0]):
            raise Retry


def _choose(n: Node, nodes: list[Node], ar: Arithmetic, rng: random.Random, x_true: int) -> None:
    forms = list(FORMS[(len(n.params), n.has_const)])
    if not ar.modulus and "mul" in forms:
        forms.remove("mul")  # GSM-Infinite's plain integers have no parameter * parameter
    rng.shuffle(forms)
    depends = any(nodes[p].value[0] for p in n.params)
    valid = []
    for form in forms:
        orders = itertools.permutations(n.params) if form in _ORDER_MATTERS else (n.params,)
        for params in orders:
            k = rng.randint(*ar.const_range(_CONST_ROLE[form])) if form in _CONST_ROLE else 0
            v = combine(form, [nodes[p].value for p in params], k, ar)
            if v is None or (depends and not v[0]):
                continue
            true = ar.norm(v[0] * x_true + v[1])
            if ar.in_range(true):
                valid.append((form, list(params), k, v, true))
    if not valid:
        raise Retry
    if ar.modulus:
        pick = rng.choice(valid)
    else:  # plain integers: favour small values so that later sums stay within bounds
        pick = rng.choices(valid, [1.0 / (1.0 + t / 40.0) for *_, t in valid])[0]
    n.form, n.params, n.const, n.value, n.true = pick
