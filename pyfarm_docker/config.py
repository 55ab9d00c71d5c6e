"""Resolve what to build from the command line and ``[tool.pyfarm-docker]``.

Order, lowest first: built-in defaults < the project's pyproject.toml < flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .appspec import AppSpec, from_mapping
from .dockerfile import DEFAULT_BASE, DEFAULT_FINAL, DockerfileOptions
from .errors import UsageError
from .probe import Probe

IMAGE_KEYS = frozenset({"base", "final", "prefix", "prune"})


@dataclass(frozen=True)
class Flags:
    """What the command line said; None means 'not given'."""

    path: Path
    module: str | None = None
    args: tuple[str, ...] | None = None
    port: int | None = None
    probes: tuple[str, ...] = ()
    base: str | None = None
    final: str | None = None
    prefix: str | None = None
    prune: bool = False
    debug: bool = False


def _read_pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        raise UsageError("reading pyproject.toml needs Python 3.11+",
                         "pass the settings as flags instead") from None
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("pyfarm-docker", {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [tool.pyfarm-docker] must be a table")
    return section


def _split_path(flags: Flags) -> tuple[Path, tuple[str, ...] | None]:
    path = flags.path
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}",
                         "check the permissions of it and its directories") from None
    if not exists:
        raise UsageError(f"{path} does not exist", "give the app's script or its directory")
    if is_file:
        if flags.module:
            raise UsageError("give either a script or -m MODULE, not both")
        return path.parent.resolve(), (path.name,)
    entry = ("-m", flags.module) if flags.module else None
    return path.resolve(), entry


def _check_types(section: dict[str, Any], where: str) -> None:
    for key in IMAGE_KEYS & section.keys():
        wanted = bool if key == "prune" else str
        if not isinstance(section[key], wanted):
            raise UsageError(f"{where}: {key} must be a {wanted.__name__}")


def resolve(flags: Flags, title: str | None = None) -> tuple[Path, DockerfileOptions]:
    """The project directory and the Dockerfile options for it."""
    project, entry = _split_path(flags)
    section = _read_pyproject(project)
    where = f"{project / 'pyproject.toml'} [tool.pyfarm-docker]"
    _check_types(section, where)
    spec = from_mapping(section, where, extra=IMAGE_KEYS)
    spec = _apply_flags(spec, flags, entry)
    prefix = PurePosixPath(flags.prefix or section.get("prefix", "/app"))
    if not prefix.is_absolute():
        raise UsageError(f"prefix must be an absolute path, not {prefix}")
    options = DockerfileOptions(
        spec=spec.validate(project),
        title=title or project.name,
        base=flags.base or section.get("base", DEFAULT_BASE),
        final=flags.final or section.get("final", DEFAULT_FINAL),
        prefix=prefix,
        prune=flags.prune or bool(section.get("prune", False)),
        debug=flags.debug,
    )
    return project, options


def _apply_flags(spec: AppSpec, flags: Flags, entry: tuple[str, ...] | None) -> AppSpec:
    changes: dict[str, Any] = {}
    if entry is not None:
        changes["entry"] = entry
    if flags.args is not None:
        changes["args"] = flags.args
    if flags.port is not None:
        changes["port"] = flags.port
        changes["kind"] = "server"
    if flags.probes:
        changes["probes"] = tuple(Probe.parse(p) for p in flags.probes)
    return replace(spec, **changes)
