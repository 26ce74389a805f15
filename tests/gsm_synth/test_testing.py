"""gsm_synth.testing, the golden corpus and the pytest plugin, as their users meet them."""
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import find, given, settings
from hypothesis import strategies as st

import gsm_synth
from gsm_synth.context import BUILTIN_DIR, parse_context
from gsm_synth.testing import BROKEN_KINDS, broken_solutions, contexts, problems, valid_solutions

ROOT = Path(__file__).resolve().parents[2]


@given(problems(op=st.integers(1, 30), shuffle=st.sampled_from([0.0, 1.0]), modulus=st.sampled_from([23, 7, None])))
def test_drawn_problems_are_valid_for_every_context_and_mode(problem):
    assert problem.context in gsm_synth.list_contexts() and problem.mode in gsm_synth.MODES
    assert gsm_synth.verify(problem, problem.solution).process_correct


def test_every_context_and_mode_is_drawn():
    seen = set()

    @settings(max_examples=200)
    @given(problems(op=st.integers(1, 6)))
    def collect(problem):
        seen.add((problem.context, problem.mode))

    collect()
    assert seen == {(c, m) for c in gsm_synth.list_contexts() for m in gsm_synth.MODES}


def test_a_failure_shrinks_to_the_simplest_problem():
    """A planted bug (a checker that fails on school problems from op 7) shrinks to op 7, school, forward."""
    def buggy_checker(problem):
        return not (problem.context == "school" and problem.op >= 7)

    found = find(problems(op=st.integers(1, 20)), lambda p: not buggy_checker(p), settings=settings(max_examples=2000))
    assert (found.op, found.context, found.mode, found.seed, found.index) == (7, "school", "forward", 0, 0)


@given(st.data())
def test_valid_solutions_are_accepted(data):
    problem = data.draw(problems(op=st.integers(1, 40)))
    again = gsm_synth.generate(problem.op, problem.context, problem.mode, seed=problem.seed, index=problem.index)
    assert again.to_dict() == problem.to_dict()  # the same seed and index: the same problem
    solution = data.draw(valid_solutions(problem))
    verdict = gsm_synth.verify(problem, solution)
    assert verdict.process_correct, (solution, verdict.errors)


@given(st.data())
def test_broken_solutions_are_rejected_with_their_kind(data):
    problem = data.draw(problems(op=st.integers(1, 40)))
    solution, kind = data.draw(broken_solutions(problem))
    verdict = gsm_synth.verify(problem, solution)
    assert kind in BROKEN_KINDS and not verdict.process_correct
    assert kind in {e.kind for e in verdict.errors}, (kind, solution, verdict.errors)


@settings(max_examples=20)
@given(raw=contexts(), op=st.integers(1, 12), mode=st.sampled_from(gsm_synth.MODES))
def test_drawn_contexts_render_problems_that_verify(raw, op, mode, tmp_path_factory):
    parse_context(raw)  # valid as a definition
    path = tmp_path_factory.mktemp("ctx") / f"{raw['name']}.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    problem = gsm_synth.generate(op, str(path), mode, seed=1, index=0)
    assert gsm_synth.verify(problem, problem.solution).process_correct


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gsm_synth", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_a_golden_corpus_round_trips_and_catches_a_one_word_template_change(tmp_path):
    context = tmp_path / "lab.yaml"
    context.write_text((BUILTIN_DIR / "zoo.yaml").read_text().replace("name: zoo", "name: lab"))
    golden = tmp_path / "golden"
    assert cli("golden", f"out={golden}", "ops=1-6", f"contexts={context}", "n=2").returncode == 0
    assert len((golden / "corpus.jsonl").read_text().splitlines()) == 6 * 2 * 2
    same = cli("check-golden", str(golden))
    assert same.returncode == 0 and "unchanged" in same.stderr
    context.write_text(context.read_text().replace('copy: "{T} equals {A}."', 'copy: "{T} matches {A}."'))
    changed = cli("check-golden", str(golden))
    assert changed.returncode == 1 and "problem changed" in changed.stdout
    assert changed.stderr.startswith("error: golden corpus") and "differences" in changed.stderr


def test_the_pytest_plugin_works_from_a_test_file_outside_the_repository(tmp_path):
    (tmp_path / "test_user.py").write_text('''
import pytest

def test_gold_solutions_verify(gsm_problems, gsm_verify):
    problems = gsm_problems(12)
    assert len(problems) == 12 and {p.op for p in problems} <= set(range(2, 5))
    assert all(gsm_verify(p, p.solution).process_correct for p in problems)

@pytest.mark.gsm(ops="7", contexts="school", modes="reverse", modulus=7)
def test_marker_narrows_the_range(gsm_problems):
    p = gsm_problems(1)[0]
    assert (p.op, p.context, p.mode, p.options["modulus"]) == (7, "school", "reverse", 7)
''')
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--gsm-ops=2-4",
                           str(tmp_path / "test_user.py")], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr


def test_the_readme_examples_run():
    """The README's 'Unit-testing with gsm_synth' examples are complete programs: run them as tests."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Unit-testing with gsm_synth", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for code in blocks:
        scope = {}
        exec(compile(code, "README.md", "exec"), scope)  # our own documentation, not model output
        tests = [f for name, f in scope.items() if name.startswith("test_") and callable(f)]
        assert tests
        for test in tests:
            test()


def test_the_generator_still_makes_the_projects_golden_corpus():
    """tests/fixtures/golden pins what the generator makes (80 problems, ops 1-10, every context, both
    modes). A change that alters them fails here; if the change is meant, write the corpus again:
    python -m gsm_synth golden out=tests/fixtures/golden ops=1-10 contexts=zoo,school,movie,symbolic n=1"""
    from gsm_synth.golden import check_golden

    assert check_golden(ROOT / "tests" / "fixtures" / "golden") == []
