"""The dependency DAG of a problem, built top-down from the question so that op is hit exactly.

op = number of edges of the necessary sub-graph, one edge per constant operand (GSM-Infinite's num_op).
Every parameter is defined by its parents: instance parameters by an explicit statement (a constant,
other parameters, or both); aggregate parameters (a group's total) implicitly by *all* instance
parameters of their group that the problem mentions.

The builder keeps an exact budget instead of rejection sampling. With R edges still to spend and O
parameters still undefined (each needs >= 1 edge), slack = R - O. A definition may spend slack (more
operands, new parameters, aggregates) only while enough free (group, item) slots remain to absorb the rest
(free >= slack), and the last undefined parameter may only close when slack is 0. Then "a constant"
(slack 0) or "a copy of a new parameter" (slack > 0) is always a legal move, so construction always ends
with exactly op edges. Positions (`pos`) give a topological order: every parent sits below its child,
so no move can make a cycle.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

INSTANCE, AGGREGATE = "instance", "aggregate"
# Operand signatures of an explicit statement: (number of parameter operands, has a constant)
SIGNATURES = ((0, True), (1, False), (1, True), (2, False), (2, True), (3, False))
SIGNATURE_WEIGHTS = (3, 2, 3, 3, 1, 1)
P_NEW, P_AGGREGATE = 0.5, 0.15  # operand is a new parameter / a new aggregate; else reuse an existing one
P_ROOT_AGGREGATE = 0.4
MAX_AGGREGATE_NEW = 3


@dataclass(slots=True)
class Node:
    kind: str
    group: int
    item: int  # -1 for aggregates
    pos: float
    params: list[int] = field(default_factory=list)  # parent parameters (node indices)
    has_const: bool = False
    necessary: bool = True
    # filled by values.assign
    form: str = ""
    const: int = 0
    value: tuple[int, int] = (0, 0)  # linear form a*x + b
    true: int = 0  # numeric value with the unknown at its true value
    unknown: bool = False


class _Builder:
    def __init__(self, rng: random.Random, n_groups: int, n_items: int):
        self.rng = rng
        self.n_groups, self.n_items = n_groups, n_items
        self.nodes: list[Node] = []
        self.slot: dict[tuple[int, int], int] = {}
        self.group_members: list[list[int]] = [[] for _ in range(n_groups)]
        self.aggregate_of: dict[int, int] = {}
        self.active_groups: list[int] = []
        self.active_items: list[int] = []
        self.free = n_groups * n_items

    # -- placement -----------------------------------------------------------------------------
    def _open_groups(self) -> list[int]:
        return [g for g in self.active_groups
                if g not in self.aggregate_of and len(self.group_members[g]) < self.n_items]

    def new_instance(self, pos: float, necessary: bool = True) -> int:
        rng = self.rng
        groups = self._open_groups()
        if groups and (len(self.active_groups) == self.n_groups or rng.random() < 0.75):
            g = rng.choice(groups)
        else:
            g = len(self.active_groups)
            self.active_groups.append(g)
        items = [i for i in self.active_items if (g, i) not in self.slot]
        if items and (len(self.active_items) == self.n_items or rng.random() < 0.6):
            i = rng.choice(items)
        else:
            i = len(self.active_items)
            self.active_items.append(i)
        idx = len(self.nodes)
        self.nodes.append(Node(INSTANCE, g, i, pos, necessary=necessary))
        self.slot[(g, i)] = idx
        self.group_members[g].append(idx)
        self.free -= 1
        return idx

    def aggregate_options(self, below: float) -> list[int]:
        """Groups that can get a new aggregate placed below `below` (a fresh group is -1)."""
        out = [g for g in self.active_groups
               if g not in self.aggregate_of and all(self.nodes[m].pos < below for m in self.group_members[g])]
        if len(self.active_groups) < self.n_groups:
            out.append(-1)
        return out

    def new_aggregate(self, g: int, n_new: int, below: float) -> int:
        if g == -1:
            g = len(self.active_groups)
            self.active_groups.append(g)
        members = self.group_members[g]
        lo = max((self.nodes[m].pos for m in members), default=below - 1.0)
        pos = self.rng.uniform(lo, below)
        idx = len(self.nodes)
        self.nodes.append(Node(AGGREGATE, g, -1, pos))
        self.aggregate_of[g] = idx
        for _ in range(n_new):  # new members are placed in g explicitly (g is not open to others)
            i = self._free_item(g)
            m = len(self.nodes)
            self.nodes.append(Node(INSTANCE, g, i, pos - self.rng.uniform(0.05, 1.0)))
            self.slot[(g, i)] = m
            members.append(m)
            self.free -= 1
        self.free -= self.n_items - len(members)  # the group is closed: its other slots are gone
        self.nodes[idx].params = list(members)
        return idx

    def _free_item(self, g: int) -> int:
        items = [i for i in self.active_items if (g, i) not in self.slot]
        if items and (len(self.active_items) == self.n_items or self.rng.random() < 0.6):
            return self.rng.choice(items)
        i = len(self.active_items)
        self.active_items.append(i)
        return i


def build_structure(rng: random.Random, op: int, n_groups: int, n_items: int, n_distractors: int):
    """Nodes of the DAG and the index of the question (sink). Necessary nodes have exactly op edges."""
    b = _Builder(rng, n_groups, n_items)
    budget = op
    open_nodes: list[int] = []

    # The question: an aggregate over c fresh members, or an instance parameter.
    root_c = rng.randint(1, min(4, op // 2, n_items)) if op >= 2 else 0
    if root_c and rng.random() < P_ROOT_AGGREGATE and b.free - n_items >= op - 2 * root_c:
        sink = b.new_aggregate(-1, root_c, 0.0)
        b.nodes[sink].pos = 0.0
        budget -= root_c
        open_nodes = list(b.nodes[sink].params)
    else:
        sink = b.new_instance(0.0)
        open_nodes = [sink]

    while open_nodes:
        x = max(open_nodes, key=lambda j: b.nodes[j].pos)  # top-down: the one nearest the question
        spent = _define(b, x, budget, open_nodes)
        budget -= spent
    assert budget == 0, "op budget not met exactly"

    for _ in range(n_distractors):
        if b.free <= 0:
            break
        _add_distractor(b)
    return b.nodes, sink


def _define(b: _Builder, x: int, budget: int, open_nodes: list[int]) -> int:
    """Give open node x a definition; returns the edges spent (its own and a new aggregate's)."""
    rng, node = b.rng, b.nodes[x]
    slack = budget - len(open_nodes)
    px = node.pos
    open_nodes.remove(x)
    reuse_pool = [j for j, n in enumerate(b.nodes) if n.pos < px]
    for _ in range(10):
        n_params, has_const = rng.choices(SIGNATURES, SIGNATURE_WEIGHTS)[0]
        cost = n_params + has_const - 1  # slack this definition spends beyond its one required edge
        if cost > slack:
            continue
        n_new, n_reuse, agg_plan, free = 0, 0, None, b.free
        for _ in range(n_params):
            r = rng.random()
            if r < P_AGGREGATE and agg_plan is None:
                agg_plan = _plan_aggregate(b, px)
                if agg_plan:
                    members, k = len(b.group_members[agg_plan[0]]) if agg_plan[0] >= 0 else 0, agg_plan[1]
                    cost += members + 2 * k  # the aggregate's edges, plus k new undefined members
                    free -= b.n_items - members  # k slots used, the rest of the group closed
                    n_new += k
                    continue
            if r < P_AGGREGATE + P_NEW or n_reuse >= len(reuse_pool):
                n_new += 1
                cost += 1
                free -= 1
            else:
                n_reuse += 1
        new_slack = slack - cost
        if new_slack < 0 or free < new_slack or (not open_nodes and not n_new and new_slack):
            continue
        params = rng.sample(reuse_pool, n_reuse)
        spent = n_params + has_const
        if agg_plan:
            g, k = agg_plan
            a = b.new_aggregate(g, k, px)
            params.append(a)
            spent += len(b.nodes[a].params)
            if k:
                open_nodes.extend(b.nodes[a].params[-k:])
        for _ in range(n_params - len(params)):
            params.append(b.new_instance(px - rng.uniform(0.05, 1.0)))
            open_nodes.append(params[-1])
        rng.shuffle(params)
        node.params, node.has_const = params, has_const
        return spent
    # Fallback moves that are always legal (see module docstring).
    if slack == 0:
        node.params, node.has_const = [], True
        return 1
    node.params, node.has_const = [b.new_instance(px - rng.uniform(0.05, 1.0))], False
    open_nodes.append(node.params[0])
    return 1


def _plan_aggregate(b: _Builder, below: float) -> tuple[int, int] | None:
    """(group, new members) for a new aggregate below `below`, or None when no group can take one."""
    options = b.aggregate_options(below)
    if not options:
        return None
    g = b.rng.choice(options)
    members = len(b.group_members[g]) if g >= 0 else 0
    lo, hi = (0 if members else 1), min(MAX_AGGREGATE_NEW, b.n_items - members)
    return (g, b.rng.randint(lo, hi)) if hi >= lo else None


def _add_distractor(b: _Builder) -> None:
    """An unused instance parameter whose operands are any existing parameters (never feeds the question)."""
    rng = b.rng
    n_params, has_const = rng.choices(SIGNATURES, SIGNATURE_WEIGHTS)[0]
    n_params = min(n_params, len(b.nodes))
    if n_params == 0:
        has_const = True
    params = rng.sample(range(len(b.nodes)), n_params)
    top = max((b.nodes[j].pos for j in params), default=-1.0)
    idx = b.new_instance(top + rng.uniform(0.05, 1.0), necessary=False)
    b.nodes[idx].params, b.nodes[idx].has_const = params, has_const
