"""Resolve what to build, once: flags win over ``[tool.pyfarm-docker]`` in the project's
pyproject.toml, which wins over a ``case.json`` beside the app, which wins over the
defaults. The result is one frozen :class:`Settings`."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from .. import defaults
from ..documents._read import Fields
from ..documents.spec import KEYS, AppSpec, Probe
from ..errors import UsageError
from .engine import check_image
from .projectentry import default_entry

# Keys of [tool.pyfarm-docker] only (case.json describes the app, not its image).
IMAGE_KEYS = frozenset({"base", "final", "prefix", "prune", "keep_tests", "keep_headers",
                        "include"})
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)


@dataclass(frozen=True)
class Flags:
    """What the command line said; None means 'not given'."""

    path: Path
    module: str | None = None
    script: str | None = None  # a console script of an installed distribution
    args: tuple[str, ...] | None = None
    port: int | None = None
    probes: tuple[str, ...] = ()
    base: str | None = None
    final: str | None = None
    prefix: str | None = None
    prune: bool = False
    keep_tests: bool = False
    keep_headers: bool = False
    debug: bool = False
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything about the app and its images that the user decides."""

    project: Path
    spec: AppSpec = field(default_factory=AppSpec)
    title: str = "app"
    base: str = defaults.BASE
    final: str = defaults.FINAL
    prefix: PurePosixPath = defaults.PREFIX
    prune: bool = False  # ship only what the traced run used
    keep_tests: bool = False  # distributions' test directories the run did not import
    keep_headers: bool = False  # stubs, headers, Cython sources
    debug: bool = False
    include: tuple[str, ...] = ()  # project paths copied although left out by default

    def __post_init__(self) -> None:
        """Every value that reaches the Dockerfile is one Docker reads back as it is."""
        check_image(self.base, "base")
        check_image(self.final, "final")
        check_prefix(str(self.prefix))
        check_text("the project directory's name (the image title)", self.title)
        spec = self.spec
        for what, values in (("entry", spec.entry), ("args", spec.args),
                             ("trace_args", spec.trace_args or ()),
                             ("run_args", spec.run_args or ()), ("include", self.include)):
            for value in values:
                check_text(what, value)


def check_text(what: str, value: str) -> str:
    """Control characters (newlines above all) would end a Dockerfile line; refuse them."""
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise UsageError(f"{what} {value!r} contains a control character",
                         "remove newlines, tabs and other control characters from it")
    return value


def check_prefix(text: str) -> PurePosixPath:
    """The farm's directory: an absolute path of plain names (letters, digits, ``._-``),
    without ``.`` or ``..``, and not ``/``."""
    parts = text.split("/")
    if (text[:1] != "/" or text == "/" or
            not all(_SEGMENT.fullmatch(p) and p not in (".", "..") for p in parts[1:])):
        raise UsageError(f"prefix {text!r} is not an absolute directory of plain names",
                         "e.g. /app or /opt/app: letters, digits, '.', '_' and '-' only, "
                         "no '..', not /")
    return PurePosixPath(text)


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python < 3.11
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    return data


def _pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    if not path.is_file():
        return {}
    tool = _load_toml(path).get("tool", {})
    section = tool.get("pyfarm-docker", {}) if isinstance(tool, dict) else {}
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [tool.pyfarm-docker] must be a table")
    return section


def _case(project: Path) -> dict[str, Any]:
    path = project / "case.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _split_path(flags: Flags) -> tuple[Path, dict[str, Any]]:
    """The project directory, and the entry the path itself implies (a script)."""
    path = flags.path
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}",
                         "check the permissions of it and its directories") from None
    if not exists:
        raise UsageError(f"{path} does not exist", "give the app's script or its directory")
    if is_file:
        if flags.module or flags.script:
            raise UsageError("give either a script or -m MODULE (--script NAME), not both")
        return path.parent.resolve(), {"entry": [path.name]}
    return path.resolve(), {}


