"""Decide what goes where in the farm: pure data, built by reading the builder's files.

A :class:`Plan` lists every file, link and directory of the output root
filesystem (paths relative to ``/``), which image layer it belongs to and
where it came from, plus the search-path edits the patcher will make. The
farm module carries it out; nothing here writes to disk.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..documents.conflicts import SonameConflict
from ..documents.interpreter import Interpreter
from ..documents.trace import Distribution, Trace
from ..errors import AssembleError
from . import stdlib
from .dists import top_level

if TYPE_CHECKING:
    from .basefiles import BaseUse

BIG_DIST_BYTES = 8 * 1024 * 1024
_SKIP_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".venv", ".mypy_cache",
                         ".pytest_cache", ".ruff_cache", ".tox"})


@dataclass(frozen=True)
class Entry:
    """One path of the output root: a copied file, a generated file, a link or a directory,
    and why it is there (see REASONS)."""

    dest: PurePosixPath
    kind: str  # "file" | "text" | "link" | "dir" | "zip" (the plan's zipped modules)
    layer: str
    origin: str
    source: str = ""
    target: str = ""
    content: bytes = b""
    mode: int = 0o644
    owner: int = 0  # uid and gid
    reason: str = "essential"


# Why a file is in the farm: the run used it; a shipped native object needs it ("closure of
# X"); the image cannot run without it; a distribution's metadata; shipped so that every
# module of the stdlib and of a shipped distribution imports; the app's own code; the run's
# native code read it (a locale, terminfo, a C library's data).
REASONS = ("traced", "closure", "essential", "metadata", "complete", "app", "native")


@dataclass(frozen=True)
class RpathEdit:
    """Set the DT_RPATH of the file at ``dest`` (relative to the root) to ``rpath``."""

    dest: PurePosixPath
    rpath: str


@dataclass(frozen=True)
class Policy:
    """What a farm ships beyond the traced run (assemble's options)."""

    prune: bool = False  # only what the run used, as sourceless .pyc
    keep_tests: bool = False  # distributions' test directories
    keep_headers: bool = False  # stubs, headers, Cython sources, static libraries


@dataclass(frozen=True)
class Usage:
    """What the traced run used, as builder paths (both as seen and resolved)."""

    sources: frozenset[str]  # .py files imported or read (directly or as cached .pyc)
    opened: frozenset[str]
    mapped: frozenset[str]
    imported: frozenset[str]  # top-level module names

    @classmethod
    def of(cls, trace: Trace) -> Usage:
        sources = {m.file for m in trace.modules.values() if m.file.startswith("/")}
        sources |= {str(source_of(PurePosixPath(p))) for p in trace.files_opened}
        mapped = set(trace.mapped)
        return cls(_with_reals(sources), _with_reals(set(trace.files_opened)),
                   _with_reals(mapped), frozenset(n.split(".")[0] for n in trace.imports))

    def used(self, path: str) -> bool:
        return path in self.sources or path in self.opened or path in self.mapped


def _with_reals(paths: set[str]) -> frozenset[str]:
    return frozenset(paths | {os.path.realpath(p) for p in paths})


@dataclass(frozen=True)
class Plan:
    prefix: PurePosixPath
    python: PurePosixPath
    entries: tuple[Entry, ...]
    rpaths: tuple[RpathEdit, ...]
    warnings: tuple[str, ...]
    conflicts: tuple[SonameConflict, ...]
    bytecode: frozenset[PurePosixPath] = frozenset()  # .py files to give a .pyc
    sourceless: frozenset[PurePosixPath] = frozenset()  # of those, replaced by the .pyc
    # What the same run's --prune farm leaves out: files (a .py with its .pyc), and the .py
    # sources whose module it ships as bytecode only.
    prunable: frozenset[PurePosixPath] = frozenset()
    prunable_sources: frozenset[PurePosixPath] = frozenset()
    zipped: tuple[tuple[str, str], ...] = ()  # (name in the stdlib zip, builder source)
    base: BaseUse | None = None  # what the final base provides, left out (--provided)


@dataclass
class Planner:
    """Accumulates entries; later steps may replace a file entry by a link (ELF moves)."""

    prefix: PurePosixPath
    usage: Usage
    policy: Policy = field(default_factory=Policy)
    entries: dict[PurePosixPath, Entry] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    zipped: list[tuple[str, str]] = field(default_factory=list)

    def under(self, *parts: str) -> PurePosixPath:
        return PurePosixPath(str(self.prefix).lstrip("/"), *parts)

    def add(self, entry: Entry) -> None:
        self.entries.setdefault(entry.dest, entry)

    def file(self, dest: PurePosixPath, source: str, layer: str, origin: str,
             reason: str | None = None) -> None:
        """Copy ``source``; the reason defaults to traced or complete, by the run's use."""
        if reason is None:
            reason = "traced" if self.usage.used(source) else "complete"
        mode = 0o755 if os.access(source, os.X_OK) else 0o644
        self.add(Entry(dest, "file", layer, origin, source=source, mode=mode, reason=reason))

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
             reason: str | None = None, keep_links: bool = False,
             _seen: frozenset[str] = frozenset()) -> None:
        """Copy a directory tree; links are followed, or kept as they are with ``keep_links``
        (for trees like zoneinfo whose links point back into themselves). A directory link
        back into a directory being copied is skipped, not followed forever."""
        seen = _seen | {os.path.realpath(source)}
        for path in sorted(source.iterdir()):
            if path.name in _SKIP_NAMES:
                continue
            if keep_links and path.is_symlink():
                self.add(Entry(dest / path.name, "link", layer, origin, target=os.readlink(path)))
            elif path.is_dir():
                if os.path.realpath(path) in seen:
                    self.warnings.append(f"{path}: a link back into its own tree, left out")
                    continue
                self.tree(path, dest / path.name, layer, origin, reason, keep_links, seen)
            elif path.is_file():
                self.file(dest / path.name, str(path.resolve()), layer, origin, reason)

    def keeps(self, source: str) -> bool:
        """Whether a module file or data file ships: always, or only when used (prune)."""
        return not self.policy.prune or self.usage.used(source)


