"""Loading a study: its YAML layers merged into the schema (pipelines/study/schema.py), checked, and the
stage graph it describes.

Precedence (later wins): the schema's defaults < studies/defaults.yaml (wiring shared by every study)
< studies/presets/<preset>.yaml < studies/<study>.yaml < that study's `presets.<preset>` section
< the command line's key=value list.
A study is data: stages (pretrain / midtrain / rl, each starting from another stage), the eval splits,
the findings to test (claims over eval metrics) and the plots to draw.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

from omegaconf import OmegaConf

from gsm_synth.suggest import did_you_mean
from gsm_synth.options import style_of
from pipelines.common.config import ConfigError, overlay, parse_dotlist, read_yaml, refuse_resolvers
from pipelines.common.mixture import union_ops
from pipelines.evaluation.spec import EVAL_PRECISIONS, EvalSpec, check_spec
from pipelines.study.schema import (BASE_SOURCES, BASES_RULES, CLAIM_KINDS, DEFAULT_PRESET, PLOT_KINDS, PRESETS, RL_RATES, STAGE_KINDS, STUDIES_DIR,
                                    StudyConfig)
from pipelines.train.config import planned_steps


# ${mul:0.8,${vars.budget}}: a share of a budget, so a study can split one compute budget between stages
def _mul(a, b) -> float:
    return float(a) * float(b)


if not OmegaConf.has_resolver("mul"):  # omegaconf 2.4 renamed register_new_resolver; 2.3 has only that
    getattr(OmegaConf, "register_resolver" if hasattr(OmegaConf, "register_resolver") and
            "replace" in OmegaConf.register_resolver.__code__.co_varnames else "register_new_resolver")("mul", _mul)


def available_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml") if p.stem != "defaults")


def study_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if path.is_dir():
            raise ConfigError(f"study '{name}' is a directory, not a study file")
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
    path = study_path(name)
    study = read_yaml(path, "study")
    preset = _pick(argv, "preset", str(study.get("preset", DEFAULT_PRESET)))
    if preset not in PRESETS:
        where = "" if any(a.startswith("preset=") for a in argv) else f" (the default of study '{name}')"
        raise ConfigError(f"unknown preset '{preset}'{where}; presets: {', '.join(PRESETS)}")
    study_presets = study.pop("presets", {}) or {}
    if not isinstance(study_presets, dict) or any(p not in PRESETS for p in study_presets):
        raise ConfigError(f"study '{name}': presets must map some of {', '.join(PRESETS)} to overrides")
    defaults, preset_file = STUDIES_DIR / "defaults.yaml", STUDIES_DIR / "presets" / f"{preset}.yaml"
    layers = [(read_yaml(defaults, "defaults"), defaults), (read_yaml(preset_file, "preset"), preset_file),
              (study, path), (study_presets.get(preset) or {}, path)]
    base = {}
    for layer, source in layers:
        refuse_resolvers(layer, f"study file {source}", allowed=("mul",))
        base = overlay(StudyConfig, base, layer)
    base = {**base, "study": Path(name).stem if name.endswith((".yaml", ".yml")) else name, "preset": preset}
    # study= and preset= are settled above (a study file's run folder is named by its stem)
    cfg = parse_dotlist(StudyConfig, [a for a in argv if not a.startswith(("study=", "preset="))], base=base)
    check_study(cfg)
    return cfg


def check_study(cfg: StudyConfig) -> None:
    if not cfg.stages:
        raise ConfigError(f"study '{cfg.study}' has no stages")
    if not cfg.seeds:
        raise ConfigError("seeds must name at least one seed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds must not repeat (got {list(cfg.seeds)})")
    if cfg.bases < 1:
        raise ConfigError(f"bases must be >= 1 (got {cfg.bases})")
    if cfg.bases_rule not in BASES_RULES:
        raise ConfigError(f"bases_rule must be one of {', '.join(BASES_RULES)} (got '{cfg.bases_rule}')")
    if cfg.base not in BASE_SOURCES:
        raise ConfigError(f"base must be one of {', '.join(BASE_SOURCES)} (got '{cfg.base}')")
    if cfg.k < 1 or cfg.k & (cfg.k - 1) or cfg.k >= cfg.eval.n_samples:
        raise ConfigError(f"k must be a power of 2 below eval.n_samples (got k={cfg.k}, n_samples={cfg.eval.n_samples}): "
                          "with n = k samples pass@k is a bare indicator; sample n > k (e.g. n = 2k)")
    if cfg.confirmation_seed is not None and cfg.confirmation_seed == cfg.eval.seed:
        raise ConfigError(f"confirmation_seed must differ from eval.seed (both {cfg.eval.seed}): it names the held-out set")
    if cfg.eval.precision not in EVAL_PRECISIONS:  # stage precisions are checked by plan()
        raise ConfigError(f"eval.precision must be one of {', '.join(EVAL_PRECISIONS)} (got '{cfg.eval.precision}')")
    if not any(cfg.splits.values()):
        raise ConfigError("splits is empty: name at least one, e.g. splits={id: 2-5}")
    try:  # before the stages: a stage training on the eval set would otherwise report it second-hand
        check_spec(eval_spec(cfg))
    except ValueError as e:
        raise ConfigError(f"eval: {e}") from None
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
        if node.kind == "pretrain" and (node.n_seeds is not None or node.shared):
            raise ConfigError(f"stages.{name}: a pretrain stage is trained once per base, for every seed "
                              "(drop shared / n_seeds; bases=K sets how many)")
        if node.n_seeds is not None and node.shared:
            raise ConfigError(f"{where}: a shared stage runs once for every seed; drop n_seeds or shared")
        if node.n_seeds is not None and node.n_seeds < 1:
            raise ConfigError(f"{where} must be >= 1 (got {node.n_seeds})")
    for name, node in cfg.stages.items():
        up = cfg.stages[node.after] if node.after else None
        if up is None or serves_all_seeds(up):
            continue
        missing = [s for s in stage_seeds(cfg, name) if s not in stage_seeds(cfg, node.after)]
        if missing:
            raise ConfigError(f"stages.{name} runs for seed {missing[0]} but its upstream '{node.after}' does not "
                              f"(make '{node.after}' shared or raise its n_seeds)")
    check_along(cfg)
    models = set(cfg.stages)
    for finding in cfg.findings:
        for claim in finding.claims:
            where = f"finding {finding.id}"
            if claim.kind not in CLAIM_KINDS:
                raise ConfigError(f"{where}: claim kind must be one of {', '.join(CLAIM_KINDS)} (got '{claim.kind}')")
            refs = [claim.model] + ([claim.vs] if claim.vs else [])
            for ref in refs:
                check_ref(cfg, ref, where)
            points = [ref for ref in refs if is_point(ref)]
            if points and len(points) < len(refs):
                raise ConfigError(f"{where}: a point along RL ({' vs '.join(refs)}) is compared with a plain stage; "
                                  "compare it with another point (<stage>@0 is the stage's starting model): points are "
                                  "evaluated with along_rl's spec")
            if points and claim.metric.startswith("rl:"):
                raise ConfigError(f"{where}: {claim.metric} is an RL log key, logged per stage, not per point along RL "
                                  f"(name the stage, {split_point(points[0])[0]})")
            if claim.kind in ("greater", "same", "not_greater") and not (claim.vs or claim.vs_metric):
                raise ConfigError(f"{where}: a '{claim.kind}' claim needs vs=<stage>")
            if claim.kind in ("below", "above") and claim.value is None:
                raise ConfigError(f"{where}: a '{claim.kind}' claim needs value=<number>")
            if claim.margin is not None and (claim.kind not in ("same", "not_greater") or not 0 < claim.margin < math.inf):
                raise ConfigError(f"{where}: margin is for same / not_greater claims and must be > 0 (got {claim.margin} "
                                  f"on a '{claim.kind}' claim)")
            if claim.kind in ("same", "not_greater") and claim.margin is None and claim.metric.startswith("rl:") \
                    and claim.metric[3:] not in RL_RATES:
                raise ConfigError(f"{where}: {claim.metric} is not a rate: give its equivalence margin (margin=...)")
            if not claim.metric.startswith("rl:") and claim.split not in cfg.splits:
                raise ConfigError(f"{where}: split '{claim.split}' is not one of {', '.join(cfg.splits)}")
    for plot in cfg.plots:
        if plot.kind not in PLOT_KINDS:
            raise ConfigError(f"plot kind must be one of {', '.join(PLOT_KINDS)} (got '{plot.kind}')")
        for ref in plot.models:
            if ref not in models:
                raise ConfigError(f"plot '{plot.title or plot.kind}': no stage named '{ref}'")


def check_along(cfg: StudyConfig) -> None:
    a = cfg.along_rl
    if not a.on:
        if a.stages or a.problems_per_bin is not None or a.n_samples is not None:
            raise ConfigError("along_rl: set along_rl.every or along_rl.steps (the RL steps to evaluate at)")
        return
    if a.metric not in ("process", "outcome"):
        raise ConfigError(f"along_rl.metric must be process or outcome (got '{a.metric}')")
    if a.every is not None and a.steps:
        raise ConfigError("along_rl: set every or steps, not both")
    if a.every is not None and a.every < 1:
        raise ConfigError(f"along_rl.every must be >= 1 (got {a.every})")
    if any(s < 1 for s in a.steps) or list(a.steps) != sorted(set(a.steps)):
        raise ConfigError(f"along_rl.steps must be increasing RL steps >= 1 (got {list(a.steps)})")
    if a.problems_per_bin is not None and a.problems_per_bin < 1:
        raise ConfigError(f"along_rl.problems_per_bin must be >= 1 (got {a.problems_per_bin})")
    if a.n_samples is not None and a.n_samples <= cfg.k:
        raise ConfigError(f"along_rl.n_samples must be above k={cfg.k} (got {a.n_samples}): pass@k needs n > k")
    for name in a.stages:
        if name not in cfg.stages or cfg.stages[name].kind != "rl":
            rl = [n for n, node in cfg.stages.items() if node.kind == "rl"]
            raise ConfigError(f"along_rl.stages: '{name}' is not an RL stage{did_you_mean(name, rl)}")
    for name in along_stages(cfg):
        along_points(cfg, name)  # a schedule the budget cannot follow fails here


def along_stages(cfg: StudyConfig) -> list[str]:
    """The RL stages followed along RL (none when along_rl is off)."""
    if not cfg.along_rl.on:
        return []
    return list(cfg.along_rl.stages) or [n for n, node in cfg.stages.items() if node.kind == "rl" and node.eval]


def snapshot_steps(cfg: StudyConfig, name: str, config) -> list[int]:
    """The RL steps before the last at which stage `name` keeps its policy. A listed step at or past the
    budget's last step is left out: the final model is the last point."""
    a, total = cfg.along_rl, planned_steps(config)
    if a.every is not None:
        if total is None:
            raise ConfigError(f"along_rl.every needs a step or sample budget, but stage {name} has budget_flops; "
                              "list the steps instead (along_rl.steps=[...])")
        return list(range(a.every, total, a.every))
    return [s for s in a.steps if total is None or s < total]


