"""RL stage: advantages and the clipped loss by hand, GRPO learns an op-1 task, TTRL never sees the truth,
a killed run resumes to the same weights, budgets and bad configs."""
import csv
import dataclasses
import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

import gsm_synth
from models import GPT, generate, model_config
from pipelines.train import rewards as R
from pipelines.common.checkpoint import CheckpointError, load_model, save_model
from pipelines.common.config import ConfigError, parse_dotlist
from pipelines.common.mixture import MixtureConfig
from pipelines.train.config import RewardConfig, RLStageConfig
from pipelines.common.mixture import Mixture
from pipelines.train.lm import make_tokenizer
from pipelines.train.grpo import group_advantages, grpo_loss, grpo_token_terms, zero_variance
from pipelines.rl import main
from pipelines.train.rl import run_rl_stage
from pipelines.train.skeleton import snapshot_dir
from pipelines.common.text import completion_text, encode_example, encode_prompt




OP1 = dict(ops={"1": 1.0}, contexts={"symbolic": 1.0}, distractors=0)
NEW = 24  # an op-1 completion is ~17 tokens


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def base(tmp_path_factory, tok):
    """A tiny GPT trained briefly on op-1 problems: the format is there, the answer right ~1/3 of the time."""
    mixture = Mixture(MixtureConfig(pool="pretrain", **OP1))
    torch.manual_seed(0)
    model = GPT(model_config("tiny", tok.vocab_size, 96))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(170):
        examples = [encode_example(tok, mixture.problem(0, step * 16 + j)) for j in range(16)]
        width = max(len(ids) for ids, _ in examples)
        x = torch.full((16, width), tok.pad_id)
        y = torch.full((16, width), -100)
        for r, (ids, start) in enumerate(examples):
            x[r, :len(ids)] = torch.tensor(ids)
            y[r, start - 1:len(ids) - 1] = torch.tensor(ids[start:])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_model(tmp_path_factory.mktemp("base") / "final", model, tok)


def rl_cfg(base, **kw):
    cfg = dict(init_from=str(base), mixture=MixtureConfig(pool="rl", **OP1), max_new_tokens=NEW,
               prompts_per_step=4, group_size=4, budget_steps=3, lr=1e-3, checkpoint_every=2)
    cfg.update(kw)
    return RLStageConfig(**cfg)


def weights(directory):
    return load_model(directory)[0].state_dict()


def metrics(out):
    path = next((out / "logs").glob("version_*/metrics.csv"))
    return [row for row in csv.DictReader(open(path)) if row.get("reward")]


def sampled_accuracy(directory, tok, problems=64, n=8):
    model = load_model(directory)[0].eval()
    rl = Mixture(MixtureConfig(pool="rl", **OP1))
    probs = [rl.problem(12345, i) for i in range(problems)]
    out = generate(model, [encode_prompt(tok, p) for p in probs], n, NEW, eos_id=tok.eos_id, pad_id=tok.pad_id, seed=7)
    return sum(gsm_synth.verify(p, R.read_completion(tok, c, NEW).text).answer_correct
               for p, group in zip(probs, out) for c in group) / (problems * n)


# --------------------------------------------------------------------------------------- the math

def test_advantages_for_a_known_reward_vector():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    plain = group_advantages(rewards, std_norm=False)
    assert torch.allclose(plain, torch.tensor([[0.5, -0.5, -0.5, 0.5], [0, 0, 0, 0], [-0.25, -0.25, -0.25, 0.75]]))
    normed = group_advantages(rewards, std_norm=True)
    std0, std2 = math.sqrt(1 / 3), math.sqrt(0.25)  # unbiased std of the groups
    assert torch.allclose(normed[0], torch.tensor([0.5, -0.5, -0.5, 0.5]) / (std0 + 1e-6))
    assert torch.allclose(normed[2], torch.tensor([-0.25, -0.25, -0.25, 0.75]) / (std2 + 1e-6))
    assert torch.equal(normed[1], torch.zeros(4))
    assert zero_variance(rewards).tolist() == [False, True, False]


