"""Decide what goes where in the farm: pure data, built by reading the builder's files.

A :class:`Plan` lists every file, link and directory of the output root
filesystem (paths relative to ``/``), which image layer it belongs to and
where it came from, plus the search-path edits the patcher will make. The
farm module carries it out; nothing here writes to disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..documents.conflicts import SonameConflict
from ..documents.interpreter import Interpreter
from ..documents.trace import Distribution, Trace
from ..errors import AssembleError

BIG_DIST_BYTES = 8 * 1024 * 1024
_SKIP_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".venv", ".mypy_cache",
                         ".pytest_cache", ".ruff_cache", ".tox"})
_STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "test", "__pycache__"})


@dataclass(frozen=True)
class Entry:
    """One path of the output root: a copied file, a generated file, a link or a directory."""

    dest: PurePosixPath
    kind: str  # "file" | "text" | "link" | "dir"
    layer: str
    origin: str
    source: str = ""
    target: str = ""
    content: bytes = b""
    mode: int = 0o644
    owner: int = 0  # uid and gid


@dataclass(frozen=True)
class RpathEdit:
    """Set the DT_RPATH of the file at ``dest`` (relative to the root) to ``rpath``."""

    dest: PurePosixPath
    rpath: str


@dataclass(frozen=True)
class Plan:
    prefix: PurePosixPath
    python: PurePosixPath
    entries: tuple[Entry, ...]
    rpaths: tuple[RpathEdit, ...]
    warnings: tuple[str, ...]
    conflicts: tuple[SonameConflict, ...]
    prunable: frozenset[PurePosixPath] = frozenset()


@dataclass
class Planner:
    """Accumulates entries; later steps may replace a file entry by a link (ELF moves)."""

    prefix: PurePosixPath
    entries: dict[PurePosixPath, Entry] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    prunable: set[PurePosixPath] = field(default_factory=set)  # .py files the run never read

    def under(self, *parts: str) -> PurePosixPath:
        return PurePosixPath(str(self.prefix).lstrip("/"), *parts)

    def add(self, entry: Entry) -> None:
        self.entries.setdefault(entry.dest, entry)

    def file(self, dest: PurePosixPath, source: str, layer: str, origin: str) -> None:
        mode = 0o755 if os.access(source, os.X_OK) else 0o644
        self.add(Entry(dest, "file", layer, origin, source=source, mode=mode))

    def text(self, dest: PurePosixPath, content: str, layer: str, origin: str,
             mode: int = 0o644) -> None:
        self.add(Entry(dest, "text", layer, origin, content=content.encode(), mode=mode))

    def link(self, dest: PurePosixPath, to: PurePosixPath, layer: str, origin: str) -> None:
        """A relative symlink at ``dest`` pointing at root path ``to``."""
        target = os.path.relpath(str(to), str(dest.parent))
        self.entries[dest] = Entry(dest, "link", layer, origin, target=target)

    def directory(self, dest: PurePosixPath, layer: str, mode: int = 0o755,
                  owner: int = 0) -> None:
        self.add(Entry(dest, "dir", layer, "essential", mode=mode, owner=owner))

    def tree(self, source: Path, dest: PurePosixPath, layer: str, origin: str,
             skip: frozenset[str] = _SKIP_NAMES, keep_links: bool = False) -> None:
        """Copy a directory tree; links are followed, or kept as they are with ``keep_links``
        (for trees like zoneinfo whose links point back into themselves)."""
        for path in sorted(source.iterdir()):
            if path.name in skip:
                continue
            if keep_links and path.is_symlink():
                self.add(Entry(dest / path.name, "link", layer, origin, target=os.readlink(path)))
            elif path.is_dir():
                self.tree(path, dest / path.name, layer, origin, _SKIP_NAMES, keep_links)
            elif path.is_file():
                self.file(dest / path.name, str(path.resolve()), layer, origin)


def add_interpreter(p: Planner, interp: Interpreter) -> PurePosixPath:
    """python/bin/python (a real file: getpath needs it) and the whole stdlib."""
    python = p.under("python", "bin", "python")
    p.file(python, interp.executable, "runtime", "interpreter")
    lib = p.under("python", "lib", interp.version_dir)
    stdlib, dynload = Path(interp.stdlib), Path(interp.lib_dynload)
    build_config = {d.name for d in stdlib.glob("config-*")}  # libpython.a, Makefile
    p.tree(stdlib, lib, "runtime", "stdlib", _STDLIB_SKIP | {dynload.name, *build_config})
    p.directory(lib / "lib-dynload", "runtime")
    if dynload.is_dir():
        p.tree(dynload, lib / "lib-dynload", "runtime", "stdlib")
    return python


def source_of(path: PurePosixPath) -> PurePosixPath:
    """The .py a ``__pycache__/NAME.TAG.pyc`` was compiled from; any other path as it is."""
    if path.parent.name == "__pycache__" and path.suffix == ".pyc":
        return path.parent.parent / (path.name.split(".")[0] + ".py")
    return path


def touched_sources(trace: Trace) -> set[str]:
    """.py files the run read, directly or through their cached .pyc."""
    touched = {m.file for m in trace.modules.values()}
    touched |= {str(source_of(PurePosixPath(p))) for p in trace.files_opened}
    return touched


def add_site_dirs(p: Planner, trace: Trace, prune: bool = False
                  ) -> list[PurePosixPath]:
    """site-packages/pN for each site dir, with every used distribution copied whole (with
    ``prune``, less the .py files the run never read)."""
    sites = trace.site_dirs()
    dists = trace.distributions
    touched = touched_sources(trace)
    dests = []
    for n, site in enumerate(sites, start=1):
        dest = p.under("site-packages", f"p{n}")
        dests.append(dest)
        p.directory(dest, "runtime")
        for dist in (d for d in dists if d.site_dir == site):
            _add_distribution(p, dist, dest, touched, prune)
        for unowned in trace.unowned:
            if os.path.dirname(unowned) == site:
                _add_unowned(p, Path(unowned), dest)
    return dests


def _dist_bytes(dist: Distribution) -> int:
    return sum(_size(os.path.join(dist.site_dir, f)) for f in dist.files)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _add_distribution(p: Planner, dist: Distribution, dest: PurePosixPath,
                      touched: set[str], prune: bool) -> None:
    layer = "big" if _dist_bytes(dist) >= BIG_DIST_BYTES else "packages"
    origin = f"dist:{dist.name}"
    for rel in dist.files:
        source = os.path.join(dist.site_dir, rel)
        if "__pycache__" in PurePosixPath(rel).parts:
            continue
        if rel.endswith(".py") and source not in touched:
            if prune:
                continue
            p.prunable.add(dest / rel)
        if os.path.isfile(source):
            p.file(dest / rel, source, layer, origin)
        else:
            p.warnings.append(f"{dist.name}: RECORD lists {rel} but it is not installed")


def _add_unowned(p: Planner, path: Path, dest: PurePosixPath) -> None:
    if path.is_dir():
        p.tree(path, dest / path.name, "packages", f"path:{path.name}")
    elif path.is_file():
        p.file(dest / path.name, str(path), "packages", f"path:{path.name}")


def add_app(p: Planner, trace: Trace) -> PurePosixPath:
    """First-party code: the app's directory, importable from where it lands."""
    dest = p.under("app")
    source = Path(trace.app_dir)
    if not source.is_dir():
        raise AssembleError(f"the app directory {source} is gone", "assemble where you traced")
    p.tree(source, dest, "app", "app")
    return dest


def site_hook(sites: list[PurePosixPath], original: Path | None) -> str:
    """A sitecustomize that adds the pN dirs (processing their .pth files), then runs the
    interpreter's own sitecustomize, if it had one."""
    lines = ["# Written by pyfarm-docker: the farm's site directories, in traced order.",
             "import site", ""]
    lines += [f"site.addsitedir({'/' + str(s)!r})" for s in sites]
    if original is not None and original.is_file():
        lines += ["", "# The interpreter's own sitecustomize follows.",
                  original.read_text(encoding="utf-8")]
    return "\n".join(lines) + "\n"
