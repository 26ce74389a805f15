"""What the stages share around their training: the command line, `python -m pipelines.<stage> out=<dir>
[config=<file.yaml>] key=value ...`, and the record of how a stage ran.

`config=` reads a whole stage config (e.g. a stage's own config.yaml); key=value pairs override it. The
study runner starts multi-process (DDP) stages this way, so Lightning can start one process per device.
"""
from __future__ import annotations

import os
import sys

from gsm_synth.atomic import ensure_dir
from gsm_synth.entry import error_line
from pipelines.common.config import ConfigError, parse_dotlist, read_yaml, refuse_resolvers


def is_rank_zero() -> bool:
    """True in a single process and in rank 0 of a Lightning-launched DDP group."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def announce(line: str) -> None:
    """One line on stderr, printed once however many DDP processes run the stage."""
    if is_rank_zero():
        print(line, file=sys.stderr, flush=True)


def how_it_ran(cfg, choices: dict, compiled: bool) -> dict:
    """Precision, compile (as actually used), why, devices and the machine: for a stage's summary."""
    from models.machine import machine_info

    return {"precision": cfg.precision, "compile": compiled, "speed_reasons": {k: c.reason for k, c in choices.items()},
            "devices": cfg.devices, "strategy": cfg.strategy, "machine": machine_info(cfg.accelerator)}


def stage_main(schema, run, argv: list[str] | None = None) -> int:
    """Parse `out=`, `config=` and the dotlist into `schema`, call `run(cfg, out)`; errors are one line, exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    outs = [a for a in argv if a.startswith("out=")]
    files = [a.split("=", 1)[1] for a in argv if a.startswith("config=")]
    rest = [a for a in argv if not a.startswith(("out=", "config="))]
    try:
        if not outs:
            raise ConfigError("missing out=<directory> for the stage's artefacts")
        base = read_yaml(files[-1], "config file") if files else None
        refuse_resolvers(base or {}, f"config file {files[-1] if files else ''}")
        if files and not base:  # a stage config is never empty (a study's launch.yaml never is)
            raise ConfigError(f"config file {files[-1]} must be a mapping of keys to values")
        cfg = parse_dotlist(schema, rest, base=base)
        out = outs[-1].split("=", 1)[1]
        if not out:
            raise ConfigError("out= is empty: give the stage's directory")
        ensure_dir(out)
        final = run(cfg, out)
    except BrokenPipeError:
        raise
    except (ConfigError, ValueError, OSError) as e:
        return error_line(e)
    if is_rank_zero():
        print(f"model written to {final}")
    return 0