def add_interpreter(p: Planner, interp: Interpreter, zip_name: str | None) -> PurePosixPath:
    """python/bin/python (a real file: getpath needs it), the stdlib less its exclusion
    list (only what the run used, with prune), and lib-dynload. Pure-Python stdlib
    packages the run never touched go into a zip off sys.path (untraced_stdlib_zip), found
    through the place of ``zip_name``, the stdlib zip CPython puts first on sys.path: a
    quarter of the bytes, and still importable, with source lines."""
    python = p.under("python", "bin", "python")
    p.file(python, interp.executable, "runtime", "interpreter", "essential")
    lib = p.under("python", "lib", interp.version_dir)
    stdlib_dir, dynload = Path(interp.stdlib), Path(interp.lib_dynload)
    skip = {dynload.name, *(d.name for d in stdlib_dir.glob("config-*"))}
    files = _walk(stdlib_dir, skip | stdlib.SKIPPED_DIRS)
    zipped = _untouched_units(p, stdlib_dir, files) if zip_name and not p.policy.prune else set()
    for rel in files:
        if rel in zipped:
            p.zipped.append((str(rel), str(stdlib_dir / rel)))
        else:
            _add_stdlib_file(p, stdlib_dir / rel, lib / rel, rel)
    if p.zipped and zip_name:
        p.add(Entry(untraced_stdlib_zip(p, zip_name), "zip", "runtime", "stdlib",
                    reason="complete"))
    p.directory(lib / "lib-dynload", "runtime")  # a landmark of getpath, even when empty
    for rel in _walk(dynload, stdlib.SKIPPED_DIRS) if dynload.is_dir() else []:
        _add_stdlib_file(p, dynload / rel, lib / "lib-dynload" / rel, rel)
    return python


_LANDMARK = PurePosixPath("os.py")  # getpath finds the stdlib directory by it


def untraced_stdlib_zip(p: Planner, zip_name: str) -> PurePosixPath:
    """Where the untraced stdlib modules go: not at ``zip_name`` itself, which would put
    them first on sys.path (see _UNTRACED_STDLIB)."""
    return p.under("python", "lib", zip_name[:-len(".zip")] + "-untraced.zip")