def along_points(cfg: StudyConfig, name: str) -> list[int]:
    """RL steps of stage `name` that are points of its curve: 0 (the starting model), each snapshot, and
    the last step when the budget fixes it (a FLOPs budget's is known once the stage has run)."""
    config = stage_config(cfg, name, cfg.seeds[0])
    total = planned_steps(config)
    return [0, *config.snapshots] + ([total] if total is not None else [])


def is_point(ref: str) -> bool:
    """Does a claim's model name a point along RL (<stage>@<step>) rather than a stage?"""
    return "@" in ref


def split_point(ref: str) -> tuple[str, int | None]:
    """'rl_edge@120' -> ('rl_edge', 120); a plain stage name -> (name, None); a step that is not a plain
    number (e.g. '@01', '@x') -> -1, which is never a point."""
    if not is_point(ref):
        return ref, None
    name, step = ref.split("@", 1)
    return name, int(step) if step.isdigit() and str(int(step)) == step else -1


def check_ref(cfg: StudyConfig, ref: str, where: str) -> None:
    """A model a claim names: a stage, or a point along RL (<stage>@<step>)."""
    name, step = split_point(ref)
    if name not in cfg.stages:
        raise ConfigError(f"{where}: no stage named '{name}'{did_you_mean(name, cfg.stages)}")
    if step is None:
        return
    if name not in along_stages(cfg):
        raise ConfigError(f"{where}: '{ref}' names a point along RL, but stage {name} is not followed "
                          "(set along_rl.every or along_rl.steps, and along_rl.stages if it is not evaluated)")
    points = along_points(cfg, name)
    if step not in points:
        raise ConfigError(f"{where}: '{ref}' is not a point of stage {name} (its points: "
                          f"{', '.join(str(p) for p in points)})")


