"""Typed configs: dataclass schemas read from YAML layers and key=value command lines (OmegaConf).

Precedence everywhere: dataclass defaults < YAML layers < command-line dotlist. One rule says how a
layer meets what is below it, the same for a YAML file and a command line: a nested config or a map of
configs (a study's stages) is merged field by field; a *table* (a map whose keys are data: op ranges,
contexts, split names, a stage's overrides; declared with `table()` in the schema) is replaced whole by
a layer that sets it, so no stale entry survives; any other map (named values, model overrides) is
merged key by key. On the command line `mixture.ops={7-10: 1}` sets the table, `splits.id=2-4` one entry;
an entry of a map of configs set to null is removed (`stages.mid=null`).
"""
from __future__ import annotations

import copy
import dataclasses
import re
import typing
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, InterpolationKeyError, OmegaConfBaseException

from gsm_synth.suggest import did_you_mean


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key."""


def table(default: dict | None = None):
    """A dataclass field holding a table: replaced whole by any layer that sets it (see the module doc)."""
    default = dict(default or {})
    return dataclasses.field(default_factory=lambda: dict(default), metadata={"table": True})


@dataclasses.dataclass(frozen=True)
class _Entries:
    """The schema of a map of configs: every key holds one `cls`."""
    cls: type


def _child(schema, key: str):
    """(what `key` of `schema` holds, its schema): "config", "table", "map" or "value". An untyped
    schema (None) holds plain maps all the way down."""
    if isinstance(schema, _Entries):
        return "config", schema.cls
    if schema is None or not dataclasses.is_dataclass(schema):
        return "map", None
    f = next((f for f in dataclasses.fields(schema) if f.name == key), None)
    if f is None:
        return "value", None  # an unknown key: the schema check names it later
    if f.metadata.get("table"):
        return "table", None
    hint = _unwrap_optional(typing.get_type_hints(schema).get(key))
    if dataclasses.is_dataclass(hint):
        return "config", hint
    if typing.get_origin(hint) is dict:
        entry = typing.get_args(hint)[1]
        return ("config", _Entries(entry)) if dataclasses.is_dataclass(entry) else ("map", None)
    return "value", None


def overlay(schema, base: dict, layer: dict) -> dict:
    """`layer` over `base` (plain dicts shaped like `schema`) by the module's one rule."""
    out = copy.deepcopy(base)
    for key, value in layer.items():
        kind, sub = _child(schema, key)
        if value is None and isinstance(schema, _Entries):  # `stages.mid=null` removes that stage
            out.pop(key, None)
            continue
        if kind in ("table", "value") or not (isinstance(value, dict) and isinstance(out.get(key), dict)):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = overlay(sub, out[key], value)
    return out


def assign(schema, plain: dict, key: str, value) -> dict:
    """plain with the command line's `key=value` applied: the dotted key's last part is set by `overlay`
    at its own level, so `mixture.ops={...}` replaces the table and `splits.id=2-4` edits one entry."""
    *path, last = key.split(".")
    out = copy.deepcopy(plain)
    node, node_schema = out, schema
    for depth, part in enumerate(path):
        kind, node_schema = _child(node_schema, part)
        if isinstance(node.get(part), str) and "${" in node[part]:  # editing inside ${vars.x}: its value
            resolved = OmegaConf.select(OmegaConf.create(out), ".".join(path[:depth + 1]))
            node[part] = OmegaConf.to_container(resolved) if OmegaConf.is_dict(resolved) else {}
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    kind, section = _child(node_schema, last)
    if kind == "config" and dataclasses.is_dataclass(section) and not isinstance(value, (dict, type(None))):
        raise ConfigError(f"bad value for '{key}': expected {_expected(schema, key)}, got '{value}'")
    merged = overlay(node_schema, node, {last: value})
    node.clear()
    node.update(merged)
    return out


