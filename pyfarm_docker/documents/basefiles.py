"""What a final base image already holds (``assemble --provided FILE``): each regular file's
size and sha256 and each symlink's target, read by the driver from the image's layers; the
assembler leaves out the farm files the base provides byte-identical."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError
from ._read import Fields, dump, load, parse

SCHEMA_VERSION = 1
_MAX_HOPS = 40  # the kernel's own limit on symlinks followed in one path
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class BaseFile:
    size: int
    sha256: str


@dataclass(frozen=True)
class BaseFiles:
    """The final base's filesystem as its layers leave it (whiteouts applied)."""

    image: str  # as the user named it (--final)
    digest: str  # sha256:<hex>: its repository digest, or its image id without one
    architecture: str = ""  # the image config's (amd64, arm64)
    libc: str = ""  # "glibc", "musl", or "" when it has no C library
    glibc: tuple[int, int] | None = None  # the version of its libc.so.6
    machine: str = ""  # ELF machine of its C library (x86_64, aarch64), "" without one
    files: Mapping[str, BaseFile] = field(default_factory=dict)  # absolute path -> file
    links: Mapping[str, str] = field(default_factory=dict)  # absolute path -> target

    @property
    def reference(self) -> str:
        """``IMAGE@DIGEST``: which image, and exactly which bytes of it."""
        return f"{_DIGEST.sub('', self.image)}@{self.digest}"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def resolve(self, path: str) -> str | None:
        """The regular file ``path`` names in the base, symlinks followed as the kernel
        would (absolute targets from the base's root); None when it names none."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/" + "/".join([*done, part])
            target = self.links.get(here)
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > _MAX_HOPS:
                return None
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        found = "/" + "/".join(done)
        return found if found in self.files else None

    def provides(self, path: str, size: int, sha256: str) -> str | None:
        """The base's regular file at ``path`` when it holds exactly these bytes."""
        found = self.resolve(path)
        if found is None:
            return None
        have = self.files[found]
        return found if (have.size, have.sha256) == (size, sha256) else None

    @classmethod
    def from_json(cls, f: Fields) -> BaseFiles:
        version = f.integer("schema_version")
        if version != SCHEMA_VERSION:
            raise UsageError(f"{f.where}: base files schema {version}, this tool reads "
                             f"{SCHEMA_VERSION}")
        links = f.object("links")
        glibc = f.data.get("glibc")
        if glibc is not None:
            pair = f.integers("glibc")
            if len(pair) != 2:
                raise UsageError(f"{f.where}: glibc must be [major, minor]")
            glibc = (pair[0], pair[1])
        return cls(
            image=f.text("image"), digest=f.text("digest"),
            architecture=f.text("architecture", ""), libc=f.text("libc", ""), glibc=glibc,
            machine=f.text("machine", ""),
            files={x.text("path"): BaseFile(x.integer("size"), x.text("sha256"))
                   for x in f.objects("files")},
            links={path: links.text(path) for path in links.data},
        )

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "image": self.image, "digest": self.digest,
                "architecture": self.architecture, "libc": self.libc,
                "glibc": list(self.glibc) if self.glibc else None, "machine": self.machine,
                "files": [{"path": p, "size": f.size, "sha256": f.sha256}
                          for p, f in sorted(self.files.items())],
                "links": dict(sorted(self.links.items()))}

    def dumps(self) -> str:
        return dump(self.to_json())

    @classmethod
    def loads(cls, data: bytes | str, where: str) -> BaseFiles:
        return cls.from_json(parse(data, where))

    @classmethod
    def read(cls, path: Path) -> BaseFiles:
        return cls.from_json(load(path, "base files document",
                                  "pyfarm-docker build writes it from the --final image"))
