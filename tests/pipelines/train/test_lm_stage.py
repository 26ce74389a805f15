"""LM stage: a tiny pretrain lowers the loss, a killed run resumes to the same weights, bad configs fail."""
import csv
import itertools

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from pipelines.common.checkpoint import CheckpointError, load_model
from pipelines.common.config import ConfigError, parse_dotlist
from pipelines.common.mixture import MixtureConfig
from pipelines.train.config import LMStageConfig, OptimConfig
from pipelines.common.mixture import Mixture
from pipelines.train.data import BlockStream
from pipelines.train.lm import LMModule, make_tokenizer, run_lm_stage


def tiny(**kw):
    base = dict(preset="tiny", budget_tokens=12 * 4 * 128, batch_size=4, seq_len=128, checkpoint_every=3,
                precision="32-true", mixture=MixtureConfig(ops={"2-4": 1.0}),
                optim=OptimConfig(lr=3e-3, warmup_frac=0.1))
    base.update(kw)
    return LMStageConfig(**base)


class KillAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated kill")


def weights(directory):
    return load_model(directory)[0].state_dict()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    # bit-equality also pins that eager training of one config is reproducible (compile=true is not:
    # its CPU kernels differ by one ulp from run to run, README)
    unbroken = run_lm_stage(tiny(), tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_lm_stage(tiny(), tmp_path / "b", progress=False, callbacks=[KillAt(7)])
    assert (tmp_path / "b" / "ckpt" / "last.ckpt").exists() and not (tmp_path / "b" / "final").exists()
    resumed = run_lm_stage(tiny(), tmp_path / "b", progress=False)
    a, b = weights(unbroken), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished stage is not trained again
    assert run_lm_stage(tiny(), tmp_path / "b", progress=False) == resumed


def logged(stage_dir, key):
    rows = csv.DictReader(open(next((stage_dir / "logs").glob("version_*/metrics.csv"))))
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.slow
def test_micro_batches_train_the_same_model_as_whole_steps(tmp_path):
    # prompt tokens weigh 0.3, so micro-batches carry different weights: the step must still be the
    # weighted mean over all of them, and so must the loss it logs
    whole = run_lm_stage(tiny(prompt_loss_weight=0.3), tmp_path / "whole", progress=False)
    split = run_lm_stage(tiny(prompt_loss_weight=0.3, micro_batch=2), tmp_path / "split", progress=False)
    a, b = weights(whole), weights(split)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    for key in ("loss", "solution_loss"):
        assert logged(tmp_path / "whole", key) == pytest.approx(logged(tmp_path / "split", key), rel=1e-4)
    assert len(logged(tmp_path / "split", "tok_s")) == 12  # one figure per optimizer step, not per micro-batch


@pytest.mark.slow
def test_a_step_follows_the_gradient_of_its_weighted_mean_loss(tmp_path, monkeypatch):
    seen = {}
    original = LMModule.on_before_optimizer_step

    def record(module, optimizer):
        original(module, optimizer)
        if not seen:  # the first step: its starting weights and the gradient the optimizer gets
            seen["weights"] = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
            seen["grads"] = {k: p.grad.clone() for k, p in module.model.named_parameters()}

    monkeypatch.setattr(LMModule, "on_before_optimizer_step", record)
    cfg = tiny(prompt_loss_weight=0.3, micro_batch=2, budget_tokens=4 * 128)
    run_lm_stage(cfg, tmp_path, progress=False)
    model = load_model(tmp_path / "final")[0]
    model.load_state_dict(seen["weights"])
    blocks = list(itertools.islice(BlockStream(Mixture(cfg.mixture), make_tokenizer(), cfg.seed, cfg.seq_len, 0.3,
                                               stride=(1, 0, cfg.batch_size)), cfg.batch_size))
    x, y, w, _ = (torch.stack(t) for t in zip(*blocks))
    ce = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="none")
    ((ce * w.flatten()).sum() / w.sum()).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, seen["grads"][name], atol=1e-6, rtol=1e-4), name


