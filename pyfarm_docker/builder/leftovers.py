"""What a traced run leaves in $HOME is removed once it ends.

Apps cache in the home directory (matplotlib's font list, numba's and torch's kernels,
pip's wheels). Left in the builder image, such a cache makes the builder start faster than
any fresh container of the same normal Python image, and it is no part of the app: the
final image runs with another HOME and builds its caches itself, as the builder then does.
Only entries the run created go; what was there before the run is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

# A home directory this large is no builder's: leave it alone rather than walk it.
_MAX_ENTRIES = 100_000


@contextlib.contextmanager
def removed_after(cwd: Path | None, keep: Path) -> Iterator[None]:
    """Remove, once the block ends (however it ends), what it created in $HOME."""
    home = home_of_run(cwd, keep)
    before = snapshot(home) if home else None
    try:
        yield
    finally:
        if home and before is not None:
            remove_new(home, before)


def home_of_run(cwd: Path | None, keep: Path) -> Path | None:
    """$HOME, when it is a directory of its own: not /, and neither holding nor inside the
    app's working directory or the trace's output, whose files are no cache."""
    home = os.environ.get("HOME", "")
    if not home or not os.path.isdir(home):
        return None
    resolved = Path(home).resolve()
    others = [keep.resolve().parent, (cwd or Path.cwd()).resolve()]
    if resolved == Path("/") or any(_related(resolved, other) for other in others):
        return None
    return resolved


def _related(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def snapshot(home: Path) -> frozenset[str] | None:
    """Every path under ``home`` (relative), or None when there are too many to track."""
    seen: set[str] = set()
    for top, dirs, files in os.walk(home):
        rel = os.path.relpath(top, home)
        seen.update(_below(rel, name) for name in (*dirs, *files))
        if len(seen) > _MAX_ENTRIES:
            return None
    return frozenset(seen)


def remove_new(home: Path, before: frozenset[str]) -> list[str]:
    """Remove what appeared under ``home`` since ``before``; returns the removed paths
    (relative, topmost only: a new directory goes whole)."""
    removed: list[str] = []
    for top, dirs, files in os.walk(home):
        rel = os.path.relpath(top, home)
        for name in sorted(files):
            path = _below(rel, name)
            if path not in before and _remove_file(os.path.join(home, path)):
                removed.append(path)
        for name in sorted(dirs):
            path = _below(rel, name)
            if path not in before:
                _remove_dir(os.path.join(home, path))
                removed.append(path)
        dirs[:] = [d for d in dirs if _below(rel, d) in before]
    return removed


def _below(rel: str, name: str) -> str:
    """``name`` in the directory ``rel`` (relative to HOME; "." for HOME itself)."""
    return os.path.normpath(os.path.join(rel, name))


# Best effort: a cache the run left unremovable (a read-only directory, for a user who is
# not root) stays, and the trace still ends with its own verdict, not a traceback.
def _remove_file(full: str) -> bool:
    try:
        os.unlink(full)
    except OSError:
        return False
    return True


def _remove_dir(full: str) -> None:
    if os.path.islink(full):
        _remove_file(full)  # a symlink to a directory: the link goes, never its target
    else:
        shutil.rmtree(full, ignore_errors=True)
