"""Resolve DT_NEEDED names the way glibc's loader does, from where the files live now.

Order (ld.so(8)): DT_RPATH of the object and of its loaders (only when the
object has no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache,
then the default directories. Read-only: nothing here changes a file.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import elf

DEFAULT_DIRS = (
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
    "/lib64", "/usr/lib64", "/lib", "/usr/lib",
)
# Loaded before anything else and shared by every object; never moved or patched.
LOADER_NAMES = frozenset({"ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux-aarch64.so.1"})
_CACHE_LINE = re.compile(r"^\s+(\S+) \(([^)]*)\) => (\S+)$")


def read_ld_cache() -> dict[str, list[str]]:
    """soname -> paths in /etc/ld.so.cache (64-bit entries), via ``ldconfig -p``."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return {}
    cache: dict[str, list[str]] = {}
    for line in out.splitlines():
        match = _CACHE_LINE.match(line)
        if match and "64" in match.group(2):
            cache.setdefault(match.group(1), []).append(match.group(3))
    return cache


def expand(entry: str, origin: str) -> str:
    """Expand $ORIGIN (the directory the object was opened from) in a search path entry."""
    return entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)


@dataclass
class Resolver:
    """Finds the file the loader would map for a needed name, given who asks."""

    cache: dict[str, list[str]] = field(default_factory=read_ld_cache)
    ld_library_path: tuple[str, ...] = ()
    default_dirs: tuple[str, ...] = DEFAULT_DIRS

    def search_dirs(self, obj: elf.ElfInfo, loaders: tuple[elf.ElfInfo, ...]) -> list[str]:
        dirs: list[str] = []
        if not obj.runpath:
            for o in (obj, *loaders):
                dirs += [expand(e, os.path.dirname(o.path)) for e in o.rpath]
        dirs += self.ld_library_path
        dirs += [expand(e, os.path.dirname(obj.path)) for e in obj.runpath]
        return dirs

    def resolve(self, name: str, obj: elf.ElfInfo,
                loaders: tuple[elf.ElfInfo, ...] = ()) -> str | None:
        """The path the loader would open for ``name`` needed by ``obj``, or None."""
        if "/" in name:
            return name if self._fits(name, obj) else None
        for directory in self.search_dirs(obj, loaders):
            candidate = os.path.join(directory, name)
            if self._fits(candidate, obj):
                return candidate
        for candidate in self.cache.get(name, []):
            if self._fits(candidate, obj):
                return candidate
        for directory in self.default_dirs:
            candidate = os.path.join(directory, name)
            if self._fits(candidate, obj):
                return candidate
        return None

    @staticmethod
    def _fits(candidate: str, obj: elf.ElfInfo) -> bool:
        info = elf.try_read(candidate) if os.path.isfile(candidate) else None
        return info is not None and info.compatible(obj)


@dataclass(frozen=True)
class Node:
    """One object in the dependency graph and what each of its needed names resolved to."""

    path: str
    deps: dict[str, str | None]


def closure(roots: list[str], resolver: Resolver,
            loaders_of: dict[str, tuple[elf.ElfInfo, ...]] | None = None) -> dict[str, Node]:
    """Walk DT_NEEDED from ``roots`` (real paths), breadth first; keys are real paths."""
    graph: dict[str, Node] = {}
    todo: list[tuple[str, tuple[elf.ElfInfo, ...]]] = [
        (r, (loaders_of or {}).get(r, ())) for r in roots
    ]
    while todo:
        path, loaders = todo.pop(0)
        real = os.path.realpath(path)
        info = elf.read(path)
        node = graph.setdefault(real, Node(real, {}))
        # A library without RPATH finds its own deps through its loader's DT_RPATH
        # (scipy.libs' libgfortran does): names still missing are tried again from each
        # new loader chain that reaches it.
        for name in info.needed:
            if name in LOADER_NAMES or node.deps.get(name):
                continue
            found = resolver.resolve(name, info, loaders)
            node.deps[name] = os.path.realpath(found) if found else None
            if found:
                todo.append((found, (info, *loaders)))
    return graph


def is_system_path(path: str) -> bool:
    """True for libraries the builder's loader finds through its cache or default dirs."""
    return str(Path(path).parent) in DEFAULT_DIRS