@pytest.mark.slow
def test_data_workers_feed_the_one_process_stream(tmp_path):
    # three workers take turns at two micro-batches a step, so each worker's share moves from step to
    # step; the loader must still see the one-process order
    cfg = dict(micro_batch=2, prompt_loss_weight=0.3)
    alone = run_lm_stage(tiny(**cfg), tmp_path / "alone", progress=False)
    workers = run_lm_stage(tiny(**cfg, data_workers=3), tmp_path / "workers", progress=False)
    a, b = weights(alone), weights(workers)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_killed_accumulating_run_resumes_only_with_its_micro_batch(tmp_path):
    unbroken = run_lm_stage(tiny(micro_batch=2), tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_lm_stage(tiny(micro_batch=2), tmp_path / "b", progress=False, callbacks=[KillAt(7)])
    with pytest.raises(ConfigError) as e:
        run_lm_stage(tiny(micro_batch=1), tmp_path / "b", progress=False)
    assert "written with 2 micro-batch(es) per step" in str(e.value) and "\n" not in str(e.value)
    resumed = run_lm_stage(tiny(micro_batch=2), tmp_path / "b", progress=False)
    a, b = weights(unbroken), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_short_pretrain_lowers_the_loss(tmp_path):
    run_lm_stage(tiny(budget_tokens=40 * 8 * 128, batch_size=8, optim=OptimConfig(lr=1e-2, warmup_frac=0.05)),
                 tmp_path, progress=False)
    rows = [r for r in csv.DictReader(open(next((tmp_path / "logs").glob("version_*/metrics.csv")))) if r.get("loss")]
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < first - 1.0, (first, last)


@pytest.mark.slow
def test_midtrain_starts_from_a_checkpoint(tmp_path):
    base = run_lm_stage(tiny(budget_tokens=3 * 4 * 128), tmp_path / "base", progress=False)
    mid = run_lm_stage(tiny(budget_tokens=3 * 4 * 128, init_from=str(base),
                            mixture=MixtureConfig(ops={"5-6": 1.0}, pool="midtrain")), tmp_path / "mid",
                       progress=False)
    a, b = weights(base), weights(mid)
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_corrupted_checkpoint_is_one_clear_error(tmp_path):
    final = run_lm_stage(tiny(budget_tokens=4 * 128), tmp_path, progress=False)
    (final / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded in model.json"):
        load_model(final)
    with pytest.raises(CheckpointError, match="no model at"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize("argv, message", [
    (["budget_tokens=-5"], "budget_tokens must be > 0"),
    (["preset=huge"], "unknown model preset 'huge'"),
    (["optim.lrr=1"], "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
    (["batch_size=two"], "bad value for 'batch_size'"),
    (["mixture.contexts={aquarium: 1}"], "unknown context 'aquarium'"),
    (["mixture.ops={2-99999: 1}"], "op must be from 1 to"),
    (["batch_size=4", "micro_batch=3"], "micro_batch must divide batch_size 4 (got 3)"),
    (["data_workers=-1"], "data_workers must be >= 0 (got -1)"),
])
def test_bad_config_is_one_line(tmp_path, argv, message):
    with pytest.raises((ConfigError, ValueError)) as e:
        cfg = parse_dotlist(LMStageConfig, argv + ["preset=tiny"] if not argv[0].startswith("preset") else argv)
        run_lm_stage(cfg, tmp_path, progress=False)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_map_on_the_command_line_replaces_the_default():
    cfg = parse_dotlist(LMStageConfig, ["mixture.ops={11-14: 1.0}", "model={n_layer: 3}"])
    assert cfg.mixture.ops == {"11-14": 1.0} and cfg.model == {"n_layer": 3}
    cfg = parse_dotlist(LMStageConfig, ["optim.lr=0.5"], base={"mixture": {"ops": {"7-9": 1}}})
    assert cfg.mixture.ops == {"7-9": 1.0} and cfg.optim.lr == 0.5
    assert cfg.mixture.contexts == {"zoo": 1.0, "school": 1.0, "movie": 1.0}  # untouched maps keep defaults


def test_a_single_op_bin_may_be_a_bare_number():
    # YAML reads `{5: 0.5}` with an int key; it means the bin "5", on the CLI and in a config file
    cfg = parse_dotlist(LMStageConfig, ["mixture.ops={2-4: 0.5, 5: 0.5}"])
    assert cfg.mixture.ops == {"2-4": 0.5, "5": 0.5}
    cfg = parse_dotlist(LMStageConfig, [], base={"mixture": {"ops": {6: 1}}})
    assert cfg.mixture.ops == {"6": 1.0}


@pytest.mark.slow
def test_compiled_training_saves_plain_weights(tmp_path):
    final = run_lm_stage(tiny(budget_tokens=2 * 4 * 128, compile=True), tmp_path / "c", progress=False)
    eager = run_lm_stage(tiny(budget_tokens=2 * 4 * 128), tmp_path / "e", progress=False)
    assert weights(final).keys() == weights(eager).keys()
