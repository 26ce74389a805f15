"""Where data that ships with the code lives: inside the installed package (pipelines/<name>/) or, in a
source checkout, at the top of the repository (<name>/)."""
from __future__ import annotations

from pathlib import Path

PIPELINES = Path(__file__).resolve().parent.parent


def data_dir(name: str, marker: str) -> Path:
    """pipelines/<name>/ when an installed copy holds it (a file matching `marker` is there), else the
    checkout's <name>/ (studies/, bases/)."""
    installed = PIPELINES / name
    return installed if any(installed.glob(marker)) else PIPELINES.parent / name
