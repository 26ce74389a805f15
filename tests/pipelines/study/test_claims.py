"""Finding verdicts from synthetic evidence: the CI decides, paired over the same problems."""
from pipelines.study.claims import NOT_REPRODUCED, NOT_SIGNIFICANT, REPRODUCED, Evidence, check_claim, check_finding
from pipelines.study.schema import Claim, Finding


def record(index, c_process, n=8, errors=None, op=3, context="zoo"):
    return {"bin": "id", "index": index, "op": op, "context": context, "n": n, "c_outcome": c_process,
            "c_process": c_process, "answers": [1] * c_process + [2] * (n - c_process), "answer": 1,
            "errors": errors or {}}


def evidence(a_counts, b_counts, rl=None):
    problems = {("a", 0): [record(i, c) for i, c in enumerate(a_counts)],
                ("b", 0): [record(i, c) for i, c in enumerate(b_counts)]}
    return Evidence(problems, rl or {}, [0], {"id": "2-4"})


def test_greater_same_and_reversed():
    better = evidence([6] * 20, [2] * 20)
    claim = Claim(kind="greater", model="a", vs="b", split="id", metric="process_pass@1")
    result = check_claim(claim, better)
    assert result["verdict"] == REPRODUCED and abs(result["mean"] - 0.5) < 1e-9
    assert check_claim(Claim(kind="greater", model="b", vs="a", split="id", metric="process_pass@1"),
                       better)["verdict"] == NOT_REPRODUCED
    assert check_claim(Claim(kind="same", model="a", vs="b", split="id", metric="process_pass@1"),
                       better)["verdict"] == NOT_REPRODUCED
    noisy = evidence([8, 0] * 10, [0, 8] * 10)  # equal on average, huge spread
    assert check_claim(claim, noisy)["verdict"] == NOT_SIGNIFICANT
    assert check_claim(Claim(kind="same", model="a", vs="b", split="id", metric="process_pass@1"),
                       noisy)["verdict"] == REPRODUCED


def test_not_greater_accepts_a_drop_or_no_change_and_rejects_a_gain():
    def verdict(a, b):
        return check_claim(Claim(kind="not_greater", model="a", vs="b", split="id", metric="process_pass@1"),
                           evidence(a, b))["verdict"]
    assert verdict([2] * 20, [6] * 20) == REPRODUCED  # a clear drop: no gain
    assert verdict([8, 0] * 10, [0, 8] * 10) == REPRODUCED  # no detectable change
    assert verdict([6] * 20, [2] * 20) == NOT_REPRODUCED  # a clear gain


def test_a_claim_says_when_its_sides_have_different_seed_counts():
    ev = evidence([6] * 20, [2] * 20)
    claim = Claim(kind="greater", model="a", vs="b", split="id", metric="process_pass@1")
    assert "seeds" not in check_claim(claim, ev)["text"]
    ev.seeds = [0, 1]
    ev.problems[("a", 1)] = [record(i, 8) for i in range(20)]
    result = check_claim(claim, ev)
    assert result["text"].endswith("(seeds 2 vs 1)") and abs(result["a"] - 0.875) < 1e-9  # (6/8 + 8/8) / 2


def test_pairing_uses_shared_problems_and_filters():
    ev = evidence([8] * 10, [0] * 10)
    ev.problems[("a", 0)] += [record(99, 0, op=4)]  # only a has it: not compared
    result = check_claim(Claim(kind="greater", model="a", vs="b", split="id", metric="process_pass@8"), ev)
    assert result["n"] == 10
    only_op4 = Claim(kind="greater", model="a", vs="b", split="id", ops="4", metric="process_pass@8")
    assert check_claim(only_op4, ev)["verdict"] == NOT_SIGNIFICANT  # no shared data


def test_error_metric_and_rl_log_claims():
    ev = evidence([1] * 10, [1] * 10)
    for r in ev.problems[("a", 0)]:
        r["errors"] = {"dependency_mismatch": 4}
    assert check_claim(Claim(kind="greater", model="a", vs="b", split="id", metric="errors:dependency_mismatch"),
                       ev)["verdict"] == REPRODUCED
    logs = {("a", 0): [{"rl_step": s, "reward": 0.01, "label_acc": 0.2, "reward_acc": 0.7} for s in range(1, 21)]}
    ev = evidence([1], [1], rl=logs)
    assert check_claim(Claim(kind="below", model="a", metric="rl:reward", value=0.05), ev)["verdict"] == REPRODUCED
    assert check_claim(Claim(kind="above", model="a", metric="rl:reward", value=0.05), ev)["verdict"] == NOT_REPRODUCED
    lucky = Claim(kind="greater", model="a", metric="rl:reward_acc", vs_metric="rl:label_acc")
    assert check_claim(lucky, ev)["verdict"] == REPRODUCED


def test_a_finding_needs_every_claim():
    ev = evidence([6] * 20, [2] * 20)
    good = Claim(kind="greater", model="a", vs="b", split="id", metric="process_pass@1")
    bad = Claim(kind="greater", model="b", vs="a", split="id", metric="process_pass@1")
    assert check_finding(Finding(id="x", claims=[good]), ev)["verdict"] == REPRODUCED
    assert check_finding(Finding(id="x", claims=[good, bad]), ev)["verdict"] == NOT_REPRODUCED
