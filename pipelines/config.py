"""Typed configs (dataclasses -> OmegaConf structured schema) and the key=value CLI parser they share.

Precedence everywhere: dataclass defaults < YAML file < command-line dotlist.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from gsm_synth.suggest import did_you_mean


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
    # A share of problems drawn from a second, narrower distribution instead (e.g. context B at op 2 only,
    # as in the context-transfer study); its modes and generator options are the ones above.
    extra_share: float = 0.0
    extra_ops: dict[str, float] = field(default_factory=dict)
    extra_contexts: dict[str, float] = field(default_factory=dict)
    # > 0: instead of drawing, visit the eval set that the evaluator builds with problems_per_bin =
    # eval_set and seed = eval_seed for these ops/contexts/modes (pool 'eval'), each problem once per pass
    # in a seeded order: TTRL trains on its unlabeled test set itself. RL stages only.
    eval_set: int = 0
    eval_seed: int = 0


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
    precision: str = "auto"  # auto (from the machine, models/speed.py) | 32-true | bf16-mixed | 16-mixed (GPU)
    compile: str = "auto"  # torch.compile the training forward: auto (long runs where it builds) | true | false
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
    try:
        merged = structured
        if base is not None:  # a config file gives whole maps: they replace the defaults' maps
            layer = OmegaConf.create(_str_keys(OmegaConf.to_container(OmegaConf.create(base))))
            merged = OmegaConf.merge(_clear_maps(merged, layer), layer)
        # on the command line, `splits={id: 2-4}` replaces a map while `splits.id=2-4` edits one entry
        merged = merged.copy()
        for arg in argv:
            key, value = arg.split("=", 1)
            if value.lstrip().startswith("{") and OmegaConf.select(merged, key, default=None) is not None \
                    and OmegaConf.is_dict(OmegaConf.select(merged, key)):
                OmegaConf.update(merged, key, {}, merge=False)
        cli = _str_keys(OmegaConf.to_container(OmegaConf.from_dotlist(argv)))
        merged = OmegaConf.merge(merged, OmegaConf.create(cli))
        return OmegaConf.to_object(merged)
    except ConfigKeyError as e:
        key = e.full_key or "?"
        raise ConfigError(f"unknown key '{key}'{_closest(structured, key)}") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"bad value for '{key}': {str(e).splitlines()[0]}") from None


def read_yaml(path, what: str) -> dict:
    """A YAML mapping from `path` (safe loader; an empty file is {}), or a one-line ConfigError naming
    `what` and the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of keys to values")
    return data


def _str_keys(node):
    """Every map of the schema is keyed by strings, but YAML reads `{5: 0.5}` with an int key: an op bin
    written as a bare number means the same as "5"."""
    if isinstance(node, dict):
        return {str(k) if isinstance(k, (int, float)) and not isinstance(k, bool) else k: _str_keys(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_str_keys(v) for v in node]
    return node


def _clear_maps(cfg, layer):
    """A copy of cfg in which every map (a dict-typed field such as mixture.ops, not a nested config)
    that `layer` sets is emptied first: `mixture.ops={7-10: 1}` then means exactly that, instead of
    being added to the default bins as a plain OmegaConf merge would do."""
    cfg = cfg.copy()

    def walk(node, sub):
        for key in sub:
            if key not in node or not OmegaConf.is_dict(sub[key]) or not OmegaConf.is_dict(node[key]):
                continue
            target = node._get_node(key)
            if target._metadata.object_type in (None, dict):
                node[key] = {}
            else:
                walk(node[key], sub[key])

    walk(cfg, layer)
    return cfg


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
    return did_you_mean(parts[-1], options, prefix=".".join(parts[:-1] + [""]) if len(parts) > 1 else "")


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


@dataclass
class RewardConfig:
    """RL reward: outcome | process | strict | ttrl (see pipelines/rewards.py)."""
    kind: str = "outcome"
    alpha: float = 0.5  # process: alpha * outcome + (1 - alpha) * process score
    extra_penalty: float = 1.0  # process score: each extra (unneeded) step costs this many gold parameters
    votes: int = 64  # ttrl: m samples per prompt whose majority answer is the pseudo-label (>= group_size)


@dataclass
class RLStageConfig:
    """GRPO on a finished LM stage (pipelines/rl.py). Budget precedence: flops, then samples, then steps."""
    init_from: Optional[str] = None  # a finished stage's final/ directory (required)
    mixture: MixtureConfig = field(default_factory=lambda: MixtureConfig(ops={"11-14": 1.0}, pool="rl"))
    reward: RewardConfig = field(default_factory=RewardConfig)
    group_size: Optional[int] = None  # n samples trained per prompt; None: 8 (32 for ttrl, as TTRL's 64/32)
    prompts_per_step: int = 8  # per device
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 1e-4  # provisional (CMU: 1e-6 at 100M params); constant, as in the CMU study
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0
    eps_low: float = 0.2
    eps_high: float = 0.28
    kl_coef: float = 0.0  # k3 KL to the starting policy (CMU: 1e-3); the reference model exists only if > 0
    std_norm: bool = True  # advantages (r - mean) / (std + 1e-6) per group, as GRPO/verl/CMU; False: r - mean
    skip_zero_variance: bool = True  # drop groups whose rewards are all equal (no signal) from the loss
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
    seed: int = 0
