"""RL stage: GRPO on verifiable rewards (outcome / process / strict / TTRL) with Lightning.

    python -m pipelines.rl out=runs/rl init_from=runs/base/final [reward.kind=process reward.alpha=0.2 ...]

One RL step = one rollout batch: `prompts_per_step` problems of the RL pool (their own mixture), a group
of n samples each from the batched KV-cache sampler, rewards, advantages r - mean (optionally / std) per
group, then `ppo_epochs` x `minibatches` optimizer steps of the token-level clipped policy-gradient loss
(DAPO/verl "token-mean"), optionally with a k3 KL penalty to the starting policy.

Learning rate: constant (the CMU study's), so the policy after N steps equals an N-step run's (tested);
`lr_schedule=cosine` decays it to a tenth by the budget's last step. `snapshots=[N, ...]` keeps the policy
after those RL steps in snapshots/step-<N>/ (a study's pass@k along RL evaluates them).

Determinism: step s reads problems `Mixture.problem(seed, (s * world + rank) * P + j)` and samples with
a generator seeded from (seed, s, rank), so a resumed run equals an unbroken one (on CPU).

Log-probabilities: the "old" log-probs of the ratio are recomputed by a no-grad forward pass of the
policy exactly as the loss computes its own (same code, precision and padding), from logits / temperature
(verl's convention; temperature 1 by default), so at the first optimizer step the ratio is exactly 1. The
sampler's own log-probs are not used: its cached decode path differs numerically from a full forward.
With ppo_epochs = minibatches = 1 the update is on-policy and old = logp.detach() (no extra forward).
top_p < 1 samples from a truncated distribution the loss does not model: the ratio is then biased.

Compute (logged as `flops`, summed over devices): 2 N per sampled token (prompt prefill + generated),
6 N per trained token per pass, 2 N per token for the old-log-prob and reference forward passes, where
N-terms come from `GPT.flops_per_token` (matmul weights + attention at the batch's length).

Logged every step (CSV in logs/; reward, acc, kl, tok_s also in the progress bar): reward (mean training
reward), acc / pass_n / process_acc / cut_frac of the n trained samples against the truth (logging only),
resp_len, entropy (response tokens, first pass), kl (k3 to the reference, only when kl_coef > 0), kl_old
(k3 between the rollout policy and the policy being updated; 0 when on-policy), clip_frac, zero_var_frac,
loss, grad_norm, opt_steps, rollout_s, update_s, tok_s (sampled tokens / step time), flops (so far),
flops_per_s, rollout_flops_frac, samples, rl_step; ttrl adds label_acc, reward_acc, majority_ratio and
true_reward (see pipelines/train/rewards.py).

DDP: each manual_backward is all-reduced by Lightning; every rank performs the same number of backward
passes and optimizer steps (empty micro-batches backpropagate a zero loss), and token counts that gate
an optimizer step are reduced across ranks.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, IterableDataset

from models import GPT, GPTConfig, generate
from models.machine import configure_threads
from models.speed import resolve_precision

from . import rewards as R
from .grpo import (Batch, Rollout, UpdateStats, build_batch, derive_seed, group_advantages, grpo_token_terms, token_logprobs,
                   token_mean, zero_variance)
from pipelines.common.checkpoint import META, load_model, save_model
from .cli import announce, how_it_ran
from .skeleton import (CKPT, LAST, adamw, check_accelerator, finished, prepare, publish, save_checkpoint, snapshot_dir,
                       warmup_cosine)
from .config import RLStageConfig, default_group_size, planned_steps
from pipelines.common.config import ConfigError
from pipelines.common.mixture import Mixture
from .share_cores import ShareCores
from pipelines.common.text import encode_prompt

UNBOUNDED = 10 ** 12  # step cap when the budget is in FLOPs
COSINE_FLOOR = 0.1  # lr_schedule=cosine ends at lr * this
PROGRESS_KEYS = ("reward", "acc", "kl", "tok_s")


# -------------------------------------------------------------------------------------------- module

class GRPOModule(pl.LightningModule):
    def __init__(self, model: dict, cfg: RLStageConfig):
        super().__init__()
        self.save_hyperparameters({"model": model, "rl": asdict(cfg)})  # "model": what load_model reads
        self.automatic_optimization = False
        self.model = GPT(GPTConfig(**model))
        self.cfg = cfg
        self.n = self.cfg.group_size
        self.state = {"step": 0, "samples": 0, "flops": 0.0, "wall_s": 0.0, "sampled_tokens": 0}
        self.mixture = self.tokenizer = None
        self._ref: list = []  # [frozen reference GPT] when kl_coef > 0; a list keeps it out of state_dict
        self.total_steps = UNBOUNDED

    def attach(self, mixture: Mixture, tokenizer, ref: GPT | None, total_steps: int) -> None:
        self.mixture, self.tokenizer, self.total_steps = mixture, tokenizer, total_steps
        if ref is not None:
            ref.requires_grad_(False).eval()
            self._ref = [ref]

    @property
    def ref(self) -> GPT | None:
        return self._ref[0] if self._ref else None

    # For callbacks passed to run_rl_stage (e.g. a notebook evaluating the policy along RL):
    @property
    def policy(self) -> GPT:
        """The model being trained."""
        return self.model

    @property
    def steps_done(self) -> int:
        """RL steps finished so far (after a step's optimizer update, in on_train_batch_end)."""
        return int(self.state["step"])

    def configure_optimizers(self):
        c = self.cfg
        return adamw(self.model, c.lr, (c.beta1, c.beta2), c.weight_decay)

    def on_fit_start(self):
        if self.ref is not None:
            self.ref.to(self.device)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["rl_state"] = dict(self.state)

    def on_load_checkpoint(self, checkpoint):
        self.state.update(checkpoint.get("rl_state", {}))

    # ---------------------------------------------------------------------------- helpers
    def _world(self) -> tuple[int, int]:
        t = self._trainer
        return (t.world_size, t.global_rank) if t is not None else (1, 0)

    def _sum(self, value: float) -> float:
        """Sum over ranks (identity on one device)."""
        if self._world()[0] == 1:
            return float(value)
        t = torch.tensor(float(value), device=self.device, dtype=torch.float64)
        return float(self.trainer.strategy.reduce(t, reduce_op="sum"))

    def _fwd_flops(self, tokens: int, length: int) -> float:
        return tokens * self.model.flops_per_token(length) / 3.0  # 2 N (+ attention) per token

    # ---------------------------------------------------------------------------- rollout
    def rollout(self, step: int) -> Rollout:
        cfg, tok = self.cfg, self.tokenizer
        world, rank = self._world()
        first = (step * world + rank) * cfg.prompts_per_step
        problems = [self.mixture.problem(cfg.seed, first + j) for j in range(cfg.prompts_per_step)]
        prompts = [encode_prompt(tok, p) for p in problems]
        longest = max(len(p) for p in prompts)
        if longest + cfg.max_new_tokens > self.model.config.max_seq_len:
            raise ConfigError(f"a prompt of {longest} tokens + max_new_tokens {cfg.max_new_tokens} exceeds the "
                              f"model's max_seq_len {self.model.config.max_seq_len} (step {step})")
        m = R.samples_per_prompt(cfg.reward, self.n)
        was_training = self.model.training
        self.model.eval()
        try:
            samples = generate(self.model, prompts, n_samples=m, max_new_tokens=cfg.max_new_tokens,
                               temperature=cfg.temperature, top_p=cfg.top_p, eos_id=tok.eos_id, pad_id=tok.pad_id,
                               seed=derive_seed("rl", cfg.seed, step, rank), max_batch=cfg.max_batch)
        finally:
            self.model.train(was_training)
        completions = [[R.read_completion(tok, ids, cfg.max_new_tokens) for ids in group] for group in samples]
        # Rewards first, from what training may see; the truth is read afterwards, for logging only.
        groups = [R.score_group(cfg.reward, p, c, self.n) for p, c in zip(problems, completions)]
        truth = [R.truth_metrics(cfg.reward, p, c, g, self.n) for p, c, g in zip(problems, completions, groups)]
        return Rollout(problems, prompts, completions, groups, truth)

    def rollout_flops(self, rollout: Rollout) -> tuple[float, int]:
        prompt_tokens = sum(len(p) for p in rollout.prompts)
        new_tokens = sum(len(c.ids) for group in rollout.completions for c in group)
        length = max(len(p) for p in rollout.prompts) + max(len(c.ids) for g in rollout.completions for c in g)
        return self._fwd_flops(prompt_tokens + new_tokens, length), new_tokens

    # ---------------------------------------------------------------------------- update
    def _micro_slices(self, rows: slice) -> list[slice]:
        """A fixed number of micro-batches per minibatch (the same on every rank, for DDP)."""
        cfg = self.cfg
        nominal = math.ceil(cfg.prompts_per_step * self.n / cfg.minibatches)
        count = math.ceil(nominal / cfg.micro_batch)
        starts = [min(rows.start + k * cfg.micro_batch, rows.stop) for k in range(count)]
        return [slice(lo, min(lo + cfg.micro_batch, rows.stop)) for lo in starts]

    @staticmethod
    def _trim(batch: Batch, sl: slice):
        width = int(batch.lengths[sl].max())
        return batch.ids[sl, :width], batch.mask[sl, :width - 1], batch.adv[sl]

    @torch.no_grad()
    def _forward_logprobs(self, model, batch: Batch) -> torch.Tensor:
        out = torch.zeros(batch.mask.shape, dtype=torch.float32, device=self.device)
        rows, size = batch.ids.shape[0], self.cfg.micro_batch
        for sl in (slice(lo, min(lo + size, rows)) for lo in range(0, rows, size)):  # no backward: any split
            ids, _, _ = self._trim(batch, sl)
            out[sl, :ids.shape[1] - 1] = token_logprobs(model, ids, self.cfg.temperature)[0]
        return out

    def _zero_backward(self) -> None:
        self.manual_backward(sum(p.sum() for p in self.model.parameters()) * 0.0)

    def update(self, batch: Batch) -> UpdateStats:
        """ppo_epochs passes over the rollout, each in `minibatches` optimizer steps."""
        cfg = self.cfg
        batch = Batch(batch.ids.to(self.device), batch.mask.to(self.device), batch.adv.to(self.device),
                      batch.lengths)
        stats = UpdateStats(passes=cfg.ppo_epochs * cfg.minibatches)
        if self._sum(float(batch.mask.sum())) == 0:  # nothing to learn anywhere (all groups skipped)
            return stats
        tokens, length, rows = int(batch.lengths.sum()), batch.ids.shape[1], batch.ids.shape[0]
        old = ref = None
        if stats.passes > 1:  # off-policy passes need the rollout policy's log-probs
            old = self._forward_logprobs(self.model, batch)
            stats.flops += self._fwd_flops(tokens, length)
        if self.ref is not None:
            ref = self._forward_logprobs(self.ref, batch)
            stats.flops += self._fwd_flops(tokens, length)
        parts = [slice(k * rows // cfg.minibatches, (k + 1) * rows // cfg.minibatches) for k in range(cfg.minibatches)]
        for epoch in range(cfg.ppo_epochs):
            for part in parts:
                self._minibatch_step(batch, part, old, ref, stats, entropy=epoch == 0)
            stats.flops += tokens * self.model.flops_per_token(length)
        return stats

    def _minibatch_step(self, batch: Batch, part: slice, old, ref, stats: UpdateStats, entropy: bool) -> None:
        """One optimizer step on the rows `part`, accumulated over fixed micro-batches; the loss is the
        token mean over the whole minibatch (token_mean with its token count)."""
        cfg = self.cfg
        part_tokens = float(batch.mask[part].sum())
        if self._sum(part_tokens) == 0:
            return
        for sl in self._micro_slices(part):
            if sl.start == sl.stop:
                if self._world()[0] > 1:
                    self._zero_backward()  # every rank runs the same number of backward passes
                continue
            ids, mask, adv = self._trim(batch, sl)
            logp, ent = token_logprobs(self.model, ids, cfg.temperature, entropy=entropy)
            width = ids.shape[1] - 1
            old_logp = old[sl, :width] if old is not None else logp.detach()
            ref_logp = ref[sl, :width] if ref is not None else None
            loss_tok, clipped, k3 = grpo_token_terms(logp, old_logp, adv, cfg.eps_low, cfg.eps_high,
                                                     cfg.kl_coef, ref_logp)
            loss = token_mean(loss_tok, mask, part_tokens)
            self.manual_backward(loss)
            stats.add(loss, mask, clipped, logp, old_logp, k3, ent)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        stats.add_step(norm)
        opt = self.optimizers()
        opt.step()
        opt.zero_grad(set_to_none=True)

    # ---------------------------------------------------------------------------- step
    def training_step(self, batch, batch_idx):
        step = int(batch)
        if step != self.state["step"]:
            raise RuntimeError(f"data stream at step {step} but the module is at {self.state['step']}")
        cfg, n = self.cfg, self.n
        world, _ = self._world()
        t0 = time.perf_counter()
        roll = self.rollout(step)
        t1 = time.perf_counter()
        rewards = torch.tensor([g.rewards for g in roll.groups], dtype=torch.float32)
        adv = group_advantages(rewards, cfg.std_norm)
        flat = zero_variance(rewards)
        keep = ~flat if cfg.skip_zero_variance else torch.ones_like(flat)
        if cfg.lr_schedule == "cosine":  # by RL step, from the step alone: a resumed run follows the same curve
            for group in self.optimizers().optimizer.param_groups:
                group["lr"] = cfg.lr * warmup_cosine(step, max(1, self.total_steps - 1), 0, COSINE_FLOOR)  # floor at the last step
        stats = self.update(build_batch(roll, adv, keep, n, self.tokenizer.pad_id))
        t2 = time.perf_counter()

        sample_flops, new_tokens = self.rollout_flops(roll)
        step_flops = self._sum(sample_flops + stats.flops)
        dt = t2 - t0
        st = self.state
        st["step"] = step + 1
        st["samples"] += int(self._sum(len(roll.prompts) * n))
        st["flops"] += step_flops
        st["wall_s"] += dt
        st["sampled_tokens"] += int(self._sum(new_tokens))

        trained = [c for group in roll.completions for c in group[:n]]
        metrics = {
            "reward": float(rewards.mean()),
            "resp_len": sum(len(c.ids) for c in trained) / len(trained),
            "zero_var_frac": float(flat.float().mean()), "opt_steps": float(stats.opt_steps),
            "rollout_s": t1 - t0, "update_s": t2 - t1, "tok_s": new_tokens * world / dt,
        }
        if self._sum(stats.tokens) > 0:  # blank when no rank trained on any token (every group skipped)
            metrics.update(stats.means(with_ref=self.ref is not None))
        for key in roll.truth[0]:
            if key not in R.SOME_PROMPTS:
                metrics[key] = sum(t[key] for t in roll.truth) / len(roll.truth)
        for key in R.SOME_PROMPTS:  # summed over every rank's prompts, so all ranks log the same keys (DDP)
            count = self._sum(sum(key in t for t in roll.truth))
            if count:
                self.log(key, self._sum(sum(t.get(key, 0.0) for t in roll.truth)) / count, on_step=True,
                         on_epoch=False, batch_size=1)
        sync = world > 1
        for key, value in metrics.items():
            self.log(key, float(value), prog_bar=key in PROGRESS_KEYS, on_step=True, on_epoch=False,
                     batch_size=1, sync_dist=sync)
        for key, value in (("rl_step", st["step"]), ("samples", st["samples"]), ("flops", st["flops"])):
            self.log(key, float(value), on_step=True, on_epoch=False, batch_size=1)  # already global
        self.log("flops_per_s", step_flops / dt, on_step=True, on_epoch=False, batch_size=1)
        self.log("rollout_flops_frac", sample_flops / max(sample_flops + stats.flops, 1.0), on_step=True,
                 on_epoch=False, batch_size=1)
        if st["step"] >= self.total_steps or (cfg.budget_flops is not None and st["flops"] >= cfg.budget_flops):
            self.trainer.should_stop = True
        return None


class StepStream(IterableDataset):
    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield torch.tensor(step)


class RLData(pl.LightningDataModule):
    """RL step indices from the module's restored step on: a resumed run continues where it stopped."""

    def __init__(self, module: GRPOModule):
        super().__init__()
        self.module = module

    def train_dataloader(self):
        m = self.module
        start = m.state["step"]
        if m.cfg.budget_flops is not None and m.state["flops"] >= m.cfg.budget_flops:
            start = m.total_steps  # budget already spent before the kill
        return DataLoader(StepStream(start, m.total_steps), batch_size=None, num_workers=0)


class Snapshots(Callback):
    """Keeps the policy after each scheduled RL step as a model directory (snapshot_dir), with how far RL
    had got (steps, samples, FLOPs). One that exists is kept: a resumed run, deterministic, would write the
    same weights again."""

    def __init__(self, out: Path, steps: list[int], tokenizer):
        self.out, self.steps, self.tokenizer = Path(out), set(steps), tokenizer

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = module.state["step"]
        where = snapshot_dir(self.out, step)
        if step in self.steps and trainer.is_global_zero and not (where / META).is_file():
            st = module.state
            summary = {"stage": "rl", "steps": step, "samples": st["samples"], "flops": st["flops"],
                       "wall_s": st["wall_s"], "sampled_tokens": st["sampled_tokens"]}
            save_model(where, module.model, self.tokenizer, {"summary": summary})


class RolloutCheckpoint(Callback):
    """Writes ckpt/last.ckpt atomically every `every` RL steps (not optimizer steps: an RL step may take
    several, or none when all its groups are skipped)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), every

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.state["step"] % self.every == 0:
            save_checkpoint(trainer, self.path)  # full state: a resume needs it


# ------------------------------------------------------------------------------------------- stage

def resolve(cfg: RLStageConfig) -> RLStageConfig:
    """Fill in the defaults that depend on other keys (group size 8, or 32 for ttrl), then validate."""
    if cfg.group_size is None:
        cfg = replace(cfg, group_size=default_group_size(cfg.reward.kind))
    validate(cfg)
    return cfg


def validate(cfg: RLStageConfig) -> None:
    if not cfg.init_from:
        raise ConfigError("init_from=<dir> is required: a finished LM stage's final/ directory")
    for key in ("prompts_per_step", "max_new_tokens", "ppo_epochs", "minibatches", "micro_batch", "max_batch",
                "checkpoint_every", "devices"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be >= 1 (got {getattr(cfg, key)})")
    check_accelerator(cfg.accelerator, cfg.devices)
    if cfg.group_size < 2:
        raise ConfigError(f"group_size must be >= 2: a group-relative advantage needs 2 samples (got {cfg.group_size})")
    R.check_reward(cfg.reward, cfg.group_size)
    if cfg.minibatches > cfg.prompts_per_step * cfg.group_size:
        raise ConfigError(f"minibatches {cfg.minibatches} > samples per step {cfg.prompts_per_step * cfg.group_size}")
    if not cfg.temperature > 0:
        raise ConfigError(f"temperature must be > 0: RL needs sampled rollouts (got {cfg.temperature})")
    if not 0 < cfg.top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1] (got {cfg.top_p})")
    if not cfg.lr > 0:
        raise ConfigError(f"lr must be > 0 (got {cfg.lr})")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise ConfigError(f"lr_schedule must be constant or cosine (got '{cfg.lr_schedule}')")
    if not (0 <= cfg.eps_low < 1 and cfg.eps_high >= 0):
        raise ConfigError(f"need 0 <= eps_low < 1 and eps_high >= 0 (got {cfg.eps_low}, {cfg.eps_high})")
    if cfg.kl_coef < 0:
        raise ConfigError(f"kl_coef must be >= 0 (got {cfg.kl_coef})")
    if not cfg.grad_clip > 0:
        raise ConfigError(f"grad_clip must be > 0 (got {cfg.grad_clip})")
    for key in ("budget_flops", "budget_samples", "budget_steps"):
        value = getattr(cfg, key)
        if value is not None:
            if value <= 0:
                raise ConfigError(f"{key} must be > 0 (got {value})")
            break
    else:
        raise ConfigError("set one of budget_steps, budget_samples or budget_flops")
    steps = list(cfg.snapshots)
    if any(not isinstance(s, int) or s < 1 for s in steps) or steps != sorted(set(steps)):
        raise ConfigError(f"snapshots must be increasing RL steps >= 1 (got {steps})")
    total = plan_steps(cfg)
    if cfg.lr_schedule == "cosine" and total == UNBOUNDED:
        raise ConfigError("lr_schedule=cosine needs budget_steps or budget_samples: a FLOPs budget does not say "
                          "where the schedule ends")
    if steps and steps[-1] >= total:
        raise ConfigError(f"snapshot at step {steps[-1]} is not before the last of the budget's {total} steps "
                          "(the final model is the last point already)")


def resolve_speed(cfg: RLStageConfig, model: GPT, memory: Path | None = None) -> tuple[RLStageConfig, dict]:
    """cfg with its precision decided for this machine (an explicit value stays), and why. The probe
    times sampling at the rollout's batch: rollouts are most of an RL step. Only the model's shape is
    read; `memory`: see models.speed.remembered."""
    group = resolve(cfg).group_size  # validates the whole config first
    rows = min(cfg.max_batch, cfg.prompts_per_step * R.samples_per_prompt(cfg.reward, group))
    try:
        precision = resolve_precision(cfg.precision, cfg.accelerator, model, rows, workload="sample",
                                      memory=memory)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return replace(cfg, precision=precision.value), {"precision": precision}


def plan_steps(cfg: RLStageConfig) -> int:
    """RL steps the budget allows; a FLOPs budget is checked as it is spent (the last step may overshoot)."""
    steps = planned_steps(cfg)
    return UNBOUNDED if steps is None else steps


def run_rl_stage(cfg: RLStageConfig, out: str | Path, progress: bool = True, callbacks=()) -> Path:
    """Train (or resume, or skip if finished) one RL stage; returns its final/ model directory. `callbacks`:
    extra Lightning callbacks; their hooks get the GRPOModule, whose `policy` is the model being trained and
    `steps_done` the RL steps finished (labs/03 evaluates the policy along RL this way)."""
    out = Path(out)
    if done := finished(out):
        return done
    cfg = resolve(cfg)
    try:
        mixture = Mixture(cfg.mixture)
    except ValueError as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    base, tokenizer, _ = load_model(cfg.init_from)
    if cfg.devices == 1:
        configure_threads()  # DDP ranks share the cores: Lightning gives each its part
    cfg, choices = resolve_speed(cfg, base)
    if choices["precision"].reason != "set":  # a study resolves before it starts a stage
        announce(f"rl: precision {choices['precision']}")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = GRPOModule(asdict(base.config), cfg)
    module.model.load_state_dict(base.state_dict())
    total_steps = plan_steps(cfg)
    module.attach(mixture, tokenizer, base if cfg.kl_coef > 0 else None, total_steps)
    resume = prepare(out, cfg, tokenizer)
    trainer = pl.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,
        max_epochs=1, max_steps=-1, logger=[CSVLogger(out, name="logs", flush_logs_every_n_steps=1)],
        # the snapshot first: a kill between the two then repeats the step on resume instead of skipping it
        callbacks=[Snapshots(out, cfg.snapshots, tokenizer), RolloutCheckpoint(out / CKPT / LAST, cfg.checkpoint_every),
                   ShareCores(), *callbacks], enable_progress_bar=progress,
        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1, num_sanity_val_steps=0,
        default_root_dir=out)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*(IterableDataset|__len__).*")
        trainer.fit(module, datamodule=RLData(module), ckpt_path=resume and str(resume),
                    weights_only=True)  # our own checkpoint holds plain data only
    st = module.state
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k in ("reward", "acc", "pass_n")}
    summary = {"stage": "rl", "steps": st["step"], "samples": st["samples"], "flops": st["flops"],
               "wall_s": st["wall_s"], "sampled_tokens": st["sampled_tokens"],
               "params": module.model.num_params(), "reward_kind": cfg.reward.kind,
               "init_from": str(cfg.init_from), **{f"final_{k}": v for k, v in metrics.items()},
               **how_it_ran(cfg, choices, compiled=False)}
    return publish(out, trainer, module.model, tokenizer, summary)
