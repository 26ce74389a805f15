"""Pretrain / mid-train stage: next-token training of the GPT on a gsm_synth mixture with Lightning.

    python -m pipelines.lm out=runs/base [preset=small budget_tokens=2e7 mixture.ops={2-10:1} ...]

One LightningModule serves both stages; mid-training is the same stage with `init_from` set to a
finished stage's `final/` directory (its own mixture, learning rate and warmup). A stage directory holds
`ckpt/last.ckpt` (resumable, written atomically every `checkpoint_every` steps), `logs/` (CSV, and
TensorBoard if installed), `config.yaml`, and on success `final/` (model + tokenizer + summary).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

import gsm_synth
from models import GPT, GPTConfig, build_tokenizer, model_config
from models.machine import configure_threads
from models.speed import resolve_compile, resolve_precision, warn_compile_fallback

from pipelines.common.checkpoint import load_model
from .cli import announce, how_it_ran
from .skeleton import CKPT, adamw, check_accelerator, finished, prepare, publish, save_checkpoint, warmup_cosine
from .config import LMStageConfig, micro_batch_size
from pipelines.common.config import ConfigError
from .data import BlockStream
from pipelines.common.mixture import Mixture
from .share_cores import ShareCores

class LMModule(pl.LightningModule):
    def __init__(self, model: dict, optim: dict, total_steps: int, compile: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(GPTConfig(**model))
        self.optim, self.total_steps = optim, total_steps
        # Kept in a list so the compiled wrapper is not registered as a submodule: checkpoints keep the
        # plain module's parameter names (the wrapper shares its parameters).
        self._compiled = [torch.compile(self.model)] if compile else []
        self.compile_failed = False

    def forward_logits(self, x):
        if self._compiled:
            try:
                return self._compiled[0](x)
            except Exception as e:  # no C++ compiler, an unsupported platform: train eagerly, never crash
                warn_compile_fallback(e)
                self._compiled, self.compile_failed = [], True
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y, w, solution = batch
        logits = self.forward_logits(x)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
        if batch_idx % self.trainer.accumulate_grad_batches == 0:  # an optimizer step starts: new sums
            self._step = ce.new_zeros(5)  # weighted loss, weight, solution loss, solution tokens, tokens
        weighted, sol = (ce * w.flatten()).sum(), solution.flatten()
        self._step += torch.stack([weighted.detach(), w.sum(), ce.detach()[sol].sum(), sol.sum().float(),
                                   ce.new_tensor(ce.numel())])
        # Divided by its token count, not its weight: the step's weight is known only after its last
        # micro-batch, and on_before_optimizer_step rescales the summed gradient to it.
        loss = weighted / ce.numel()
        if (batch_idx + 1) % self.trainer.accumulate_grad_batches == 0:  # the step's last micro-batch
            self._totals = self._step  # over every rank: one all-reduce a step
            if self.trainer.world_size > 1:
                self._totals = self.trainer.strategy.reduce(self._step.clone(), reduce_op="sum")
            total = self._totals
            self.log("loss", total[0] / total[1], prog_bar=True)
            # Loss on solution tokens alone: the part that measures reasoning (problem text is mostly noise).
            self.log("solution_loss", total[2] / total[3].clamp(min=1), prog_bar=True)
        self.log("lr", self.lr_schedulers().get_last_lr()[0])
        return loss

    def on_before_optimizer_step(self, optimizer):
        """Makes the gradient that of the step's weighted mean loss over every rank and micro-batch.
        Lightning averaged the micro-batches' losses (each a sum over its tokens / token count) and DDP the
        ranks', so the gradient is d(sum of weighted losses) / (all tokens); this scales it to / (all weight)."""
        scale = self._totals[4] / self._totals[1]
        if scale != 1:  # every target weighs 1: nothing to do
            for p in self.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["micro_batches_per_step"] = self.trainer.accumulate_grad_batches

    def on_load_checkpoint(self, checkpoint):
        # Lightning resumes counting micro-batches where the checkpoint left off: another count per step would
        # cut the next steps across the data stream's step boundaries
        saved, now = checkpoint.get("micro_batches_per_step", 1), self.trainer.accumulate_grad_batches
        if saved != now:
            raise ConfigError(f"this stage's checkpoint was written with {saved} micro-batch(es) per step and "
                              f"micro_batch now makes {now}: resume with micro_batch=batch_size/{saved}, or "
                              "delete the stage's ckpt/ to start over")

    def configure_optimizers(self):
        o = self.optim
        opt = adamw(self.model, o["lr"], (o["beta1"], o["beta2"]), o["weight_decay"])
        warmup = max(1, int(o["warmup_frac"] * self.total_steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, self.total_steps, warmup, o["min_lr_ratio"]))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class StreamData(pl.LightningDataModule):
    """Blocks for the steps still to run: reads the restored global step, so a resumed run continues
    the data stream exactly where the checkpoint left it (and each DDP rank gets its own blocks)."""

    def __init__(self, mixture: Mixture, tokenizer, cfg: LMStageConfig):
        super().__init__()
        self.mixture, self.tokenizer, self.cfg = mixture, tokenizer, cfg

    def train_dataloader(self):
        t = self.trainer
        return block_loader(self.mixture, self.tokenizer, self.cfg, start=t.global_step, world=t.world_size,
                            rank=t.global_rank)


