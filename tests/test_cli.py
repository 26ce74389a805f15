"""The command line: generate/show, identical output with several workers, one-line errors."""
import json
import subprocess
import sys

import pytest

from gsm_synth.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "gsm_synth", *args], capture_output=True, text=True, timeout=120)


def test_generate_writes_jsonl_and_workers_give_the_same_file(tmp_path, capsys):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    args = ["generate", "ops=2-10", "contexts=zoo,school", "modes=forward,reverse", "n=600", "seed=3"]
    assert main(args + [f"out={one}"]) == 0
    assert main(args + [f"out={two}", "workers=2"]) == 0
    assert one.read_bytes() == two.read_bytes()
    rows = [json.loads(line) for line in one.read_text().splitlines()]
    assert len(rows) == 600
    assert {"problem", "question", "solution", "answer", "op", "context", "mode", "id", "template_hash"} <= set(rows[0])
    assert {r["op"] for r in rows} == set(range(2, 11)) and {r["context"] for r in rows} == {"zoo", "school"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"]  # no temporary file left


def test_show_prints_problem_solution_and_graph():
    r = run("show", "op=5", "context=zoo")
    assert r.returncode == 0
    assert "Problem:" in r.stdout and "Solution:" in r.stdout and "op = 5 edges" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["show", "op=0"], "op must be a whole number from 1 to"),
    (["show", "op=999"], "op must be a whole number from 1 to"),
    (["show", "context=aquarium"], "unknown context 'aquarium' (available: movie, school, symbolic, zoo"),
    (["generate", "contxts=zoo"], "unknown key 'contxts' (did you mean 'contexts'?)"),
    (["generate", "n=lots"], "bad value for 'n'"),
    (["generate", "ops=9-2"], "op range '9-2' is empty"),
    (["generate", "ops=2-500", "contexts=symbolic"], "op must be from 1 to 144 for context 'symbolic'"),
    (["generate", "n=5", "out=/dev/null/x.jsonl"], "cannot use /dev/null as a directory: it is a file"),
    (["generate", "n=5", "out="], "out= is empty: give it a value, or leave out= off to print to standard output"),
    (["generate", "ops="], "ops= is empty: give it a value (e.g. ops=2-10)"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_bad_input_exits_nonzero_with_one_line(args, message):
    r = run(*args)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert message in r.stderr


def test_did_you_mean_prefers_a_completion_then_the_closest_spelling():
    from gsm_synth.suggest import did_you_mean

    assert did_you_mean("bf16", ["auto", "32-true", "bf16-mixed"]) == " (did you mean 'bf16-mixed'?)"
    assert did_you_mean("rl_dificulty", ["smoke", "rl_difficulty"]) == " (did you mean 'rl_difficulty'?)"
    assert did_you_mean("lrr", ["lr", "seed"], prefix="rl.") == " (did you mean 'rl.lr'?)"
    assert did_you_mean("zzz", ["smoke", "ttrl"]) == ""
