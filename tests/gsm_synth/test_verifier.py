"""The verifier: gold verifies, every mutation class is caught with its kind, renaming/reordering pass."""
import random
import re

import pytest

from gsm_synth import generate, verify

STEP = re.compile(r"Define (.+?) as (\w+);")


def problems():
    for context in ("zoo", "school", "movie", "symbolic"):
        for mode in ("forward", "reverse"):
            for op in (3, 6, 11, 19):
                yield generate(op, context, mode, seed=9, index=op)


def kinds(v):
    return {e.kind for e in v.errors}


def body(p):
    return list(p.steps)


def join(steps, answer):
    return " ".join(steps) + f" Answer: {answer}."


def computed_steps(steps):
    return [i for i, s in enumerate(steps) if s.startswith("Define") and s.count("=") >= 2]


def test_changed_result_number_is_an_arithmetic_error():
    for p in problems():
        steps = body(p)
        idx = computed_steps(steps)
        if not idx:
            continue
        i = idx[-1]
        head, result = steps[i].rsplit(" = ", 1)
        number = re.match(r"\d+", result)
        if not number:
            continue
        wrong = (int(number.group()) + 1) % 23
        steps[i] = f"{head} = {wrong}{result[number.end():]}"
        v = verify(p, join(steps, p.answer))
        assert not v.process_correct and "arithmetic_error" in kinds(v), steps[i]


def test_changed_constant_is_a_value_mismatch():
    checked = 0
    for p in problems():
        steps = body(p)
        for i, s in enumerate(steps):
            m = re.fullmatch(r"(Define .+ as (\w+); so \2 = )(\d+)\.", s)
            if m:
                steps[i] = f"{m.group(1)}{(int(m.group(3)) + 1) % 23}."
                v = verify(p, join(steps, p.answer))
                assert not v.process_correct and "value_mismatch" in kinds(v)
                checked += 1
                break
    assert checked > 5


def test_changed_parent_is_a_dependency_mismatch():
    checked = 0
    for p in problems():
        steps = body(p)
        syms = [m.group(2) for m in map(STEP.match, steps) if m]
        for i, s in enumerate(steps):
            m = re.fullmatch(r"(Define .+ as (\w+); so \2 = )(\w+)( .*)", s)
            if not m or not m.group(3).isalpha() or i == 0:
                continue
            others = [x for x in syms[:i] if x != m.group(3) and x not in s]
            if not others:
                continue
            steps[i] = m.group(1) + others[0] + m.group(4)
            v = verify(p, join(steps, p.answer))
            assert not v.process_correct and "dependency_mismatch" in kinds(v), steps[i]
            checked += 1
            break
    assert checked > 5


def test_dropped_step_is_a_missing_parameter():
    for p in problems():
        steps = body(p)
        defines = [i for i, s in enumerate(steps) if s.startswith("Define")]
        if len(defines) < 2:
            continue
        dropped = steps.pop(defines[0])
        v = verify(p, join(steps, p.answer))
        assert not v.process_correct and "missing_parameter" in kinds(v)
        name = STEP.match(dropped).group(1)
        assert any(e.kind == "missing_parameter" and e.parameter == name for e in v.errors)


def test_changed_answer_is_an_answer_mismatch():
    for p in problems():
        v = verify(p, join(body(p), (p.answer + 1) % 23))
        assert not v.answer_correct and not v.process_correct and "answer_mismatch" in kinds(v)


@pytest.mark.parametrize("junk", ["", "Answer:", "\x00\xff" * 50, b"\x89PNG\r\n\x1a\n\x00\x00", "Define " * 20000,
                                  "Define a as b; so b = " + "(" * 5000, "9" * 100_000, "Define x as y; so y = 1" * 5000,
                                  "We know q = 3; so " + "q = " * 3000])
def test_garbage_never_raises_and_never_passes(junk):
    for p in list(problems())[::5]:
        v = verify(p, junk)
        assert not v.process_correct and not v.answer_correct
        assert "parse_error" in kinds(v) or "missing_parameter" in kinds(v)


def test_right_answer_without_steps_is_not_process_correct():
    p = generate(6, "zoo", seed=1, index=1)
    v = verify(p, f"Answer: {p.answer}.")
    assert v.answer_correct and not v.process_correct and "missing_parameter" in kinds(v)


def test_consistent_renaming_is_accepted():
    rng = random.Random(0)
    for p in problems():
        syms = sorted({m.group(2) for m in map(STEP.match, p.steps) if m})
        new = rng.sample([f"{c}{d}" for c in "pqrs" for d in range(10)], len(syms))
        mapping = dict(zip(syms, new))
        rename = lambda t: re.sub(r"\b[A-Za-z]\b", lambda m: mapping.get(m.group(), m.group()), t)  # noqa: E731
        steps = []
        for s in p.steps:  # rename symbols only, never letters inside parameter names
            m = re.match(r"(Define .+? as )(\w+)(;.*)", s)
            steps.append(m.group(1) + mapping[m.group(2)] + rename(m.group(3)) if m else rename(s))
        v = verify(p, " ".join(steps) + f" Answer: {p.answer}.")
        assert v.process_correct, v.errors


