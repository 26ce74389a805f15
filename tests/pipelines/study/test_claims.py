"""Finding verdicts from synthetic evidence: the judge decides, paired over the same problems."""
import numpy as np
import pytest

from pipelines.study.claims import Evidence, check_claim, check_finding
from pipelines.study.judge import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, UNTESTABLE, block_ci, judge, mde
from pipelines.study.schema import Claim, Finding


def record(index, c_process, n=8, errors=None, op=3, context="zoo"):
    return {"bin": "id", "index": index, "op": op, "context": context, "n": n, "c_outcome": c_process,
            "c_process": c_process, "answers": [1] * c_process + [2] * (n - c_process), "answer": 1,
            "errors": errors or {}}


def evidence(a_counts, b_counts, rl=None):
    problems = {("a", 0, 0): [record(i, c) for i, c in enumerate(a_counts)],
                ("b", 0, 0): [record(i, c) for i, c in enumerate(b_counts)]}
    return Evidence(problems, rl or {}, [0], {"id": "2-4"})


def claim(kind, metric="process_pass@1", **kw):
    return Claim(kind=kind, model=kw.pop("model", "a"), vs=kw.pop("vs", "b"), split="id", metric=metric, **kw)


# ------------------------------------------------------------------------------------------ the judge

def test_a_clear_shift_is_reproduced_for_greater_and_not_reproduced_reversed():
    rng = np.random.default_rng(0)
    a, b = rng.binomial(8, 0.75, 40) / 8, rng.binomial(8, 0.25, 40) / 8
    assert judge("greater", a, b).verdict == REPRODUCED
    assert judge("greater", b, a).verdict == NOT_REPRODUCED


def test_a_wide_noisy_equal_pair_is_inconclusive_for_same_not_reproduced():
    a, b = np.array([1.0, 0.0] * 10), np.array([0.0, 1.0] * 10)
    j = judge("same", a, b, margin=0.05)
    assert j.verdict == INCONCLUSIVE and j.ci[0] < -0.05 and j.ci[1] > 0.05
    assert judge("not_greater", a, b, margin=0.05).verdict == INCONCLUSIVE


def test_a_tight_equal_pair_with_many_problems_is_reproduced_for_same():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.7, 500)
    assert judge("same", a, a + rng.normal(0, 0.02, 500), margin=0.05).verdict == REPRODUCED


def test_pairs_at_the_floor_or_ceiling_are_untestable():
    zeros, ones = np.zeros(48), np.ones(48)
    for kind in ("greater", "same", "not_greater"):
        assert judge(kind, zeros, zeros, margin=0.05).verdict == UNTESTABLE
        assert judge(kind, ones, ones, margin=0.05).verdict == UNTESTABLE
    # four problems, one noisy: no gain the metric has room for (1 - 0.875) could be detected
    j = judge("greater", np.ones(4), np.array([1.0, 1.0, 1.0, 0.5]))
    assert j.verdict == UNTESTABLE and "exceeds the room" in j.why


def test_the_minimal_detectable_effect_shrinks_as_problems_grow():
    rng = np.random.default_rng(2)
    effects = [mde(rng.normal(0, 0.3, n)) for n in (20, 80, 320)]
    assert effects[0] > effects[1] > effects[2] and 0.03 < effects[2] < 0.06


def test_a_claim_needs_its_inputs():
    with pytest.raises(ValueError, match="equal length"):
        judge("greater", [1, 2], [1])
    with pytest.raises(ValueError, match="margin"):
        judge("same", [1, 2], [1, 2])
    with pytest.raises(ValueError, match="claim kind"):
        judge("bigger", [1], [1])


# ------------------------------------------------------------------------------------------ claims

def test_greater_same_and_reversed_on_evidence():
    better = evidence([6] * 20, [2] * 20)
    result = check_claim(claim("greater"), better)
    assert result["verdict"] == REPRODUCED and abs(result["mean"] - 0.5) < 1e-9 and "MDE" in result["text"]
    assert check_claim(claim("greater", model="b", vs="a"), better)["verdict"] == NOT_REPRODUCED
    assert check_claim(claim("same"), better)["verdict"] == NOT_REPRODUCED
    noisy = evidence([8, 0] * 20, [0, 8] * 20)  # equal on average, huge spread: cannot tell
    assert check_claim(claim("greater"), noisy)["verdict"] == INCONCLUSIVE
    same = check_claim(claim("same"), noisy)
    assert same["verdict"] == INCONCLUSIVE and "margin ±0.05" in same["text"]


