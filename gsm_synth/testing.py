"""Hypothesis strategies for testing code that makes, solves or checks gsm_synth problems.

    pip install "gsm-testbed[testing]"

    from hypothesis import given, strategies as st
    from gsm_synth.testing import problems, valid_solutions, broken_solutions

    @given(problems(op=st.integers(1, 12)))
    def test_my_extractor(problem):
        assert my_extract_answer(problem.solution) == problem.answer

Every argument takes a value or a strategy. Failing cases shrink toward a small op, the first context
(`gsm_synth.list_contexts()` order), forward mode, seed 0 and index 0, so a failure is reported as the
simplest problem that still fails.
"""
from __future__ import annotations

import re

from hypothesis import assume
from hypothesis import strategies as st

from .context import get_context, list_contexts
from .options import GeneratorOptions
from .problem import MODES, Problem, generate

__all__ = ["problems", "valid_solutions", "broken_solutions", "contexts", "BROKEN_KINDS"]

_STEP = re.compile(r"Define (.+?) as (\w+); so \2 (.*)$", re.S)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*|\d+|\S")
BROKEN_KINDS = ("value_mismatch", "arithmetic_error", "dependency_mismatch", "missing_parameter",
                "used_before_defined", "answer_mismatch", "parse_error")


def _strategy(value):
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


@st.composite
def problems(draw, op=st.integers(1, 20), context=None, mode=st.sampled_from(MODES),
             seed=st.integers(0, 2**31 - 1), index=st.integers(0, 10**6), **options) -> Problem:
    """A SearchStrategy of Problems. `options` are gsm_synth.options.GeneratorOptions fields (modulus,
    distractors, shuffle, symbols, pool), each a value or a strategy."""
    unknown = set(options) - set(GeneratorOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown generator option '{sorted(unknown)[0]}' "
                        f"(valid: {', '.join(GeneratorOptions.__dataclass_fields__)})")
    chosen_op = draw(_strategy(op))
    name = draw(_strategy(context) if context is not None else st.sampled_from(list_contexts()))
    assume(1 <= chosen_op <= get_context(name).max_op)
    chosen = {key: draw(_strategy(value)) for key, value in options.items()}
    return generate(chosen_op, name, draw(_strategy(mode)), seed=draw(_strategy(seed)),
                    index=draw(_strategy(index)), **chosen)


def _parse(problem: Problem):
    """(steps as (name, symbol, body) or None for the reverse tail, the tail text)."""
    steps, tail = [], ""
    for text in problem.steps:
        m = _STEP.match(text)
        if m:
            steps.append((m.group(1), m.group(2), m.group(3)))
        else:
            tail = text
    return steps, tail


def _uses(body: str, symbols: set[str]) -> set[str]:
    return {t for t in _TOKEN.findall(body) if t in symbols}


def _render(steps, tail: str, answer: int) -> str:
    text = " ".join(f"Define {name} as {sym}; so {sym} {body}" for name, sym, body in steps)
    return f"{text} {tail} Answer: {answer}.".replace("  ", " ")


def _rename(text: str, mapping: dict[str, str]) -> str:
    return "".join(mapping.get(t, t) if t in mapping else t for t in re.split(r"([A-Za-z][A-Za-z0-9]*)", text))


@st.composite
def valid_solutions(draw, problem: Problem) -> str:
    """Correct solutions the verifier must accept: the gold steps in any topological order, symbols
    renamed consistently, and possibly correct extra steps for unused (distractor) constants."""
    steps, tail = _parse(problem)
    symbols = {sym for _, sym, _ in steps}
    order, done = [], set()
    remaining = list(range(len(steps)))
    while remaining:  # a random topological order; shrinks toward the gold order
        ready = [i for i in remaining if _uses(steps[i][2], symbols) - {steps[i][1]} <= done]
        i = ready[draw(st.integers(0, len(ready) - 1))]
        order.append(i)
        done.add(steps[i][1])
        remaining.remove(i)
    steps = [steps[i] for i in order]
    if draw(st.booleans()):
        fresh = [f"{c}{d}" for c in "pqrstuvw" for d in range(10)]
        draw(st.randoms(use_true_random=False)).shuffle(fresh)  # one seed, not 80 choices: cheap to draw
        mapping = dict(zip(sorted(symbols), fresh[:len(symbols)]))
        steps = [(name, mapping[sym], _rename(body, mapping)) for name, sym, body in steps]
        tail = _rename(tail, mapping)
    extras = [(problem._names[j], n.true) for j, n in enumerate(problem._nodes)
              if not n.necessary and not n.params and n.has_const and not n.unknown]
    if extras and draw(st.booleans()):
        name, value = extras[draw(st.integers(0, len(extras) - 1))]
        steps = [(name, "Z9", f"= {value}.")] + steps
    return _render(steps, tail, problem.answer)