def test_any_topological_order_is_accepted():
    rng = random.Random(1)
    for p in problems():
        steps = body(p)
        tail = [s for s in steps if not s.startswith("Define")]
        by_name = {STEP.match(s).group(1): s for s in steps if s.startswith("Define")}
        g = p.graph.subgraph(by_name)
        for _ in range(3):
            order, indeg = [], {n: g.in_degree(n) for n in g}
            ready = [n for n, d in indeg.items() if d == 0]
            while ready:
                n = ready.pop(rng.randrange(len(ready)))
                order.append(n)
                for c in g.successors(n):
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        ready.append(c)
            v = verify(p, join([by_name[n] for n in order] + tail, p.answer))
            assert v.process_correct, v.errors


def test_out_of_order_step_is_used_before_defined():
    p = generate(8, "zoo", seed=3, index=2)
    steps = body(p)
    steps.reverse()
    v = verify(p, join(steps, p.answer))
    assert not v.process_correct and "used_before_defined" in kinds(v)


def test_extra_correct_step_is_reported_but_allowed():
    for i in range(30):
        p = generate(6, "zoo", seed=4, index=i, distractors=2)
        g = p.graph
        extra = [n for n, d in g.nodes(data=True)
                 if d["kind"] == "instance" and not d["necessary"]
                 and all(g.nodes[q]["kind"] == "constant" for q in g.predecessors(n))]
        if extra:
            name = extra[0]
            value = g.nodes[name]["value"]
            text = f"Define {name} as Zz; so Zz = {value}. " + p.solution
            v = verify(p, text)
            assert v.process_correct and "extra_parameter" in kinds(v) and v.extra_params == 1
            return
    pytest.fail("no distractor with a constant definition found")


def test_unknown_parameter_name():
    p = generate(4, "zoo", seed=0, index=0)
    v = verify(p, "Define adult dragon in Nowhere as a; so a = 3. " + p.solution)
    assert not v.process_correct and "unknown_parameter" in kinds(v)


def test_reverse_tail_is_checked():
    p = generate(7, "school", "reverse", seed=2, index=5)
    steps = body(p)
    wrong_given = steps[-1].replace("We know", "We know", 1)
    sym, given = re.search(r"We know (\w+) = (\d+)", wrong_given).groups()
    steps[-1] = wrong_given.replace(f"We know {sym} = {given}", f"We know {sym} = {(int(given) + 1) % 23}")
    v = verify(p, join(steps, p.answer))
    assert not v.process_correct and "value_mismatch" in kinds(v)
    v = verify(p, join(body(p)[:-1], p.answer))
    assert not v.process_correct and "parse_error" in kinds(v)


def test_necessary_counts_for_process_scores():
    p = generate(10, "zoo", seed=0, index=3)
    v = verify(p, p.solution)
    need = sum(d["necessary"] for _, d in p.graph.nodes(data=True) if d["kind"] != "constant")
    assert v.necessary_params == v.correct_params == need
    steps = body(p)
    v = verify(p, join(steps[1:], p.answer))
    assert v.correct_params < need


def _reverse_problem():
    return next(p for p in (generate(4, context="zoo", mode="reverse", seed=0, index=i) for i in range(50))
                if p.solution.count("We know"))


def test_a_non_residue_in_the_reverse_equations_is_an_arithmetic_error():
    import re

    p = _reverse_problem()
    m = re.search(r"so (\w+) = (\d+)\. Answer: (\d+)\.", p.solution)
    bad = p.solution[:m.start(2)] + str(int(m.group(2)) + 23) + p.solution[m.end(2):]  # the same residue + p
    v = verify(p, bad)
    assert not v.process_correct and [e.kind for e in v.errors] == ["arithmetic_error"]
    given = re.search(r"We know \w+ = (\d+)", p.solution)
    bad = p.solution[:given.start(1)] + str(int(given.group(1)) + 23) + p.solution[given.end(1):]
    assert "arithmetic_error" in [e.kind for e in verify(p, bad).errors]


def test_different_answers_are_not_accepted_but_a_repeated_one_is():
    p = generate(5, context="zoo", seed=0, index=1)
    wrong = (p.answer + 1) % 23
    v = verify(p, p.solution + f" Answer: {wrong}.")
    assert not v.answer_correct and any("different answers" in e.message for e in v.errors)
    v = verify(p, p.solution.replace("Answer:", f"Answer: {wrong}. Answer:"))
    assert not v.answer_correct
    assert verify(p, p.solution + f" Answer: {p.answer}.").process_correct
