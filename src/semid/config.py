"""Typed configs: YAML files of overrides plus ``key=value`` pairs, validated by pydantic.

Every stage has one config class (a subclass of :class:`StageConfig`). Unknown keys and bad
values raise :class:`~semid.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from semid.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


class StageConfig(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[x, y]"]`` into a nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {pair!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r} sets a key inside the scalar {part!r}")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"unknown config key '{key}'"
    return f"bad value for '{key}': {err['msg']} (got {err.get('input')!r})"


def build(cls: type[C], values: dict[str, Any]) -> C:
    """Validate ``values`` into ``cls``; errors name every offending key."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        valid = ", ".join(sorted(cls.model_fields))
        raise ConfigError("; ".join(lines) + f". Valid keys of {cls.__name__}: {valid}") from None


def load(cls: type[C], config_file: Path | None = None, overrides: list[str] | None = None,
         section: str | None = None, **fixed: Any) -> C:
    """Load ``cls`` from an optional YAML file, ``key=value`` overrides and CLI options.

    ``section`` picks a sub-mapping of the YAML file (a run config holds one per stage); a file
    without that section is read whole. ``fixed`` values (CLI options) win when not None.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_yaml(config_file)
        values = data.get(section, data) if section and isinstance(data.get(section), dict) else data
    values = deep_merge(values, parse_overrides(overrides or []))
    values = deep_merge(values, {k: v for k, v in fixed.items() if v is not None})
    return build(cls, values)


def describe_fields(cls: type[StageConfig]) -> list[tuple[str, str, str]]:
    """(name, default, description) for each field: used by ``semid config`` and the docs."""
    rows = []
    for name, field in cls.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((name, default, field.description or ""))
    return rows
