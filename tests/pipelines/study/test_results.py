"""docs/results.md is written from run folders, not by hand."""
import json

from pipelines import results as results_cli


def fake_run(root, study="rl_difficulty", verdict="not significant", eval_seed=0):
    folder = root / f"{study}-small"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"study: {study}\npreset: small\ndescription: Which RL data helps?\n"
                                        f"eval: {{n_samples: 64, seed: {eval_seed}}}\n")
    (folder / "report.md").write_text(f"# Study\n\nCommand: `python -m pipelines.run study={study}`  \n"
                                      "Seeds: 0; total wall time 29.0 min (stages reused ...).\n")
    machine = {"cpu": "Test CPU", "arch": "x86_64", "isa": {"avx2": True, "avx512_bf16": False}, "cores": 2,
               "threads": 2, "torch": "2.x", "device": "cpu"}
    records = [
        {"type": "stage", "name": "base", "wall_s": 1740.0, "summary": {"machine": machine}},  # as how_it_ran records it
        {"type": "result", "label": "base", "split": "edge", "ops": "6-7", "process_pass@1": 0.134,
         "process_pass@1_ci": [0.1, 0.2], "process_pass@64": 0.458, "process_pass@64_ci": [0.3, 0.6]},
        {"type": "finding", "id": "F1b", "text": "Edge RL widens.", "verdict": verdict,
         "claims": [{"verdict": verdict, "text": "rl_edge > base: difference +0.021 [-0.083, +0.146]"}]},
    ]
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return folder


def test_the_page_carries_each_runs_verdicts_numbers_and_machine(tmp_path):
    fake_run(tmp_path / "runs")
    fake_run(tmp_path / "other", study="ttrl", verdict="reproduced")
    fake_run(tmp_path / "seed1", study="ttrl", verdict="reproduced", eval_seed=1)
    page = tmp_path / "results.md"
    assert results_cli.main([f"runs={tmp_path / 'runs'},{tmp_path / 'other'},{tmp_path / 'seed1'}", f"file={page}"]) == 0
    text = page.read_text()
    assert "| `rl_difficulty` | small | ? | F1b ➖ |" in text and "| `ttrl` | small | ? | F1b ✅ |" in text  # runs without rl.reward: ?
    assert "| `ttrl` (eval seed 1) | small |" in text and "Verdicts on one eval set (eval seed 1)" in text
    assert "difference +0.021 [-0.083, +0.146]" in text  # the claim's numbers, as the runner wrote them
    assert "| base | edge | 6-7 | 0.134 [0.100, 0.200] | 0.458 [0.300, 0.600] | – |" in text
    assert "Test CPU" in text and "no avx512_bf16" in text and "took 29.0 min to train" in text


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert results_cli.main(["runz=x"]) == 2
    assert results_cli.main([f"runs={tmp_path / 'missing'}"]) == 2
    assert results_cli.main([f"runs={tmp_path}", f"file={tmp_path / 'r.md'}"]) == 2  # no run in it
    assert all(line.startswith("error: ") for line in capsys.readouterr().err.splitlines())


def test_a_damaged_run_folder_is_one_line(tmp_path, capsys):
    folder = fake_run(tmp_path / "runs")
    (folder / "metrics.jsonl").write_text("{not json")
    assert results_cli.main([f"runs={tmp_path / 'runs'}", f"file={tmp_path / 'r.md'}"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {folder / 'metrics.jsonl'} is unreadable")
