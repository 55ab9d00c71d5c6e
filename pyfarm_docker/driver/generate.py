"""``generate``: write the Dockerfile and its helpers into the project, to commit.

The helpers directory is written aside and swapped in, so an interrupted run leaves the
old one as it was; ``--force`` replaces only a directory the tool wrote (it holds
:data:`MARKER`). The project's ``.dockerignore`` gets a block of its own that keeps out
what ``build`` keeps out, since there Docker makes the build context."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from ..errors import UsageError
from . import projectfiles
from .dockerfile import DockerfileOptions, check_relative, for_project
from .projectinstall import finish as finish_install
from .projectinstall import write_app
from .staging import MARKER, write_helpers_into
from .target import Target
from .wheelhouse import AppInstall


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote, and what of the project the Dockerfile's build copies."""

    dockerfile: Path
    selection: projectfiles.Selection
    dockerignore: Path
    dockerignore_changed: bool


def generate(options: DockerfileOptions, helpers: Path, target: Target,
             wheels: list[Path] | None, force: bool, inputs: Iterable[Path] = (),
             app: AppInstall | None = None) -> Generated:
    """Write the Dockerfile and its helpers into the project. ``inputs``: paths this run
    reads (a wheelhouse), which the helpers directory must not hold."""
    settings = options.settings
    project = settings.project
    helpers = helpers.resolve()
    if helpers == project:
        raise UsageError(f"will not write the helpers into the project directory {project} "
                         "itself", "give -o a directory inside it, e.g. .pyfarm")
    if project not in helpers.parents:
        raise UsageError(f"{helpers} is outside the project {project}",
                         "the Dockerfile's helpers must be inside the build context")
    relative = check_relative("helpers directory", helpers.relative_to(project).as_posix())
    _check_replaceable(helpers, force, [_entry_path(options), *inputs])
    selection = projectfiles.select(project, settings.include,
                                    skip={relative: projectfiles.HELPERS})
    options = finish_install(replace(for_project(options), helpers=relative,
                                     wheelhouse=wheels is not None), app, wheels)

    def write(aside: Path) -> None:
        write_helpers_into(aside, options, target, wheels)
        if app is not None:
            write_app(aside, app)

    _swap_in(helpers, write)
    block = projectfiles.dockerignore_block(selection, (relative, *settings.include))
    ignore, changed = _update_dockerignore(project, block)
    return Generated(helpers / "Dockerfile", selection, ignore, changed)


def _entry_path(options: DockerfileOptions) -> Path:
    spec, project = options.spec, options.settings.project
    if spec.module is not None:
        return project / spec.module.split(".")[0]
    return project / spec.entry[0]


def _check_replaceable(helpers: Path, force: bool, inputs: list[Path]) -> None:
    """``helpers`` may be (re)written: new, empty, or with --force one the tool wrote; and
    never a directory whose loss would hurt (/, the current or a home directory, one that
    holds an input)."""
    if not os.path.lexists(helpers):
        return
    if not helpers.is_dir():
        raise UsageError(f"{helpers} is not a directory",
                         "give -o a new directory, or one pyfarm-docker generate wrote")
    why = _protected(helpers, inputs)
    if why:
        raise UsageError(f"will not replace {helpers}: {why}",
                         "give -o a directory of its own inside the project, e.g. .pyfarm")
    if not any(helpers.iterdir()):
        return
    if not force:
        raise UsageError(f"{helpers} exists and is not empty", "pass --force to replace it")
    if not (helpers / MARKER).is_file():
        raise UsageError(f"will not replace {helpers}: pyfarm-docker did not write it "
                         f"(it has no {MARKER} file)",
                         "remove it yourself, or give -o another directory")


def _protected(path: Path, inputs: list[Path]) -> str:
    """Why replacing ``path`` (resolved) would destroy something not the tool's, or ""."""
    if path == Path(path.anchor):
        return "it is the root directory"
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        return "it is the current directory" if path == cwd else "it holds the current directory"
    for home in _homes():
        if path == home or path in home.parents:
            return f"it is a home directory ({home})" if path == home else (
                f"it holds a home directory ({home})")
    for item in inputs:
        resolved = item.resolve()
        if path == resolved or path in resolved.parents:
            return f"it holds {item}, an input of this run"
    return ""


def _homes() -> set[Path]:
    homes = {Path(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_dir not in ("", "/")}
    with contextlib.suppress(RuntimeError, KeyError):
        homes.add(Path.home())
    return {home.resolve() for home in homes}


def _swap_in(dest: Path, write: Callable[[Path], object]) -> None:
    """Write a new ``dest`` beside it, then swap it in for the old one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    try:
        aside.chmod(0o755)  # mkdtemp's 0700 would follow the directory into the image
        write(aside)
        if os.path.lexists(dest):
            old = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
            os.rename(dest, old)
            os.rename(aside, dest)
            shutil.rmtree(old)
        else:
            os.rename(aside, dest)
    finally:
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)


def _update_dockerignore(project: Path, block: str) -> tuple[Path, bool]:
    """Put ``block`` into the project's .dockerignore (created if missing); the user's own
    lines stay. Returns its path and whether it changed."""
    path = project / projectfiles.DOCKERIGNORE
    try:
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    new = projectfiles.with_block(old, block)
    if new == old:
        return path, False
    part = path.with_name(f".dockerignore.new-{secrets.token_hex(4)}")
    try:
        part.write_text(new, encoding="utf-8")
        part.chmod(0o644)
        os.replace(part, path)
    finally:
        if part.exists():
            part.unlink()
    return path, True
