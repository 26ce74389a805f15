"""A study's configuration: schema, loading and the stage graph it describes.

Precedence (later wins): the schema's defaults < studies/defaults.yaml (wiring shared by every study)
< studies/presets/<preset>.yaml < studies/<study>.yaml < that study's `presets.<preset>` section
< the command line's key=value list.
A study is data: stages (pretrain / midtrain / rl, each starting from another stage), the eval splits,
the findings to test (claims over eval metrics) and the plots to draw.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from gsm_synth.suggest import did_you_mean
from pipelines.config import ConfigError, LMStageConfig, RLStageConfig, parse_dotlist, read_yaml
from pipelines.mixture import union_ops
from pipelines.evaluate import DEFAULT_BINS, EVAL_PRECISIONS, EvalSpec


def _studies_dir() -> Path:
    """studies/ of an installed copy (package data, pipelines/studies/) or of the source checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "studies"
    return installed if (installed / "defaults.yaml").is_file() else here.parent / "studies"


STUDIES_DIR = _studies_dir()
DEFAULT_PRESET = "small"  # a study's YAML may name its own (`preset: tiny` in smoke.yaml)
PRESETS = ("tiny", "small", "paper")
STAGE_KINDS = ("pretrain", "midtrain", "rl")
CLAIM_KINDS = ("greater", "same", "not_greater", "below", "above")
PLOT_KINDS = ("pass_at_k", "rl_curves", "by_op")

# ${mul:0.8,${vars.budget}}: a share of a budget, so a study can split one compute budget between stages
def _mul(a, b) -> float:
    return float(a) * float(b)


if not OmegaConf.has_resolver("mul"):  # omegaconf 2.4 renamed register_new_resolver; 2.3 has only that
    getattr(OmegaConf, "register_resolver" if hasattr(OmegaConf, "register_resolver") and
            "replace" in OmegaConf.register_resolver.__code__.co_varnames else "register_new_resolver")("mul", _mul)


@dataclass
class TaskConfig:
    """Problem settings shared by every mixture and eval set of a study (DESIGN §5: preset parameters).
    studies/defaults.yaml wires them into each section; a section may still override its own copy."""
    modulus: Optional[int] = 23
    distractors: Optional[int] = None
    shuffle: float = 1.0
    symbols: str = "random"


@dataclass
class StageNode:
    kind: str = "rl"  # pretrain | midtrain | rl
    after: Optional[str] = None  # the stage whose final model this one starts from (not for pretrain)
    ops: Optional[str] = None  # shorthand: the stage's mixture is this op range only
    set: dict[str, Any] = field(default_factory=dict)  # overrides of the kind's section, nested like it
    label: Optional[str] = None  # name in tables and plots (default: the stage's name)
    eval: bool = True  # evaluate this stage's model on the splits
    shared: bool = False  # train once (first seed) for all seeds: e.g. an expensive base under RL seeds
    n_seeds: Optional[int] = None  # run only for the first n of the study's seeds (default: all of them)


@dataclass
class Claim:
    """One testable statement. Eval metrics are paired over the same problems (mean over seeds first).
    greater: model > vs (95 % CI of the difference above 0); same: the CI of model - vs contains 0;
    not_greater: model is not above vs (the CI does not lie above 0; a drop counts, e.g. "no gain here");
    below / above: the model's value against `value` (for RL log keys, `rl:reward`, the run's mean)."""
    kind: str = "greater"
    model: str = ""
    vs: Optional[str] = None  # default for vs_metric claims: the model itself
    vs_metric: Optional[str] = None  # compare against another metric (e.g. rl:label_acc); default: metric
    metric: str = "process_pass@128"  # an eval metric (process_pass@k, outcome_pass@k, maj@k, errors:<kind>) or rl:<key>
    split: Optional[str] = None
    context: Optional[str] = None  # only this context's problems
    ops: Optional[str] = None  # only these ops (e.g. the top of a split)
    value: Optional[float] = None


@dataclass
class Finding:
    id: str = ""
    text: str = ""  # the paper's claim, in words
    source: str = ""
    claims: list[Claim] = field(default_factory=list)


@dataclass
class PlotSpec:
    kind: str = "pass_at_k"  # pass_at_k (base vs variants per split) | rl_curves | by_op
    models: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=lambda: ["reward"])  # rl_curves: logged keys
    metric: str = "process_pass@128"  # by_op
    split: Optional[str] = None  # by_op
    context: Optional[str] = None  # by_op
    title: str = ""
    file: str = ""


@dataclass
class StudyConfig:
    study: str = "smoke"
    preset: str = "small"
    out: str = "runs"  # run folders go to <out>/<study>-<preset>/, cached stages to <out>/cache/
    seeds: list[int] = field(default_factory=lambda: [0])  # each stage is trained once per seed
    force: bool = False  # re-run every stage of this study even if cached
    progress: bool = True
    description: str = ""
    task: TaskConfig = field(default_factory=TaskConfig)
    vars: dict[str, Any] = field(default_factory=dict)  # named values stages interpolate: ${vars.rl_edge}
    splits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BINS))
    pretrain: LMStageConfig = field(default_factory=LMStageConfig)
    midtrain: LMStageConfig = field(default_factory=LMStageConfig)
    rl: RLStageConfig = field(default_factory=RLStageConfig)
    eval: EvalSpec = field(default_factory=EvalSpec)
    stages: dict[str, StageNode] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    plots: list[PlotSpec] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- loading

