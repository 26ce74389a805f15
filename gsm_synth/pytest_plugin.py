"""pytest fixtures for testing code against gsm_synth problems (installed as a pytest11 plugin).

    def test_my_solver(gsm_problems, gsm_verify):
        for problem in gsm_problems(20):          # 20 seeded problems over the run's ops and contexts
            assert gsm_verify(problem, my_solver(problem.problem, problem.question)).process_correct

    @pytest.mark.gsm(ops="5-8", contexts="school")  # this test's own range
    def test_harder(gsm_problems): ...

    pytest --gsm-ops=1-12 --gsm-contexts=zoo,movie --gsm-seed=3   # the whole run's range
"""
from __future__ import annotations

import itertools

import pytest

DEFAULT_OPS, DEFAULT_CONTEXTS = "1-10", "zoo,school,movie,symbolic"


def pytest_addoption(parser):
    group = parser.getgroup("gsm_synth")
    group.addoption("--gsm-ops", default=None, help=f"op range of the gsm_problems fixture (default {DEFAULT_OPS})")
    group.addoption("--gsm-contexts", default=None, help="contexts of the gsm_problems fixture, comma-separated")
    group.addoption("--gsm-seed", type=int, default=0, help="seed of the gsm_problems fixture (default 0)")


def pytest_configure(config):
    config.addinivalue_line("markers", "gsm(ops=..., contexts=..., modes=...): the gsm_problems fixture's range "
                                       "for this test")


class ProblemFactory:
    """Seeded problems over op x context x mode, in a fixed round-robin order: the same run gives the same
    problems. Call it with a count; `op=`, `context=`, `mode=` narrow one call."""

    def __init__(self, ops: str, contexts: str, modes: str, seed: int, options: dict):
        from gsm_synth.dataset import check_mixture

        self.ops, self.contexts, self.modes = check_mixture(ops, contexts, modes)
        self.seed, self.options = seed, options

    def __call__(self, n: int, op: int | None = None, context: str | None = None, mode: str | None = None):
        from gsm_synth import generate

        grid = list(itertools.product([op] if op else self.ops, [context] if context else self.contexts,
                                      [mode] if mode else self.modes))
        return [generate(o, c, m, seed=self.seed, index=i, **self.options)
                for i, (o, c, m) in zip(range(n), itertools.cycle(grid))]


@pytest.fixture
def gsm_problems(request) -> ProblemFactory:
    marker = request.node.get_closest_marker("gsm")
    mark = dict(marker.kwargs) if marker else {}
    config = request.config
    ops = mark.pop("ops", None) or config.getoption("--gsm-ops") or DEFAULT_OPS
    contexts = mark.pop("contexts", None) or config.getoption("--gsm-contexts") or DEFAULT_CONTEXTS
    modes = mark.pop("modes", "forward,reverse")
    return ProblemFactory(str(ops), contexts, modes, config.getoption("--gsm-seed"), mark)


@pytest.fixture
def gsm_verify():
    """gsm_synth.verify: (problem, text) -> Verdict with answer_correct, process_correct and typed errors."""
    from gsm_synth import verify

    return verify
