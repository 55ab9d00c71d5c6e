"""Type-checked reading of JSON documents: a malformed one is a one-line UsageError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError


class Fields:
    """One JSON object; each getter checks the type of the value it returns."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object, not {_kind(data)}")
        self.data: Mapping[str, Any] = data
        self.where = where

    def _get(self, key: str, kind: type, default: Any) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                raise UsageError(f"{self.where}: missing key {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise UsageError(f"{self.where}: {key} must be {_NAMES[kind]}, not {_kind(value)}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value: str = self._get(key, str, _REQUIRED if default is None else default)
        return value

    def opt_text(self, key: str) -> str | None:
        value: str | None = self._get(key, str, None)
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value: int = self._get(key, int, _REQUIRED if default is None else default)
        return value

    def opt_integer(self, key: str) -> int | None:
        value: int | None = self._get(key, int, None)
        return value

    def flag(self, key: str, default: bool | None = None) -> bool:
        value: bool = self._get(key, bool, _REQUIRED if default is None else default)
        return value

    def texts(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self._get(key, list, _REQUIRED if default is None else list(default))
        if not all(isinstance(v, str) for v in value):
            raise UsageError(f"{self.where}: {key} must be a list of strings")
        return tuple(value)

    def integers(self, key: str) -> tuple[int, ...]:
        value = self._get(key, list, _REQUIRED)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise UsageError(f"{self.where}: {key} must be a list of integers")
        return tuple(value)

    def object(self, key: str) -> Fields:
        return Fields(self._get(key, dict, _REQUIRED), f"{self.where}: {key}")

    def objects(self, key: str, required: bool = True) -> list[Fields]:
        value = self._get(key, list, _REQUIRED if required else [])
        return [Fields(v, f"{self.where}: {key}[{n}]") for n, v in enumerate(value)]

    def raw(self, key: str) -> Any:
        """A value of any JSON type (probe bodies), or None."""
        return self.data.get(key)

    def only(self, known: frozenset[str] | set[str]) -> Fields:
        """Refuse keys outside ``known``; returns itself."""
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            raise UsageError(f"{self.where}: unknown key {unknown[0]!r}",
                             f"known keys: {', '.join(sorted(known))}")
        return self


_REQUIRED = object()
_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
          int: "an integer", float: "a number", type(None): "null"}


def _kind(value: object) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def load(path: Path, what: str, hint: str = "") -> Fields:
    """A JSON object from ``path``; missing, unreadable or non-JSON files are UsageErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no {what} at {path}", hint) from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a {what}", hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}", hint) from None
    return Fields(data, str(path))


def parse(data: bytes | str, where: str) -> Fields:
    """A JSON object from text already in hand (a label, a file read from an image)."""
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from None
    return Fields(parsed, where)


def dump(data: object) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"
