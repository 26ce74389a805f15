"""The study runner: config precedence, one-line errors, cache keys, smoke end to end, resume."""
import json
from pathlib import Path
import shutil

import pytest
from lightning.pytorch.callbacks import Callback

from pipelines import run as run_cli
from pipelines.study.runner import run_study
from pipelines.study.cache import plan
from pipelines.common.config import ConfigError
from pipelines.study.load import available_studies, load_study, stage_config

SMOKE = ["study=smoke", "preset=tiny", "progress=false"]
SCRATCH = SMOKE + ["base=scratch"]


def keys(argv):
    return {r.name: r.key for r in plan(load_study(argv))}


# --------------------------------------------------------------------------------------------- config

def test_precedence_defaults_preset_study_cli():
    cfg = load_study(["study=smoke", "preset=small"])
    assert cfg.pretrain.batch_size == 8  # presets/small.yaml over the schema's 16
    assert cfg.pretrain.budget_tokens == 200_000  # smoke.yaml's presets.small over presets/small.yaml
    assert cfg.eval.n_samples == 4
    cfg = load_study(["study=smoke", "preset=small", "pretrain.budget_tokens=1000", "eval.n_samples=2", "k=1"])
    assert cfg.pretrain.budget_tokens == 1000 and cfg.eval.n_samples == 2  # the command line wins


def test_task_settings_flow_into_every_mixture_unless_a_section_overrides():
    cfg = load_study(SMOKE + ["task.shuffle=0.5"])
    assert cfg.pretrain.mixture.shuffle == cfg.rl.mixture.shuffle == cfg.eval.problem_options["shuffle"] == 0.5
    cfg = load_study(SMOKE + ["task.shuffle=0.5", "pretrain.mixture.shuffle=1.0"])
    assert cfg.pretrain.mixture.shuffle == 1.0 and cfg.rl.mixture.shuffle == 0.5


def test_a_map_on_the_command_line_replaces_the_study_map():
    cfg = load_study(SMOKE + ["splits={id: 2-4}"])
    assert cfg.splits == {"id": "2-4"}


@pytest.mark.slow
def test_every_study_loads_at_every_preset(monkeypatch):
    import torch

    # the paper preset trains on GPUs: planning it here pretends this machine has eight
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert {"smoke", "rl_difficulty", "context_transfer", "midtrain_vs_rl", "process_reward", "ttrl"} <= \
        set(available_studies())
    for study in available_studies():
        for preset in ("tiny", "small", "paper"):
            runs = plan(load_study([f"study={study}", f"preset={preset}"]))
            assert runs and all(r.config.mixture.ops for r in runs)


