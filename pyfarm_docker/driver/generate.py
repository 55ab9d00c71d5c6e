"""``generate``: write the Dockerfile and its helpers into the project, to commit."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from ..errors import UsageError
from .dockerfile import DockerfileOptions, for_project
from .staging import write_helpers
from .target import Target


def generate(options: DockerfileOptions, helpers: Path, target: Target,
             wheels: list[Path] | None, force: bool) -> Path:
    """Write the Dockerfile and its helpers into the project; returns the Dockerfile."""
    project = options.settings.project
    helpers = helpers.resolve()
    if project not in helpers.parents:
        raise UsageError(f"{helpers} is outside the project {project}",
                         "the Dockerfile's helpers must be inside the build context")
    if helpers.exists() and any(helpers.iterdir()):
        if not force:
            raise UsageError(f"{helpers} exists and is not empty", "pass --force to replace it")
        shutil.rmtree(helpers)
    options = replace(for_project(options), helpers=helpers.relative_to(project).as_posix(),
                      wheelhouse=wheels is not None)
    return write_helpers(project, options, target, wheels)
