"""Lay out a Docker build context: the project, the tool's wheels, the app's wheelhouse,
the app spec and the rendered Dockerfile under the helpers directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import UsageError
from . import selfwheel
from .busybox import copy_busybox
from .dockerfile import SPEC_FILE, DockerfileOptions, render
from .target import Target

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", ".mypy_cache",
                                  ".pytest_cache", ".ruff_cache", ".tox")


def copy_project(project: Path, context: Path) -> None:
    if not project.is_dir():
        raise UsageError(f"project directory {project} does not exist")
    try:
        shutil.copytree(project, context, ignore=_IGNORED, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise UsageError(f"cannot read the project at {project}: {exc}",
                         "check the files' permissions") from None


def write_helpers(context: Path, options: DockerfileOptions, target: Target,
                  wheels: list[Path] | None) -> Path:
    """Write ``<helpers>/{tool,wheelhouse,spec.json,Dockerfile}`` into the context; returns
    the Dockerfile's path."""
    helpers = context / options.helpers
    (helpers / "tool").mkdir(parents=True, exist_ok=True)
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
