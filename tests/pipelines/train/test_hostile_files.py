"""Files a stage reads may be corrupted, swapped or crafted: none of them runs code, each problem is one
line naming the file (or, for a resume checkpoint, a warning and a clean restart)."""
import json
import pathlib
import shutil

import pytest
import torch

from pipelines.common.checkpoint import CheckpointError, load_model
from pipelines.train.lm import run_lm_stage

from test_lm_stage import KillAt, tiny, weights


class Payload:
    """Unpickling this would create `marker`: a stand-in for any code a crafted file could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def craft(path, marker):
    torch.save({"state_dict": Payload(marker)}, path)


@pytest.fixture(scope="module")
def final(tmp_path_factory):
    return run_lm_stage(tiny(budget_tokens=4 * 128), tmp_path_factory.mktemp("stage"), progress=False)


def test_a_crafted_weights_file_never_runs(final, tmp_path):
    copy = tmp_path / "final"
    shutil.copytree(final, copy)
    marker = tmp_path / "ran"
    craft(copy / "model.pt", marker)
    meta = json.loads((copy / "model.json").read_text())
    meta.pop("sha256")  # even without checksums to catch it, loading does not unpickle objects
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="corrupted or not a model"):
        load_model(copy)
    assert not marker.exists()


def test_flipped_bytes_and_a_swapped_weights_file_are_refused(final, tmp_path):
    flipped = tmp_path / "flipped"
    shutil.copytree(final, flipped)
    data = bytearray((flipped / "model.pt").read_bytes())
    data[-200:-136] = bytes(b ^ 0xFF for b in data[-200:-136])  # 64 bytes inside the tensor data
    (flipped / "model.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.pt does not match the sha256 .* force=true"):
        load_model(flipped)
    other = run_lm_stage(tiny(budget_tokens=4 * 128, seed=1), tmp_path / "other", progress=False)
    swapped = tmp_path / "swapped"
    shutil.copytree(final, swapped)
    shutil.copy(other / "model.pt", swapped / "model.pt")  # a valid model, of another stage
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_model(swapped)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["pickle", "garbage", "truncated"])
def test_a_bad_resume_checkpoint_restarts_the_stage_cleanly(tmp_path, capfd, damage):
    unbroken = run_lm_stage(tiny(), tmp_path / "a", progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_lm_stage(tiny(), tmp_path / "b", progress=False, callbacks=[KillAt(7)])
    last = tmp_path / "b" / "ckpt" / "last.ckpt"
    marker = tmp_path / "ran"
    if damage == "pickle":
        craft(last, marker)
    elif damage == "garbage":
        last.write_bytes(b"\x00garbage" * 100)
    else:
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    resumed = run_lm_stage(tiny(), tmp_path / "b", progress=False)
    assert not marker.exists()
    assert "moved to last.ckpt.bad, training this stage from its start" in capfd.readouterr().err
    assert (last.parent / "last.ckpt.bad").is_file()
    a, b = weights(unbroken), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the restart ends where the unbroken run did
