"""Every lab runs top to bottom in fast mode (as CI does), and is stored without outputs."""
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")  # the dev extra installs them; without it the labs are skipped
NotebookClient = pytest.importorskip("nbclient").NotebookClient

LABS = sorted((Path(__file__).resolve().parents[2] / "labs").glob("*.ipynb"))


def test_there_are_labs():
    assert LABS


@pytest.mark.parametrize("path", LABS, ids=[p.stem for p in LABS])
def test_a_lab_runs_in_fast_mode(path, monkeypatch, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "store labs without outputs"
    monkeypatch.setenv("GSM_LABS_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel inherits this environment (fast mode, no display); a cell that raises fails the test
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