def _flag_values(flags: Flags) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if flags.module and flags.script:
        raise UsageError("give either -m MODULE or --script NAME, not both")
    if flags.module:
        values["entry"] = ["-m", flags.module]
    if flags.script:
        values["entry"] = ["--script", flags.script]
    if flags.args is not None:
        values["args"] = list(flags.args)
    if flags.port is not None:
        values["port"] = flags.port
    if flags.probes:
        values["probes"] = [Probe.parse(p).to_json() for p in flags.probes]
    for key in ("base", "final", "prefix"):
        if getattr(flags, key) is not None:
            values[key] = getattr(flags, key)
    for key in ("prune", "keep_tests", "keep_headers"):
        if getattr(flags, key):
            values[key] = True
    return values


def _layered(layers: list[tuple[str, Mapping[str, Any]]]) -> tuple[dict[str, Any], str]:
    """Later layers win, key by key; a port set by a layer drops a lower layer's kind (the
    port decides it). Returns the merged keys and the name of the most specific source."""
    merged: dict[str, Any] = {}
    for _, layer in layers:
        if "port" in layer and "kind" not in layer:
            merged.pop("kind", None)
        merged.update(layer)
    return merged, " < ".join(name for name, layer in layers if layer)


def _check_types(fields: Fields) -> None:
    """Each source's values have the right types, so an error names the file it is in."""
    for key in fields.data:
        if key in ("kind", "base", "final", "prefix"):
            fields.opt_text(key)
        elif key == "port":
            fields.opt_integer(key)
        elif key in ("prune", "keep_tests", "keep_headers"):
            fields.flag(key, False)
        elif key == "probes":
            for probe in fields.objects(key, False):
                Probe.from_json(probe)
        elif fields.data[key] is not None:
            fields.texts(key)


def _includes(project: Path, paths: Iterable[str]) -> tuple[str, ...]:
    """``--include`` paths as project-relative POSIX paths, each once."""
    found: dict[str, None] = {}
    for text in paths:
        check_text("include", text)
        path = Path(text)
        if path.is_absolute():
            try:
                path = path.relative_to(project)
            except ValueError:
                raise UsageError(f"include {text!r} is outside the project {project}",
                                 "give a path inside the project, relative to it") from None
        if not path.parts or ".." in path.parts:
            raise UsageError(f"include {text!r} is not a path inside the project",
                             "give a path relative to the project, without '..'")
        found[path.as_posix()] = None
    return tuple(found)


def resolve(flags: Flags) -> Settings:
    """The one place settings are decided."""
    project, implied = _split_path(flags)
    pyproject, case = _pyproject(project), _case(project)
    _check_types(Fields(pyproject, f"{project / 'pyproject.toml'} [tool.pyfarm-docker]")
                 .only(KEYS | IMAGE_KEYS))
    _check_types(Fields(case, str(project / "case.json")).only(KEYS))
    # include adds up: what pyproject.toml brings back stays back with more flags.
    include = _includes(project, [*(pyproject.get("include") or ()), *flags.include])
    merged, sources = _layered([("case.json", case), ("pyproject.toml", pyproject),
                                ("the app path", implied), ("flags", _flag_values(flags))])
    merged.pop("include", None)
    if "entry" not in merged:
        merged["entry"] = default_entry(project)
    fields = Fields(merged, sources or "defaults")
    spec = AppSpec.from_json(fields).check_files(project)
    return Settings(project=project, spec=spec, title=project.name,
                    base=fields.text("base", defaults.BASE),
                    final=fields.text("final", defaults.FINAL),
                    prefix=check_prefix(fields.text("prefix", str(defaults.PREFIX))),
                    prune=fields.flag("prune", False),
                    keep_tests=fields.flag("keep_tests", False),
                    keep_headers=fields.flag("keep_headers", False), debug=flags.debug,
                    include=include)