def serves_all_seeds(node) -> bool:
    """Trained once per base, for the first seed, and used by every seed."""
    return node.shared or node.kind == "pretrain"


def stage_seeds(cfg: StudyConfig, name: str) -> list[int]:
    """The study's seeds this stage runs for (a shared stage or a pretraining: the first, serving all)."""
    node = cfg.stages[name]
    if serves_all_seeds(node):
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
        stage = parse_dotlist(type(section), [], base=overlay(type(section), _plain(section), overrides)) if overrides else section
    except ConfigError as e:
        raise ConfigError(f"stages.{name}.set: {e}") from None
    for key in [*stage.mixture.ops, *stage.mixture.contexts, *stage.mixture.extra_ops]:
        if "${" in str(key):
            raise ConfigError(f"stages.{name}: '{key}' is a map key, and map keys are not interpolated; "
                              "use the stage's ops: shorthand or a literal range")
    if stage.mixture.eval_set:
        check_eval_set(cfg, name, node.kind, stage.mixture)
    if name in along_stages(cfg):
        stage = replace(stage, snapshots=snapshot_steps(cfg, name, stage))
    return replace(stage, seed=seed)


def check_eval_set(cfg: StudyConfig, name: str, kind: str, m) -> None:
    """A stage training on the eval set must describe exactly one split's eval problems."""
    where = f"stages.{name}: mixture.eval_set trains on the eval set, so"
    ops = union_ops(m.ops)
    split = next((s for s, spec in cfg.splits.items() if spec and union_ops([spec]) == ops), None)
    options = style_of(m)
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
    """The design eval set: the one a study's design was (or may be) tuned on."""
    return replace(cfg.eval, bins=dict(cfg.splits))