def test_not_greater_needs_the_ci_below_the_margin():
    def verdict(a, b):
        return check_claim(claim("not_greater"), evidence(a, b))["verdict"]
    assert verdict([2] * 20, [6] * 20) == REPRODUCED  # a clear drop: no gain
    assert verdict([8, 0] * 10, [0, 8] * 10) == INCONCLUSIVE  # too noisy to rule a gain out
    assert verdict([6] * 20, [2] * 20) == NOT_REPRODUCED  # a clear gain


def test_a_claim_says_when_its_sides_have_different_seed_counts():
    ev = evidence([6] * 20, [2] * 20)
    assert "seeds" not in check_claim(claim("greater"), ev)["text"]
    ev.seeds = [0, 1]
    ev.problems[("a", 0, 1)] = [record(i, 8) for i in range(20)]
    result = check_claim(claim("greater"), ev)
    assert "(seeds 2 vs 1)" in result["text"] and abs(result["a"] - 0.875) < 1e-9  # (6/8 + 8/8) / 2


def test_pairing_uses_shared_problems_and_filters():
    ev = evidence([8] * 10, [0] * 10)
    ev.problems[("a", 0, 0)] += [record(99, 0, op=4)]  # only a has it: not compared
    assert check_claim(claim("greater", metric="process_pass@8"), ev)["n"] == 10
    only_op4 = claim("greater", metric="process_pass@8", ops="4")
    assert check_claim(only_op4, ev)["verdict"] == UNTESTABLE  # no shared data


def test_error_metric_and_rl_log_claims():
    ev = evidence([1] * 10, [1] * 10)
    for r in ev.problems[("a", 0, 0)]:
        r["errors"] = {"dependency_mismatch": 4}
    assert check_claim(claim("greater", metric="errors:dependency_mismatch"), ev)["verdict"] == REPRODUCED
    rng = np.random.default_rng(3)
    logs = {("a", 0, 0): [{"rl_step": s, "reward": 0.01 + 0.005 * rng.random(), "label_acc": 0.2 + 0.1 * rng.random(),
                        "reward_acc": 0.7 + 0.1 * rng.random()} for s in range(1, 61)]}
    ev = evidence([1], [1], rl=logs)
    below = Claim(kind="below", model="a", metric="rl:reward", value=0.05)
    assert check_claim(below, ev)["verdict"] == REPRODUCED
    assert check_claim(Claim(kind="above", model="a", metric="rl:reward", value=0.05), ev)["verdict"] == NOT_REPRODUCED
    lucky = Claim(kind="greater", model="a", metric="rl:reward_acc", vs_metric="rl:label_acc")
    assert check_claim(lucky, ev)["verdict"] == REPRODUCED


def test_lucky_hits_fail_when_samples_pile_onto_the_wrong_label():
    """F5c's form: reward accuracy on wrong-label prompts above 0.5. A run whose samples collapse onto the
    wrong label (accuracy 0.3 there) must not pass; one where most rewards stay right must."""
    rng = np.random.default_rng(4)
    lucky = Claim(kind="above", model="a", metric="rl:wrong_label_reward_acc", value=0.5)

    def log(level):
        steps = [{"rl_step": s, "wrong_label_reward_acc": float(np.clip(level + rng.normal(0, 0.05), 0, 1))}
                 for s in range(1, 81)]
        steps[5]["wrong_label_reward_acc"] = float("nan")  # a step with no wrong label logs nothing usable
        return evidence([1], [1], rl={("a", 0, 0): steps})

    assert check_claim(lucky, log(0.3))["verdict"] == NOT_REPRODUCED
    assert check_claim(lucky, log(0.8))["verdict"] == REPRODUCED


def test_a_clear_difference_near_a_ceiling_still_counts():
    b = np.array([1.0] * 45 + [0.0] * 3)  # no room for a gain, but a drop is plain
    a = np.array([0.3] * 48)
    assert judge("greater", a, b).verdict == NOT_REPRODUCED
    assert judge("greater", [0.5], [0.1]).verdict == UNTESTABLE  # one problem proves nothing
    assert judge("greater", [np.nan, np.nan], [0.1, 0.2]).verdict == UNTESTABLE


