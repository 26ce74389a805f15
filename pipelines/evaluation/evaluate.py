"""Evaluation: sampled pass@k (outcome-only and process-verified), maj@k and error taxonomy per op bin.

For every bin (an op range, e.g. id = 2-10) we sample n completions per eval problem, verify each with
`gsm_synth.verify`, and report per bin and per bin x context:
  outcome_pass@k   the answer is right                       (unbiased estimator, k = 1, 2, 4, ..., n)
  process_pass@k   the answer is right and every step verifies
  maj@k            the majority answer of k samples is right
each with a 95 % percentile-bootstrap CI over problems, plus error counts by kind, mean completion
length and the fraction of completions cut at max_new_tokens. A cut completion counts as wrong (its
answer, if any, is not trusted) and casts no vote. Per-problem raw counts are kept beside the rows so
that studies can bootstrap differences between models on the same problems.

The command line is pipelines/evaluate.py.
"""
from __future__ import annotations

import itertools
import json
import random
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np

import gsm_synth
from gsm_synth.atomic import write_atomic, write_jsonl
from pipelines.evaluation.metrics import FLAVOURS, bootstrap_ci, maj_at_k, metric_key, pass_at_k, sample_ks
from pipelines.common.text import completion_to_solution, encode_prompt, prompt_text
from pipelines.evaluation.spec import EvalSpec, active_bins, eval_problems

# sample_fn(prompts, n) -> completions[i][j] = token ids of sample j of prompt i (EOS kept if emitted)
SampleFn = Callable[[list[list[int]], int], list[list[list[int]]]]


# -------------------------------------------------------------------------------------------- sampling

def _is_module(model) -> bool:
    return hasattr(model, "parameters") and hasattr(model, "train")


def resolve_eval_precision(model, spec: EvalSpec, accelerator: str | None = None, memory=None):
    """(spec with its precision decided for this machine and model, the models.speed.Choice). The
    accelerator defaults to where the model's weights are."""
    from models.speed import resolve_precision as choose  # torch-dependent: imported when sampling

    if accelerator is None:
        accelerator = "gpu" if next(model.parameters()).device.type == "cuda" else "cpu"
    choice = choose(spec.precision, accelerator, model, spec.batch_size, workload="sample", memory=memory)
    return replace(spec, precision=choice.value), choice


def make_sampler(model, tokenizer, spec: EvalSpec) -> SampleFn:
    """The batched KV-cache sampler as a SampleFn; each call gets its own seed derived from spec.seed."""
    from models.sampler import generate  # torch-dependent: imported when sampling

    calls = itertools.count()

    def sample(prompts, n):
        return generate(model, prompts, n_samples=n, max_new_tokens=spec.max_new_tokens,
                        temperature=spec.temperature, top_p=spec.top_p, eos_id=tokenizer.eos_id,
                        pad_id=tokenizer.pad_id, seed=spec.seed * 1_000_003 + next(calls),
                        max_batch=spec.batch_size, autocast=spec.precision == "bf16-mixed")
    return sample


def _check_fits(model, prompts, spec: EvalSpec) -> None:
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    longest = max(len(p) for p in prompts)
    if limit is not None and longest + spec.max_new_tokens > limit:
        raise ValueError(f"longest prompt ({longest} tokens) + max_new_tokens ({spec.max_new_tokens}) exceeds "
                         f"the model's max_seq_len ({limit}); lower max_new_tokens or the bins' ops")


