import itertools
import json
import math
import random

from dataclasses import replace

import numpy as np
import pytest
import torch

import gsm_synth
from models import GPT, build_tokenizer, model_config
from pipelines import evaluate as ev
from pipelines.evaluation.plots import plot_pass_at_k
from pipelines.evaluation.evaluate import evaluate, write_results
from pipelines.evaluation.spec import EvalSpec, eval_problems
from pipelines.evaluation.metrics import bootstrap_ci, maj_at_k, metric_key, pass_at_k
from pipelines.common.text import completion_text, encode_prompt


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(gsm_synth.vocabulary())


def small_spec(**overrides):
    base = dict(problems_per_bin=2, n_samples=4, max_new_tokens=16, batch_size=64)
    return EvalSpec(**{**base, **overrides})


# ------------------------------------------------------------------------------------------ pass@k

def brute_pass_at_k(n, c, k):
    """Fraction of k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_subset_enumeration():
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_edge_cases():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 8) == 1.0  # n - c < k: exactly 1
    assert pass_at_k(10, 1, 10) == 1.0  # k = n: any correct sample is enough
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # k = 1 is c / n
    assert pass_at_k(np.int64(4), 2, 2) == pytest.approx(1 - 1 / 6)


def test_pass_at_k_large_n_no_overflow_and_monotone():
    values = [pass_at_k(128, 5, k) for k in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)
    exact = 1 - math.comb(123, 64) / math.comb(128, 64)
    assert values[6] == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("args, message", [
    ((4, 1, 5), "pass@k needs 1 <= k <= n (got k=5, n=4)"),
    ((4, 1, 0), "pass@k needs 1 <= k <= n (got k=0, n=4)"),
    ((4, 5, 1), "pass@k needs 0 <= c <= n (got c=5, n=4)"),
    ((4, -1, 1), "pass@k needs 0 <= c <= n (got c=-1, n=4)"),
    ((4.0, 1, 1), "pass@k needs whole numbers (got n=4.0)"),
    ((4, True, 1), "pass@k needs whole numbers (got c=True)"),
])
def test_pass_at_k_bad_arguments(args, message):
    with pytest.raises(ValueError) as info:
        pass_at_k(*args)
    assert str(info.value) == message


# ------------------------------------------------------------------------------------------- maj@k

def test_maj_at_k_all_right_all_wrong_and_no_answers():
    assert maj_at_k([7] * 6, 7, 3, random.Random(0)) == 1.0
    assert maj_at_k([1, 2, 3, 4, 5, 6], 7, 3, random.Random(0)) == 0.0
    assert maj_at_k([None] * 5, 7, 5) == 0.0


def test_maj_at_k_exact_values():
    answers = [7, 7, 3, 3, 3, None]
    assert maj_at_k(answers, 3, 6) == 1.0  # 3 wins 3:2
    assert maj_at_k(answers, 7, 6) == 0.0
    assert maj_at_k(answers, 7, 1) == pytest.approx(2 / 6)  # k = 1 is the fraction right
    assert maj_at_k([7, 7, 3, 3], 7, 4) == 0.5  # a tie scores the fraction of tied answers that are right
    assert maj_at_k([7, None, None, None], 7, 4) == 1.0  # None never wins, even as the most frequent
    # k = 2 of [7, 7, 3]: subsets {7,7} -> 1, {7,3} x2 -> tie 1/2 each: (1 + .5 + .5) / 3
    assert maj_at_k([7, 7, 3], 7, 2) == pytest.approx(2 / 3)


def test_maj_at_k_sampled_is_seeded_and_checks_k():
    answers = [5] * 40 + [6] * 30 + [None] * 10
    a = maj_at_k(answers, 5, 9, random.Random(1))
    assert a == maj_at_k(answers, 5, 9, random.Random(1))
    assert 0.5 < a < 1.0
    with pytest.raises(ValueError, match="maj@k needs 1 <= k <= n"):
        maj_at_k([1, 2], 1, 3)


# ----------------------------------------------------------------------------------------- bootstrap

def test_bootstrap_ci_contains_mean_and_shrinks_with_more_problems():
    rng = np.random.default_rng(0)
    few, many = rng.random(20), rng.random(2000)
    lo_f, hi_f = bootstrap_ci(few)
    lo_m, hi_m = bootstrap_ci(many)
    assert lo_f <= few.mean() <= hi_f
    assert lo_m <= many.mean() <= hi_m
    assert hi_m - lo_m < (hi_f - lo_f) / 4
    assert bootstrap_ci(few, seed=3) == bootstrap_ci(few, seed=3)
    lo, hi = bootstrap_ci(few, stat=np.median, n_boot=200)
    assert lo <= np.median(few) <= hi


# ------------------------------------------------------------------------------------------ problems

def test_eval_problems_are_deterministic_spread_and_from_the_eval_pool():
    spec = EvalSpec(problems_per_bin=6, bins={"id": "2-4", "edge": None})
    a, b = eval_problems(spec), eval_problems(spec)
    assert list(a) == ["id"]  # a null bin is dropped
    assert [p.id for p in a["id"]] == [p.id for p in b["id"]]
    assert [p.op for p in a["id"]] == [2, 2, 3, 3, 4, 4]
    assert [p.context for p in a["id"]] == ["zoo", "school", "movie"] * 2
    assert all(p.pool == "eval" for p in a["id"])


def test_a_confirmation_set_never_repeats_a_design_problem_and_keeps_its_layout():
    # op 2 under mod 7 with no distractors has few distinct problems: two seeds collide unless avoided
    style = {"modulus": 7, "distractors": 0, "shuffle": 0.0, "symbols": "ordered"}
    design = EvalSpec(problems_per_bin=60, bins={"id": "2"}, problem_options=style)
    text = lambda p: p.problem + p.question
    plain = eval_problems(replace(design, seed=1))["id"]
    held_out = eval_problems(replace(design, seed=1, avoid_seed=0))["id"]
    seen = {text(p) for p in eval_problems(design)["id"]}
    assert any(text(p) in seen for p in plain)  # the collision this guards against happens
    assert not any(text(p) in seen for p in held_out)
    assert [(p.op, p.context) for p in held_out] == [(p.op, p.context) for p in plain]
    assert [p.id for p in held_out] == [p.id for p in eval_problems(replace(design, seed=1, avoid_seed=0))["id"]]
    with pytest.raises(ValueError, match="avoid_seed must differ from seed"):
        eval_problems(replace(design, avoid_seed=0))


def test_bad_spec_fails_with_one_line():
    with pytest.raises(ValueError, match="bin 'hard'"):
        eval_problems(EvalSpec(bins={"hard": "15-999"}))
    with pytest.raises(ValueError, match="pool 'eval'"):
        eval_problems(EvalSpec(problem_options={"pool": "rl"}))


# ---------------------------------------------------------------------------------------- evaluate

def check_rows(results, spec):
    ks = [k for k in (1, 2, 4) if k <= spec.n_samples]
    bins = list(spec.bins)
    totals = [r for r in results["rows"] if r["context"] == "all"]
    assert [r["bin"] for r in totals] == bins
    for row in results["rows"]:
        assert row["ks"] == ks and row["n"] == spec.n_samples
        for key in ("bin", "context", "ops", "problems", "errors", "errors_per_sample", "mean_tokens",
                    "cut_fraction"):
            assert key in row
        assert set(row["errors"]) == set(gsm_synth.ERROR_KINDS)
        for metric in ("outcome", "process", "maj"):
            values = [row[metric_key(metric, k)] for k in ks]
            assert all(0.0 <= v <= 1.0 for v in values)
            for k in ks:
                lo, hi = row[metric_key(metric, k) + "_ci"]
                assert lo <= row[metric_key(metric, k)] <= hi
            if metric != "maj":
                assert values == sorted(values)  # pass@k never drops as k grows
        assert row["process_pass@1"] <= row["outcome_pass@1"]
    assert sum(r["problems"] for r in totals) == spec.problems_per_bin * len(bins)
    assert len(results["problems"]) == spec.problems_per_bin * len(bins)


def test_evaluate_tiny_untrained_gpt(tokenizer):
    torch.manual_seed(0)
    model = GPT(model_config("tiny", tokenizer.vocab_size, 1024)).train()
    spec = small_spec()
    results = evaluate(model, tokenizer, spec, progress=False)
    check_rows(results, spec)
    assert model.training  # mode restored
    total = next(r for r in results["rows"] if r["context"] == "all")
    assert total["cut_fraction"] > 0.5  # 16 tokens are too few to finish
    assert total["outcome_pass@4"] == 0.0  # cut completions count as wrong
    assert 0 < total["mean_tokens"] <= 16
    record = results["problems"][0]
    assert {"n", "c_outcome", "c_process", "answers", "id", "op", "context"} <= set(record)
    assert len(record["answers"]) == 4


def oracle_for(tokenizer, spec, corrupt=None):
    """A sample_fn that answers every eval prompt with its gold completion (optionally altered)."""
    gold = {}
    for problems in eval_problems(spec).values():
        for p in problems:
            text = completion_text(p) if corrupt is None else corrupt(p)
            gold[tuple(encode_prompt(tokenizer, p))] = tokenizer.encode(text) + [tokenizer.eos_id]
    return lambda prompts, n: [[gold[tuple(p)]] * n for p in prompts]


def test_oracle_scores_one_for_outcome_and_process(tokenizer):
    spec = small_spec(n_samples=2, max_new_tokens=384)
    results = evaluate(None, tokenizer, spec, progress=False, sample_fn=oracle_for(tokenizer, spec))
    check_rows(results, spec)
    for row in results["rows"]:
        assert row["outcome_pass@1"] == 1.0 and row["process_pass@1"] == 1.0 and row["maj@2"] == 1.0
        assert row["cut_fraction"] == 0.0
        assert sum(row["errors"].values()) == 0


def test_right_answer_with_wrong_steps_passes_outcome_only(tokenizer):
    spec = small_spec(n_samples=2, max_new_tokens=384, bins={"id": "3-4"})

    def skip_first_step(p):
        return completion_text(p).split(". ", 1)[1]  # drop the first 'Define ...' step

    results = evaluate(oracle_for(tokenizer, spec, skip_first_step), tokenizer, spec, progress=False)
    total = results["rows"][0]
    assert total["outcome_pass@1"] == 1.0 and total["process_pass@1"] == 0.0
    assert total["errors"]["missing_parameter"] > 0


def test_sample_fn_with_wrong_shape_is_refused(tokenizer):
    spec = small_spec(bins={"id": "2-3"})
    with pytest.raises(ValueError, match="must return 4 completions"):
        evaluate(lambda prompts, n: [[[1]] for _ in prompts], tokenizer, spec, progress=False)


# ------------------------------------------------------------------------------------ writing + CLI

def test_write_results_and_overlay_plot(tokenizer, tmp_path):
    spec = small_spec(n_samples=2, max_new_tokens=384)
    results = evaluate(None, tokenizer, spec, progress=False, sample_fn=oracle_for(tokenizer, spec))
    paths = write_results(results, tmp_path / "out")
    rows = [json.loads(line) for line in paths["rows"].read_text().splitlines()]
    assert rows == json.loads(json.dumps(results["rows"]))
    assert len(paths["problems"].read_text().splitlines()) == len(results["problems"])
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    overlay = plot_pass_at_k({"base": results["rows"], "rl": results["rows"]}, tmp_path / "cmp.png")
    assert overlay.read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_cli_unknown_key_names_the_closest(capsys):
    assert ev.main(["checkpoint=x", "n_sampels=3"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: unknown key 'n_sampels' (did you mean 'n_samples'?)"
    assert ev.main(["checkpoint=x", "temperature=hot"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert ev.main(["n_samples=3"]) == 2
    assert "checkpoint=<dir> is required" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_end_to_end_with_a_saved_checkpoint(tokenizer, tmp_path, capsys):
    from pipelines.common.checkpoint import save_model

    torch.manual_seed(0)
    save_model(tmp_path / "ck", GPT(model_config("tiny", tokenizer.vocab_size, 1024)), tokenizer)
    code = ev.main([f"checkpoint={tmp_path / 'ck'}", "bins.id=2-3", "bins.edge=null", "bins.hard=null",
                    "n_samples=2", "problems_per_bin=2", "max_new_tokens=8", "contexts=zoo,movie",
                    "progress=false"])
    assert code == 0
    assert "id" in capsys.readouterr().out
    out = tmp_path / "ck" / "eval"  # default out
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [(r["bin"], r["context"]) for r in rows] == [("id", "all"), ("id", "zoo"), ("id", "movie")]
    assert (out / "pass_at_k.png").exists()
    assert ev.main([f"checkpoint={tmp_path / 'missing'}"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_words_the_tokenizer_never_saw_are_refused(tokenizer, tmp_path):
    """A context file the model's tokenizer was not built with would score text that reads as <unk>."""
    from gsm_synth.context import BUILTIN_DIR

    alien = tmp_path / "alien.yaml"
    alien.write_text((BUILTIN_DIR / "zoo.yaml").read_text().replace("bear", "zorblax"))
    spec = EvalSpec(bins={"id": "2-3"}, contexts=[str(alien)], problems_per_bin=24, n_samples=1)
    with pytest.raises(ValueError, match="does not know words of context .* 'zorblax'"):
        evaluate(lambda prompts, n: [[[tokenizer.eos_id]] * n for _ in prompts], tokenizer, spec, progress=False)
