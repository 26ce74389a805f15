"""`verify(problem, text) -> Verdict`: process-level check of a solution, iGSM-style.

Model output is untrusted: the text is parsed with bounded regular expressions and a bounded arithmetic
parser (no eval), so any string - empty, binary junk, 100k characters - gives a Verdict in bounded time.

A solution is a sequence of steps `Define <parameter name> as <symbol>; so <symbol> = e1 = e2 = ... .`
(the unknown of a reverse problem: `...; so <symbol> is unknown.`), then for reverse problems
`We know <symbol> = <value>; so <equation>; ...`, then `Answer: <n>.` Symbols are the solver's own
choice (consistently renamed solutions verify), parameters are matched by name, and steps may come in
any topological order. process_correct requires every necessary parameter with the right parents and
value, correct arithmetic, nothing used before it is defined, and the right answer; correct extra steps
are allowed but reported (kind extra_parameter).

What a step is judged by: its parents (the symbols of its first expression) and its value, not the
operation written. Any expression over the true parents with the true value is accepted, e.g.
`b = a + a + 17` for `b = a + 12` when both equal the true value, a constant times 0, or `-` for `+` against a
0 operand. Under a modulus every number written (steps, the reverse equation, the answer) must be a
residue 0..p-1. Several `Answer:` lines must agree: different answers are an answer_mismatch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .arith import Arithmetic, Form, format_form
from .expr import ExprError, evaluate, symbols_in, tokenize

ERROR_KINDS = ("parse_error", "unknown_parameter", "value_mismatch", "arithmetic_error", "dependency_mismatch",
               "missing_parameter", "extra_parameter", "used_before_defined", "answer_mismatch")
NON_FATAL = {"extra_parameter"}
MAX_CHARS = 50_000
MAX_STEPS = 200
MAX_STEP_CHARS = 600
MAX_CHAIN = 8

_STEP = re.compile(r"\s*(.{1,160}?)\s+as\s+([A-Za-z][A-Za-z0-9]{0,3})\s*;\s*(.*)", re.S)
_ANSWER = re.compile(r"(?:Answer:\s*|<answer>\s*)(-?\d{1,12})")
_STOP = re.compile(r"We know|Answer:|<answer>|</solution>")
_KNOWN = re.compile(r"We know\s+([A-Za-z][A-Za-z0-9]{0,3})\s*=\s*(-?\d{1,12})\s*(.{0,600})", re.S)


@dataclass(frozen=True)
class VerifyError:
    kind: str
    message: str
    parameter: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class Verdict:
    answer_correct: bool
    process_correct: bool
    errors: list[VerifyError] = field(default_factory=list)
    predicted_answer: int | None = None
    necessary_params: int = 0  # parameters the question needs
    correct_params: int = 0  # of those, defined with the right parents and value
    extra_params: int = 0  # defined parameters the question does not need

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.errors)


class _Truth:
    """What the verifier checks a step against; parent sets are built only for steps that need them."""
    __slots__ = ("node", "name")

    def __init__(self, node, name):
        self.node, self.name = node, name

    @property
    def value(self) -> Form:
        return self.node.value

    @property
    def necessary(self) -> bool:
        return self.node.necessary


def _truth(problem) -> tuple[dict[str, _Truth], Arithmetic]:
    cached = problem.__dict__.get("_truth_cache")
    if cached is None:
        table = {name: _Truth(n, name) for name, n in zip(problem._names, problem._nodes)}
        cached = problem.__dict__["_truth_cache"] = (table, Arithmetic(problem.options["modulus"]))
    return cached


def _as_text(text) -> str:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    return text if isinstance(text, str) else str(text)


def verify(problem, text) -> Verdict:
    truth, ar = _truth(problem)
    text = _as_text(text)[:MAX_CHARS]
    errors: list[VerifyError] = []
    err = lambda kind, msg, param=None: errors.append(VerifyError(kind, msg, param))  # noqa: E731

    values: dict[str, Form] = {}  # symbol -> value the solver computed
    param_of: dict[str, str] = {}  # symbol -> parameter name
    defined: dict[str, bool] = {}  # parameter -> defined correctly
    unknown_sym = None

    chunks = text.split("Define ")[1:MAX_STEPS + 1]
    for chunk in chunks:
        chunk = chunk[:MAX_STEP_CHARS]
        stop = _STOP.search(chunk)
        if stop:
            chunk = chunk[:stop.start()]
        m = _STEP.match(chunk)
        if not m:
            err("parse_error", f"cannot read step 'Define {chunk[:60].strip()}'")
            continue
        name, sym, body = " ".join(m.group(1).split()), m.group(2), m.group(3).strip().rstrip(".").strip()
        if sym in values:
            err("parse_error", f"symbol {sym} is defined twice", name)
            continue
        t = truth.get(name)
        if t is None:
            err("unknown_parameter", f"'{name}' is not a parameter of this problem", name)
        if body in (f"so {sym} is unknown", f"{sym} is unknown"):
            values[sym], param_of[sym] = (1, 0), name
            if unknown_sym is not None:
                err("parse_error", "a second unknown is declared", name)
            unknown_sym = sym
            if t is not None:
                ok = t.value == (1, 0)
                if not ok:
                    err("value_mismatch", f"'{name}' is declared unknown but is determined by the problem", name)
                _record(defined, name, ok, t, err)
            continue
        value, first = _check_chain(sym, body, name, values, ar, err)
        if value is not None:
            values[sym], param_of[sym] = value, name
        if t is None:
            continue
        ok = value is not None
        parents = frozenset(param_of.get(s, s) for s in symbols_in(first))
        true_parents = frozenset(problem._names[p] for p in t.node.params)
        if first and parents != true_parents:
            ok = False
            err("dependency_mismatch", f"'{name}' is computed from {_names(parents)} but depends on "
                                       f"{_names(true_parents)}", name)
        if value is not None and value != t.value:
            ok = False
            err("value_mismatch", f"'{name}' = {format_form(value, unknown_sym or 'x')} but should be "
                                  f"{format_form(t.value, unknown_sym or 'x')}", name)
        _record(defined, name, ok, t, err)

    if not chunks:
        err("parse_error", "no 'Define ... as ...;' steps found")
    for name, t in truth.items():
        if t.necessary and name not in defined:
            err("missing_parameter", f"'{name}' is needed but never defined", name)
    _check_reverse_tail(problem, text, values, param_of, unknown_sym, ar, err)

    found = [int(a) for a in _ANSWER.findall(text)]
    predicted = found[-1] if found else None
    answer_ok = predicted is not None and ar.norm(predicted) == problem.answer and (
        ar.modulus is None or 0 <= predicted < ar.modulus)
    if predicted is None:
        err("answer_mismatch", "no final 'Answer: <number>' found")
    elif len(set(found)) > 1:
        answer_ok = False
        err("answer_mismatch", f"the solution gives different answers ({', '.join(map(str, dict.fromkeys(found)))})")
    elif not answer_ok:
        err("answer_mismatch", f"answer {predicted} is wrong")
    fatal = [e for e in errors if e.kind not in NON_FATAL]
    necessary = sum(t.necessary for t in truth.values())
    return Verdict(
        answer_correct=answer_ok, process_correct=answer_ok and not fatal, errors=errors,
        predicted_answer=predicted, necessary_params=necessary,
        correct_params=sum(ok for n, ok in defined.items() if truth[n].necessary),
        extra_params=sum(1 for n in defined if not truth[n].necessary))


def _names(params) -> str:
    return "{" + ", ".join(f"'{p}'" for p in sorted(params)) + "}" if params else "constants only"


def _record(defined: dict, name: str, ok: bool, t: _Truth, err) -> None:
    if name in defined:
        err("extra_parameter", f"'{name}' is defined more than once", name)
        defined[name] = defined[name] and ok
        return
    defined[name] = ok
    if not t.necessary:
        err("extra_parameter", f"'{name}' is not needed for the question", name)


@lru_cache(maxsize=8)
def _residues(p: int) -> frozenset:
    return frozenset(str(i) for i in range(p))


def _check_chain(sym, body, name, values, ar, err) -> tuple[Form | None, list[str]]:
    """(value, tokens of e1) of `so sym = e1 = e2 = ...`, checking that every link of the chain agrees.
    The value is None when the step is wrong in itself; e1's tokens still tell which parents it used."""
    parts = body.split("=")
    head = parts[0].split()
    if len(parts) < 2 or len(parts) > MAX_CHAIN + 1 or head[-1:] != [sym]:
        err("parse_error", f"step for '{name}' is not of the form 'so {sym} = ...'", name)
        return None, []
    chain: list[tuple[list[str], Form]] = []
    first: list[str] = []
    p = ar.modulus
    residues = _residues(p) if p else None
    for part in parts[1:]:
        stripped = part.strip()
        if stripped.isdigit() and len(stripped) <= 9:  # fast path: most links are plain numbers
            toks = [stripped]
        else:
            try:
                toks = tokenize(part)
            except ExprError as e:
                err("parse_error", f"step for '{name}': {e}", name)
                return None, first
        if not first:
            first = toks
        if residues is not None and any(t[0].isdigit() and t not in residues for t in toks):
            err("arithmetic_error", f"in the step for '{name}', a number is not a residue mod {p}", name)
            return None, first
        try:
            chain.append((toks, evaluate(toks, values, ar) if len(toks) > 1 or not toks[0].isdigit()
                          else ar.form(0, int(toks[0]))))
        except KeyError as e:
            err("used_before_defined", f"'{name}' uses {e.args[0]} before it is defined", name)
            return None, first
        except ExprError as e:
            err("parse_error", f"step for '{name}': {e}", name)
            return None, first
    for link, ((toks_a, val_a), (toks_b, val_b)) in enumerate(zip(chain, chain[1:])):
        if val_a != val_b:
            err("arithmetic_error", f"in the step for '{name}', {' '.join(toks_a)} != {' '.join(toks_b)}", name)
            return None, first
        if link == 0 and len(toks_a) == len(toks_b):  # e1 -> e2 substitutes: quoted numbers must be values
            for ta, tb in zip(toks_a, toks_b):
                if ta[0].isalpha() and tb.isdigit() and values.get(ta) != (0, ar.norm(int(tb))):
                    err("arithmetic_error", f"in the step for '{name}', {ta} is quoted as {tb}", name)
                    return None, first
    return chain[-1][1], first


