"""`python -m gsm_synth <command> key=value ...` (OmegaConf dotlist arguments).

  generate  ops=2-10 contexts=zoo,school modes=forward n=10000 seed=0 out=data.jsonl [pool= workers= ...]
  show      op=5 context=zoo [mode= seed= index= ...]
  contexts  (lists the available contexts and the largest op each supports)
  golden    out=golden/ ops=1-20 contexts=zoo,school modes=forward,reverse n=2 seed=0 (a corpus to check later)
  check-golden golden/   (regenerates a golden corpus and names what changed; exit 1 if anything did)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .context import ContextError, get_context, list_contexts
from .entry import error_line
from .options import GeneratorOptions, options_of
from .suggest import did_you_mean


@dataclass
class ProblemOptions(GeneratorOptions):
    seed: int = 0


@dataclass
class GenerateArgs(ProblemOptions):
    ops: str = "2-10"
    contexts: str = "zoo"
    modes: str = "forward"
    n: int = 1000
    out: Optional[str] = None  # null = standard output
    workers: int = 1


@dataclass
class ShowArgs(ProblemOptions):
    op: int = 5
    context: str = "zoo"
    mode: str = "forward"
    index: int = 0


class UsageError(ValueError):
    pass


def parse(schema, argv: list[str]):
    """Dotlist -> typed dataclass; unknown keys and bad values raise one-line UsageErrors."""
    valid = [f.name for f in fields(schema)]
    for arg in argv:
        key, eq, _ = arg.partition("=")
        if not eq:
            raise UsageError(f"argument '{arg}' is not of the form key=value")
        if key not in valid:
            hint = did_you_mean(key, valid) or f" (valid: {', '.join(valid)})"
            raise UsageError(f"unknown key '{key}'{hint}")
        if not arg.partition("=")[2].strip():
            default = next(f.default for f in fields(schema) if f.name == key)
            example = f" (e.g. {key}={default})" if default not in (None, "") else ""
            if key == "out":
                example = ", or leave out= off to print to standard output"
            raise UsageError(f"{key}= is empty: give it a value{example}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(argv))
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise UsageError(f"bad value for '{key}': {str(e).splitlines()[0]}") from None


def cmd_generate(argv: list[str]) -> None:
    from .dataset import check_mixture, rows, write_jsonl

    a = parse(GenerateArgs, argv)
    check_mixture(a.ops, a.contexts, a.modes)
    if a.out is not None:
        _check_writable(a.out)
    items = rows(a.ops, a.contexts, a.modes, n=a.n, seed=a.seed, workers=a.workers,
                 progress=a.out is not None and a.n >= 2000, **options_of(a))
    if a.out is None:
        import json
        for r in items:
            print(json.dumps(r, ensure_ascii=False))
        return
    count = write_jsonl(items, a.out)
    print(f"wrote {count} problems to {a.out}", file=sys.stderr)


def _check_writable(out: str) -> None:
    import os

    from .atomic import ensure_dir

    if not out:
        raise UsageError("out= is empty: give a file name, or leave out= off to print to standard output")
    if os.path.isdir(out):
        raise UsageError(f"cannot write out={out}: it is a directory")
    ensure_dir(os.path.dirname(os.path.abspath(out)))
    if os.path.exists(out) and not os.access(out, os.W_OK):
        raise UsageError(f"cannot write out={out}: permission denied")


def cmd_show(argv: list[str]) -> None:
    from .problem import generate

    a = parse(ShowArgs, argv)
    p = generate(a.op, a.context, a.mode, seed=a.seed, index=a.index, **options_of(a))
    g = p.graph
    params = [n for n, d in g.nodes(data=True) if d["kind"] != "constant"]
    needed = [n for n in params if g.nodes[n]["necessary"]]
    aggregates = [n for n in needed if g.nodes[n]["kind"] == "aggregate"]
    arithmetic = f"mod {p.options['modulus']}" if p.options["modulus"] else "plain integers"
    print(f"# op={p.op} context={p.context} mode={p.mode} seed={p.seed} index={p.index} ({arithmetic})")
    print(f"# id={p.id} template={p.template_hash} pool={p.pool}\n")
    print("Problem:", p.problem)
    print("Question:", p.question)
    print("\nSolution:", "\n  ".join(p.steps))
    print(f"Answer: {p.answer}\n")
    print(f"Graph: {len(params)} parameters ({len(needed)} necessary, {len(aggregates)} implicit aggregates, "
          f"{len(params) - len(needed)} distractors), {g.number_of_edges()} edges; "
          f"op = {p.op} edges feed the question '{g.graph['question']}'")
    hint = get_context(a.context).aggregate_hint
    if hint:
        print("Implicit rule:", hint)


def cmd_contexts(argv: list[str]) -> None:
    if argv:
        raise UsageError("contexts takes no arguments")
    for name in list_contexts():
        c = get_context(name)
        print(f"{name:12s} max op {c.max_op:4d}  {c.description}  ({c.source})")


@dataclass
class GoldenArgs(ProblemOptions):
    out: str = "golden"
    ops: str = "1-20"
    contexts: str = "zoo,school,movie,symbolic"
    modes: str = "forward,reverse"
    n: int = 2


def cmd_golden(argv: list[str]) -> None:
    from .atomic import ensure_dir
    from .golden import write_golden

    a = parse(GoldenArgs, argv)
    ensure_dir(a.out)
    options = {k: v for k, v in options_of(a).items()}
    count = write_golden(a.out, a.ops, a.contexts, a.modes, a.n, a.seed, options)
    print(f"wrote a golden corpus of {count} problems to {a.out}", file=sys.stderr)


def cmd_check_golden(argv: list[str]) -> int:
    from .golden import check_golden

    if len(argv) != 1 or "=" in argv[0]:
        raise UsageError("check-golden takes one argument: the corpus folder")
    problems = check_golden(argv[0])
    for line in problems[:20]:
        print(line)
    if problems:
        print(f"error: golden corpus {argv[0]}: {len(problems)} differences (first {min(len(problems), 20)} above)",
              file=sys.stderr)
        return 1
    print(f"golden corpus {argv[0]}: unchanged", file=sys.stderr)
    return 0


COMMANDS = {"generate": cmd_generate, "show": cmd_show, "contexts": cmd_contexts, "golden": cmd_golden,
            "check-golden": cmd_check_golden}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"error: unknown command '{argv[0]}' (valid: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    try:
        code = cmd(argv[1:])
    except BrokenPipeError:  # the reader went away (`... | head`): not an error
        raise
    except (UsageError, ContextError, ValueError, OSError) as e:
        return error_line(e)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return code or 0
