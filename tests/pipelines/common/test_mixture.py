"""The mixture's extra part (a share of problems from a narrower distribution, e.g. context B at op 2)."""
import random

import pytest

from pipelines.common.mixture import MixtureConfig
from pipelines.common.mixture import Mixture


def draws(cfg, n=3000):
    m = Mixture(cfg)
    return [m.draw(random.Random(f"t:{i}")) for i in range(n)]


def test_extra_share_draws_the_narrow_part_at_its_rate():
    cfg = MixtureConfig(ops={"2-6": 1.0}, contexts={"zoo": 1.0}, extra_share=0.1, extra_ops={"2": 1.0},
                        extra_contexts={"school": 1.0})
    got = draws(cfg)
    school = [d for d in got if d[1] == "school"]
    assert 0.08 < len(school) / len(got) < 0.12
    assert {d[0] for d in school} == {2}


def test_no_extra_share_leaves_the_stream_unchanged():
    plain = MixtureConfig(ops={"2-6": 1.0})
    unused = MixtureConfig(ops={"2-6": 1.0}, extra_ops={"2": 1.0}, extra_contexts={"school": 1.0})
    assert draws(plain, 200) == draws(unused, 200)


@pytest.mark.parametrize("extra, message", [
    ({"extra_share": 1.5}, "extra_share must be in [0, 1]"),
    ({"extra_share": 0.1}, "needs mixture.extra_ops"),
    ({"extra_share": 0.1, "extra_ops": {"2": 1.0}, "extra_contexts": {"nowhere": 1.0}}, "nowhere"),
])
def test_bad_extra_part_is_one_line(extra, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        Mixture(MixtureConfig(**extra))
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------- training on the eval set (TTRL)

def test_eval_set_cycles_through_exactly_the_evaluated_problems():
    from pipelines.evaluation.spec import EvalSpec, eval_problems
    spec = EvalSpec(bins={"id": "2-5"}, contexts=["zoo", "movie"], problems_per_bin=6, seed=3,
                    problem_options={"modulus": 7})
    evaluated = [p.id for p in eval_problems(spec)["id"]]
    m = Mixture(MixtureConfig(ops={"2-3": 1.0, "4-5": 1.0}, contexts={"zoo": 1.0, "movie": 1.0}, pool="eval",
                              modulus=7, eval_set=6, eval_seed=3))
    first, second = ([m.problem(seed=9, index=i).id for i in range(k, k + 6)] for k in (0, 6))
    assert sorted(first) == sorted(second) == sorted(evaluated) and len(set(evaluated)) == 6  # each pass: all once
    assert first != second or first != evaluated  # in a drawn order, not the evaluator's
    other_seed = [m.problem(seed=10, index=i).id for i in range(6)]
    assert sorted(other_seed) == sorted(evaluated) and other_seed != first


@pytest.mark.parametrize("overrides, message", [
    ({"eval_set": 4, "pool": "rl"}, "needs mixture.pool=eval"),
    ({"eval_set": -1, "pool": "eval"}, "eval_set must be >= 0"),
])
def test_bad_eval_set_is_one_line(overrides, message):
    with pytest.raises(ValueError, match=message):
        Mixture(MixtureConfig(ops={"2-3": 1.0}, **overrides))
