"""Which of the project's files go into the image: what ``.dockerignore`` leaves in (with
Docker's own matcher, from the docker SDK), minus a deny list that applies even without
one (secrets, VCS directories, private keys, virtualenvs, caches), plus what the user
brings back with ``--include``. Symlinks stay symlinks; one that resolves outside the
project is an error unless included."""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import PatternMatcher

from ..errors import UsageError

DOCKERIGNORE = ".dockerignore"
MARKER = ".pyfarm-docker"  # in every helpers directory the tool writes

# Why a path is left out; the report lists them in this order.
SECRET = "secret"
VCS = "VCS directory"
KEY = "private key"
VENV = "virtualenv"
CACHE = "cache"
IGNORED = ".dockerignore"
HELPERS = "pyfarm-docker helpers"  # not reported: the tool's own, never the app's
SPECIAL = "not a file, directory or symlink"
REASONS = (SECRET, KEY, VCS, VENV, CACHE, IGNORED, SPECIAL)

VCS_DIRS = (".git", ".hg", ".svn")
SECRET_NAMES = (".ssh", ".aws", ".netrc", ".pypirc", ".git-credentials")
CACHE_DIRS = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
              ".cache")
CACHE_SUFFIXES = (".pyc", ".pyo")
# Patterns for the same rules in a .dockerignore, for builds run by Docker itself.
DENY_PATTERNS = ("**/.env*", *(f"**/{n}" for n in VCS_DIRS + SECRET_NAMES + CACHE_DIRS),
                 *(f"**/*{s}" for s in CACHE_SUFFIXES))
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
KEY_SCAN_BYTES = 1 << 20  # a file is searched for a private key in its first MiB
# generate's block in the project's .dockerignore: rewritten each run, the rest kept.
BLOCK_START = "# >>> pyfarm-docker: kept out of the image (rewritten by generate) >>>"
BLOCK_END = "# <<< pyfarm-docker <<<"


@dataclass(frozen=True)
class LeftOut:
    """A file, or a directory with everything below it, that stays out of the image."""

    path: str  # relative to the project; directories end with "/"
    reason: str
    files: int  # files (and symlinks) it holds; 1 for a file


@dataclass(frozen=True)
class Selection:
    """The project's paths that go into the image, and what was left out and why."""

    project: Path
    dirs: tuple[str, ...]  # relative POSIX paths, parents first
    files: tuple[str, ...]  # regular files and symlinks
    left_out: tuple[LeftOut, ...]
    found: tuple[LeftOut, ...]  # left out for their content (keys, virtualenvs), by path

    def counts(self) -> dict[str, int]:
        """Files left out per reason, in :data:`REASONS` order."""
        counts: dict[str, int] = defaultdict(int)
        for item in self.left_out:
            counts[item.reason] += item.files
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    def summary(self, examples: int = 3) -> str:
        """One line: how many files stayed out and why, with a few of their paths."""
        if not self.left_out:
            return f"all {len(self.files)} files of the project go into the image"
        paths: dict[str, list[str]] = defaultdict(list)
        for item in self.left_out:
            paths[item.reason].append(item.path)
        parts = []
        for reason, count in self.counts().items():
            shown = paths[reason][:examples] + (["..."] if len(paths[reason]) > examples else [])
            parts.append(f"{count} {reason} ({', '.join(shown)})")
        total = sum(self.counts().values())
        return (f"{len(self.files)} files of the project go into the image, {total} stay out: "
                f"{'; '.join(parts)}; --include PATH brings one back")


