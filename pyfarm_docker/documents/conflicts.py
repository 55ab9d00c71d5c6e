"""Soname conflicts: different files that share a soname, of which glibc loads only one
per process (written into the manifest, printed by assemble and report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ._read import Fields


@dataclass(frozen=True)
class SonameConflict:
    soname: str
    files: Mapping[str, tuple[str, ...]]  # each file -> the objects that need it

    @classmethod
    def from_json(cls, f: Fields) -> SonameConflict:
        users = f.object("files")
        return cls(f.text("soname"), {k: users.texts(k) for k in sorted(users.data)})

    def to_json(self) -> dict[str, Any]:
        return {"soname": self.soname, "files": {k: list(v) for k, v in self.files.items()}}
