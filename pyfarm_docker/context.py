"""Lay out a Docker build context: the project, the tool's wheels, the app's
wheelhouse and the rendered Dockerfile under the helpers directory."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import selfwheel, wheelhouse
from .dockerfile import DockerfileOptions, render
from .errors import UsageError

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", ".mypy_cache",
                                  ".pytest_cache", ".ruff_cache", ".tox")
TOOL_CACHE = Path.home() / ".cache" / "pyfarm-docker" / "tool-wheels"
WHEELHOUSE_CACHE = Path.home() / ".cache" / "pyfarm-docker" / "wheelhouses"
BUSYBOX_CACHE = Path.home() / ".cache" / "pyfarm-docker" / "busybox"


def project_options(project: Path, options: DockerfileOptions) -> DockerfileOptions:
    """Fill in how the project installs: requirements.txt, or itself as a package."""
    requirements = "requirements.txt" if (project / "requirements.txt").is_file() else None
    installable = (project / "pyproject.toml").is_file() or (project / "setup.py").is_file()
    return replace(options, requirements=requirements,
                   install_project=installable and requirements is None)


def copy_project(project: Path, context: Path) -> None:
    if not project.is_dir():
        raise UsageError(f"project directory {project} does not exist")
    try:
        shutil.copytree(project, context, ignore=_IGNORED, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise UsageError(f"cannot read the project at {project}: {exc}",
                         "check the files' permissions") from None


def tool_wheels(dest: Path, python: str, glibc: tuple[int, int]) -> None:
    """This tool plus what its builder half needs, for an offline install."""
    cache = TOOL_CACHE / f"py{python}"
    for wheel in wheelhouse.download(list(selfwheel.BUILDER_REQUIRES), cache, python, glibc):
        shutil.copy2(wheel, dest / wheel.name)
    selfwheel.build(dest)


def busybox(dest: Path) -> None:
    """A static busybox for the debug stage, from Debian's busybox-static, cached."""
    cached = BUSYBOX_CACHE / "busybox"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            for command in (["apt-get", "download", "busybox-static"],
                            ["sh", "-c", "dpkg-deb -x busybox-static_*.deb root"]):
                done = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                                      check=False)
                if done.returncode != 0:
                    raise UsageError(f"cannot get busybox-static: {done.stderr.strip()}",
                                     "the debug variant needs Debian's busybox-static; "
                                     "run apt-get update first")
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(tmp, "root", "bin", "busybox"), cached)
    shutil.copy2(cached, dest)


def write_helpers(context: Path, options: DockerfileOptions, python: str,
                  glibc: tuple[int, int], wheels: list[Path] | None) -> Path:
    """Write ``<helpers>/{tool,wheelhouse,Dockerfile}`` into the context; returns the
    Dockerfile's path."""
    helpers = context / options.helpers
    (helpers / "tool").mkdir(parents=True, exist_ok=True)
    tool_wheels(helpers / "tool", python, glibc)
    if wheels is not None:
        (helpers / "wheelhouse").mkdir(exist_ok=True)
        for wheel in wheels:
            shutil.copy2(wheel, helpers / "wheelhouse" / wheel.name)
    if options.debug:
        busybox(helpers / "busybox")
    dockerfile = helpers / "Dockerfile"
    dockerfile.write_text(render(options))
    return dockerfile


@dataclass(frozen=True)
class Target:
    """The base image's Python and glibc, which wheels must fit."""

    python: str
    glibc: tuple[int, int]


def download_wheels(project: Path, target: Target) -> list[Path]:
    """The app's wheels for ``target``, downloaded on this host (cached)."""
    requirements = project / "requirements.txt"
    if not requirements.is_file():
        return []
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    glibc = f"{target.glibc[0]}.{target.glibc[1]}"
    dest = WHEELHOUSE_CACHE / f"py{target.python}-glibc{glibc}" / key
    return wheelhouse.download(["-r", str(requirements)], dest, target.python, target.glibc)


def generate(project: Path, options: DockerfileOptions, helpers: Path, target: Target,
             wheels: list[Path] | None, force: bool) -> Path:
    """Write the Dockerfile and its helpers into the project; returns the Dockerfile."""
    helpers = helpers.resolve()
    if project not in helpers.parents:
        raise UsageError(f"{helpers} is outside the project {project}",
                         "the Dockerfile's helpers must be inside the build context")
    if helpers.exists() and any(helpers.iterdir()):
        if not force:
            raise UsageError(f"{helpers} exists and is not empty", "pass --force to replace it")
        shutil.rmtree(helpers)
    options = replace(project_options(project, options),
                      helpers=helpers.relative_to(project).as_posix(),
                      wheelhouse=wheels is not None)
    return write_helpers(project, options, target.python, target.glibc, wheels)