def read_dockerignore(project: Path) -> list[str]:
    """The project's ``.dockerignore`` patterns as the docker SDK reads them, without the
    block ``generate`` writes (which only restates the deny list and the includes)."""
    path = project / DOCKERIGNORE
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    lines = [line.strip() for line in _without_block(text).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _without_block(text: str) -> str:
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if start < 0 or end < start:
        return text
    return text[:start] + text[end + len(BLOCK_END):].lstrip("\n")


def _deny(entry: os.DirEntry[str], is_dir: bool) -> str | None:
    """The deny list, by name (and for directories, a virtualenv's pyvenv.cfg)."""
    name = entry.name.lower()
    if name.startswith(".env"):
        return SECRET
    if name in SECRET_NAMES:
        return SECRET
    if name in VCS_DIRS:  # a .git file (a submodule's) too, as the pattern **/.git says
        return VCS
    if name in CACHE_DIRS:
        return CACHE
    if not is_dir and name.endswith(CACHE_SUFFIXES):
        return CACHE
    if is_dir and os.path.isfile(os.path.join(entry.path, "pyvenv.cfg")):
        return VENV
    if is_dir and os.path.isfile(os.path.join(entry.path, MARKER)):
        return HELPERS  # written by generate, maybe with another -o
    return None


def _has_private_key(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return _PRIVATE_KEY.search(f.read(KEY_SCAN_BYTES)) is not None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}",
                         "check the file's permissions, or leave it out in .dockerignore"
                         ) from None


def _count(path: str) -> int:
    """Files and symlinks below a directory (not following symlinks)."""
    total = 0
    for top, dirs, files in os.walk(path):
        total += len(files) + sum(1 for d in dirs if os.path.islink(os.path.join(top, d)))
    return total


class _Walk:
    def __init__(self, project: Path, include: tuple[str, ...], skip: dict[str, str],
                 omit: frozenset[str]) -> None:
        self.root = str(project)
        self.omit = omit
        self.real_root = os.path.realpath(project)
        self.include = include
        self.skip = skip
        patterns = read_dockerignore(project)
        self.matcher = PatternMatcher(patterns) if patterns else None
        self.exceptions = [p.cleaned_pattern for p in
                           (self.matcher.patterns if self.matcher else []) if p.exclusion]
        self.dirs: list[str] = []
        self.files: list[str] = []
        self.left_out: list[LeftOut] = []
        self.found: list[LeftOut] = []

    def included(self, rel: str) -> bool:
        """``rel`` is an include, or below one."""
        return any(rel == i or rel.startswith(i + "/") for i in self.include)

    def include_below(self, rel: str) -> bool:
        return any(i.startswith(rel + "/") for i in self.include)

    def leave_out(self, rel: str, reason: str, path: str, is_dir: bool,
                  by_content: bool = False) -> None:
        item = LeftOut(rel + "/" if is_dir else rel, reason, _count(path) if is_dir else 1)
        self.left_out.append(item)
        if by_content:
            self.found.append(item)

    def visit(self, rel_dir: str, inherited: str | None) -> None:
        """``inherited``: the deny reason of an ancestor; only includes get past it."""
        path = os.path.join(self.root, rel_dir) if rel_dir else self.root
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}",
                             "check the directory's permissions") from None
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if rel not in self.omit:
                self.entry(entry, rel, inherited)

    def entry(self, entry: os.DirEntry[str], rel: str, inherited: str | None) -> None:
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:  # gone since the directory was listed
            raise UsageError(f"cannot read {entry.path}: {exc.strerror}") from None
        is_dir, is_link = stat.S_ISDIR(mode), stat.S_ISLNK(mode)
        if not (is_dir or is_link or stat.S_ISREG(mode)):
            self.leave_out(rel, SPECIAL, entry.path, False)
        elif self.included(rel):
            self.keep(entry, rel, is_dir, is_link)
        elif is_dir:
            self.directory(entry, rel, inherited or self.reason(entry, rel, True))
        else:
            reason = inherited or self.reason(entry, rel, False)
            if reason is None and not is_link and _has_private_key(entry.path):
                self.leave_out(rel, KEY, entry.path, False, by_content=True)
            elif reason is not None:
                self.leave_out(rel, reason, entry.path, False)
            else:
                self.keep(entry, rel, is_dir, is_link)

    def reason(self, entry: os.DirEntry[str], rel: str, is_dir: bool) -> str | None:
        """Why ``rel`` stays out by name: the deny list first, then the .dockerignore."""
        reason = self.skip.get(rel) or _deny(entry, is_dir)
        if reason is None and self.matcher is not None and self.matcher.matches(rel):
            reason = IGNORED
        return reason

    def directory(self, entry: os.DirEntry[str], rel: str, reason: str | None) -> None:
        if reason == HELPERS:
            return
        if reason is None:
            self.keep(entry, rel, True, False)
        elif self.include_below(rel) or (reason == IGNORED and self.excepted_below(rel)):
            # Something below may come back: look at each path below on its own; a .dockerignore
            # pattern matches the paths below too, a deny-list reason is inherited.
            self.visit(rel, None if reason == IGNORED else reason)
        else:
            self.leave_out(rel, reason, entry.path, True, by_content=reason == VENV)

    def excepted_below(self, rel: str) -> bool:
        """A ``!pattern`` of the .dockerignore may bring back something below ``rel`` (as
        Docker's walk decides whether to enter an excluded directory)."""
        return any(p.startswith(rel) for p in self.exceptions)

    def keep(self, entry: os.DirEntry[str], rel: str, is_dir: bool, is_link: bool) -> None:
        if is_link:
            self.check_link(entry, rel)
            self.files.append(rel)
        elif is_dir:
            self.dirs.append(rel)
            self.visit(rel, None)
        else:
            self.files.append(rel)

    def check_link(self, entry: os.DirEntry[str], rel: str) -> None:
        target = os.path.realpath(entry.path)
        inside = target == self.real_root or target.startswith(self.real_root + os.sep)
        if not inside and not self.included(rel):
            raise UsageError(f"symlink {rel} points outside the project "
                             f"(-> {os.readlink(entry.path)})",
                             f"remove it, or pass --include {rel} to keep the link as it is")