def available_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml") if p.stem != "defaults")


def study_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"study file '{name}' does not exist")
        return path
    path = STUDIES_DIR / f"{name}.yaml"
    if name == "defaults" or not path.is_file():
        studies = available_studies()
        raise ConfigError(f"unknown study '{name}'{did_you_mean(name, studies)}; studies: {', '.join(studies)}")
    return path


def _pick(argv: list[str], key: str, default: str) -> str:
    values = [a.split("=", 1)[1] for a in argv if a.startswith(key + "=")]
    return values[-1] if values else default


def load_study(argv: list[str]) -> StudyConfig:
    """The resolved study config for a command line (see the module doc for precedence)."""
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not of the form key=value")
    name = _pick(argv, "study", "smoke")
    study = read_yaml(study_path(name), "study")
    preset = _pick(argv, "preset", str(study.get("preset", DEFAULT_PRESET)))
    if preset not in PRESETS:
        where = "" if any(a.startswith("preset=") for a in argv) else f" (the default of study '{name}')"
        raise ConfigError(f"unknown preset '{preset}'{where}; presets: {', '.join(PRESETS)}")
    study_presets = study.pop("presets", {}) or {}
    if not isinstance(study_presets, dict) or any(p not in PRESETS for p in study_presets):
        raise ConfigError(f"study '{name}': presets must map some of {', '.join(PRESETS)} to overrides")
    layers = [read_yaml(STUDIES_DIR / "defaults.yaml", "defaults"),
              read_yaml(STUDIES_DIR / "presets" / f"{preset}.yaml", "preset"),
              study, study_presets.get(preset) or {}]
    base = {}
    for layer in layers:
        base = _merge(base, layer)
    base = {**base, "study": Path(name).stem if name.endswith((".yaml", ".yml")) else name, "preset": preset}
    # study= and preset= are settled above (a study file's run folder is named by its stem)
    cfg = parse_dotlist(StudyConfig, [a for a in argv if not a.startswith(("study=", "preset="))], base=base)
    check_study(cfg)
    return cfg