def _untouched_units(p: Planner, top: Path, files: list[PurePosixPath]
                     ) -> set[PurePosixPath]:
    """Files of the stdlib's top-level modules and packages that the run did not use at
    all and that hold only .py files (data files are read by path: they stay on disk).
    Never os.py, getpath's landmark for the stdlib directory."""
    units: dict[str, list[PurePosixPath]] = {}
    for rel in files:
        units.setdefault(stdlib.top_level(rel), []).append(rel)
    return {rel for name, rels in units.items()
            if name not in p.usage.imported and not stdlib.excluded(name, p.usage.imported)
            and all(r.suffix == ".py" and not p.usage.used(str(top / r)) for r in rels)
            and rels != [_LANDMARK]
            for rel in rels}


def _walk(top: Path, skip: set[str] | frozenset[str]) -> list[PurePosixPath]:
    """Files below ``top`` (relative, sorted), not descending into ``skip`` names."""
    found = []
    for here, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        base = PurePosixPath(Path(here).relative_to(top).as_posix())
        found += [base / f for f in files]
    return sorted(found)


def _add_stdlib_file(p: Planner, source: Path, dest: PurePosixPath, rel: PurePosixPath) -> None:
    if stdlib.excluded(stdlib.top_level(rel), p.usage.imported):
        return
    if p.keeps(str(source)):
        p.file(dest, str(source), "runtime", "stdlib")
    elif rel == _LANDMARK:
        p.file(dest, str(source), "runtime", "stdlib", "essential")


_FILE_KINDS = ("file", "text", "zip")


def with_prunable(full: Plan, pruned: Plan) -> Plan:
    """``full`` naming what ``pruned``, the same run planned with --prune, leaves out."""
    shipped = {e.dest for e in pruned.entries if e.kind in _FILE_KINDS}
    files = {e.dest for e in full.entries if e.kind in _FILE_KINDS}
    return replace(full, prunable=frozenset(files - shipped),
                   prunable_sources=frozenset(files & pruned.sourceless))


def source_of(path: PurePosixPath) -> PurePosixPath:
    """The .py a ``__pycache__/NAME.TAG.pyc`` was compiled from; any other path as it is."""
    if path.parent.name == "__pycache__" and path.suffix == ".pyc":
        return path.parent.parent / (path.name.split(".")[0] + ".py")
    return path


def add_site_dirs(p: Planner, trace: Trace) -> list[PurePosixPath]:
    """site-packages/pN for each site dir, with every used distribution (see
    ``_shipped_files``) and every used top-level name no distribution claims."""
    dests = []
    for n, site in enumerate(trace.site_dirs(), start=1):
        dest = p.under("site-packages", f"p{n}")
        dests.append(dest)
        p.directory(dest, "runtime")
        hooks = pth_hooks(Path(site))
        for dist in (d for d in trace.distributions if d.site_dir == site):
            _add_distribution(p, dist, dest, hooks)
        for unowned in trace.unowned:
            if os.path.dirname(unowned) == site:
                _add_unowned(p, Path(unowned), dest)
    return dests


_PTH_IMPORT = re.compile(r"(?:^|;)\s*import\s+([\w., ]+)|__import__\(['\"]([\w.]+)['\"]")


def pth_hooks(site: Path) -> frozenset[str]:
    """Modules that ``.pth`` files import at every start (``import x``, ``__import__('x')``
    on the lines site.py executes, those starting with ``import``)."""
    names = set()
    for pth in site.glob("*.pth"):
        for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("import ", "import\t")):
                for listed, called in _PTH_IMPORT.findall(line):
                    names |= {m.strip().split(".")[0] for m in (listed or called).split(",")}
    return frozenset(names)


def _dist_bytes(dist: Distribution) -> int:
    return sum(_size(os.path.join(dist.site_dir, f)) for f in dist.files)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


_HEADERS = (".pyi", ".pxd", ".pxi", ".pyx", ".h", ".hpp", ".c", ".cpp", ".a")
_TEST_DIRS = frozenset({"tests", "test"})