@st.composite
def broken_solutions(draw, problem: Problem) -> tuple[str, str]:
    """(solution with one known defect, the error kind the verifier must report for it)."""
    steps, tail = _parse(problem)
    p = problem.options["modulus"]
    bump = (lambda v: (v + 1) % p) if p else (lambda v: v + 1)
    symbols = {sym for _, sym, _ in steps}
    kinds = {"answer_mismatch", "parse_error"}
    consts = [i for i, (_, _, body) in enumerate(steps) if re.fullmatch(r"= \d+\.", body)]
    computed = [i for i, (_, _, body) in enumerate(steps) if body.count("=") >= 2 and re.search(r"= \d+\.$", body)]
    using = [i for i, (_, sym, body) in enumerate(steps) if _uses(body, symbols) - {sym}]
    if consts:
        kinds.add("value_mismatch")
    if computed:
        kinds.add("arithmetic_error")
    if len(steps) > 1:
        kinds.add("missing_parameter")
    if using:
        kinds.add("used_before_defined")
    first_uses = {i: sorted(_uses(steps[i][2].split("=")[1], symbols)) for i in using}  # e1 of `= e1 = e2 ...`
    swappable = [(i, s, o) for i in using for s in first_uses[i] for o in (steps[k][1] for k in range(i))
                 if o not in _uses(steps[i][2], symbols) and o != steps[i][1]]
    if swappable:
        kinds.add("dependency_mismatch")
    kind = draw(st.sampled_from(sorted(kinds)))
    steps, answer = list(steps), problem.answer
    if kind == "answer_mismatch":
        answer = bump(answer)
    elif kind == "parse_error":
        i = draw(st.integers(0, len(steps) - 1))
        steps[i] = (steps[i][0], steps[i][1], "== ??")
    elif kind == "value_mismatch":
        i = consts[draw(st.integers(0, len(consts) - 1))]
        name, sym, body = steps[i]
        steps[i] = (name, sym, f"= {bump(int(body[2:-1]))}.")
    elif kind == "arithmetic_error":
        i = computed[draw(st.integers(0, len(computed) - 1))]
        head, last = steps[i][2].rsplit("= ", 1)
        steps[i] = (steps[i][0], steps[i][1], f"{head}= {bump(int(last[:-1]))}.")
    elif kind == "missing_parameter":
        steps.pop(draw(st.integers(0, len(steps) - 1)))
    elif kind == "used_before_defined":
        i = using[draw(st.integers(0, len(using) - 1))]
        used = sorted(_uses(steps[i][2], symbols) - {steps[i][1]})
        j = next(k for k, s in enumerate(steps) if s[1] in used)
        steps.insert(i, steps.pop(j))  # its parent now comes after it
    else:  # dependency_mismatch: a parent replaced by another, earlier parameter
        i, old, new = swappable[draw(st.integers(0, len(swappable) - 1))]
        head, rest = steps[i][2].split("=", 2)[:2], steps[i][2].split("=", 2)[2:]
        first = re.sub(rf"\b{re.escape(old)}\b", new, head[1], count=1)
        steps[i] = (steps[i][0], steps[i][1], "=".join([head[0], first, *rest]))
    return _render(steps, tail, answer), kind


@st.composite
def contexts(draw) -> dict:
    """A random but valid context definition (a dict in the YAML file's shape: zoo's templates, drawn
    name pools), for testing code that renders problems in contexts nobody wrote by hand. Pass it to
    gsm_synth.context.parse_context, or write it to a .yaml file and use its path as the context."""
    import yaml

    from .context import BUILTIN_DIR

    word = st.text(alphabet="bcdfghjklmnpqrstvwxz", min_size=3, max_size=8)  # no vowels: no English word
    groups = draw(st.lists(word, min_size=8, max_size=16, unique=True))
    items = draw(st.lists(word, min_size=8, max_size=16, unique=True).filter(lambda ws: not set(ws) & set(groups)))
    raw = yaml.safe_load((BUILTIN_DIR / "zoo.yaml").read_text())
    half_g, half_i = len(groups) // 2, len(items) // 2
    raw["name"] = "drawn_" + draw(word)
    raw["groups"] = {"first": [g.title() + " Place" for g in groups[:half_g]],
                     "second": [g.title() + " Place" for g in groups[half_g:]]}
    raw["items"] = {"first": ["adult " + w for w in items[:half_i]], "second": ["adult " + w for w in items[half_i:]]}
    return raw
