"""Contexts are data: a user YAML adds one with no code change; a malformed one fails on one line."""
import copy

import pytest
import yaml

import gsm_synth
from gsm_synth import ContextError, generate, verify
from gsm_synth import context as context_module
from gsm_synth.context import BUILTIN_DIR, parse_context

LAB = {
    "name": "lab",
    "description": "test tubes on lab benches",
    "groups": {"benches": ["North Bench", "South Bench", "East Bench", "West Bench"]},
    "items": {"tubes": ["red tube", "blue tube", "green tube", "clear tube", "amber tube"]},
    "names": {"instance": "{item} on {group}", "aggregate": "tubes on {group}"},
    "refs": {"instance": "the count of {item} on {group}", "aggregate": "the count of all tubes on {group}"},
    "questions": {"instance": "How many {item} are on {group}?", "aggregate": "How many tubes are on {group}?"},
    "statements": {k: v for k, v in yaml.safe_load((BUILTIN_DIR / "zoo.yaml").read_text())["statements"].items()},
}


@pytest.fixture
def restore_context_dirs():
    saved = list(context_module._user_dirs)
    yield
    context_module._user_dirs[:] = saved
    context_module._index.cache_clear()


def test_user_context_by_path_and_by_registered_directory(tmp_path, restore_context_dirs):
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(LAB))
    p = generate(9, str(path), "reverse", seed=0, index=1)
    assert p.context == "lab" and "Bench" in p.problem
    assert verify(p, p.solution).process_correct
    gsm_synth.register_context_dir(tmp_path)
    assert "lab" in gsm_synth.list_contexts()
    for op in range(1, 21):
        q = generate(op, "lab", seed=2, index=op)
        assert verify(q, q.solution).process_correct
    assert "Bench" in " ".join(gsm_synth.vocabulary(["lab"]))
    with pytest.raises(ValueError, match="from 1 to 20 for context 'lab'"):
        generate(21, "lab")


def broken(path: str, value):
    raw = copy.deepcopy(LAB)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize("path, value, field", [
    ("statements.add", "{T} equals {A} plus something.", "statements.add"),
    ("statements.copy", KeyError, "statements.copy"),
    ("statements.bogus", "{T}.", "statements.bogus"),
    ("groups", [], "groups"),
    ("items.tubes", ["red tube", "red tube"], "items.tubes"),
    ("items.tubes", ["tube; drop"], "items.tubes"),
    ("names.instance", "{item}", "names.instance"),
    ("name", "", "name"),
    ("colour", "red", "colour"),
])
def test_malformed_context_names_the_field(path, value, field):
    with pytest.raises(ContextError) as e:
        parse_context(broken(path, value), source="lab.yaml")
    message = str(e.value)
    assert f"field '{field}'" in message and "lab.yaml" in message and "\n" not in message


def test_invalid_yaml_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ContextError) as e:
        generate(3, str(bad))
    assert "not valid YAML" in str(e.value) and "\n" not in str(e.value)


def test_vocabulary_covers_every_word_written():
    from gsm_synth.words import split_words
    vocab = set(gsm_synth.vocabulary())
    for context in gsm_synth.list_contexts():
        for mode in ("forward", "reverse"):
            for op in (1, 5, 12):
                p = generate(op, context, mode, seed=1, index=op)
                words = split_words(p.problem + " " + p.question + " " + p.solution)
                assert set(words) <= vocab, set(words) - vocab
