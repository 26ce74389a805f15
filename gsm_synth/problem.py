"""`generate(op, context, mode, seed, index, **options) -> Problem`: one problem, exactly `op` operations."""
from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field
from functools import cached_property

import networkx as nx

from . import pools
from .arith import Arithmetic
from .build import build_structure
from .context import get_context
from .options import GeneratorOptions
from .render import Namer, canonical_order, reading_order, solution, statements, template
from .values import Retry, assign

MODES = ("forward", "reverse")
DEFAULT_OPTIONS = asdict(GeneratorOptions())
SYMBOL_STYLES = ("random", "ordered")
_MAX_TRIES = 200


@dataclass(eq=False)
class Problem:
    problem: str
    question: str
    solution: str
    answer: int
    op: int
    context: str
    mode: str
    id: str
    template_hash: str
    statements: tuple[str, ...]
    steps: tuple[str, ...]  # the solution without its final "Answer: N." line
    seed: int
    index: int
    options: dict
    _nodes: list = field(repr=False)
    _names: list = field(repr=False)
    _sink: int = field(repr=False)

    @property
    def template_bucket(self) -> int:
        return int(self.template_hash, 16) % pools.TEMPLATE_BUCKETS

    @property
    def pool(self) -> str:
        return pools.pool_of(self)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """True dependencies; constants are nodes too. graph.graph['question'] is the sink whose ancestors
        are the necessary parameters (in reverse mode the asked-for unknown is graph.graph['unknown'])."""
        g = nx.DiGraph(question=self._names[self._sink], context=self.context, mode=self.mode, op=self.op)
        for j, n in enumerate(self._nodes):
            name = self._names[j]
            g.add_node(name, kind=n.kind, form=n.form, value=n.true, necessary=n.necessary, unknown=n.unknown)
            if n.unknown:
                g.graph["unknown"] = name
            for i, p in enumerate(n.params):
                g.add_edge(self._names[p], name, operand=i)
            if n.has_const:
                const = ("const", name)
                g.add_node(const, kind="constant", value=n.const, necessary=n.necessary, unknown=n.unknown)
                g.add_edge(const, name)
        return g

    def to_dict(self) -> dict:
        return {"problem": self.problem, "question": self.question, "solution": self.solution,
                "answer": self.answer, "op": self.op, "context": self.context, "mode": self.mode,
                "id": self.id, "template_hash": self.template_hash, "seed": self.seed, "index": self.index,
                "options": dict(self.options)}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_options(options: dict) -> dict:
    for key in options:
        if key not in DEFAULT_OPTIONS:
            raise ValueError(f"unknown option '{key}' (valid: {', '.join(DEFAULT_OPTIONS)})")
    opts = {**DEFAULT_OPTIONS, **options}
    Arithmetic(opts["modulus"])  # validates
    d = opts["distractors"]
    if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 0):
        raise ValueError(f"distractors must be a whole number >= 0 or None (got {d!r})")
    s = opts["shuffle"]
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0.0 <= s <= 1.0:
        raise ValueError(f"shuffle must be a number between 0 and 1 (got {s!r})")
    if opts["symbols"] not in SYMBOL_STYLES:
        raise ValueError(f"symbols must be one of {', '.join(SYMBOL_STYLES)} (got {opts['symbols']!r})")
    if opts["pool"] is not None and opts["pool"] not in pools.POOLS:
        raise ValueError(f"unknown pool '{opts['pool']}' (valid: {', '.join(pools.POOLS)})")
    return opts


def generate(op: int, context: str = "zoo", mode: str = "forward", seed: int = 0, index: int = 0,
             **options) -> Problem:
    """The problem number `index` of stream `seed` with exactly `op` operations.

    Options: the fields of gsm_synth.options.GeneratorOptions (modulus, distractors, shuffle, symbols, pool).
    """
    ctx = get_context(context)
    if not isinstance(op, int) or isinstance(op, bool) or not 1 <= op <= ctx.max_op:
        raise ValueError(f"op must be a whole number from 1 to {ctx.max_op} for context '{ctx.name}' (got {op!r})")
    if mode not in MODES:
        raise ValueError(f"unknown mode '{mode}' (valid: {', '.join(MODES)})")
    opts = check_options(options)
    pool = opts["pool"]
    for attempt in range(pools.MAX_POOL_ATTEMPTS if pool else 1):
        p = _generate_once(ctx, op, mode, seed, index, opts, attempt)
        if pool is None or pools.pool_of(p) == pool:
            return p
    raise ValueError(f"no problem of pool '{pool}' found for op={op}, context={ctx.name}, mode={mode} "
                     f"after {pools.MAX_POOL_ATTEMPTS} draws")


def _generate_once(ctx, op: int, mode: str, seed: int, index: int, opts: dict, attempt: int) -> Problem:
    rng = random.Random(f"gsm:{seed}:{index}:{op}:{ctx.name}:{mode}:{attempt}")
    ar = Arithmetic(opts["modulus"])
    reverse = mode == "reverse"
    n_distractors = opts["distractors"]
    if n_distractors is None:
        n_distractors = rng.randint(0, (op + 1) // 2)
    groups, items = _draw_names(ctx, rng, op + n_distractors)
    for _ in range(_MAX_TRIES):
        nodes, sink = build_structure(rng, op, len(groups), len(items), n_distractors)
        namer = Namer(ctx, groups, items)
        names = [namer.name(n) for n in nodes]
        order = canonical_order(nodes, names)
        unknown = None
        if reverse:
            leaves = [j for j in order if not nodes[j].params and nodes[j].has_const]
            unknown = rng.choice(leaves)
        try:
            assign(nodes, order + [j for j, n in sorted(enumerate(nodes), key=lambda t: t[1].pos)
                                   if not n.necessary], ar, rng, unknown)
            break
        except Retry:
            continue
    else:
        raise RuntimeError(f"could not assign values for op={op} context={ctx.name} mode={mode}")
    texts, owners = statements(nodes, namer, sink, reverse, opts["shuffle"], rng)
    steps, tail, answer = solution(nodes, reading_order(nodes, owners), names, sink, reverse, ar, rng,
                                   ordered_symbols=opts["symbols"] == "ordered")
    if tail:
        steps.append("; ".join(tail) + ".")
    q_node = unknown if reverse else sink
    question = namer.question(nodes[q_node])
    return Problem(
        problem=" ".join(texts), question=question, solution=" ".join(steps) + f" Answer: {answer}.",
        answer=answer, op=op, context=ctx.name, mode=mode,
        id=_hash(mode + "\n" + "\n".join(sorted(texts)) + "\n" + question),
        template_hash=_hash(template(nodes, sink, reverse)),
        statements=tuple(texts), steps=tuple(steps), seed=seed, index=index,
        options={k: v for k, v in opts.items()}, _nodes=nodes, _names=names, _sink=sink)


def _draw_names(ctx, rng: random.Random, need: int) -> tuple[list[str], list[str]]:
    """One sub-pool per layer (as GSM-Infinite), merging more while the (group, item) slots are too few."""
    gpools, ipools = list(ctx.groups.values()), list(ctx.items.values())
    rng.shuffle(gpools)
    rng.shuffle(ipools)
    g, i = 1, 1
    while len(set().union(*gpools[:g])) * len(set().union(*ipools[:i])) < 2 * need + 4:
        if g < len(gpools) and (g <= i or i == len(ipools)):
            g += 1
        elif i < len(ipools):
            i += 1
        else:
            break
    groups = sorted(set().union(*gpools[:g]))
    items = sorted(set().union(*ipools[:i]))
    rng.shuffle(groups)
    rng.shuffle(items)
    return groups, items
