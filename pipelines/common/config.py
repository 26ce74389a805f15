"""Typed configs: dataclass schemas read from YAML layers and key=value command lines (OmegaConf).

Precedence everywhere: dataclass defaults < YAML file < command-line dotlist.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from gsm_synth.suggest import did_you_mean


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key."""


def parse_dotlist(schema, argv: list[str], base=None):
    """Merge defaults (schema) < base (a dict/YAML config) < argv dotlist into a dataclass instance."""
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not of the form key=value")
    structured = OmegaConf.structured(schema)
    try:
        merged = structured
        if base is not None:  # a config file gives whole maps: they replace the defaults' maps
            layer = OmegaConf.create(_str_keys(OmegaConf.to_container(OmegaConf.create(base))))
            merged = OmegaConf.merge(_clear_maps(merged, layer), layer)
        # on the command line, `splits={id: 2-4}` replaces a map while `splits.id=2-4` edits one entry
        merged = merged.copy()
        for arg in argv:
            key, value = arg.split("=", 1)
            if value.lstrip().startswith("{") and OmegaConf.select(merged, key, default=None) is not None \
                    and OmegaConf.is_dict(OmegaConf.select(merged, key)):
                OmegaConf.update(merged, key, {}, merge=False)
        cli = _str_keys(OmegaConf.to_container(OmegaConf.from_dotlist(argv)))
        merged = OmegaConf.merge(merged, OmegaConf.create(cli))
        return OmegaConf.to_object(merged)
    except ConfigKeyError as e:
        key = e.full_key or "?"
        raise ConfigError(f"unknown key '{key}'{_closest(structured, key)}") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"bad value for '{key}': {str(e).splitlines()[0]}") from None


def read_yaml(path, what: str) -> dict:
    """A YAML mapping from `path` (safe loader; an empty file is {}), or a one-line ConfigError naming
    `what` and the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror or e}") from None
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


def _clear_maps(cfg, layer):
    """A copy of cfg in which every map (a dict-typed field such as mixture.ops, not a nested config)
    that `layer` sets is emptied first: `mixture.ops={7-10: 1}` then means exactly that, instead of
    being added to the default bins as a plain OmegaConf merge would do."""
    cfg = cfg.copy()

    def walk(node, sub):
        for key in sub:
            if key not in node or not OmegaConf.is_dict(sub[key]) or not OmegaConf.is_dict(node[key]):
                continue
            target = node._get_node(key)
            if target._metadata.object_type in (None, dict):
                node[key] = {}
            else:
                walk(node[key], sub[key])

    walk(cfg, layer)
    return cfg


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
