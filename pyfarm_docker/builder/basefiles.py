"""Farm files the final base image already holds (``assemble --provided FILE``): left out of
the farm, and used from the base where they are.

Two kinds of files can come from the base:

- files at fixed paths outside the prefix (the loader at its PT_INTERP path, /etc files,
  the CA bundle, zoneinfo, gconv modules, data files): when the base holds the same bytes
  at that path (its symlinks followed), the farm does not write them. A symlink the base
  holds with the same target is left out too.
- ELF objects of ``reals/r``. Every link that pointed at the farm's copy (each dependent
  object's ``symlinks/<obj>/<needed>``, ``ld_library_paths/l``, the tree) points at the
  base's file instead. As the base's file cannot be patched, an object qualifies only when
  the loader finds exactly its traced dependencies without an RPATH of its own:

  1. the base holds a byte-identical file at the object's builder path (either side of
     the builder's /usr merge, the base's symlinks followed);
  2. the object has no DT_RPATH or DT_RUNPATH of its own;
  3. every DT_NEEDED of it (the loader aside) resolved in the builder to an object that
     also qualifies (computed to a fixed point: glibc's objects first, then what needs
     only them, and so on);
  4. no name it is known by (its soname, a needed name that reaches it, a name in
     ``ld_library_paths/l``) reaches another file in the farm.

  Then whichever way the loader finds a dependency of it (already loaded under that
  name, through a loader's RPATH into its ``symlinks/`` directory, through the farm's
  ld.so.cache, or in the base's default directories), it is the file the run was traced
  with; and a base library that differs from the traced one is never used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..documents.basefiles import BaseFiles
from ..documents.manifest import FileRecord, Manifest
from . import elf
from .native import NativePlan
from .plan import Planner

LAYER = "base"  # the manifest's layer of what the base provides


@dataclass(frozen=True)
class ProvidedFile:
    """A farm file the base holds: where in the image, and the builder's identical copy."""

    path: str  # absolute, in the image
    source: str  # the builder's file with the same bytes
    size: int
    sha256: str
    origin: str
    reason: str
    elf: bool  # an object of reals/r (ldconfig must see it: see ``standing_in``)


