"""A study's schema: the dataclasses a study YAML fills in (stages, findings and their claims, plots),
and where study files live. Plain Python: loading a study imports no torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from gsm_synth.options import ProblemStyle
from pipelines.common.config import table
from pipelines.common.paths import data_dir
from pipelines.evaluation.spec import DEFAULT_BINS, EvalSpec
from pipelines.train.config import LMStageConfig, RLStageConfig

STUDIES_DIR = data_dir("studies", "defaults.yaml")  # an installed copy's, or the checkout's
DEFAULT_PRESET = "small"  # a study's YAML may name its own (`preset: tiny` in smoke.yaml)
PRESETS = ("tiny", "small", "paper")
STAGE_KINDS = ("pretrain", "midtrain", "rl")
CLAIM_KINDS = ("greater", "same", "not_greater", "below", "above")
PLOT_KINDS = ("pass_at_k", "rl_curves", "by_op")
# How claims combine several bases (declared in a study's YAML before it runs; docs/design.md §7):
# crossed: bases and problems resampled independently (every base is evaluated on the same problems);
# pooled: per-problem values averaged over bases, problems resampled only (ignores the base draw)
BASES_RULES = ("crossed", "pooled")
BASE_SOURCES = ("shipped", "scratch")
# RL log keys that are rates in [0, 1] (a floor or ceiling can make a claim untestable); others are unbounded
RL_RATES = {"reward", "acc", "pass_n", "process_acc", "label_acc", "reward_acc", "true_reward", "majority_ratio",
            "wrong_label_reward_acc"}

@dataclass
class TaskConfig(ProblemStyle):
    """The problem style shared by every mixture and eval set of a study (modulus, distractors, shuffle,
    symbols). studies/defaults.yaml wires it into each section; a section may still override its copy."""


@dataclass
class StageNode:
    kind: str = "rl"  # pretrain | midtrain | rl
    after: Optional[str] = None  # the stage whose final model this one starts from (not for pretrain)
    ops: Optional[str] = None  # shorthand: the stage's mixture is this op range only
    set: dict[str, Any] = table()  # overrides of the kind's section, nested like it
    label: Optional[str] = None  # name in tables and plots (default: the stage's name)
    eval: bool = True  # evaluate this stage's model on the splits
    shared: bool = False  # train once per base (first seed) for all seeds; pretraining always is
    n_seeds: Optional[int] = None  # run only for the first n of the study's seeds (default: all of them)


@dataclass
class Claim:
    """One testable statement. Eval metrics are paired over the same problems (mean over seeds first).
    greater: model > vs; same: model - vs within ±margin; not_greater: model is not above vs by margin or
    more (a drop counts, e.g. "no gain here"); below / above: the model's value against `value` (for RL log
    keys, `rl:reward`, the run's mean). Judged by pipelines/study/judge.py."""
    kind: str = "greater"
    model: str = ""
    vs: Optional[str] = None  # default for vs_metric claims: the model itself
    vs_metric: Optional[str] = None  # compare against another metric (e.g. rl:label_acc); default: metric
    metric: str = "process_pass@128"  # an eval metric (process_pass@k, outcome_pass@k, maj@k, errors:<kind>) or rl:<key>
    split: Optional[str] = None
    context: Optional[str] = None  # only this context's problems
    ops: Optional[str] = None  # only these ops (e.g. the top of a split)
    value: Optional[float] = None
    margin: Optional[float] = None  # same / not_greater: equivalence margin (default: claims.MARGINS by metric)


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
class AlongRL:
    """pass@k along RL: each RL stage keeps its policy at these RL steps and every point of the curve (the
    starting model as step 0, each snapshot, the final model) is evaluated on the study's eval sets with
    this spec. Claims and plots name a point as <stage>@<step>. Off unless `every` or `steps` is set."""
    every: Optional[int] = None  # a snapshot every this many RL steps (needs a step or sample budget)
    steps: list[int] = field(default_factory=list)  # or these RL steps
    stages: list[str] = field(default_factory=list)  # the RL stages to follow (default: every evaluated one)
    problems_per_bin: Optional[int] = None  # fewer problems than the final evaluation's (default: the same)
    n_samples: Optional[int] = None  # fewer samples per problem (default: the same; must stay above k)
    metric: str = "process"  # the pass@1 / pass@k drawn: process (verified steps) | outcome (answer only)

    @property
    def on(self) -> bool:
        return self.every is not None or bool(self.steps)


@dataclass
class StudyConfig:
    study: str = "smoke"
    preset: str = "small"
    out: str = "runs"  # run folders go to <out>/<study>-<preset>/, cached stages to <out>/cache/
    seeds: list[int] = field(default_factory=lambda: [0])  # each stage after pretraining is trained once per seed
    bases: int = 1  # independently seeded pretrainings (base b uses seed b); every later stage runs on each
    bases_rule: str = "crossed"  # how claims combine bases: see BASES_RULES
    base: str = "shipped"  # shipped: a pretraining whose recipe the repository ships is loaded, not trained; scratch: train it
    k: int = 64  # the k of the claims' and tables' pass@k / maj@k (${k} in a study); eval samples n > k of each problem
    confirmation_seed: Optional[int] = None  # a held-out eval set (never overlapping eval.seed's): the headline verdicts
    force: bool = False  # re-run every stage of this study even if cached
    progress: bool = True
    description: str = ""
    design_notes: str = ""  # what was changed in this study's design after seeing which data (printed in the report)
    task: TaskConfig = field(default_factory=TaskConfig)
    vars: dict[str, Any] = field(default_factory=dict)  # named values stages interpolate: ${vars.rl_edge}
    splits: dict[str, str] = table(DEFAULT_BINS)
    pretrain: LMStageConfig = field(default_factory=LMStageConfig)
    midtrain: LMStageConfig = field(default_factory=LMStageConfig)
    rl: RLStageConfig = field(default_factory=RLStageConfig)
    eval: EvalSpec = field(default_factory=EvalSpec)
    stages: dict[str, StageNode] = field(default_factory=dict)
    along_rl: AlongRL = field(default_factory=AlongRL)
    findings: list[Finding] = field(default_factory=list)
    plots: list[PlotSpec] = field(default_factory=list)
