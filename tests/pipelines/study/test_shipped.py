"""Shipped bases: each loads and scores as its record says, its key is the one today's code computes, the
runner uses it only when the key matches, and a damaged file is one clear error."""
import json
import shlex
import shutil

import pytest

from pipelines.common.checkpoint import CheckpointError, load_model
from pipelines.evaluation.spec import EvalSpec
from pipelines.study import shipped
from pipelines.study.cache import plan, recipe_key
from pipelines.study.load import load_study, stage_config

SHIPPED = shipped.records()
SMOKE = ["study=smoke", "preset=tiny", "progress=false"]


def test_the_repository_ships_bases_and_they_stay_small():
    presets = {record["preset"] for _, record in SHIPPED}
    assert "tiny" in presets  # the tests' base
    total = sum(p.stat().st_size for folder, _ in SHIPPED for p in folder.iterdir())
    assert total < 20 * 2 ** 20


def _study_of(record) -> list[str]:
    """The study command line a base was trained by (its record's command), without base=scratch."""
    words = shlex.split(record["command"])[3:]
    return [w for w in words if not w.startswith(("base=", "out="))]


@pytest.mark.parametrize("folder, record", SHIPPED, ids=[f.name for f, _ in SHIPPED])
def test_a_shipped_base_has_the_key_the_current_recipe_computes(folder, record):
    cfg = load_study(_study_of(record))
    key = recipe_key("pretrain", stage_config(cfg, record["stage"], record["seed"]), None)
    assert key == record["key"], (f"{folder.name} was made by another recipe: the pretraining config or "
                                  "CODE_VERSION changed; retrain and ship it again (pipelines/ship_bases.py)")


@pytest.mark.parametrize("folder, record", SHIPPED, ids=[f.name for f, _ in SHIPPED])
def test_a_shipped_base_scores_as_recorded(folder, record, tmp_path):
    shipped.install(folder, tmp_path / "final")
    model, tokenizer, meta = load_model(tmp_path / "final")
    assert meta["shipped"] == folder.name
    spec = EvalSpec(**record["eval"]["spec"])
    assert shipped.fingerprint(model, tokenizer, spec) == record["fingerprint"]


def test_the_runner_uses_a_shipped_base_only_when_its_key_matches():
    lines = []
    base = next(r for r in plan(load_study(SMOKE), say=lines.append) if r.name == "base")
    assert base.shipped is not None and base.shipped.name == "tiny-base-0" and not lines
    scratch = next(r for r in plan(load_study(SMOKE + ["base=scratch"]), say=lines.append) if r.name == "base")
    assert scratch.shipped is None and scratch.key != base.key and not lines
    changed = next(r for r in plan(load_study(SMOKE + ["pretrain.optim.lr=1e-3"]), say=lines.append) if r.name == "base")
    assert changed.shipped is None
    assert len(lines) == 1 and "tiny-base-0 is not used: it was made by another recipe" in lines[0]
    # a second base has no shipped twin: it is trained, silently
    second = [r for r in plan(load_study(SMOKE + ["bases=2"]), say=lines.append) if r.name == "base"]
    assert second[0].shipped is not None and second[1].shipped is None and len(lines) == 1


@pytest.fixture
def tiny_copy(tmp_path):
    folder = next(f for f, r in SHIPPED if r["preset"] == "tiny")
    copy = tmp_path / "shipped" / folder.name
    shutil.copytree(folder, copy)
    return copy


def test_a_corrupted_shipped_file_is_one_clear_error(tiny_copy, tmp_path):
    weights = tiny_copy / shipped.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"does not match the sha256 in its record.json .*base=scratch"):
        shipped.install(tiny_copy, tmp_path / "final")
    assert not (tmp_path / "final").exists()


def test_a_shipped_file_that_is_not_safetensors_is_refused_without_running_it(tiny_copy, tmp_path):
    weights = tiny_copy / shipped.WEIGHTS
    weights.write_bytes(b"\x80\x04 not a tensor file")
    record = json.loads((tiny_copy / shipped.RECORD).read_text())
    record["sha256"][shipped.WEIGHTS] = shipped.sha256(weights)  # checksums agree: the content is still bad
    (tiny_copy / shipped.RECORD).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        shipped.install(tiny_copy, tmp_path / "final")


def test_load_base_names_what_is_shipped_when_asked_for_what_is_not():
    model, tokenizer, record = shipped.load_base("tiny", 0)
    assert record["preset"] == "tiny" and not model.training
    with pytest.raises(CheckpointError, match="no shipped base tiny/7; shipped: .*tiny/0"):
        shipped.load_base("tiny", 7)