@dataclass(frozen=True)
class BaseUse:
    reference: str  # IMAGE@DIGEST
    files: tuple[ProvidedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@functools.lru_cache(maxsize=None)
def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _root_links(root: str) -> tuple[tuple[str, str], ...]:
    """Top-level directory links of ``root`` (/lib -> usr/lib on a merged-/usr system) as
    (link, real directory) pairs."""
    pairs = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.islink(path) and os.path.isdir(path):
            pairs.append(("/" + name, os.path.realpath(path)))
    return tuple(pairs)


def aliases(real: str, root: str = "/") -> list[str]:
    """The builder paths that name ``real`` through a top-level directory link, ``real``
    first: a Debian package's /lib/x86_64-linux-gnu/libc.so.6 is /usr/lib/... in a merged
    builder, and the base may not be merged."""
    found = [real]
    for link, target in _root_links(root):
        if real.startswith(target.rstrip("/") + "/"):
            found.append(link + real[len(target.rstrip("/")):])
    return found


def _in_base(base: BaseFiles, real: str) -> str | None:
    size = os.path.getsize(real)
    for path in aliases(real):
        found = base.provides(path, size, sha256_of(real))
        if found is not None:
            return found
    return None


def provided_objects(natives: NativePlan, base: BaseFiles) -> dict[str, str]:
    """Objects of reals/r the base provides (see the module's rules 1-4): builder real path
    -> the base's path of the same bytes."""
    graph = natives.graph
    candidates = {}
    for real in natives.names:
        info = elf.read(real)
        if info.rpath or info.runpath:
            continue
        found = _in_base(base, real)
        if found is not None:
            candidates[real] = found
    reached: dict[str, set[str]] = defaultdict(set)  # a name -> the files it reaches
    for node in graph.values():
        for needed, dep in node.deps.items():
            if dep:
                reached[needed].add(dep)
    for real in graph:
        soname = elf.read(real).soname
        if soname:
            reached[soname].add(real)
    for name, real in natives.by_name.items():
        reached[name].add(real)
    ambiguous = {real for files in reached.values() if len(files) > 1 for real in files}
    provided = {real: path for real, path in candidates.items() if real not in ambiguous}
    changed = True
    while changed:
        changed = False
        for real in sorted(provided):
            if any(dep not in provided for dep in graph[real].deps.values()):
                del provided[real]
                changed = True
    return provided


def _image_path(dest: PurePosixPath) -> str:
    return "/" + str(dest)


def _root_path(path: str) -> PurePosixPath:
    return PurePosixPath(path.lstrip("/"))


def _use_objects(p: Planner, natives: NativePlan, base: BaseFiles) -> list[ProvidedFile]:
    objects = provided_objects(natives, base)
    moved = {natives.reals(natives.names[real]): path for real, path in objects.items()}
    for dest, entry in list(p.entries.items()):
        if entry.kind == "link":
            target = PurePosixPath(os.path.normpath(os.path.join(str(dest.parent),
                                                                 entry.target)))
            if target in moved:
                p.link(dest, _root_path(moved[target]), entry.layer, entry.origin)
    provided = []
    for real, path in sorted(objects.items()):
        name = natives.names[real]
        entry = p.entries.pop(natives.reals(name))
        own = natives.symlink_dir(name)
        for dest in [d for d in p.entries if d.parent == own]:
            del p.entries[dest]
        provided.append(ProvidedFile(path, real, os.path.getsize(real), sha256_of(real),
                                     entry.origin, entry.reason, True))
    unpatched = {natives.reals(natives.names[real]) for real in objects}
    natives.rpaths[:] = [edit for edit in natives.rpaths if edit.dest not in unpatched]
    return provided


def _use_paths(p: Planner, base: BaseFiles) -> list[ProvidedFile]:
    """Files and links outside the prefix that the base holds as they are."""
    prefix = p.under()
    provided = []
    for dest, entry in sorted(p.entries.items()):
        if dest == prefix or prefix in dest.parents:
            continue
        path = _image_path(dest)
        if entry.kind == "link":
            if base.links.get(path) == entry.target:
                del p.entries[dest]
            continue
        if entry.kind == "file":
            size, sha256 = os.path.getsize(entry.source), sha256_of(entry.source)
        elif entry.kind == "text":
            size, sha256 = len(entry.content), hashlib.sha256(entry.content).hexdigest()
        else:
            continue
        if base.provides(path, size, sha256) is not None:
            del p.entries[dest]
            provided.append(ProvidedFile(path, entry.source, size, sha256, entry.origin,
                                         entry.reason, False))
    return provided


def use_base(p: Planner, natives: NativePlan, base: BaseFiles) -> BaseUse:
    """Leave out of the plan what ``base`` provides (objects first: their links must be
    retargeted before anything is dropped); returns what was left out."""
    objects = _use_objects(p, natives, base)
    paths = _use_paths(p, base)
    return BaseUse(base.reference, tuple(sorted(objects + paths, key=lambda f: f.path)))


@contextlib.contextmanager
def standing_in(root: Path, use: BaseUse | None) -> Iterator[None]:
    """While the block runs (ldconfig), the farm root holds copies of the base's objects at
    their paths, so that links into the base resolve and the farm's ld.so.cache lists
    them; they are removed after, with the directories made for them."""
    made: list[Path] = []
    created_dirs: list[Path] = []
    try:
        for f in use.files if use is not None else ():
            if not f.elf:
                continue
            target = root / f.path.lstrip("/")
            if target.exists() or target.is_symlink():
                continue
            missing = [d for d in [target.parent, *target.parent.parents]
                       if root in d.parents and not d.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            created_dirs += sorted(missing, key=lambda d: len(d.parts), reverse=True)
            shutil.copyfile(f.source, target)
            made.append(target)
        yield
    finally:
        for target in made:
            target.unlink()
        for directory in sorted(set(created_dirs), key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()


def with_provided(doc: Manifest, use: BaseUse | None) -> Manifest:
    """The manifest, with what the base provides (layer ``base``, ``provided_by`` set)."""
    if use is None or not use.files:
        return doc
    return replace(doc, provided=tuple(
        FileRecord(f.path, f.size, f.sha256, f.origin, LAYER, f.reason, use.reference)
        for f in use.files))
