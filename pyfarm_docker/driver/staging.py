"""Lay out a Docker build context: the project, the tool's wheels, the app's wheelhouse,
the app spec and the rendered Dockerfile under the helpers directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import projectfiles, selfwheel
from .busybox import copy_busybox
from .dockerfile import SPEC_FILE, DockerfileOptions, render
from .target import Target

MARKER = projectfiles.MARKER  # generate --force replaces only a directory holding it


def copy_project(project: Path, context: Path, include: tuple[str, ...] = (),
                 helpers: str = ".pyfarm") -> projectfiles.Selection:
    """Copy what of the project goes into the image (see :mod:`.projectfiles`) into the
    build context; returns what was copied and what was left out. The project's own
    helpers directory (from ``generate``) stays out: the build writes its own. So does its
    .dockerignore, already applied here: the engine would apply it again to the helpers."""
    selection = projectfiles.select(project, include, skip={helpers: projectfiles.HELPERS},
                                    omit=frozenset({projectfiles.DOCKERIGNORE}))
    projectfiles.copy(selection, context)
    return selection


def write_helpers(context: Path, options: DockerfileOptions, target: Target,
                  wheels: list[Path] | None) -> Path:
    """Write ``<helpers>/{tool,wheelhouse,spec.json,Dockerfile}`` into the context; returns
    the Dockerfile's path."""
    return write_helpers_into(context / options.helpers, options, target, wheels)


def write_helpers_into(helpers: Path, options: DockerfileOptions, target: Target,
                       wheels: list[Path] | None) -> Path:
    """The helpers directory's contents, written into ``helpers`` (which may be a directory
    set aside, to be swapped in); returns the Dockerfile's path."""
    (helpers / "tool").mkdir(parents=True, exist_ok=True)
    (helpers / MARKER).write_text("Written by pyfarm-docker; `pyfarm-docker generate --force` "
                                  "replaces this directory.\n")
    selfwheel.tool_wheels(helpers / "tool", target)
    if wheels is not None:
        (helpers / "wheelhouse").mkdir(exist_ok=True)
        for wheel in wheels:
            shutil.copy2(wheel, helpers / "wheelhouse" / wheel.name)
    if options.settings.debug:
        copy_busybox(helpers / "busybox")
    (helpers / SPEC_FILE).write_text(options.spec.dumps() + "\n")
    dockerfile = helpers / "Dockerfile"
    dockerfile.write_text(render(options))
    return dockerfile
