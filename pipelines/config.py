"""Typed configs (dataclasses -> OmegaConf structured schema) and the key=value CLI parser they share.

Precedence everywhere: dataclass defaults < YAML file < command-line dotlist.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key."""


@dataclass
class MixtureConfig:
    """What a stage trains on: op bins with weights, context and mode weights, and generator options."""
    ops: dict[str, float] = field(default_factory=lambda: {"2-4": 0.2, "5-7": 0.3, "8-10": 0.5})
    contexts: dict[str, float] = field(default_factory=lambda: {"zoo": 1.0, "school": 1.0, "movie": 1.0})
    modes: dict[str, float] = field(default_factory=lambda: {"forward": 1.0})
    pool: Optional[str] = "pretrain"
    modulus: Optional[int] = 23
    distractors: Optional[int] = None
    shuffle: float = 1.0
    symbols: str = "random"


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
    seq_len: int = 512
    prompt_loss_weight: float = 1.0  # weight of problem-text tokens in the loss (solution tokens: 1)
    precision: str = "bf16-mixed"  # Lightning precision: bf16-mixed | 32-true | 16-mixed (GPU)
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"  # e.g. ddp on several GPUs: no code change
    checkpoint_every: int = 100  # optimizer steps
    seed: int = 0
    max_seq_len: int = 2048  # model's position table; longer than training blocks for OOD evaluation
    init_from: Optional[str] = None  # a finished stage's final/ directory (mid-training starts here)


def parse_dotlist(schema, argv: list[str], base=None):
    """Merge defaults (schema) < base (a dict/YAML config) < argv dotlist into a dataclass instance."""
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not of the form key=value")
    structured = OmegaConf.structured(schema)
    layers = [structured] + ([base] if base is not None else []) + [OmegaConf.from_dotlist(argv)]
    try:
        return OmegaConf.to_object(OmegaConf.merge(*layers))
    except ConfigKeyError as e:
        key = e.full_key or "?"
        raise ConfigError(f"unknown key '{key}'{_closest(structured, key)}") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"bad value for '{key}': {str(e).splitlines()[0]}") from None


def _closest(cfg, key: str) -> str:
    """' (did you mean ...?)' with the nearest valid key at the same level."""
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        if p not in node:
            break
        node = node[p]
    try:
        options = list(node.keys())
    except Exception:
        return ""
    close = difflib.get_close_matches(parts[-1], options, n=1)
    prefix = ".".join(parts[:-1] + [""]) if len(parts) > 1 else ""
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