def _test_dir(rel: PurePosixPath) -> PurePosixPath | None:
    """The outermost ``tests``/``test`` directory a distribution file lies in."""
    for n, part in enumerate(rel.parts[:-1]):
        if part in _TEST_DIRS:
            return PurePosixPath(*rel.parts[: n + 1])
    return None


def _shipped_files(p: Planner, dist: Distribution, hooks: frozenset[str]) -> list[str]:
    """A used distribution's files, less its tests, headers and stubs (unless used or
    asked for). A distribution reached only through a ``.pth`` import ships only what the
    run used of it, plus its metadata and the ``.pth`` file."""
    used = {rel for rel in dist.files if p.usage.used(os.path.join(dist.site_dir, rel))}
    used_tops = {top_level(rel) for rel in used
                 if not rel.endswith(".pth") and not _metadata(dist, rel)}
    only_hooked = bool(used_tops) and used_tops <= hooks
    used_tests = {_test_dir(PurePosixPath(rel)) for rel in used} - {None}
    files = []
    for rel in dist.files:
        path = PurePosixPath(rel)
        if "__pycache__" in path.parts:
            continue
        if only_hooked and not _metadata(dist, rel) and top_level(rel) not in used_tops \
                and not rel.endswith(".pth"):
            continue
        test_dir = _test_dir(path)
        if test_dir is not None and test_dir not in used_tests and not p.policy.keep_tests:
            continue
        if rel.endswith(_HEADERS) and rel not in used and not p.policy.keep_headers:
            continue
        files.append(rel)
    return files


def _metadata(dist: Distribution, rel: str) -> bool:
    return PurePosixPath(rel).parts[0] == dist.dist_info


def _add_distribution(p: Planner, dist: Distribution, dest: PurePosixPath,
                      hooks: frozenset[str]) -> None:
    layer = "big" if _dist_bytes(dist) >= BIG_DIST_BYTES else "packages"
    origin = f"dist:{dist.name}"
    for rel in _shipped_files(p, dist, hooks):
        source = os.path.join(dist.site_dir, rel)
        metadata = _metadata(dist, rel)
        if not metadata and not p.keeps(source):
            continue
        if os.path.isfile(source):
            p.file(dest / rel, source, layer, origin, "metadata" if metadata else None)
        else:
            p.warnings.append(f"{dist.name}: RECORD lists {rel} but it is not installed")


def _add_unowned(p: Planner, path: Path, dest: PurePosixPath) -> None:
    if path.is_dir():
        p.tree(path, dest / path.name, "packages", f"path:{path.name}", "traced")
    elif path.is_file():
        p.file(dest / path.name, str(path), "packages", f"path:{path.name}", "traced")


def add_app(p: Planner, trace: Trace) -> PurePosixPath:
    """First-party code: the app's directory, importable from where it lands."""
    dest = p.under("app")
    source = Path(trace.app_dir)
    if not source.is_dir():
        raise AssembleError(f"the app directory {source} is gone", "assemble where you traced")
    p.tree(source, dest, "app", "app", "app")
    return dest


def bytecode_sources(p: Planner) -> frozenset[PurePosixPath]:
    """The .py files that get a .pyc: those the run imported (the others compile on first
    import, if ever)."""
    return frozenset(e.dest for e in p.entries.values()
                     if e.kind == "file" and e.dest.suffix == ".py"
                     and e.source in p.usage.sources)


def sourceless(p: Planner, bytecode: frozenset[PurePosixPath]) -> frozenset[PurePosixPath]:
    """With prune, the stdlib's and distributions' compiled modules lose their source; the
    app keeps its own, the stdlib its landmark ``os.py``, and a package any .py the run
    read as a file (OpenCV exec's its config.py; inspect.getsource reads sources)."""
    if not p.policy.prune:
        return frozenset()
    landmark = p.under("python", "lib")
    return frozenset(d for d in bytecode if p.entries[d].origin != "app"
                     and p.entries[d].source not in p.usage.opened
                     and not (d.name == _LANDMARK.name and d.parent.parent == landmark))


