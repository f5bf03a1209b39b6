"""Typed daemon configuration from a YAML file plus ``DXFLOW_<SECTION>_<KEY>`` environment overrides.

Each daemon describes its config as a frozen dataclass; nested sections are dataclasses too. Unknown keys
are an error naming the key; values are checked against the field's type.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dxflow.protocol.errors import ConfigError

__all__ = ["load_config"]

T = TypeVar("T")


def _read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.expanduser().read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a YAML mapping")
    return data


def _env_overrides(section: str, names: set[str], env: Mapping[str, str]) -> dict[str, Any]:
    prefix = f"DXFLOW_{section.upper()}_"
    out: dict[str, Any] = {}
    for name in names:
        raw = env.get(prefix + name.upper())
        if raw is not None:
            try:
                out[name] = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError:
                out[name] = raw
    return out


def _convert(value: Any, hint: Any, where: str, base: Path | None = None) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where, base)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where!r} must be a mapping")
        return _build(hint, value, where + ".", base)  # type: ignore[arg-type]
    if hint is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"config key {where!r} must be a path")
        path = Path(value).expanduser()
        return path if path.is_absolute() or base is None else base / path
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {where!r} must be true or false")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key {where!r} must be a number")
        if hint is int and value != int(value):
            raise ConfigError(f"config key {where!r} must be a whole number")
        return hint(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"config key {where!r} must be a string")
        return str(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {where!r} must be a list")
        return tuple(_convert(v, typing.get_args(hint)[0], where) for v in value)
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where!r} must be a mapping")
        kt, vt = typing.get_args(hint)
        return types.MappingProxyType({_convert(k, kt, where): _convert(v, vt, where) for k, v in value.items()})
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str = "", base: Path | None = None) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(f"unknown config key {prefix}{key!r}; known keys: {', '.join(sorted(fields))}")
    kwargs = {key: _convert(value, hints[key], prefix + key, base) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def load_config(
    cls: type[T], section: str, path: Path | None = None, env: Mapping[str, str] | None = None, **override: Any
) -> T:
    """Build ``cls`` from YAML at ``path``, then env ``DXFLOW_<SECTION>_<KEY>``, then ``override``.

    Relative paths are taken relative to the config file's folder when they come from the file, else to the current
    directory.
    """
    data = _read_yaml(path)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    later = _env_overrides(section, names, os.environ if env is None else env)
    later.update({k: v for k, v in override.items() if v is not None})
    data.update(_from_cwd(cls, later))
    base = path.expanduser().resolve().parent if path is not None else Path.cwd()
    return _build(cls, data, base=base)


def _from_cwd(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with relative top-level paths made absolute against the current directory."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for key, value in values.items():
        hint = hints.get(key)
        is_path = hint is Path or Path in typing.get_args(hint)
        if is_path and isinstance(value, str | Path) and not Path(value).expanduser().is_absolute():
            out[key] = Path.cwd() / value
    return out
