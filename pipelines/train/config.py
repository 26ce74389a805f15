"""The training stages' settings: one pretrain / mid-train stage (LMStageConfig), one RL stage
(RLStageConfig). Precedence: dataclass defaults < YAML < command line (pipelines.common.config)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from pipelines.common.mixture import MixtureConfig


@dataclass
class OptimConfig:
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0


@dataclass
class LMStageConfig:
    """One pretrain or mid-train stage."""
    preset: str = "small"
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the preset, e.g. {n_layer: 6}
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    budget_tokens: Optional[int] = 20_000_000  # tokens trained on; or set budget_flops instead
    budget_flops: Optional[float] = None
    batch_size: int = 16
    # blocks per forward/backward (gradient accumulation: memory only, the step is the same); None: batch_size
    micro_batch: Optional[int] = None
    data_workers: int = 0  # processes that make training blocks beside the trainer (a GPU outruns one core)
    seq_len: int = 512
    prompt_loss_weight: float = 1.0  # weight of problem-text tokens in the loss (solution tokens: 1)
    precision: str = "auto"  # auto (from the machine, models/speed.py) | 32-true | bf16-mixed | 16-mixed (GPU)
    compile: str = "auto"  # torch.compile the training forward: auto (long runs where it builds) | true | false
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"  # e.g. ddp on several GPUs: no code change
    checkpoint_every: int = 100  # optimizer steps
    seed: int = 0
    max_seq_len: int = 2048  # model's position table; longer than training blocks for OOD evaluation
    init_from: Optional[str] = None  # a finished stage's final/ directory (mid-training starts here)


@dataclass
class RewardConfig:
    """RL reward: outcome | process | strict | ttrl (see pipelines/train/rewards.py)."""
    kind: str = "outcome"
    alpha: float = 0.5  # process: alpha * outcome + (1 - alpha) * process score
    extra_penalty: float = 1.0  # process score: each extra (unneeded) step costs this many gold parameters
    votes: int = 64  # ttrl: m samples per prompt whose majority answer is the pseudo-label (>= group_size)


@dataclass
class RLStageConfig:
    """GRPO on a finished LM stage (pipelines/train/rl.py). Budget precedence: flops, then samples, then steps."""
    init_from: Optional[str] = None  # a finished stage's final/ directory (required)
    mixture: MixtureConfig = field(default_factory=lambda: MixtureConfig(ops={"11-14": 1.0}, pool="rl"))
    reward: RewardConfig = field(default_factory=RewardConfig)
    group_size: Optional[int] = None  # n samples trained per prompt; None: 8 (32 for ttrl, as TTRL's 64/32)
    prompts_per_step: int = 8  # per device
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-4  # provisional (CMU: 1e-6 at 100M params)
    # constant, as in the CMU study (then the policy after N steps of a long run is an N-step run's model);
    # cosine: down to lr / 10 at the budget's last step (an exploration lever; needs a step or sample budget)
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0
    eps_low: float = 0.2
    eps_high: float = 0.28
    kl_coef: float = 1e-3  # k3 KL to the starting policy, the CMU study's coefficient; 0: no reference model
    std_norm: bool = True  # advantages (r - mean) / (std + 1e-6) per group, as GRPO/verl/CMU; False: r - mean
    # False (verl, CMU): a group whose rewards are all equal stays in the loss with advantage 0, so its tokens
    # count in the token-mean denominator and the step size does not grow as fewer groups carry signal;
    # True drops such groups (less compute, but larger steps when most groups are flat)
    skip_zero_variance: bool = False
    ppo_epochs: int = 1  # passes over each rollout batch
    minibatches: int = 1  # optimizer steps per pass (rollout split into this many parts)
    micro_batch: int = 16  # sequences per forward/backward (gradient accumulation; memory only)
    max_batch: int = 256  # sampler rows per forward pass
    budget_steps: Optional[int] = 200  # RL steps (rollout batches)
    budget_samples: Optional[int] = None  # trained samples (prompts x group_size, all devices)
    budget_flops: Optional[float] = None  # sampling + training + reference FLOPs, all devices
    precision: str = "auto"  # auto (from the machine, probed on rollout shapes) | 32-true | bf16-mixed
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    checkpoint_every: int = 10  # RL steps
    # RL steps after which the policy is kept as a model (snapshots/step-<N>/), for pass@k along RL
    snapshots: list[int] = field(default_factory=list)
    seed: int = 0


def micro_batch_size(cfg: LMStageConfig) -> int:
    """Blocks per forward/backward of an LM stage (batch_size when it is not split)."""
    return cfg.micro_batch or cfg.batch_size


def default_group_size(reward_kind: str) -> int:
    """n samples trained per prompt when group_size is not set: 8, or 32 for ttrl (as TTRL's 64 / 32)."""
    return 32 if reward_kind == "ttrl" else 8


def planned_steps(cfg: RLStageConfig) -> Optional[int]:
    """RL steps a step or sample budget allows; None for a FLOPs budget (checked as it is spent)."""
    if cfg.budget_flops is not None:
        return None
    if cfg.budget_samples is not None:
        group = cfg.group_size or default_group_size(cfg.reward.kind)
        return max(1, math.ceil(cfg.budget_samples / (cfg.prompts_per_step * group * cfg.devices)))
    return int(cfg.budget_steps)
