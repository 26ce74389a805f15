"""The command line shared by the stages: `python -m pipelines.<stage> out=<dir> key=value ...`."""
from __future__ import annotations

import sys

from .config import ConfigError, parse_dotlist


def stage_main(schema, run, argv: list[str] | None = None) -> int:
    """Parse `out=` and the dotlist into `schema`, call `run(cfg, out)`; errors are one line, exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    outs = [a for a in argv if a.startswith("out=")]
    rest = [a for a in argv if not a.startswith("out=")]
    try:
        if not outs:
            raise ConfigError("missing out=<directory> for the stage's artefacts")
        final = run(parse_dotlist(schema, rest), outs[-1].split("=", 1)[1])
    except (ConfigError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"model written to {final}")
    return 0