def _check_reverse_tail(problem, text, values, param_of, unknown_sym, ar, err) -> None:
    if problem.mode != "reverse":
        return
    m = _KNOWN.search(text)
    if not m:
        err("parse_error", "no 'We know <symbol> = <value>' equation for the unknown")
        return
    sym, given, rest = m.group(1), int(m.group(2)), m.group(3)
    residues = _residues(ar.modulus) if ar.modulus else None
    sink = problem._names[problem._sink]
    if param_of.get(sym) != sink:
        err("dependency_mismatch", f"the equation uses {sym}, not the parameter whose value is given ('{sink}')")
    if residues is not None and str(given) not in residues:
        err("arithmetic_error", f"the given value {given} is not a residue mod {ar.modulus}")
    elif ar.norm(given) != problem._nodes[problem._sink].true:
        err("value_mismatch", f"the given value is {problem._nodes[problem._sink].true}, not {given}")
    stop = _STOP.search(rest)
    rest = rest[:stop.start()] if stop else rest
    equations = []
    for eq in rest.split(";"):
        eq = eq.strip().rstrip(".").strip()
        if not eq.startswith("so "):
            continue
        sides = eq[3:].split("=")
        try:
            if len(sides) != 2:
                raise ExprError("not an equation")
            tokens = [tokenize(side) for side in sides]
            left, right = (evaluate(toks, values, ar) for toks in tokens)
        except (ExprError, KeyError):
            err("parse_error", f"cannot read the equation '{eq[:60]}'")
            return
        if residues is not None and any(t[0].isdigit() and t not in residues for toks in tokens for t in toks):
            err("arithmetic_error", f"in '{eq[3:60]}', a number is not a residue mod {ar.modulus}")
            return
        equations.append((eq[3:], sides[0].strip(), left, right))
    claimed = next((r[1] for _, l_text, l, r in reversed(equations)
                    if l_text == unknown_sym and l == (1, 0) and r[0] == 0), None)
    if claimed is None:
        err("parse_error", "the equations never state the unknown's value")
        return
    holds = lambda f, v: ar.norm(f[0] * claimed + f[1]) == ar.norm(v)  # noqa: E731
    if sym in values and not holds(values[sym], given):
        err("arithmetic_error", f"{sym} = {given} does not hold for {unknown_sym} = {claimed}")
    for text_eq, _, left, right in equations:
        diff = ar.sub(left, right)
        if not holds(diff, 0):
            err("arithmetic_error", f"'{text_eq}' does not hold for {unknown_sym} = {claimed}")