def eval_specs(cfg: StudyConfig) -> dict[str, EvalSpec]:
    """'design' and, when the study declares confirmation_seed, 'confirmation': a held-out set of the same
    shape that shares no problem with the design set. The report's headline verdicts are the last one's."""
    design = eval_spec(cfg)
    if cfg.confirmation_seed is None:
        return {DESIGN: design}
    return {DESIGN: design, CONFIRMATION: replace(design, seed=cfg.confirmation_seed, avoid_seed=design.seed)}


def along_specs(cfg: StudyConfig) -> dict[str, EvalSpec]:
    """The eval sets every point along RL is evaluated on, at along_rl's size: every set when a claim names a
    point (claims are judged on each set), else only the headline set the report's curves are drawn from."""
    a = cfg.along_rl
    specs = eval_specs(cfg)
    if not any(is_point(ref) for f in cfg.findings for c in f.claims for ref in (c.model, c.vs or "")):
        lead = headline(specs)
        specs = {lead: specs[lead]}
    return {which: replace(spec, problems_per_bin=a.problems_per_bin or spec.problems_per_bin,
                           n_samples=a.n_samples or spec.n_samples) for which, spec in specs.items()}


DESIGN, CONFIRMATION = "design", "confirmation"


def headline(sets: dict) -> str:
    """Which eval set's verdicts lead (of a dict keyed by set): the held-out confirmation set where there is one."""
    return CONFIRMATION if CONFIRMATION in sets else DESIGN


def label(cfg: StudyConfig, name: str) -> str:
    return cfg.stages[name].label or name