def test_clipped_loss_equals_a_hand_computed_value():
    old = torch.zeros(2, 3)
    logp = torch.log(torch.tensor([[1.5, 0.9, 1.1], [0.5, 1.2, 7.0]]))  # ratios, since old = 0
    adv = torch.tensor([2.0, -1.0])
    mask = torch.tensor([[True, True, True], [True, True, False]])  # the 7.0 is padding
    # row 0 (A=2): min(1.5*2, 1.28*2)=2.56, min(0.9*2, 0.9*2)=1.8, min(1.1*2, 1.1*2)=2.2
    # row 1 (A=-1): min(-0.5, -0.8)=-0.8, min(-1.2, -1.2)=-1.2
    expected = -(2.56 + 1.8 + 2.2 - 0.8 - 1.2) / 5
    loss = grpo_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    _, clipped, _ = grpo_token_terms(logp, old, adv, 0.2, 0.28)
    assert (clipped & mask).tolist() == [[True, False, False], [True, False, False]]
    # k3 KL to a reference: exp(ref - logp) - (ref - logp) - 1 per token, weighted by kl_coef
    ref = torch.zeros(2, 3)
    d = ref - logp
    k3 = (torch.exp(d) - d - 1)[mask].sum().item() / 5
    with_kl = grpo_loss(logp, old, adv, mask, 0.2, 0.28, kl_coef=0.1, ref_logp=ref)
    assert with_kl.item() == pytest.approx(expected + 0.1 * k3, abs=1e-6)
    # the gradient flows through logp only, and equals -A/n_tokens at ratio 1 (on-policy)
    lp = torch.zeros(2, 3, requires_grad=True)
    grpo_loss(lp, torch.zeros(2, 3), adv, mask).backward()
    assert torch.allclose(lp.grad, torch.tensor([[-0.4, -0.4, -0.4], [0.2, 0.2, 0.0]]))


# ------------------------------------------------------------------------------------------ rewards

def test_rewards_on_gold_and_cut_completions(tok):
    p = gsm_synth.generate(3, "zoo", "forward", seed=0, index=0, pool="rl")
    gold = tok.encode(completion_text(p)) + [tok.eos_id]
    c = R.read_completion(tok, gold, 256)
    assert not c.cut and c.answer == p.answer
    for kind in ("outcome", "process", "strict"):
        assert R.score_group(RewardConfig(kind=kind, alpha=0.2), p, [c, c], 2).rewards == [1.0, 1.0]
    cut = R.read_completion(tok, gold[:-1], len(gold) - 1)  # same text, no EOS within the limit
    assert cut.cut and cut.answer is None
    assert R.score_group(RewardConfig(kind="outcome"), p, [cut], 1).rewards == [0.0]
    # a wrong final answer keeps (1 - alpha) of the process credit, and nothing under strict
    wrong_text = c.text.replace(f"<answer>{p.answer}<", f"<answer>{(p.answer + 1) % 23}<")
    wrong = R.Completion(gold, wrong_text, False, (p.answer + 1) % 23)
    assert R.score_group(RewardConfig(kind="process", alpha=0.2), p, [wrong], 1).rewards == [pytest.approx(0.8)]
    assert R.score_group(RewardConfig(kind="strict"), p, [wrong], 1).rewards == [0.0]


def test_majority_vote_and_ttrl_rewards():
    assert R.majority_vote([None, 3, 5, 5, None, 3, None]) == (3, 2)  # None never votes; ties: first seen
    assert R.majority_vote([None, None]) == (None, 0)
    rewards, label, ratio = R.ttrl_rewards([4, 4, 7, None, 4, 1], n=4)
    assert (rewards, label, ratio) == ([1.0, 1.0, 0.0, 0.0], 4, 0.5)


class NoAnswer:
    """A problem whose true answer raises when read."""

    def __init__(self, problem):
        self._p = problem

    def __getattr__(self, key):
        if key == "answer":
            raise AssertionError("the reward path read the true answer")
        return getattr(self._p, key)