def _merge(a: dict, b: dict) -> dict:
    """Deep merge of plain dicts where b wins; maps such as mixture.ops are replaced whole when b sets
    them (their keys are op ranges, contexts or stage names; merging them would keep stale entries)."""
    out = copy.deepcopy(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in _WHOLE_MAPS:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# `stages` merges stage by stage, so a study's preset section can edit one stage (`stages: {base: {shared:
# true}}`); the command line replaces it whole with `stages={...}` (config.parse_dotlist).
_WHOLE_MAPS = {"ops", "contexts", "modes", "extra_ops", "extra_contexts", "bins", "splits", "set"}


def check_study(cfg: StudyConfig) -> None:
    if not cfg.stages:
        raise ConfigError(f"study '{cfg.study}' has no stages")
    if not cfg.seeds:
        raise ConfigError("seeds must name at least one seed")
    if cfg.eval.precision not in EVAL_PRECISIONS:  # stage precisions are checked by plan()
        raise ConfigError(f"eval.precision must be one of {', '.join(EVAL_PRECISIONS)} (got '{cfg.eval.precision}')")
    for name, node in cfg.stages.items():
        where = f"stages.{name}"
        if node.kind not in STAGE_KINDS:
            raise ConfigError(f"{where}.kind must be one of {', '.join(STAGE_KINDS)} (got '{node.kind}')")
        if node.kind == "pretrain" and node.after:
            raise ConfigError(f"{where}: a pretrain stage starts from scratch (remove after={node.after})")
        if node.kind != "pretrain":
            if not node.after:
                raise ConfigError(f"{where}: a {node.kind} stage needs after=<stage it starts from>")
            if node.after not in cfg.stages:
                raise ConfigError(f"{where}.after: no stage named '{node.after}'{did_you_mean(node.after, cfg.stages)}")
    order(cfg)  # raises on a cycle
    for name, node in cfg.stages.items():
        where = f"stages.{name}.n_seeds"
        if node.n_seeds is not None and node.shared:
            raise ConfigError(f"{where}: a shared stage runs once for every seed; drop n_seeds or shared")
        if node.n_seeds is not None and node.n_seeds < 1:
            raise ConfigError(f"{where} must be >= 1 (got {node.n_seeds})")
    for name, node in cfg.stages.items():
        up = cfg.stages[node.after] if node.after else None
        if up is None or up.shared:
            continue
        missing = [s for s in stage_seeds(cfg, name) if s not in stage_seeds(cfg, node.after)]
        if missing:
            raise ConfigError(f"stages.{name} runs for seed {missing[0]} but its upstream '{node.after}' does not "
                              f"(make '{node.after}' shared or raise its n_seeds)")
    models = set(cfg.stages)
    for finding in cfg.findings:
        for claim in finding.claims:
            where = f"finding {finding.id}"
            if claim.kind not in CLAIM_KINDS:
                raise ConfigError(f"{where}: claim kind must be one of {', '.join(CLAIM_KINDS)} (got '{claim.kind}')")
            for ref in [claim.model] + ([claim.vs] if claim.vs else []):
                if ref not in models:
                    raise ConfigError(f"{where}: no stage named '{ref}'")
            if claim.kind in ("greater", "same", "not_greater") and not (claim.vs or claim.vs_metric):
                raise ConfigError(f"{where}: a '{claim.kind}' claim needs vs=<stage>")
            if claim.kind in ("below", "above") and claim.value is None:
                raise ConfigError(f"{where}: a '{claim.kind}' claim needs value=<number>")
            if not claim.metric.startswith("rl:") and claim.split not in cfg.splits:
                raise ConfigError(f"{where}: split '{claim.split}' is not one of {', '.join(cfg.splits)}")
    for plot in cfg.plots:
        if plot.kind not in PLOT_KINDS:
            raise ConfigError(f"plot kind must be one of {', '.join(PLOT_KINDS)} (got '{plot.kind}')")
        for ref in plot.models:
            if ref not in models:
                raise ConfigError(f"plot '{plot.title or plot.kind}': no stage named '{ref}'")


def stage_seeds(cfg: StudyConfig, name: str) -> list[int]:
    """The study's seeds this stage runs for (a shared stage: the first, serving all)."""
    node = cfg.stages[name]
    if node.shared:
        return [cfg.seeds[0]]
    return list(cfg.seeds if node.n_seeds is None else cfg.seeds[:node.n_seeds])


def order(cfg: StudyConfig) -> list[str]:
    """Stage names, each after the stage it starts from."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ConfigError(f"stages.{name}: the stage graph has a cycle")
        visiting.add(name)
        after = cfg.stages[name].after
        if after:
            visit(after)
        visiting.discard(name)
        done.append(name)

    for name in cfg.stages:
        visit(name)
    return done


# ------------------------------------------------------------------------------------ stage configs

def stage_config(cfg: StudyConfig, name: str, seed: int):
    """The full config of one stage for one seed, before its init_from path is known."""
    node = cfg.stages[name]
    section = getattr(cfg, node.kind)
    overrides = copy.deepcopy(OmegaConf.to_container(OmegaConf.create(node.set))) if node.set else {}
    if node.ops:
        overrides.setdefault("mixture", {})["ops"] = {str(node.ops): 1.0}
    try:
        stage = parse_dotlist(type(section), [], base=_merge(_plain(section), overrides)) if overrides else section
    except ConfigError as e:
        raise ConfigError(f"stages.{name}.set: {e}") from None
    for key in [*stage.mixture.ops, *stage.mixture.contexts, *stage.mixture.extra_ops]:
        if "${" in str(key):
            raise ConfigError(f"stages.{name}: '{key}' is a map key, and map keys are not interpolated; "
                              "use the stage's ops: shorthand or a literal range")
    if stage.mixture.eval_set:
        check_eval_set(cfg, name, node.kind, stage.mixture)
    return replace(stage, seed=seed)


def check_eval_set(cfg: StudyConfig, name: str, kind: str, m) -> None:
    """A stage training on the eval set must describe exactly one split's eval problems."""
    where = f"stages.{name}: mixture.eval_set trains on the eval set, so"
    ops = union_ops(m.ops)
    split = next((s for s, spec in cfg.splits.items() if spec and union_ops([spec]) == ops), None)
    options = {k: getattr(m, k) for k in ("modulus", "distractors", "shuffle", "symbols")}
    eval_options = {k: cfg.eval.problem_options.get(k, options[k]) for k in options}
    problems = [
        (kind == "rl", "it must be an rl stage"),
        (split is not None, f"its ops must be one split's ({', '.join(f'{k}={v}' for k, v in cfg.splits.items())})"),
        (m.eval_set == cfg.eval.problems_per_bin, f"eval_set must be eval.problems_per_bin ({cfg.eval.problems_per_bin})"),
        (m.eval_seed == cfg.eval.seed, f"eval_seed must be eval.seed ({cfg.eval.seed})"),
        (list(m.contexts) == list(cfg.eval.contexts) and list(m.modes) == list(cfg.eval.modes),
         f"its contexts and modes must be eval's, in order ({list(cfg.eval.contexts)}, {list(cfg.eval.modes)})"),
        (options == eval_options, f"its generator options must be eval's ({eval_options}, got {options})"),
    ]
    for ok, what in problems:
        if not ok:
            raise ConfigError(f"{where} {what}")


def _plain(obj) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(obj))


def eval_spec(cfg: StudyConfig) -> EvalSpec:
    return replace(cfg.eval, bins=dict(cfg.splits))


def label(cfg: StudyConfig, name: str) -> str:
    return cfg.stages[name].label or name
