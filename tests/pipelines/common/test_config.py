"""One rule for how a config layer meets the one below, the same in a YAML layer and on the command line."""
from dataclasses import dataclass, field

import pytest

from pipelines.common.config import ConfigError, parse_dotlist, table


@dataclass
class Part:
    weight: float = 1.0
    tags: dict[str, str] = table({"a": "x"})


@dataclass
class Schema:
    bins: dict[str, float] = table({"2-4": 0.5, "5-7": 0.5})  # a table: its keys are data
    named: dict[str, int] = field(default_factory=lambda: {"one": 1, "two": 2})  # named values
    parts: dict[str, Part] = field(default_factory=lambda: {"p": Part()})  # a map of configs
    part: Part = field(default_factory=Part)


def yaml_and_cli(layer: dict, argv: list[str]):
    return parse_dotlist(Schema, [], base=layer), parse_dotlist(Schema, argv)


def test_a_table_is_replaced_whole_by_a_yaml_layer_and_by_the_command_line():
    from_yaml, from_cli = yaml_and_cli({"bins": {"9": 1.0}}, ["bins={9: 1.0}"])
    assert from_yaml.bins == from_cli.bins == {"9": 1.0}  # no stale default bin; int key read as "9"
    assert parse_dotlist(Schema, ["bins.2-4=0.1"]).bins == {"2-4": 0.1, "5-7": 0.5}  # one entry edited


def test_other_maps_merge_key_by_key_in_both():
    from_yaml, from_cli = yaml_and_cli({"named": {"three": 3}}, ["named={three: 3}"])
    assert from_yaml.named == from_cli.named == {"one": 1, "two": 2, "three": 3}


def test_a_map_of_configs_merges_entry_by_entry_and_field_by_field_in_both():
    from_yaml, from_cli = yaml_and_cli({"parts": {"p": {"weight": 2.0}, "q": {}}},
                                       ["parts={p: {weight: 2.0}, q: {}}"])
    for cfg in (from_yaml, from_cli):
        assert cfg.parts["p"] == Part(weight=2.0) and cfg.parts["q"] == Part()
    assert parse_dotlist(Schema, ["parts.p.tags={b: y}"]).parts["p"].tags == {"b": "y"}  # a table inside
    assert parse_dotlist(Schema, ["parts.p=null"]).parts == {}  # null removes an entry
    assert parse_dotlist(Schema, [], base={"parts": {"p": None, "q": {}}}).parts == {"q": Part()}


def test_layers_stack_by_the_same_rule():
    base = {"bins": {"9": 1.0}, "part": {"tags": {"b": "y"}}}
    cfg = parse_dotlist(Schema, ["bins.10=1.0", "part.weight=3"], base=base)
    assert cfg.bins == {"9": 1.0, "10": 1.0} and cfg.part == Part(weight=3.0, tags={"b": "y"})


def test_an_unknown_key_is_one_line_with_the_closest_one():
    with pytest.raises(ConfigError, match=r"unknown key 'part.weigth' \(did you mean 'part.weight'\?\)"):
        parse_dotlist(Schema, ["part.weigth=2"])
    with pytest.raises(ConfigError, match="unknown key"):
        parse_dotlist(Schema, [], base={"parts": {"p": {"weigth": 2}}})
