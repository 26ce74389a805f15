"""A small, bounded parser for the arithmetic in a solution step: numbers, symbols, + - *, parentheses.

Model output is untrusted: nothing here calls eval; expressions longer than MAX_TOKENS, numbers longer
than MAX_DIGITS and nesting deeper than MAX_DEPTH are refused, so any input costs bounded time.
"""
from __future__ import annotations

import re

from .arith import Arithmetic, Form

MAX_TOKENS = 96
MAX_DIGITS = 9
MAX_DEPTH = 6
_TOKEN = re.compile(r"\d+|[A-Za-z][A-Za-z0-9]*|[-+*()]|\S")


class ExprError(ValueError):
    pass


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_TOKENS * (MAX_DIGITS + 1):
        raise ExprError("expression too long")
    tokens = _TOKEN.findall(text)
    if not tokens:
        raise ExprError("empty expression")
    if len(tokens) > MAX_TOKENS:
        raise ExprError("expression too long")
    for tok in tokens:
        c = tok[0]
        if c.isdigit():
            if len(tok) > MAX_DIGITS:
                raise ExprError("number too long")
        elif not (c.isascii() and c.isalpha()) and tok not in "-+*()":
            raise ExprError(f"unexpected character {tok!r}")
    return tokens


def evaluate(tokens: list[str], values: dict[str, Form], arith: Arithmetic) -> Form:
    """Value of the expression as a linear form; symbols are looked up in `values`.

    Raises ExprError for syntax errors, KeyError(symbol) for an undefined symbol, and ExprError when a
    product of two unknown-dependent terms makes it non-linear.
    """
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def expr(depth):
        nonlocal pos
        v = term(depth)
        while peek() in ("+", "-"):
            op = tokens[pos]
            pos += 1
            w = term(depth)
            v = arith.add(v, w) if op == "+" else arith.sub(v, w)
        return v

    def term(depth):
        nonlocal pos
        v = factor(depth)
        while peek() == "*":
            pos += 1
            v = arith.mul(v, factor(depth))
            if v is None:
                raise ExprError("not linear in the unknown")
        return v

    def factor(depth):
        nonlocal pos
        tok = peek()
        if tok is None:
            raise ExprError("expression ends early")
        pos += 1
        if tok == "-":
            return arith.sub((0, 0), factor(depth))
        if tok == "(":
            if depth >= MAX_DEPTH:
                raise ExprError("too deeply nested")
            v = expr(depth + 1)
            if peek() != ")":
                raise ExprError("missing ')'")
            pos += 1
            return v
        if tok.isdigit():
            return arith.form(0, int(tok))
        if tok[0].isalpha():
            return values[tok]  # KeyError names the undefined symbol
        raise ExprError(f"unexpected {tok!r}")

    v = expr(0)
    if pos != len(tokens):
        raise ExprError(f"unexpected {tokens[pos]!r}")
    return v


def symbols_in(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t[0].isalpha()]
