"""`python -m pipelines.results [runs=runs] [file=docs/results.md]`: write the results page from finished
study runs (several roots: runs=runs,/elsewhere/runs). See pipelines/study/results.py."""
from __future__ import annotations

import sys
from pathlib import Path

from gsm_synth.entry import error_line, run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = {"runs": "runs", "file": "docs/results.md"}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in args:
            print(f"error: expected runs=<folders> or file=<path>, got '{arg}'", file=sys.stderr)
            return 2
        args[key] = value
    from pipelines.study.results import write_results

    roots = [Path(p) for p in args["runs"].split(",") if p]
    missing = [str(p) for p in roots if not p.is_dir()]
    if missing:
        print(f"error: no such folder: {missing[0]}", file=sys.stderr)
        return 2
    try:
        runs = write_results(roots, Path(args["file"]))
    except BrokenPipeError:
        raise
    except (ValueError, OSError) as e:  # ConfigError is a ValueError
        return error_line(e)
    if not runs:
        print(f"error: no finished study run (metrics.jsonl + report.md) under {args['runs']}", file=sys.stderr)
        return 2
    print(f"wrote {args['file']} from {len(runs)} runs")
    return 0


if __name__ == "__main__":
    run(main)