def parse_dotlist(schema, argv: list[str], base=None):
    """defaults (schema) < base (a dict or YAML config) < argv's key=value list, as a dataclass instance."""
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not of the form key=value")
        key, _, value = arg.partition("=")
        if not value.strip():
            raise ConfigError(f"{key}= is empty: give it a value (null for none, [] for an empty list)")
    structured = OmegaConf.structured(schema)
    try:
        plain = OmegaConf.to_container(structured)
        if base is not None:
            plain = overlay(schema, plain, _str_keys(OmegaConf.to_container(OmegaConf.create(base))))
        for arg in argv:
            key, _ = arg.split("=", 1)
            value = _str_keys(OmegaConf.to_container(OmegaConf.from_dotlist([arg])))
            for part in key.split("."):
                value = value[part]
            plain = assign(schema, plain, key, value)
        merged = OmegaConf.merge(structured, OmegaConf.create(plain))
        _exactly(merged, plain)
        return OmegaConf.to_object(merged)
    except ConfigKeyError as e:
        key = e.full_key or "?"
        raise ConfigError(f"unknown key '{key}'{_closest(structured, key)}") from None
    except InterpolationKeyError as e:
        key = getattr(e, "full_key", None) or "?"
        missing = re.search(r"key '([^']+)'", str(e))
        ref = f"${{{missing.group(1)}}}" if missing else "another key"
        raise ConfigError(f"'{key}' refers to {ref}, which is not set") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        expected = _expected(schema, key)
        got = next((a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] == key), None)
        detail = (f"expected {expected}" + (f", got '{got}'" if got is not None else "") if expected
                  else str(e).splitlines()[0])
        raise ConfigError(f"bad value for '{key}': {detail}") from None


def _unwrap_optional(hint):
    """X for Optional[X]; any other type as it is."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint


def _expected(schema, key: str) -> str:
    """What the schema wants at `key`, in words ('' when the key is not a typed field)."""
    node = schema
    for part in key.split("."):
        if isinstance(node, _Entries):
            node = node.cls
            continue
        if not dataclasses.is_dataclass(node):
            return ""
        hint = typing.get_type_hints(node).get(part)
        if hint is None:
            return ""
        hint = _unwrap_optional(hint)
        origin = typing.get_origin(hint)
        node = _Entries(typing.get_args(hint)[1]) if origin is dict and dataclasses.is_dataclass(
            typing.get_args(hint)[1]) else hint
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    if node in words:
        return words[node]
    origin = typing.get_origin(node)
    if origin is list:
        return "a list, e.g. [0, 1]"
    if origin is dict or isinstance(node, _Entries):
        return "a map, e.g. {name: value}"
    return "a section: a map of its fields" if dataclasses.is_dataclass(node) else ""


_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")


def refuse_resolvers(layer, source: str, allowed: tuple[str, ...] = ()) -> None:
    """A file's values may interpolate other keys (`${vars.x}`) and the resolvers in `allowed`, nothing
    else: `${oc.env:NAME}` in a shared file would copy a secret into config.yaml and the report. The
    command line may use any resolver (the user typed it)."""
    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")
        elif isinstance(node, str):
            for name in _RESOLVER.findall(node):
                if name not in allowed:
                    raise ConfigError(f"{source}: {where} uses the resolver '{name}', which reads from outside the "
                                      f"file; files may use only {', '.join(allowed) or 'plain ${key} references'}"
                                      " (set the value on the command line instead)")

    walk(layer, "")


def read_yaml(path, what: str) -> dict:
    """A YAML mapping from `path` (safe loader; an empty file is {}), or a one-line ConfigError naming
    `what` and the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file (not UTF-8)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of keys to values")
    return data


def _str_keys(node):
    """Every map of the schema is keyed by strings, but YAML reads `{5: 0.5}` with an int key: an op bin
    written as a bare number means the same as "5"."""
    if isinstance(node, dict):
        return {str(k) if isinstance(k, (int, float)) and not isinstance(k, bool) else k: _str_keys(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_str_keys(v) for v in node]
    return node


def _exactly(node, plain: dict) -> None:
    """Make the merged config's maps hold exactly `plain`'s entries: an OmegaConf merge adds a layer's
    entries to the defaults' (a new stage's default tables too), and the rule says the layer's stand alone."""
    for key, value in plain.items():
        if not isinstance(value, dict) or key not in node or not OmegaConf.is_dict(node._get_node(key)):
            continue
        child = node._get_node(key)
        if child._metadata.object_type in (None, dict):
            for extra in [k for k in child if k not in value]:
                del child[extra]
        _exactly(child, value)


def _closest(cfg, key: str) -> str:
    """' (did you mean ...?)' with the nearest valid key at the same level."""
    parts = key.split(".")
    node = cfg
    for p in parts[:-1]:
        if p not in node:
            break
        node = node[p]
    try:
        options = list(node.keys())
    except Exception:
        return ""
    return did_you_mean(parts[-1], options, prefix=".".join(parts[:-1] + [""]) if len(parts) > 1 else "")


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