def test_ttrl_reward_never_reads_the_true_answer(tok):
    p = gsm_synth.generate(2, "zoo", "forward", seed=0, index=1, pool="rl")
    gold = tok.encode(completion_text(p)) + [tok.eos_id]
    comps = [R.read_completion(tok, gold, 256)] * 3 + [R.Completion([1, 2], "junk", False, None)]
    group = R.score_group(RewardConfig(kind="ttrl"), NoAnswer(p), comps, 3)
    assert group.rewards == [1.0, 1.0, 1.0] and group.label == p.answer
    with pytest.raises(AssertionError, match="read the true answer"):  # the guard works
        R.score_group(RewardConfig(kind="outcome"), NoAnswer(p), comps, 3)
    logged = R.truth_metrics(RewardConfig(kind="ttrl"), p, comps, group, 3)
    assert logged["label_acc"] == 1.0 and logged["reward_acc"] == 1.0 and logged["majority_ratio"] == 0.75
    assert "wrong_label_reward_acc" not in logged  # the label is right: no lucky hits to count


def test_lucky_hits_are_measured_when_the_label_is_wrong(tok):
    p = gsm_synth.generate(2, "zoo", "forward", seed=0, index=1, pool="rl")
    gold = R.read_completion(tok, tok.encode(completion_text(p)) + [tok.eos_id], 256)
    wrong = R.Completion([1], "Answer: 99.", False, 99)
    other = R.Completion([1], "Answer: 98.", False, 98)
    comps = [wrong, wrong, gold, other]  # the majority (99) is wrong; one sample is right
    group = R.score_group(RewardConfig(kind="ttrl", votes=4), p, comps, 4)
    logged = R.truth_metrics(RewardConfig(kind="ttrl", votes=4), p, comps, group, 4)
    # rewards 1, 1, 0, 0 against truth 0, 0, 1, 0: only the 'other' sample's reward (0) is right
    assert logged["label_acc"] == 0.0 and logged["wrong_label_reward_acc"] == 0.25
    # every rewarded sample is wrong, so reward accuracy = 1 - acc - share rewarded
    assert logged["wrong_label_reward_acc"] == 1 - logged["acc"] - sum(group.rewards) / 4


@pytest.mark.slow
def test_ttrl_training_is_blind_to_the_truth(base, tmp_path, monkeypatch):
    """Same TTRL run with the truth hidden (problems raise on .answer) and the verifier lying: same weights."""
    cfg = rl_cfg(base, reward=RewardConfig(kind="ttrl", votes=6), budget_steps=2, group_size=4)
    honest = run_rl_stage(cfg, tmp_path / "honest", progress=False)

    real_problem, real_truth = Mixture.problem, R.truth_metrics
    lies = []

    def lying_verify(problem, text):
        lies.append(1)
        return gsm_synth.Verdict(answer_correct=True, process_correct=True, necessary_params=1, correct_params=1)

    monkeypatch.setattr(Mixture, "problem", lambda self, seed, index: NoAnswer(real_problem(self, seed, index)))
    monkeypatch.setattr(R, "truth_metrics",  # logging sees a wrong truth: -1
                        lambda cfg, p, *a: real_truth(cfg, dataclasses.replace(p._p, answer=-1), *a))
    monkeypatch.setattr(R, "verify", lying_verify)
    blind = run_rl_stage(cfg, tmp_path / "blind", progress=False)
    a, b = weights(honest), weights(blind)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert lies and all(float(r["acc"]) == pytest.approx(1 - float(r["cut_frac"])) and float(r["label_acc"]) == 0.0
                        for r in metrics(tmp_path / "blind"))
    assert any(float(r["acc"]) < 1.0 for r in metrics(tmp_path / "honest"))


# -------------------------------------------------------------------------------------------- stage

