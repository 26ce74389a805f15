"""pass@k along RL: every point of a curve evaluated once (then cached), rows stored in RL order, claims on
points along RL, the compute-axis study end to end, and one-line errors for schedules that cannot run."""
import json

import pytest

from pipelines.common.config import ConfigError
from pipelines.study.judge import VERDICTS
from pipelines.study.load import along_points, load_study
from pipelines.study.runner import run_study

BUDGET = ["study=rl_budget", "preset=tiny", "progress=false", "confirmation_seed=null"]


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_the_compute_axis_study_runs_and_evaluates_each_point_once(tmp_path, capsys):
    run_dir = run_study(load_study(BUDGET + [f"out={tmp_path}"]), "test")
    report = (run_dir / "report.md").read_text()
    assert "## pass@k along RL" in report and (run_dir / "rl_pass_at_k.png").stat().st_size > 1000
    findings = {r["id"]: r for r in records(run_dir) if r["type"] == "finding"}
    assert set(findings) == {"F1b@1x", "F1b@3x", "F1b@10x", "F1b-id@3x"}
    assert all(f["verdict"] in VERDICTS and f["claims"][0]["n"] > 0 for f in findings.values())
    rows = [r for r in records(run_dir) if r["type"] == "along_rl"]
    by_stage = {s: [r for r in rows if r["stage"] == s] for s in ("rl_edge", "rl_id")}
    assert [r["step"] for r in by_stage["rl_edge"]] == [0, 1, 2, 4] and [r["step"] for r in by_stage["rl_id"]] == [0, 1, 2]
    for mine in by_stage.values():  # stored in RL order: samples never go back down a curve
        samples = [r["samples"] for r in mine]
        assert samples == sorted(samples) and samples[0] == 0 and len(set(samples)) == len(samples)
        assert all("edge:process_pass@2" in r and r["edge:process_pass@2_ci"][0] <= r["edge:process_pass@2"] for r in mine)
        key = "edge:process_pass@2"  # the change is paired on the same problems as the curve's first point
        assert mine[0][key + ":change"] == 0 and mine[0][key + ":change_ci"] == [0, 0]
        assert all(r[key + ":change"] == pytest.approx(r[key] - mine[0][key]) for r in mine)
        assert all(r[key + ":change_ci"][0] <= r[key + ":change"] <= r[key + ":change_ci"][1] for r in mine)
    from pipelines.study.results import write_results
    write_results([tmp_path], tmp_path / "results.md")
    assert "pass@k along RL (design set" in (tmp_path / "results.md").read_text()
    snapshots = sorted(p.name for p in tmp_path.glob("cache/rl-*/snapshots/step-*"))
    assert snapshots == ["step-000001", "step-000001", "step-000002"]  # the last point of each run is its final/
    # the same study again: nothing is trained or evaluated a second time
    capsys.readouterr()
    run_study(load_study(BUDGET + [f"out={tmp_path}"]), "test")
    evals = [line for line in capsys.readouterr().err.splitlines() if "] eval" in line or "] rl" in line]
    assert evals and all(line.endswith("(cached)") for line in evals)


def test_points_along_rl_follow_each_stages_budget():
    cfg = load_study(BUDGET)
    assert along_points(cfg, "rl_edge") == [0, 1, 2, 4] and along_points(cfg, "rl_id") == [0, 1, 2]
    cfg = load_study(["study=rl_difficulty", "preset=tiny", "along_rl.every=1", "rl.budget_steps=3"])
    assert along_points(cfg, "rl_edge") == [0, 1, 2, 3]


@pytest.mark.parametrize("extra, message", [
    (["vars.x1=3"], "finding F1b@1x: 'rl_edge@3' is not a point of stage rl_edge (its points: 0, 1, 2, 4)"),
    (["along_rl.n_samples=2"], "along_rl.n_samples must be above k=2 (got 2): pass@k needs n > k"),
    (["along_rl.stages=[base]"], "along_rl.stages: 'base' is not an RL stage"),
    (["along_rl.every=1"], "along_rl: set every or steps, not both"),
    (["along_rl.steps=[2, 1]"], "along_rl.steps must be increasing RL steps >= 1 (got [2, 1])"),
    (["along_rl.steps=[]", "along_rl.every=1", "stages.rl_edge.set={budget_flops: 1.0e9}"],
     "along_rl.every needs a step or sample budget, but stage rl_edge has budget_flops"),
    (["along_rl.steps=[]"], "finding F1b@1x: 'rl_edge@1' names a point along RL, but stage rl_edge is not followed"),
    (["along_rl.metric=maj"], "along_rl.metric must be process or outcome (got 'maj')"),
    (['vars.x1="01"'], "finding F1b@1x: 'rl_edge@01' is not a point of stage rl_edge (its points: 0, 1, 2, 4)"),
])
def test_a_schedule_that_cannot_run_is_one_line(extra, message):
    with pytest.raises(ConfigError) as e:
        load_study(BUDGET + extra)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_point_is_compared_with_a_point(tmp_path):
    study = tmp_path / "mixed.yaml"
    study.write_text("along_rl: {steps: [1]}\n"
                     "stages:\n  base: {kind: pretrain}\n  rl: {kind: rl, after: base, ops: 2-3}\n"
                     "findings:\n  - id: X\n    claims:\n"
                     "      - {kind: greater, model: rl@1, vs: base, split: id, metric: process_pass@1}\n")
    with pytest.raises(ConfigError, match="a point along RL \\(rl@1 vs base\\) is compared with a plain stage"):
        load_study([f"study={study}", "preset=tiny"])
    study.write_text(study.read_text().replace("{kind: greater, model: rl@1, vs: base, split: id, metric: process_pass@1}",
                                               "{kind: above, model: rl@1, metric: 'rl:reward', value: 0.1}"))
    with pytest.raises(ConfigError, match="rl:reward is an RL log key, logged per stage, not per point along RL \\(name the stage, rl\\)"):
        load_study([f"study={study}", "preset=tiny"])