@contextmanager
def _eval_mode(model):
    was_training = getattr(model, "training", None)
    if was_training is None or not _is_module(model):
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def sample_all(sample_fn: SampleFn, prompts: list[list[int]], spec: EvalSpec, progress: bool) -> list:
    """Completions for every prompt, in prompt order. Prompts of similar length share a call (less padding).
    Threads follow the machine's load between calls (models.machine.ThreadGovernor) and are restored."""
    from models.machine import ThreadGovernor  # torch-dependent: imported when sampling

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    per_call = max(1, spec.batch_size // spec.n_samples)
    out, start_time, tokens, last_report = [None] * len(prompts), time.time(), 0, 0.0
    with ThreadGovernor() as governor:
        for start in range(0, len(order), per_call):
            chunk = order[start:start + per_call]
            governor.step()
            got = sample_fn([prompts[i] for i in chunk], spec.n_samples)
            if len(got) != len(chunk) or any(len(s) != spec.n_samples for s in got):
                raise ValueError(f"sample_fn must return {spec.n_samples} completions for each of its "
                                 f"{len(chunk)} prompts")
            for i, samples in zip(chunk, got):
                out[i] = [list(s) for s in samples]
                tokens += sum(len(s) for s in samples)
            done, dt = min(start + per_call, len(order)), time.time() - start_time
            if progress and (dt - last_report >= 10 or done == len(order)):  # a line every 10 s at most
                last_report = dt
                eta = dt / done * (len(order) - done)
                print(f"eval: {done}/{len(order)} problems, {dt:.1f} s, ETA {eta:.0f} s, "
                      f"{tokens / max(dt, 1e-9):.0f} tok/s", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------------------------------- verifying

def is_cut(ids: list[int], eos_id: int, max_new_tokens: int) -> bool:
    return eos_id not in ids and len(ids) >= max_new_tokens


def score_problem(bin_name: str, problem, samples: list[list[int]], tokenizer, spec: EvalSpec) -> dict:
    """Raw per-problem record: correct counts, each sample's answer (None: none or cut), error counts."""
    c_outcome = c_process = cut = tokens = 0
    answers, errors = [], Counter()
    for ids in samples:
        verdict = gsm_synth.verify(problem, completion_to_solution(tokenizer, ids))
        truncated = is_cut(ids, tokenizer.eos_id, spec.max_new_tokens)
        c_outcome += verdict.answer_correct and not truncated
        c_process += verdict.process_correct and not truncated
        answers.append(None if truncated else verdict.predicted_answer)
        errors.update(e.kind for e in verdict.errors)
        cut += truncated
        tokens += len(ids)
    return {"bin": bin_name, "context": problem.context, "mode": problem.mode, "op": problem.op,
            "index": problem.index, "id": problem.id, "answer": problem.answer, "n": len(samples),
            "c_outcome": int(c_outcome), "c_process": int(c_process), "answers": answers,
            "errors": {k: errors[k] for k in gsm_synth.ERROR_KINDS if errors[k]}, "tokens": tokens, "cut": int(cut)}


def problem_scores(record: dict, ks: list[int], seed: int) -> dict[str, float]:
    """Every metric of one problem, keyed like the rows (metric_key)."""
    scores = {}
    for flavour in FLAVOURS:
        for k in ks:
            scores[metric_key(flavour, k)] = pass_at_k(record["n"], record[f"c_{flavour}"], k)
    for k in ks:
        rng = random.Random(f"maj:{seed}:{record['bin']}:{record['index']}:{k}")
        scores[metric_key("maj", k)] = maj_at_k(record["answers"], record["answer"], k, rng)
    return scores


def summarize(bin_name: str, context: str, ops: str, records: list[dict], scores: list[dict],
              ks: list[int], seed: int) -> dict:
    """One row: means with bootstrap CIs over problems, error taxonomy, lengths."""
    samples = sum(r["n"] for r in records)
    row = {"bin": bin_name, "context": context, "ops": ops, "modes": sorted({r["mode"] for r in records}),
           "problems": len(records), "n": records[0]["n"], "ks": ks}
    for key in scores[0]:
        values = [s[key] for s in scores]
        row[key] = float(np.mean(values))
        row[key + "_ci"] = list(bootstrap_ci(values, seed=seed))
    errors = Counter()
    for r in records:
        errors.update(r["errors"])
    row["errors"] = {k: errors[k] for k in gsm_synth.ERROR_KINDS}
    row["errors_per_sample"] = {k: errors[k] / samples for k in gsm_synth.ERROR_KINDS}
    row["mean_tokens"] = sum(r["tokens"] for r in records) / samples
    row["cut_fraction"] = sum(r["cut"] for r in records) / samples
    return row


def build_rows(records: list[dict], spec: EvalSpec) -> list[dict]:
    ks = sample_ks(spec.n_samples)
    scores = [problem_scores(r, ks, spec.seed) for r in records]
    rows = []
    for bin_name, ops in active_bins(spec).items():
        picked = [(r, s) for r, s in zip(records, scores) if r["bin"] == bin_name]
        for context in ["all", *dict.fromkeys(r["context"] for r, _ in picked)]:
            group = [(r, s) for r, s in picked if context in ("all", r["context"])]
            if group:
                rows.append(summarize(bin_name, context, ops, [r for r, _ in group], [s for _, s in group],
                                      ks, spec.seed))
    return rows


def check_vocabulary(tokenizer, problems: list, prompts: list[list[int]]) -> None:
    """Refuse problems whose words the model's tokenizer never saw (a context it was not built with):
    they would read as <unk> and be scored as if nothing were wrong."""
    unk = getattr(tokenizer, "unk_id", None)
    bad = [p for p, ids in zip(problems, prompts) if unk is not None and unk in ids]
    if not bad:
        return
    words = list(dict.fromkeys(w for p in bad[:20] for w in tokenizer.unknown_words(prompt_text(p))))
    contexts = sorted({p.context for p in bad})
    raise ValueError(f"the model's tokenizer does not know words of context {', '.join(contexts)} "
                     f"(e.g. {', '.join(repr(w) for w in words[:5])}); evaluate it on contexts it was trained with")


def evaluate(model, tokenizer, spec: EvalSpec | None = None, progress: bool = True,
             sample_fn: SampleFn | None = None) -> dict:
    """Sample, verify and summarise. `model` is a GPT (sampled with models.sampler, in eval mode, its
    mode restored afterwards) or itself a SampleFn; `sample_fn` overrides both (tests inject an oracle).

    Returns {"spec": dict, "ks": [...], "rows": [one per bin x context, context 'all' = bin total],
             "problems": [raw per-problem records: n, c_outcome, c_process, answers, errors, ...]}.
    """
    spec = spec or EvalSpec()
    problems = eval_problems(spec)
    flat = [(name, p) for name, ps in problems.items() for p in ps]
    prompts = [encode_prompt(tokenizer, p) for _, p in flat]
    check_vocabulary(tokenizer, [p for _, p in flat], prompts)
    if sample_fn is None and _is_module(model):
        _check_fits(model, prompts, spec)
        if spec.precision == "auto":
            spec = resolve_eval_precision(model, spec)[0]
        sample_fn = make_sampler(model, tokenizer, spec)
    elif sample_fn is None:
        if not callable(model):
            raise ValueError("evaluate needs a GPT module or a sample_fn(prompts, n_samples)")
        sample_fn = model
    with _eval_mode(model):
        completions = sample_all(sample_fn, prompts, spec, progress)
    records = [score_problem(name, p, samples, tokenizer, spec) for (name, p), samples in zip(flat, completions)]
    return {"spec": asdict(spec), "ks": sample_ks(spec.n_samples), "rows": build_rows(records, spec),
            "problems": records}


# --------------------------------------------------------------------------------------------- writing

def write_results(results: dict, out_dir) -> dict[str, Path]:
    """eval.jsonl (rows), eval_problems.jsonl (raw per-problem records), eval_spec.json, pass_at_k.png."""
    from pipelines.evaluation.plots import plot_bins  # matplotlib only when a figure is wanted

    out = Path(out_dir)
    paths = {"rows": out / "eval.jsonl", "problems": out / "eval_problems.jsonl",
             "spec": out / "eval_spec.json", "plot": out / "pass_at_k.png"}
    write_jsonl(results["rows"], paths["rows"])
    write_jsonl(results["problems"], paths["problems"])
    write_atomic(paths["spec"], json.dumps(results["spec"], indent=2) + "\n")
    plot_bins(results["rows"], paths["plot"])
    return paths
