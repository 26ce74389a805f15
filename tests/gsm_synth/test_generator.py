"""The generator: exact op, determinism, modes, arithmetic domains, graph API."""
import networkx as nx
import pytest

import gsm_synth
from gsm_synth import generate

CONTEXTS = ["zoo", "school", "movie", "symbolic"]


def necessary_edges(p):
    g = p.graph
    q = g.graph["question"]
    return g.subgraph(nx.ancestors(g, q) | {q}).number_of_edges()


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_every_op_is_hit_exactly_and_gold_verifies(context, mode):
    for op in range(1, 31):
        for index in range(2):
            p = generate(op, context, mode, seed=3, index=index)
            assert p.op == op == necessary_edges(p)
            v = gsm_synth.verify(p, p.solution)
            assert v.process_correct and v.answer_correct, (op, v.errors)
            assert all(e.kind == "extra_parameter" for e in v.errors)


@pytest.mark.parametrize("context", CONTEXTS)
def test_ops_up_to_40_and_plain_integers(context):
    for op in (31, 35, 40):
        for mode in ("forward", "reverse"):
            p = generate(op, context, mode, seed=1, index=op)
            assert necessary_edges(p) == op
            assert gsm_synth.verify(p, p.solution).process_correct
    for op in range(1, 25):
        for mode in ("forward", "reverse"):
            p = generate(op, context, mode, seed=5, index=op, modulus=None)
            values = [d["value"] for _, d in p.graph.nodes(data=True) if d["kind"] != "constant"]
            assert all(0 <= v <= 1000 for v in values)
            consts = [d["value"] for _, d in p.graph.nodes(data=True) if d["kind"] == "constant"]
            assert all(1 <= c <= 4 for c in consts)
            assert gsm_synth.verify(p, p.solution).process_correct


def test_mod_23_values_are_residues():
    p = generate(12, "zoo", seed=0, index=4)
    assert all(0 <= d["value"] < 23 for _, d in p.graph.nodes(data=True))
    assert 0 <= p.answer < 23


def test_same_seed_and_index_is_byte_identical_and_indices_differ():
    a = generate(8, "school", "reverse", seed=11, index=7)
    b = generate(8, "school", "reverse", seed=11, index=7)
    assert a.to_dict() == b.to_dict()
    ids = {generate(8, "school", seed=11, index=i).id for i in range(50)}
    assert len(ids) == 50
    assert generate(8, "school", seed=12, index=7).id != a.id


def test_graph_marks_question_unknown_constants_and_distractors():
    p = generate(9, "zoo", "reverse", seed=2, index=3, distractors=3)
    g = p.graph
    kinds = {d["kind"] for _, d in g.nodes(data=True)}
    assert kinds <= {"instance", "aggregate", "constant"} and "constant" in kinds
    assert g.nodes[g.graph["unknown"]]["unknown"]
    unused = [n for n, d in g.nodes(data=True) if d["kind"] != "constant" and not d["necessary"]]
    assert len(unused) == 3
    assert not any(nx.has_path(g, n, g.graph["question"]) for n in unused)
    assert nx.is_directed_acyclic_graph(g)


def test_aggregates_are_implicit_and_sum_every_member_mentioned():
    seen = 0
    for i in range(40):
        p = generate(10, "zoo", seed=4, index=i)
        g = p.graph
        for n, d in g.nodes(data=True):
            if d["kind"] != "aggregate":
                continue
            seen += 1
            place = n.split(" in ", 1)[1]
            members = {m for m, md in g.nodes(data=True) if md["kind"] == "instance" and m.endswith(" in " + place)}
            assert set(g.predecessors(n)) == members  # every mentioned animal of the place counts
            assert not any(s.startswith("The " + n) for s in p.statements)  # never stated
    assert seen > 10


def test_reverse_solution_solves_for_the_unknown():
    p = generate(7, "movie", "reverse", seed=0, index=2)
    g = p.graph
    assert p.answer == g.nodes[g.graph["unknown"]]["value"]
    assert "We know" in p.solution and "unknown" in p.problem


def test_shuffle_zero_keeps_topological_order():
    p = generate(10, "symbolic", seed=0, index=1, shuffle=0.0, distractors=0)
    g = p.graph
    position = {}
    for i, s in enumerate(p.statements):
        position[s.split(" = ")[0]] = i
    for u, v in g.edges():
        if g.nodes[u]["kind"] == "instance" and g.nodes[v]["kind"] == "instance":
            assert position[u] < position[v]


def test_to_dict_is_json_ready():
    import json
    row = generate(5, "zoo").to_dict()
    assert json.loads(json.dumps(row)) == row
    assert {"problem", "question", "solution", "answer", "op", "context", "mode", "id", "template_hash"} <= set(row)


@pytest.mark.parametrize("call, message", [
    (lambda: generate(0), "op must be a whole number from 1 to"),
    (lambda: generate(10_000), "op must be a whole number from 1 to"),
    (lambda: generate(5, "aquarium"), "unknown context 'aquarium' (available: movie, school, symbolic, zoo"),
    (lambda: generate(5, mode="sideways"), "unknown mode 'sideways'"),
    (lambda: generate(5, modulus=24), "modulus must be a prime"),
    (lambda: generate(5, shuffle=2), "shuffle must be a number between 0 and 1"),
    (lambda: generate(5, colour="red"), "unknown option 'colour'"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_ordered_symbols_and_reading_order():
    p = generate(9, "zoo", seed=0, index=5, symbols="ordered")
    defined = [s.split(" as ")[1].split(";")[0] for s in p.steps if s.startswith("Define")]
    assert defined == list("abcdefghijklmnopqrstuvwxyz")[:len(defined)]
    assert verify_ok(p)
    # gold steps follow the reading order: each step is the first ready statement of the problem text
    position = {s.split(" equals ")[0]: i for i, s in enumerate(p.statements)}
    g = p.graph
    done: set = set()
    for step in p.steps:
        name = step[len("Define "):].split(" as ")[0]
        ready = [n for n, d in g.nodes(data=True) if d["kind"] != "constant" and d["necessary"] and n not in done
                 and all(q in done or g.nodes[q]["kind"] == "constant" for q in g.predecessors(n))]
        aggregates = [n for n in ready if g.nodes[n]["kind"] == "aggregate"]
        expected = aggregates[0] if aggregates else min(ready, key=lambda n: position["The number of " + n])
        assert name == expected if not aggregates else g.nodes[name]["kind"] == "aggregate"
        done.add(name)


def test_shuffled_versions_share_id_template_and_pool():
    a = generate(9, "school", seed=0, index=2, shuffle=0.0)
    b = generate(9, "school", seed=0, index=2, shuffle=1.0)
    assert a.problem != b.problem
    assert (a.id, a.template_hash, a.pool) == (b.id, b.template_hash, b.pool)


def verify_ok(p):
    return gsm_synth.verify(p, p.solution).process_correct