def select(project: Path, include: tuple[str, ...] = (), skip: dict[str, str] | None = None,
           omit: frozenset[str] = frozenset()) -> Selection:
    """Decide what of ``project`` goes into the image. ``include``: project-relative paths
    kept whatever the rules say (each must exist); ``skip``: paths to leave out, with their
    reason; ``omit``: paths not copied and not reported either."""
    for path in include:
        if not os.path.lexists(project / path):
            raise UsageError(f"include {path!r} matches nothing in {project}",
                             "give a path relative to the project")
    if not project.is_dir():
        raise UsageError(f"project directory {project} does not exist")
    walk = _Walk(project, include, dict(skip or {}), omit)
    walk.visit("", None)
    return Selection(project, tuple(walk.dirs), tuple(walk.files), tuple(walk.left_out),
                     tuple(walk.found))


def copy(selection: Selection, dest: Path) -> None:
    """Copy the selected paths into ``dest``: symlinks as symlinks, files with their mode."""
    src = selection.project
    try:
        for rel in selection.dirs:
            (dest / rel).mkdir(parents=True, exist_ok=True)
        for rel in selection.files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if (src / rel).is_symlink():
                os.symlink(os.readlink(src / rel), target)
            else:
                shutil.copy2(src / rel, target)
    except OSError as exc:
        raise UsageError(f"cannot copy the project at {src}: {exc}",
                         "check the files' permissions") from None


def dockerignore_block(selection: Selection, keep: tuple[str, ...]) -> str:
    """generate's block for the project's .dockerignore: the deny list as patterns, the
    paths left out for their content, and ``!`` lines for ``keep`` (the helpers and the
    includes), which Docker applies after everything above them."""
    lines = [BLOCK_START, *DENY_PATTERNS]
    lines += [_literal(item.path.rstrip("/")) for item in selection.found]
    lines += ["!" + _literal(path) for path in keep]
    return "\n".join([*lines, BLOCK_END]) + "\n"


def _literal(path: str) -> str:
    """A .dockerignore line matching exactly ``path``: rooted with "/" (so a leading "#"
    or "!" is a name), Docker's pattern characters escaped with a backslash."""
    if "\n" in path or "\r" in path:
        raise UsageError(f"{path!r} has a newline in its name",
                         "rename it: a .dockerignore cannot name it")
    return "/" + re.sub(r"([*?\[\]\\])", r"\\\1", path)


def with_block(text: str, block: str) -> str:
    """``text`` (a .dockerignore) with generate's block replaced, or appended."""
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if 0 <= start < end:
        rest = text[end + len(BLOCK_END):].lstrip("\n")
        return text[:start] + block + rest
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text else "") + block
