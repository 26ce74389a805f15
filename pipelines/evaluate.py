"""`python -m pipelines.evaluate checkpoint=<dir> [bins.id=2-10 bins.hard=null n_samples=16 out=<dir>]`:
evaluate one model directory (or a stage's ckpt/last.ckpt) and print its bin totals.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

from gsm_synth.atomic import ensure_dir
from gsm_synth.entry import error_line, run
from pipelines.common.config import parse_dotlist
from pipelines.evaluation.metrics import metric_key
from pipelines.evaluation.spec import EvalSpec, check_spec


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of the bin totals (the first and last k of each metric)."""
    lines = [f"{'bin':<8}{'ops':<8}{'problems':>9}{'pass@1':>9}{'pass@n':>9}{'proc@1':>9}{'proc@n':>9}"
             f"{'maj@n':>9}{'cut':>7}"]
    for r in rows:
        if r["context"] != "all":
            continue
        k1, kn = r["ks"][0], r["ks"][-1]
        vals = [r[metric_key("outcome", k1)], r[metric_key("outcome", kn)], r[metric_key("process", k1)],
                r[metric_key("process", kn)], r[metric_key("maj", kn)]]
        lines.append(f"{r['bin']:<8}{r['ops']:<8}{r['problems']:>9}" + "".join(f"{v:>9.3f}" for v in vals)
                     + f"{r['cut_fraction']:>7.2f}")
    return "\n".join(lines)


@dataclass
class EvalCommand(EvalSpec):
    checkpoint: str = ""  # a directory that pipelines.common.checkpoint.load_model reads
    out: Optional[str] = None  # default: <checkpoint>/eval
    progress: bool = True


_LIST_KEYS = {"contexts", "modes"}
USAGE = ("usage: python -m pipelines.evaluate checkpoint=<dir> [key=value ...]\n"
         "keys: " + ", ".join(f.name for f in fields(EvalCommand)) + "\n"
         "e.g.  bins.id=2-10 bins.hard=null n_samples=16 problems_per_bin=8 contexts=zoo,movie out=<dir>")


def parse_command(argv: list[str]) -> EvalCommand:
    """key=value overrides (the stages' dotlist parser) over the EvalCommand defaults; ValueError with one line."""
    items = []
    for item in argv:
        key, eq, value = item.partition("=")
        if eq and key in _LIST_KEYS and not value.startswith("["):  # contexts=zoo,movie means a list
            value = "[" + value + "]"
        items.append(f"{key}={value}" if eq else item)
    cmd = parse_dotlist(EvalCommand, items)  # ConfigError is a ValueError
    if not cmd.checkpoint:
        raise ValueError("checkpoint=<dir> is required")
    return cmd


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        return 0
    try:
        cmd = parse_command(argv)
        spec = EvalSpec(**{f.name: getattr(cmd, f.name) for f in fields(EvalSpec)})
        check_spec(spec)
        from pipelines.common.checkpoint import load_model  # torch: imported once the arguments are good
        from pipelines.evaluation.evaluate import evaluate, resolve_eval_precision, write_results

        model, tokenizer = load_model(cmd.checkpoint)[:2]  # (model, tokenizer, meta)
        ckpt = Path(cmd.checkpoint)  # a model folder, or a running stage's ckpt/last.ckpt: eval/ beside ckpt/
        out = ensure_dir(cmd.out or (ckpt.parent.parent if ckpt.suffix == ".ckpt" else ckpt) / "eval")
        spec, choice = resolve_eval_precision(model, spec)
        print(f"eval: precision {choice}", file=sys.stderr)
        results = evaluate(model, tokenizer, spec, progress=cmd.progress)
        paths = write_results(results, out)
    except BrokenPipeError:
        raise
    except (ValueError, OSError) as e:
        return error_line(e)
    print(format_rows(results["rows"]))
    print(f"wrote {paths['rows']} and {paths['plot']}")
    return 0


if __name__ == "__main__":
    run(main)