@pytest.mark.slow
def test_grpo_raises_reward_on_an_op1_task(base, tmp_path, tok):
    out = tmp_path / "rl"
    final = run_rl_stage(rl_cfg(base, prompts_per_step=16, group_size=8, budget_steps=20, ppo_epochs=2,
                                minibatches=2), out, progress=False)
    before, after = sampled_accuracy(base, tok), sampled_accuracy(final, tok)
    assert after > before + 0.08, (before, after)
    rows = metrics(out)
    assert len(rows) == 20
    for key in ("reward", "acc", "pass_n", "resp_len", "entropy", "kl_old", "clip_frac", "flops", "tok_s",
                "rollout_s", "update_s", "zero_var_frac"):
        assert rows[-1].get(key) not in (None, ""), key
    summary = load_model(final)[2]["summary"]
    assert summary["steps"] == 20 and summary["samples"] == 20 * 16 * 8
    assert summary["flops"] == pytest.approx(float(rows[-1]["flops"]), rel=1e-6) and summary["flops"] > 0


class KillAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, module, *args):
        if module.state["step"] == self.step:
            raise RuntimeError("simulated kill")


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(base, tmp_path):
    cfg = rl_cfg(base, budget_steps=5, ppo_epochs=2, minibatches=2, kl_coef=0.05, skip_zero_variance=False,
                 snapshots=[1, 3, 4])
    unbroken = run_rl_stage(cfg, tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_rl_stage(cfg, tmp_path / "b", progress=False, callbacks=[KillAt(3)])
    assert (tmp_path / "b" / "ckpt" / "last.ckpt").exists() and not (tmp_path / "b" / "final").exists()
    resumed = run_rl_stage(cfg, tmp_path / "b", progress=False)
    a, b = weights(unbroken), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the snapshot schedule survives the kill: every snapshot is there, equal to the unbroken run's
    for step in (1, 3, 4):
        a, b = weights(snapshot_dir(tmp_path / "a", step)), weights(snapshot_dir(tmp_path / "b", step))
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert load_model(snapshot_dir(tmp_path / "b", step))[2]["summary"]["samples"] == step * 16
    assert sorted(p.name for p in (tmp_path / "a" / "snapshots").iterdir()) == ["step-000001", "step-000003", "step-000004"]
    assert load_model(resumed)[2]["summary"]["samples"] == load_model(unbroken)[2]["summary"]["samples"]
    assert run_rl_stage(cfg, tmp_path / "b", progress=False) == resumed  # finished: not trained again
    assert any(float(r["kl"]) > 0 for r in metrics(tmp_path / "a"))
    # a running stage's checkpoint loads as a model, as the LM stages' do
    assert load_model(tmp_path / "b" / "ckpt" / "last.ckpt")[0].config.n_layer == 2


@pytest.mark.slow
def test_a_snapshot_is_the_model_a_shorter_budget_trains(base, tmp_path):
    """The learning rate is constant: RL's policy after s steps of a long run is the model of an s-step run
    (what lets one long run serve every budget of the compute axis)."""
    long = rl_cfg(base, budget_steps=3, snapshots=[2])
    run_rl_stage(long, tmp_path / "long", progress=False)
    short = run_rl_stage(rl_cfg(base, budget_steps=2), tmp_path / "short", progress=False)
    a, b = weights(snapshot_dir(tmp_path / "long", 2)), weights(short)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_cosine_schedule_follows_the_step_through_a_resume(base, tmp_path):
    cfg = rl_cfg(base, budget_steps=4, lr_schedule="cosine", lr=1e-2)
    unbroken = run_rl_stage(cfg, tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_rl_stage(cfg, tmp_path / "b", progress=False, callbacks=[KillAt(3)])
    resumed = run_rl_stage(cfg, tmp_path / "b", progress=False)
    constant = run_rl_stage(dataclasses.replace(cfg, lr_schedule="constant"), tmp_path / "c", progress=False)
    a, b, c = weights(unbroken), weights(resumed), weights(constant)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the schedule changed the updates


@pytest.mark.slow
def test_a_crafted_rl_resume_checkpoint_never_runs(base, tmp_path, capfd):
    import pathlib

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (tmp_path / "ran",)

    cfg = rl_cfg(base, budget_steps=4)
    unbroken = run_rl_stage(cfg, tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_rl_stage(cfg, tmp_path / "b", progress=False, callbacks=[KillAt(2)])
    last = tmp_path / "b" / "ckpt" / "last.ckpt"
    torch.save({"rl_state": Payload()}, last)
    with pytest.raises(CheckpointError, match="corrupted or not a training checkpoint"):
        load_model(last)  # evaluating a running stage reads the same file: refused, not run
    resumed = run_rl_stage(cfg, tmp_path / "b", progress=False)
    assert not (tmp_path / "ran").exists() and "moved to last.ckpt.bad" in capfd.readouterr().err
    a, b = weights(unbroken), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_flops_and_samples_budgets(base, tmp_path):
    out = tmp_path / "samples"
    run_rl_stage(rl_cfg(base, budget_samples=33), out, progress=False)  # 16 samples a step -> 3 steps
    rows = metrics(out)
    assert len(rows) == 3
    budget = float(rows[0]["flops"]) * 1.5
    final = run_rl_stage(rl_cfg(base, budget_steps=None, budget_flops=budget), tmp_path / "flops", progress=False)
    rows = metrics(tmp_path / "flops")
    spent = load_model(final)[2]["summary"]["flops"]
    assert len(rows) == 2 and spent >= budget and float(rows[0]["flops"]) < budget


@pytest.mark.slow
def test_the_trainer_computes_its_loss_with_the_tested_functions(base, tmp_path, monkeypatch):
    from pipelines.train import rl

    calls = []
    real = rl.token_mean
    monkeypatch.setattr(rl, "token_mean", lambda *a: calls.append(a[2]) or real(*a))
    run_rl_stage(rl_cfg(base, budget_steps=1), tmp_path, progress=False)
    assert calls and all(isinstance(tokens, float) and tokens >= 1 for tokens in calls)  # the minibatch's count


@pytest.mark.parametrize("argv, message", [
    (["reward.kind=majority"], "unknown reward.kind 'majority' (valid: outcome, process, strict, ttrl)"),
    (["reward.kind=ttrl", "reward.votes=16", "group_size=32"], "group_size n=32 > reward.votes m=16"),
    (["reward.alpha=-0.5"], "reward.alpha must be in [0, 1]"),
    (["group_size=1"], "group_size must be >= 2"),
    (["budget_steps=0"], "budget_steps must be > 0"),
    (["temperature=0"], "temperature must be > 0"),
    (["lr_schedule=linear"], "lr_schedule must be constant or cosine (got 'linear')"),
    (["lr_schedule=cosine", "budget_flops=1e9"], "lr_schedule=cosine needs budget_steps or budget_samples"),
    (["snapshots=[3, 2]"], "snapshots must be increasing RL steps >= 1 (got [3, 2])"),
    (["snapshots=[200]"], "snapshot at step 200 is not before the last of the budget's 200 steps"),
    (["reward.kindd=ttrl"], "unknown key 'reward.kindd' (did you mean 'reward.kind'?)"),
])
@pytest.mark.slow
def test_bad_config_is_one_line(base, tmp_path, argv, message):
    with pytest.raises(ConfigError) as e:
        run_rl_stage(parse_dotlist(RLStageConfig, argv + [f"init_from={base}"]), tmp_path, progress=False)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "final").exists()


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main([f"out={tmp_path}", "reward.kind=nope", "init_from=x"]) == 2
    assert main([f"out={tmp_path}"]) == 2
    assert main([f"out={tmp_path}", f"init_from={tmp_path / 'missing'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: unknown reward.kind 'nope'")
    assert err[1] == "error: init_from=<dir> is required: a finished LM stage's final/ directory"
    assert err[2].startswith("error: no model at") and len(err) == 3
