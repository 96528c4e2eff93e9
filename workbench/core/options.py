"""Frozen config dataclasses as command lines and files: one schema for the CLI, notebooks and YAML.

A field is declared with :func:`option` (help text, and the check that validates it); a dataclass
field nests another config (``train: TrainConfig``). From the same class this module builds

- ``--name`` options, nested ones dotted (``--train.steps 1200``), each an override of a base
  instance (a recipe), so a command line builds exactly what a notebook builds (:func:`add_arguments`,
  :func:`overrides_from_args`, :func:`apply_overrides`);
- plain dicts and back, for YAML files a user can edit (:func:`to_dict`, :func:`from_dict`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from typing import Any

from .checks import Check, excerpt

_MISSING = dataclasses.MISSING


def option(help: str, default: Any = _MISSING, *, check: Check | None = None, default_factory: Any = _MISSING) -> Any:
    """A dataclass field with its help text and the check that :func:`check_fields` runs."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"help": help, "check": check})


def _field_types(cls: type) -> dict[str, tuple[Any, bool]]:
    """``{name: (type, optional)}``: ``X | None`` becomes ``(X, True)``."""
    hints = typing.get_type_hints(cls)
    result = {}
    for f in dataclasses.fields(cls):
        hint, optional = hints[f.name], False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            hint = args[0] if len(args) == 1 else str
        result[f.name] = (hint, optional)
    return result


def _is_config(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _parse_value(hint: Any, optional: bool):
    """The argparse ``type`` of a field: ``none`` means None for optional fields, JSON for dicts."""
    base = typing.get_origin(hint) or hint

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        if base is dict:
            value = json.loads(text)
            if not isinstance(value, dict):
                raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
            return value
        if base is bool:
            if text.lower() not in ("true", "false"):
                raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
            return text.lower() == "true"
        if base in (int, float, str):
            try:
                return base(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {base.__name__}, got {text!r}") from None
        return text

    parse.__name__ = getattr(base, "__name__", "value")
    return parse


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", base: Any = None) -> None:
    """One ``--[prefix.]name`` option per field of ``cls`` (nested configs recurse, dotted).

    Options default to "not given" (``argparse.SUPPRESS``): what is given overrides a base instance,
    everything else keeps the base's value, which the help shows when ``base`` is given.
    """
    for f in dataclasses.fields(cls):
        hint, optional = _field_types(cls)[f.name]
        name = prefix + f.name
        value = getattr(base, f.name) if base is not None else None
        if _is_config(hint):
            add_arguments(parser, hint, prefix=name + ".", base=value)
            continue
        flag = "--" + name.replace("_", "-")
        help_text = f.metadata.get("help", "") + (" (none: unset)" if optional else "")
        if base is not None:
            help_text += f" [recipe: {value}]"
        kwargs = dict(dest=name, default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            parser.add_argument(flag, nargs="*", type=item, metavar=item.__name__.upper(), **kwargs)
        else:
            base_type = typing.get_origin(hint) or hint
            metavar = "JSON" if base_type is dict else getattr(base_type, "__name__", "VALUE").upper()
            parser.add_argument(flag, type=_parse_value(hint, optional), metavar=metavar, **kwargs)


def overrides_from_args(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The options given on the command line, as a nested dict for :func:`apply_overrides`."""
    given = vars(args)
    overrides: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint, _ = _field_types(cls)[f.name]
        name = prefix + f.name
        if _is_config(hint):
            nested = overrides_from_args(args, hint, prefix=name + ".")
            if nested:
                overrides[f.name] = nested
        elif name in given:
            value = given[name]
            overrides[f.name] = tuple(value) if isinstance(value, list) else value
    return overrides


def apply_overrides(instance: Any, overrides: dict[str, Any]) -> Any:
    """``instance`` with ``overrides`` applied; a nested dict overrides fields of a nested config.

    An unknown name is an error that lists the valid ones; the result is validated by its class.
    """
    names = {f.name for f in dataclasses.fields(instance)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{type(instance).__name__} has no option(s) {unknown}; valid: {sorted(names)}")
    changes = {}
    for name, value in overrides.items():
        current = getattr(instance, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = apply_overrides(current, value)
        changes[name] = value
    return dataclasses.replace(instance, **changes)


def to_dict(instance: Any) -> dict[str, Any]:
    """Plain values (tuples as lists, nested configs as dicts), ready for JSON or YAML."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(instance)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """The instance of ``cls`` that :func:`to_dict` wrote; missing fields take the class defaults."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping of options, got {type(data).__name__} {excerpt(data)}")
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ValueError(f"{cls.__name__} has no option(s) {excerpt(unknown)}; valid: {sorted(types_)}")
    values = {}
    for name, value in data.items():
        hint, optional = types_[name]
        if value is None and optional:
            pass
        elif _is_config(hint):
            if not isinstance(value, dict):
                raise ValueError(
                    f"{cls.__name__}.{name} is a section of options: expected a mapping, "
                    f"got {type(value).__name__} {excerpt(value)}"
                )
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{cls.__name__}.{name} must be a list, got {type(value).__name__} {excerpt(value)}")
            value = tuple(value)
        values[name] = value
    return cls(**values)


def to_flat_dict(instance: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.name: value}`` over nested configs: the names the command line uses."""
    flat = {}
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            flat.update(to_flat_dict(value, f"{prefix}{f.name}."))
        else:
            flat[prefix + f.name] = value
    return flat