def test_the_block_bootstrap_covers_a_correlated_series():
    """An AR(1) series (rho 0.6) of 120 steps: the 90 % interval should hold the true mean (0) about 90 % of
    the time; treating the steps as independent would cover far less."""
    rng = np.random.default_rng(5)
    hits = 0
    for trial in range(60):
        e = rng.normal(size=120)
        x = np.zeros(120)
        for t in range(1, 120):
            x[t] = 0.6 * x[t - 1] + e[t]
        lo, hi, _ = block_ci(x, n_boot=2000, seed=trial)
        hits += lo <= 0 <= hi
    assert hits >= 45  # >= 75 % of 60 (nominal 90 %; the block bootstrap runs a little narrow)


def test_a_finding_needs_every_claim():
    ev = evidence([6] * 20, [2] * 20)
    good, bad = claim("greater"), claim("greater", model="b", vs="a")
    assert check_finding(Finding(id="x", claims=[good]), ev)["verdict"] == REPRODUCED
    assert check_finding(Finding(id="x", claims=[good, bad]), ev)["verdict"] == NOT_REPRODUCED
    floor = evidence([0] * 20, [0] * 20)
    assert check_finding(Finding(id="x", claims=[claim("greater")]), floor)["verdict"] == UNTESTABLE
    assert check_finding(Finding(id="x", claims=[good, claim("greater", ops="9")]), ev)["verdict"] == INCONCLUSIVE


# ------------------------------------------------------------------------------------------ bases

def test_the_crossed_ci_equals_the_problem_only_ci_when_bases_agree_exactly():
    rng = np.random.default_rng(3)
    a, b = rng.binomial(8, 0.6, 30) / 8, rng.binomial(8, 0.4, 30) / 8
    one = judge("greater", a, b)
    three = judge("greater", [a, a, a], [b, b, b])
    assert three.ci == one.ci and three.diff == pytest.approx(one.diff)


def test_the_crossed_ci_is_wider_when_bases_disagree():
    rng = np.random.default_rng(4)
    b = rng.binomial(8, 0.4, 40) / 8
    shifts = [0.0, 0.15, 0.30]  # the same problems, three bases whose gains differ
    a = [np.clip(b + s + rng.normal(0, 0.05, 40), 0, 1) for s in shifts]
    pooled = judge("greater", np.mean(a, axis=0), b)
    crossed = judge("greater", a, [b] * 3)
    assert crossed.diff == pytest.approx(pooled.diff)
    assert crossed.ci[1] - crossed.ci[0] > 2 * (pooled.ci[1] - pooled.ci[0])
    assert crossed.mde > pooled.mde


def bases_evidence(per_base_a, b_counts, rule="crossed"):
    problems = {("b", k, 0): [record(i, c) for i, c in enumerate(b_counts)] for k in range(len(per_base_a))}
    for k, counts in enumerate(per_base_a):
        problems[("a", k, 0)] = [record(i, c) for i, c in enumerate(counts)]
    return Evidence(problems, {}, [0], {"id": "2-4"}, bases=len(per_base_a), bases_rule=rule)


def test_a_claim_over_bases_reports_each_base_and_the_spread_between_them():
    ev = bases_evidence([[6] * 20, [7] * 20], [2] * 20)
    result = check_claim(claim("greater"), ev)
    assert [p["base"] for p in result["per_base"]] == [0, 1]
    assert [round(p["diff"], 3) for p in result["per_base"]] == [0.5, 0.625]
    assert result["between_base_sd"] == pytest.approx(np.std([0.5, 0.625], ddof=1))
    assert result["verdict"] == REPRODUCED and "2 bases × 20 problems" in result["text"]


def test_one_base_against_another_can_disagree_and_the_combined_verdict_says_so():
    ev = bases_evidence([[8, 7] * 10, [1, 0] * 10], [4] * 20)  # base 0 gains, base 1 loses
    result = check_claim(claim("greater"), ev)
    assert [p["verdict"] for p in result["per_base"]] == [REPRODUCED, NOT_REPRODUCED]
    # two bases that disagree prove nothing either way: the gain detectable over both exceeds the room
    assert result["verdict"] == UNTESTABLE and "room above the baseline" in result["text"]
    pooled = check_claim(claim("greater"), bases_evidence([[8, 7] * 10, [1, 0] * 10], [4] * 20, rule="pooled"))
    assert pooled["per_base"] == []
