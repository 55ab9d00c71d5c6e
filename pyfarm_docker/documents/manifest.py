"""The farm's manifest (``PREFIX/.pyfarm/manifest.json``): every file with its size,
sha256, origin and layer; written by the assembler, read by report and the tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ._read import Fields, dump, load, parse
from .conflicts import SonameConflict

SCHEMA_VERSION = 1


def file_sha256(path: Path) -> str:
    """A file's sha256, as the manifest records it (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileRecord:
    path: str  # absolute, in the image
    size: int
    sha256: str
    origin: str
    layer: str
    reason: str  # why it ships: traced, closure of X, essential, metadata, complete, app
    provided_by: str = ""  # IMAGE@DIGEST: the final base holds it (layer "base"), not the farm

    @classmethod
    def from_json(cls, f: Fields) -> FileRecord:
        return cls(f.text("path"), f.integer("size"), f.text("sha256"), f.text("origin"),
                   f.text("layer"), f.text("reason", "unknown"), f.text("provided_by", ""))

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if not self.provided_by:
            del data["provided_by"]
        return data


@dataclass(frozen=True)
class Manifest:
    prefix: str
    python: str
    env: tuple[tuple[str, str], ...]
    files: tuple[FileRecord, ...]
    links: tuple[str, ...]
    warnings: tuple[str, ...]
    conflicts: tuple[SonameConflict, ...]
    prunable: tuple[str, ...]
    # Files the farm needs that the final base provides byte-identical, so the farm
    # leaves them out (``files`` lists only what the farm itself holds).
    provided: tuple[FileRecord, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def provided_bytes(self) -> int:
        return sum(f.size for f in self.provided)

    @classmethod
    def from_json(cls, f: Fields) -> Manifest:
        version = f.integer("schema_version")
        if version != SCHEMA_VERSION:
            raise UsageError(f"{f.where}: manifest schema {version}, this tool reads "
                             f"{SCHEMA_VERSION}")
        env = f.object("env")
        return cls(
            prefix=f.text("prefix"), python=f.text("python"),
            env=tuple(sorted((k, env.text(k)) for k in env.data)),
            files=tuple(FileRecord.from_json(x) for x in f.objects("files")),
            links=f.texts("links", ()), warnings=f.texts("warnings", ()),
            conflicts=tuple(SonameConflict.from_json(x) for x in f.objects("conflicts", False)),
            prunable=f.texts("prunable", ()),
            provided=tuple(FileRecord.from_json(x) for x in f.objects("provided", False)),
        )

    def to_json(self) -> dict[str, Any]:
        data = {"schema_version": SCHEMA_VERSION, "prefix": self.prefix, "python": self.python,
                "env": dict(self.env), "files": [r.to_json() for r in self.files],
                "links": list(self.links), "warnings": list(self.warnings),
                "conflicts": [c.to_json() for c in self.conflicts],
                "prunable": list(self.prunable)}
        if self.provided:  # only then: a farm on scratch keeps the manifest it always had
            data["provided"] = [r.to_json() for r in self.provided]
        return data

    def dumps(self) -> str:
        return dump(self.to_json())

    @classmethod
    def loads(cls, data: bytes | str, where: str) -> Manifest:
        return cls.from_json(parse(data, where))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.from_json(load(path, "manifest"))