def block_loader(mixture: Mixture, tokenizer, cfg: LMStageConfig, start: int = 0, world: int = 1,
                 rank: int = 0) -> DataLoader:
    """Micro-batches of training blocks from optimizer step `start` on, made by cfg.data_workers processes."""
    stream = BlockStream(mixture, tokenizer, cfg.seed, cfg.seq_len, cfg.prompt_loss_weight, start=start,
                         stride=(world, rank, cfg.batch_size), micro_batch=cfg.micro_batch)
    return DataLoader(stream, batch_size=micro_batch_size(cfg), num_workers=cfg.data_workers)


class Throughput(Callback):
    """Tokens/s of each optimizer step over all devices (as RL's) by the wall clock since the previous one
    (data, every micro-batch and the optimizer included; the first step also pays for compilation), and
    FLOPs so far."""

    def __init__(self, tokens_per_step: int, flops_per_token: float):
        self.tokens_per_step, self.flops_per_token = tokens_per_step, flops_per_token
        self.last, self.step = None, None

    def on_train_start(self, trainer, module):
        self.last, self.step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:  # a micro-batch inside an accumulating step
            return
        now = time.perf_counter()
        module.log("tok_s", self.tokens_per_step / (now - self.last), prog_bar=True)
        module.log("flops", float(trainer.global_step * self.tokens_per_step * self.flops_per_token))
        self.last, self.step = now, trainer.global_step


class AtomicCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that writes to a temporary file and renames it: a kill never leaves half a file."""

    def _save_checkpoint(self, trainer, filepath):
        save_checkpoint(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath


def make_tokenizer():
    """Words and phrases of every registered context (a user's too), so any mixture is covered."""
    return build_tokenizer(gsm_synth.vocabulary(), gsm_synth.phrases())


def model_config_for(cfg: LMStageConfig, vocab_size: int) -> dict:
    """The architecture a from-scratch stage builds: its preset with `cfg.model` overrides."""
    model_cfg = asdict(model_config(cfg.preset, vocab_size, cfg.max_seq_len))
    unknown = set(cfg.model) - set(model_cfg)
    if unknown:
        raise ConfigError(f"unknown model key '{sorted(unknown)[0]}' (valid: {', '.join(model_cfg)})")
    try:
        return asdict(GPTConfig(**{**model_cfg, **cfg.model}))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad model override: {e}") from None


def resolve_speed(cfg: LMStageConfig, model: GPT, memory: Path | None = None) -> tuple[LMStageConfig, dict]:
    """cfg with precision and compile decided for this machine (explicit values stay), and why. Only the
    model's shape is read (a meta-device model will do); `memory`: see models.speed.remembered."""
    validate(cfg)
    steps = plan_steps(cfg, model.flops_per_token(cfg.seq_len))
    try:
        precision = resolve_precision(cfg.precision, cfg.accelerator, model, cfg.batch_size * cfg.seq_len,
                                      memory=memory)
        compiled = resolve_compile(cfg.compile, cfg.accelerator, steps, memory=memory)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    resolved = replace(cfg, precision=precision.value, compile="true" if compiled.value else "false")
    return resolved, {"precision": precision, "compile": compiled}


def global_tokens_per_step(cfg: LMStageConfig) -> int:
    return cfg.batch_size * cfg.seq_len * cfg.devices


def plan_steps(cfg: LMStageConfig, flops_per_token: float) -> int:
    tokens_per_step = global_tokens_per_step(cfg)
    if cfg.budget_flops is not None:
        if cfg.budget_flops <= 0:
            raise ConfigError(f"budget_flops must be > 0 (got {cfg.budget_flops})")
        return max(1, int(cfg.budget_flops / (flops_per_token * tokens_per_step)))
    if cfg.budget_tokens is None or cfg.budget_tokens <= 0:
        raise ConfigError(f"budget_tokens must be > 0 (got {cfg.budget_tokens})")
    return max(1, math.ceil(cfg.budget_tokens / tokens_per_step))


def validate(cfg: LMStageConfig) -> None:
    for key in ("batch_size", "seq_len", "checkpoint_every", "devices"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be >= 1 (got {getattr(cfg, key)})")
    if cfg.data_workers < 0:
        raise ConfigError(f"data_workers must be >= 0 (got {cfg.data_workers})")
    if cfg.micro_batch is not None and (cfg.micro_batch < 1 or cfg.batch_size % cfg.micro_batch):
        raise ConfigError(f"micro_batch must divide batch_size {cfg.batch_size} (got {cfg.micro_batch})")
    check_accelerator(cfg.accelerator, cfg.devices)
    if cfg.optim.lr <= 0:
        raise ConfigError(f"optim.lr must be > 0 (got {cfg.optim.lr})")
    if not 0 <= cfg.optim.warmup_frac < 1:
        raise ConfigError(f"optim.warmup_frac must be in [0, 1) (got {cfg.optim.warmup_frac})")
    if cfg.mixture.eval_set:
        raise ConfigError("mixture.eval_set is for RL stages (training on the unlabeled eval set); LM stages pack "
                          "streamed problems")
    if cfg.prompt_loss_weight < 0:
        raise ConfigError(f"prompt_loss_weight must be >= 0 (got {cfg.prompt_loss_weight})")
    if cfg.seq_len > cfg.max_seq_len:
        raise ConfigError(f"seq_len {cfg.seq_len} exceeds max_seq_len {cfg.max_seq_len}")


def run_lm_stage(cfg: LMStageConfig, out: str | Path, progress: bool = True, callbacks=()) -> Path:
    """Train (or resume, or skip if finished) one LM stage; returns its final/ model directory."""
    out = Path(out)
    if done := finished(out):
        return done
    validate(cfg)
    try:
        mixture = Mixture(cfg.mixture)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.init_from:
        base, tokenizer, _ = load_model(cfg.init_from)
        model_cfg = asdict(base.config)
    else:
        tokenizer = make_tokenizer()
        model_cfg = model_config_for(cfg, tokenizer.vocab_size)
        base = None
    if cfg.devices == 1:
        configure_threads()  # DDP ranks share the cores: Lightning gives each its part
    with torch.device("meta"):  # shapes only
        shape = GPT(GPTConfig(**model_cfg))
    cfg, choices = resolve_speed(cfg, shape)
    if any(c.reason != "set" for c in choices.values()):  # a study resolves before it starts a stage
        announce(f"pretrain/mid-train: precision {choices['precision']}, compile {choices['compile']}")
    module = LMModule(model_cfg, asdict(cfg.optim), 1, compile=cfg.compile == "true")
    flops_per_token = module.model.flops_per_token(cfg.seq_len)
    module.total_steps = module.hparams.total_steps = total_steps = plan_steps(cfg, flops_per_token)
    if base is not None:
        module.model.load_state_dict(base.state_dict())
    resume = prepare(out, cfg, tokenizer)
    ckpt = AtomicCheckpoint(dirpath=out / CKPT, save_last=True, save_top_k=0,
                            every_n_train_steps=cfg.checkpoint_every, enable_version_counter=False)
    loggers = [CSVLogger(out, name="logs")]  # a resumed run logs to the next version_N: nothing is overwritten
    try:
        from lightning.pytorch.loggers import TensorBoardLogger
        import tensorboard  # noqa: F401
        loggers.append(TensorBoardLogger(out, name="tb"))
    except ImportError:
        pass
    tokens_per_step = global_tokens_per_step(cfg)
    trainer = pl.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,
        max_steps=total_steps, accumulate_grad_batches=cfg.batch_size // micro_batch_size(cfg),
        gradient_clip_val=cfg.optim.grad_clip, logger=loggers,
        callbacks=[ckpt, Throughput(tokens_per_step, flops_per_token), ShareCores(), *callbacks],
        enable_progress_bar=progress,
        enable_model_summary=False, log_every_n_steps=1 if total_steps <= 100 else 10, num_sanity_val_steps=0,
        deterministic=False, default_root_dir=out)
    trainer.fit(module, datamodule=StreamData(mixture, tokenizer, cfg), ckpt_path=resume and str(resume),
                weights_only=True)  # plain data only: a checkpoint never runs code
    summary = {"stage": "lm", "steps": total_steps, "tokens": total_steps * tokens_per_step,
               "flops": total_steps * tokens_per_step * flops_per_token,
               "params": module.model.num_params(), "final_loss": float(trainer.callback_metrics.get("loss", float("nan"))),
               **how_it_ran(cfg, choices, compiled=cfg.compile == "true" and not module.compile_failed)}
    return publish(out, trainer, module.model, tokenizer, summary)