# The untraced stdlib modules' zip is not on sys.path: zipimport would read its directory at
# every start and importlib.metadata would scan it. A finder at the place of CPython's own
# stdlib zip, first on sys.path as in the builder, opens it when one of them is imported.
_UNTRACED_STDLIB = """
# The stdlib modules the traced run did not import: in {archive}.
_UNTRACED_PACKAGES = {packages}
_UNTRACED_MODULES = {modules} | _UNTRACED_PACKAGES


class _UntracedStdlib:
    zipped = None

    def find_spec(self, name, target=None):
        if name not in _UNTRACED_MODULES:
            return None
        if _UntracedStdlib.zipped is None:
            import zipimport

            _UntracedStdlib.zipped = zipimport.zipimporter({archive!r})
        if hasattr(self.zipped, "find_spec"):
            return self.zipped.find_spec(name, target)
        import importlib.util  # before 3.10 zipimport finds loaders only

        return importlib.util.spec_from_loader(name, self.zipped)

    def invalidate_caches(self):
        pass

    def iter_modules(self, prefix=""):  # for pkgutil
        return [(prefix + name, name in _UNTRACED_PACKAGES) for name in sorted(_UNTRACED_MODULES)]


def _untraced_stdlib_hook(path):
    if path != {entry!r}:
        raise ImportError("not the stdlib zip")
    return _UntracedStdlib()


sys.path_hooks.insert(0, _untraced_stdlib_hook)
sys.path_importer_cache[{entry!r}] = _UntracedStdlib()

if sys.version_info < (3, 13) and sys.excepthook is sys.__excepthook__:
    def _print_exception(exc_type, value, tb):
        # The default hook reads source lines from files only; traceback asks the loader.
        import traceback

        traceback.print_exception(exc_type, value, tb)

    sys.excepthook = _print_exception
"""


def _name_set(names: list[str]) -> str:
    """A frozenset literal of ``names``, wrapped: the hook is read by people too."""
    listed = textwrap.fill(", ".join(map(repr, sorted(names))), width=92, initial_indent="    ",
                           subsequent_indent="    ", break_on_hyphens=False)
    return f"frozenset({{\n{listed},\n}})" if names else "frozenset()"


@dataclass(frozen=True)
class UntracedStdlib:
    """The zip of untraced stdlib modules: its path and CPython's stdlib zip path (on
    sys.path) in the image, and its top-level modules (name: is a package)."""

    archive: str
    entry: str
    names: dict[str, bool]

    @classmethod
    def of(cls, p: Planner, zip_name: str) -> UntracedStdlib:
        names = {stdlib.top_level(PurePosixPath(rel)): "/" in rel for rel, _ in p.zipped}
        return cls(f"/{untraced_stdlib_zip(p, zip_name)}",
                   f"/{p.under('python', 'lib', zip_name)}", dict(sorted(names.items())))


# site adds the user site directory before it imports sitecustomize.
_NO_USER_SITE = """
# The builder's interpreter (a venv) has no user site directory: neither has this one.
site.ENABLE_USER_SITE = False
if site.USER_SITE in sys.path:
    sys.path.remove(site.USER_SITE)
"""


def site_hook(sites: list[PurePosixPath], original: Path | None,
              untraced: UntracedStdlib | None, user_site: bool = True) -> str:
    """A sitecustomize that finds the untraced stdlib modules, adds the pN dirs (processing
    their .pth files), then runs the interpreter's own sitecustomize, if it had one. Without
    ``user_site`` it drops the user site directory, as the builder's venv does."""
    lines = ["# Written by pyfarm-docker: the farm's site directories, in traced order.",
             "import site", "import sys", ""]
    if not user_site:
        lines.append(_NO_USER_SITE)
    if untraced is not None:
        names = untraced.names
        lines.append(_UNTRACED_STDLIB.format(
            archive=untraced.archive, entry=untraced.entry,
            packages=_name_set([n for n in names if names[n]]),
            modules=_name_set([n for n in names if not names[n]])))
    lines += [f"site.addsitedir({'/' + str(s)!r})" for s in sites]
    if original is not None and original.is_file():
        lines += ["", "# The interpreter's own sitecustomize follows.",
                  original.read_text(encoding="utf-8")]
    return "\n".join(lines) + "\n"
