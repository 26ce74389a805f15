"""A non-editable install (`pip install .`) ships the studies and the bases: they are found from any directory."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_studies_are_found_from_an_installed_copy(tmp_path):
    source = tmp_path / "source"  # build from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "runs", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(source)], check=True, timeout=300, capture_output=True)
    site = tmp_path / "site"
    zipfile.ZipFile(next(wheels.glob("*.whl"))).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import pipelines.study.load as s; print(s.STUDIES_DIR); print(','.join(s.available_studies())); "
            "c = s.load_study(['study=rl_difficulty']); print(c.preset, len(c.stages)); "
            "import pipelines.study.shipped as b; print(b.SHIPPED_DIR); print(b.load_base('tiny', 0)[2]['preset'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-2000:]
    where, studies, loaded, bases, tiny = done.stdout.split("\n")[:5]
    assert Path(where).is_relative_to(site)  # the installed copy's own studies, not the source tree's
    assert Path(bases).is_relative_to(site) and tiny == "tiny"  # and its own shipped bases, loadable
    assert {"smoke", "rl_difficulty", "ttrl"} <= set(studies.split(","))
    assert loaded.startswith("small ")
    # a study file given by path still works from the installed copy
    mine = elsewhere / "mine.yaml"
    shutil.copy(ROOT / "studies" / "smoke.yaml", mine)
    done = subprocess.run([sys.executable, "-c", f"import pipelines.study.load as s; print(s.load_study(['study={mine}']).study)"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0 and done.stdout.strip() == "mine", done.stderr[-2000:]