@pytest.mark.parametrize("argv, message", [
    (["trian.lr=1"], "unknown key 'trian"),
    (["rl.lrr=1"], "did you mean 'rl.lr'"),
    (["pretrain.batch_size=abc"], "pretrain.batch_size"),
    (["study=rl_dificulty"], "did you mean 'rl_difficulty'"),
    (["preset=huge"], "unknown preset 'huge'"),
    (["stages.rl.after=nowhere"], "no stage named 'nowhere'"),
    (["stages.rl.kind=sft"], "stages.rl.kind must be one of"),
    (["stages.rl.set={optim: {lr: 1}}"], "stages.rl.set"),
    (["seeds"], "not of the form key=value"),
    (["pretrain.precision=bf16"], "precision 'bf16' is not one of auto, 32-true, bf16-mixed, 16-mixed (did you mean 'bf16-mixed'?)"),
    (["rl.precision=fp32"], "precision 'fp32' is not one of"),
    (["eval.precision=16"], "eval.precision must be one of auto, 32-true, bf16-mixed"),
    (["pretrain.compile=maybe"], "compile 'maybe' is not one of auto, true, false"),
    (["pretrain.accelerator=gpu"], "but this machine has 0 CUDA GPU(s); use accelerator=cpu"),
    (["rl.accelerator=tpu"], "accelerator 'tpu' is not one of cpu, gpu, cuda, mps, auto"),
    (["pretrain.model.n_layer=0"], "n_layer must be a whole number >= 1 (got 0)"),
    (["seeds=abc"], "bad value for 'seeds': expected a list, e.g. [0, 1], got 'abc'"),
    (["seeds="], "seeds= is empty"),
    (["rl.lr=fast"], "bad value for 'rl.lr': expected a number, got 'fast'"),
    (["splits={}"], "refers to ${splits.id}, which is not set"),
    (["eval.contexts=[nope]"], "eval: bin 'id': unknown context 'nope'"),
    (["eval.modes=[]"], "eval: modes is empty"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path):
    argv = [a if a.startswith("study=") else a for a in argv]
    base = [] if any(a.startswith("study=") for a in argv) else ["study=smoke"]
    code = run_cli.main(base + ["preset=tiny", f"out={tmp_path}"] + argv if "preset=huge" not in argv
                        else base + [f"out={tmp_path}"] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_help_lists_studies_and_presets(capsys):
    assert run_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "rl_difficulty" in out and "paper" in out


# ------------------------------------------------------------------------------------------ cache keys

def test_stage_keys_change_exactly_when_an_input_changes():
    # trained from scratch: a shipped base is filed by its recipe, before precision and compile are resolved
    base = keys(SCRATCH)
    assert keys(SCRATCH) == base  # deterministic
    assert keys(SCRATCH + ["pretrain.checkpoint_every=7"]) == base  # how it runs, not what it makes
    rl_lr = keys(SCRATCH + ["rl.lr=3e-4"])
    assert rl_lr["base"] == base["base"] and rl_lr["mid"] == base["mid"]
    assert rl_lr["rl"] != base["rl"] and rl_lr["ttrl"] != base["ttrl"]
    pre = keys(SCRATCH + ["pretrain.optim.lr=1e-3"])
    assert all(pre[name] != base[name] for name in base)  # everything downstream of the base
    mid = keys(SCRATCH + ["stages.mid.ops=2"])
    assert mid["base"] == base["base"] and mid["ttrl"] == base["ttrl"]
    assert mid["mid"] != base["mid"] and mid["rl"] != base["rl"]
    reseeded = keys(SCRATCH + ["seeds=[1]"])  # the RL seed; a pretraining's seed is its base's index
    assert reseeded["base"] == base["base"] and reseeded["rl"] != base["rl"]
    on_eval_set = keys(SCRATCH + ["rl.mixture.pool=eval", "rl.mixture.eval_set=4"])
    assert on_eval_set["rl"] != base["rl"] and on_eval_set["base"] == base["base"]
    # the *resolved* precision and compile are in the key (auto resolves to fp32, no compile, in the tests)
    assert keys(SCRATCH + ["pretrain.precision=32-true", "pretrain.compile=false"]) == base
    assert keys(SCRATCH + ["pretrain.precision=bf16-mixed"])["base"] != base["base"]
    assert keys(SCRATCH + ["pretrain.compile=true"])["base"] != base["base"]
    bf16_rl = keys(SCRATCH + ["rl.precision=bf16-mixed"])
    assert bf16_rl["base"] == base["base"] and bf16_rl["rl"] != base["rl"]


def test_rl_arms_of_one_study_share_one_auto_precision(monkeypatch, tmp_path):
    from models import machine, speed

    # the arms roll out different batches (TTRL samples more per prompt): each batch has its own probe
    probed = []

    def probe(model, tokens, workload):
        probed.append((workload, tokens))
        return 2.0 if len(probed) == 1 else 1.0  # only the first batch probed would pick bf16
    monkeypatch.setattr(machine, "native_bf16", lambda: True)
    monkeypatch.setattr(speed, "_time_bf16", probe)
    monkeypatch.setenv("GSM_TESTBED_CACHE_DIR", str(tmp_path / "memory"))
    lm_fp32 = [f"out={tmp_path}", "pretrain.precision=32-true", "stages.mid.set.precision=32-true"]
    runs = {r.name: r for r in plan(load_study(SCRATCH + lm_fp32))}
    assert runs["rl"].config.precision == runs["ttrl"].config.precision == "bf16-mixed"
    assert "shared by the study's RL stages" in str(runs["ttrl"].speed["precision"])
    assert len(probed) == 1  # the second arm was not probed (its probe would have said fp32)
    # a precision set on one arm is that arm's
    runs = {r.name: r for r in plan(load_study(SCRATCH + lm_fp32 + ["stages.ttrl.set.precision=32-true"]))}
    assert runs["ttrl"].config.precision == "32-true" and runs["rl"].config.precision == "bf16-mixed"


def test_a_study_declares_its_default_preset():
    assert load_study(["study=smoke"]).preset == "tiny"  # smoke.yaml: preset: tiny
    assert load_study(["study=smoke", "preset=small"]).preset == "small"
    assert load_study(["study=rl_difficulty"]).preset == "small"
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_study(["study=smoke", "preset=huge"])


@pytest.mark.parametrize("extra, message", [
    (["eval.contexts=[movie,zoo,school]"], "contexts and modes must be eval.s, in order"),
    (["stages.ttrl_id.ops=2-6"], "its ops must be one split.s"),  # straddles id and edge
    (["stages.ttrl_id.set.mixture.eval_set=24"], "eval_set must be eval.problems_per_bin"),
    (["stages.ttrl_id.set.mixture.eval_seed=5"], "eval_seed must be eval.seed"),
    (["stages.ttrl_id.set.mixture.modulus=23"], "generator options must be eval.s"),
])
def test_training_on_the_eval_set_must_match_one_evaluated_split(extra, message):
    with pytest.raises(ConfigError, match=message):
        stage_config(load_study(["study=ttrl"] + extra), "ttrl_id", 0)


def test_only_rl_stages_train_on_the_eval_set():
    cfg = load_study(SMOKE + ["stages.mid.set={mixture: {pool: eval, eval_set: 4}}"])
    with pytest.raises(ConfigError, match="it must be an rl stage"):
        stage_config(cfg, "mid", 0)


# ----------------------------------------------------------------------------------------- end to end

def _report_numbers(run_dir):
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["type"] in ("result", "finding")]


@pytest.mark.slow
def test_smoke_end_to_end_then_cached(tmp_path, capsys):
    argv = SMOKE + [f"out={tmp_path}"]
    assert run_cli.main(argv) == 0
    run_dir = tmp_path / "smoke-tiny"
    for name in ("report.md", "config.yaml", "metrics.jsonl", "pass_at_k.png", "rl_reward.png"):
        assert (run_dir / name).stat().st_size > 0, name
    report = (run_dir / "report.md").read_text()
    assert "## Findings" in report and "| base | id |" in report and "cache key" in report
    assert "## Machine" in report and "torch" in report.split("## Machine")[1].splitlines()[2]
    err = capsys.readouterr().err
    stage_lines = [line for line in err.splitlines() if line.startswith("stage ")]
    # the base is the shipped tiny base (bases/tiny-base-0): installed, not trained, and the report says so
    assert len(stage_lines) == 4 and "shipped weights" in stage_lines[0]
    assert all(line.count("precision 32-true (auto:") == 1 for line in stage_lines[1:])
    assert sum("compile off (auto:" in line for line in stage_lines) == 1  # the mid-training stage
    assert "base (base 0): shipped base `tiny-base-0`, trained by" in report
    stage = json.loads(next((tmp_path / "cache").glob("midtrain-*/stage.json")).read_text())["summary"]
    assert stage["precision"] == "32-true" and stage["compile"] is False and stage["machine"]["cores"] >= 1
    first = _report_numbers(run_dir)
    assert run_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("(cached)") == 12  # 4 stages + 4 models x 2 eval sets (design, confirmation): nothing retrained
    assert _report_numbers(run_dir) == first


class Killed(Exception):
    pass


class _Kill(Callback):
    """Dies after the first RL step, once the step's checkpoint is written (like a SIGKILL there)."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        raise Killed()  # not KeyboardInterrupt: Lightning turns that into sys.exit


@pytest.mark.slow
def test_killed_study_resumes_to_the_same_report(tmp_path, monkeypatch):
    unbroken = tmp_path / "unbroken"
    assert run_cli.main(SMOKE + [f"out={unbroken}"]) == 0

    import pipelines.train.rl as rl

    original = rl.run_rl_stage
    calls = []

    def dying(cfg, out, progress=True, callbacks=()):
        calls.append(out)
        return original(cfg, out, progress, callbacks=(*callbacks, _Kill()))

    killed = tmp_path / "killed"
    monkeypatch.setattr(rl, "run_rl_stage", dying)
    with pytest.raises(Killed):
        run_study(load_study(SMOKE + [f"out={killed}"]))
    monkeypatch.setattr(rl, "run_rl_stage", original)
    rl_dir = calls[0]
    assert (rl_dir / "ckpt" / "last.ckpt").is_file() and not (rl_dir / "final").exists()
    assert run_cli.main(SMOKE + [f"out={killed}"]) == 0
    info = json.loads((killed / "smoke-tiny" / "metrics.jsonl").read_text().splitlines()[0])
    assert info["name"] == "base"
    assert _report_numbers(killed / "smoke-tiny") == _report_numbers(unbroken / "smoke-tiny")


@pytest.mark.slow
def test_force_reruns_and_reproduces(tmp_path):
    argv = SMOKE + [f"out={tmp_path}", "base=scratch", "stages.ttrl.eval=false", "stages.rl.eval=false"]
    assert run_cli.main(argv) == 0
    first = _report_numbers(tmp_path / "smoke-tiny")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("pretrain-*/stage.json")}
    assert len(before) == 1
    assert run_cli.main(argv + ["force=true"]) == 0
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())  # retrained
    assert _report_numbers(tmp_path / "smoke-tiny") == first  # same seed, same numbers
    # a retrained base is set against the shipped base of its recipe, on the same eval set
    report = (tmp_path / "smoke-tiny" / "report.md").read_text()
    assert "trained from scratch here" in report and "against the shipped base `tiny-base-0`" in report


def test_a_study_preset_edits_one_stage_and_keeps_the_rest():
    cfg = load_study(["study=process_reward", "preset=small"])
    assert cfg.stages["blend_02"].n_seeds == 1 and cfg.stages["strict"].n_seeds is None
    assert set(cfg.stages) == {"base", "outcome", "blend_05", "blend_02", "strict"} and cfg.bases == 3
    assert load_study(["study=process_reward", "preset=tiny"]).stages["blend_02"].n_seeds is None


def test_a_stage_can_run_for_fewer_seeds():
    runs = plan(load_study(SMOKE + ["seeds=[3,4]", "stages.ttrl.n_seeds=1"]))
    names = [(r.name, r.seed) for r in runs]
    assert ("ttrl", 3) in names and ("ttrl", 4) not in names and ("rl", 3) in names and ("rl", 4) in names


@pytest.mark.parametrize("extra, message", [
    (["stages.ttrl.n_seeds=0"], "n_seeds must be >= 1"),
    (["stages.mid.n_seeds=1"], "runs for seed 1 but its upstream 'mid' does not"),
    (["stages.mid.shared=true", "stages.mid.n_seeds=1"], "drop n_seeds or shared"),
    (["stages.base.shared=true"], "a pretrain stage is trained once per base"),
    (["bases=0"], "bases must be >= 1"),
    (["bases_rule=mean"], "bases_rule must be one of crossed, pooled"),
    (["k=4"], "k must be a power of 2 below eval.n_samples"),
    (["confirmation_seed=0"], "confirmation_seed must differ from eval.seed"),
])
def test_bad_stage_seeds_are_one_line(extra, message):
    with pytest.raises(ConfigError, match=message):
        load_study(SMOKE + ["seeds=[0,1]"] + extra)


def test_a_pretraining_trains_once_for_all_seeds():
    runs = plan(load_study(SMOKE + ["seeds=[0,1]"]))
    names = [(r.name, r.seed) for r in runs]
    assert names.count(("base", 0)) == 1 and ("base", 1) not in names
    rl = [r for r in runs if r.name == "rl"]
    assert len(rl) == 2 and rl[0].key != rl[1].key
    mids = [r for r in runs if r.name == "mid"]
    assert {m.config.init_from for m in mids} == {str(runs[0].final)}


def test_each_base_is_its_own_pretraining_and_every_later_stage_runs_on_each():
    runs = plan(load_study(SMOKE + ["seeds=[0,1]", "bases=2"]))
    bases = [r for r in runs if r.name == "base"]
    assert [(r.base, r.config.seed) for r in bases] == [(0, 0), (1, 1)] and bases[0].key != bases[1].key
    rl = [(r.base, r.seed) for r in runs if r.name == "rl"]
    assert rl == [(0, 0), (0, 1), (1, 0), (1, 1)]
    mid_of = {r.final: r.base for r in runs if r.name == "mid"}
    assert all(mid_of[Path(r.config.init_from)] == r.base for r in runs if r.name == "rl")
    # base 0 of a 2-base study is the 1-base study's base: adding bases reuses the cache
    assert bases[0].key == keys(SMOKE)["base"]


@pytest.mark.slow
def test_a_stage_cached_by_another_study_is_reused_under_this_name(tmp_path):
    first = SMOKE + [f"out={tmp_path}", "stages.ttrl.eval=false", "stages.rl.eval=false", "stages.mid.eval=false"]
    assert run_cli.main(first) == 0
    renamed = SMOKE + [f"out={tmp_path}", "stages={base2: {kind: pretrain, label: again}, base: null, mid: null, rl: null, ttrl: null}", "findings=[]", "plots=[]"]
    assert run_cli.main(renamed) == 0  # same config as 'base': cached, reported as 'base2'
    rows = [json.loads(l) for l in (tmp_path / "smoke-tiny" / "metrics.jsonl").read_text().splitlines()]
    stage = [r for r in rows if r["type"] == "stage"]
    assert [s["name"] for s in stage] == ["base2"] and stage[0]["cached"]


def test_loading_a_study_does_not_import_torch():
    """`python -m pipelines.run --help` and a config error stay fast: config and study loading are torch-free."""
    import subprocess
    import sys

    code = ("import sys, pipelines.run; from pipelines.study.load import load_study; "
            "load_study(['study=rl_difficulty']); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]


@pytest.mark.slow
def test_a_damaged_cache_is_one_line_naming_the_file(tmp_path, capsys):
    argv = SMOKE + [f"out={tmp_path}"]
    assert run_cli.main(argv) == 0
    cache = tmp_path / "cache"
    base = next(cache.glob("pretrain-*"))
    mid = next(cache.glob("midtrain-*"))
    capsys.readouterr()

    def fails(fragment):
        assert run_cli.main(argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and fragment in errors[0] and "force=true" in errors[0], err
        assert "Traceback" not in err

    info = (base / "stage.json").read_text()
    (base / "stage.json").write_text("{garbage")
    fails(f"{base / 'stage.json'} is unreadable")
    (base / "stage.json").write_text(info)
    saved = tmp_path / "saved-final"
    shutil.copytree(base / "final", saved)
    shutil.rmtree(base / "final")
    shutil.copytree(mid / "final", base / "final")  # a valid model, of another stage
    fails(f"{base / 'final'} is not the model stage base trained")
    shutil.rmtree(base / "final")
    shutil.copytree(saved, base / "final")
    done = next(base.glob("eval-*/done.json"))
    done.write_text("[]")
    fails(f"{done} is corrupted")


def test_a_study_file_cannot_read_the_environment(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("GSM_TEST_SECRET", "hunter2")
    text = (Path(__file__).resolve().parents[3] / "studies" / "smoke.yaml").read_text()
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(text + "\nvars: {rl_ops: 2-3, token: '${oc.env:GSM_TEST_SECRET}'}\n")
    assert run_cli.main([f"study={leaky}", f"out={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "vars.token uses the resolver 'oc.env'" in err and "hunter2" not in err
    assert not (tmp_path / "runs").exists()
    # typed on the command line by the user, a resolver is the user's choice
    monkeypatch.setenv("GSM_TEST_LR", "0.25")
    assert load_study(SMOKE + ["rl.lr=${oc.env:GSM_TEST_LR}"]).rl.lr == 0.25


def test_a_stage_config_file_cannot_read_the_environment(tmp_path, capsys):
    from pipelines import lm

    config = tmp_path / "stage.yaml"
    config.write_text("preset: tiny\nmixture: {pool: '${oc.env:HOME}'}\n")
    assert lm.main([f"out={tmp_path / 'stage'}", f"config={config}"]) == 2
    assert "mixture.pool uses the resolver 'oc.env'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["pipelines.run", "pipelines.lm", "pipelines.rl", "pipelines.evaluate"])
@pytest.mark.parametrize("out, message", [
    ("{file}", "cannot use {file} as a directory: it is a file"),
    ("{file}/sub", "cannot create {file}/sub: {file} is a file, not a directory"),
])
def test_an_output_place_that_cannot_work_is_one_line(command, out, message, tmp_path, capsys):
    import importlib

    file = tmp_path / "a-file"
    file.write_text("x")
    out, message = out.format(file=file), message.format(file=file)
    main = importlib.import_module(command).main
    checkpoint = tmp_path / "model"
    if command == "pipelines.evaluate":  # evaluation checks its output place once the model has loaded
        from models import GPT, model_config
        from pipelines.common.checkpoint import save_model
        from pipelines.train.lm import make_tokenizer

        tokenizer = make_tokenizer()
        save_model(checkpoint, GPT(model_config("tiny", tokenizer.vocab_size, 256)), tokenizer)
    argv = {"pipelines.run": SMOKE, "pipelines.lm": ["preset=tiny"], "pipelines.rl": [f"init_from={tmp_path}"],
            "pipelines.evaluate": [f"checkpoint={checkpoint}"]}[command]
    assert main(argv + [f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}"


def test_a_closed_pipe_is_not_an_error(tmp_path):
    import subprocess
    import sys

    for command in (["-m", "pipelines.run", "--help"], ["-m", "gsm_synth", "generate", "n=3000"]):
        done = subprocess.run(f"{sys.executable} {' '.join(command)} | head -c 10", shell=True, capture_output=True,
                              text=True, timeout=120)
        assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_a_study_file_that_is_not_text_or_not_a_file_is_one_line(tmp_path, capsys):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(128, 256)) * 3)
    assert run_cli.main([f"study={binary}"]) == 2
    assert run_cli.main([f"study={tmp_path}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: study {binary} is not a text file (not UTF-8)",
                   f"error: study '{tmp_path}' is a directory, not a study file"]


@pytest.mark.slow
def test_two_bases_give_a_table_per_base_and_a_combined_verdict(tmp_path):
    argv = SMOKE + [f"out={tmp_path}", "bases=2", "stages.ttrl.eval=false"]
    assert run_cli.main(argv) == 0
    report = (tmp_path / "smoke-tiny" / "report.md").read_text()
    across = report.split("## Across bases")[1].split("\n## ")[0]
    assert "| finding | claim | base 0 | base 1 | between-base SD | combined |" in across
    assert "| base | 0 |" in across and "| base | 1 |" in across  # each base's own pass@k per split
    assert "shipped base `tiny-base-0`" in report and "base (base 1): trained from scratch here" in report
    rows = [json.loads(l) for l in (tmp_path / "smoke-tiny" / "metrics.jsonl").read_text().splitlines()]
    lead = [r for r in rows if r["type"] == "finding" and r["lead"]]
    assert [r["eval"] for r in lead] == ["confirmation"]
    assert len(lead[0]["claims"][0]["per_base"]) == 2
    stages = [(r["name"], r["base"]) for r in rows if r["type"] == "stage"]
    assert stages.count(("rl", 0)) == 1 and stages.count(("rl", 1)) == 1


def test_the_report_names_each_departure_from_the_papers_protocol():
    from pipelines.study.report import protocol_line

    assert protocol_line(load_study(["study=rl_difficulty", "preset=tiny"])).startswith("Protocol: the CMU study's (outcome")
    # the small preset's strict reward is a declared departure (mod 7 pays for guesses; presets/small.yaml)
    assert "RL reward strict (paper §3/§5: outcome)" in protocol_line(load_study(["study=rl_difficulty"]))
    line = protocol_line(load_study(["study=rl_difficulty", "rl.reward.kind=strict", "rl.kl_coef=0",
                                     "rl.skip_zero_variance=true", "eval.temperature=1.0"]))
    for departure in ("RL reward strict", "KL coefficient 0", "groups with equal rewards dropped", "eval at T = 1"):
        assert departure in line
    edge_only = load_study(["study=midtrain_vs_rl", "midtrain.mixture.ops={6-7: 1.0}"])
    assert "mid-training without ID data" in protocol_line(edge_only)
