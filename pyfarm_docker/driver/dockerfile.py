"""Render the Dockerfile from the Jinja templates shipped in the package."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

import jinja2

from .. import __version__, runtime
from ..documents.spec import AppSpec
from ..errors import UsageError
from .settings import Settings, check_text

SYNTAXES = ("portable", "buildkit")
SPEC_FILE = "spec.json"  # in the helpers directory: the app spec the builder traces with
PROVIDED_FILE = "provided.json"  # there too, with a --final base: the files it holds


@dataclass(frozen=True)
class DockerfileOptions:
    """Everything the Dockerfile depends on; paths are relative to the build context."""

    settings: Settings
    helpers: str = ".pyfarm"
    app_dir: str = "."
    requirements: str | None = None
    install_project: bool = False
    wheelhouse: bool = False
    project_wheel: str | None = None  # the project's wheel in <helpers>/project (made on the host)
    syntax: str = "portable"  # or "buildkit": RUN --mount, which the legacy builder lacks
    labels: tuple[tuple[str, str], ...] = ()  # the user's, on the final image
    build_args: tuple[str, ...] = ()  # names the builder stage declares (ARG), for pip
    provided: bool = False  # the helpers hold the final base's files: assemble --provided

    def __post_init__(self) -> None:
        for what, path in (("helpers directory", self.helpers), ("app directory", self.app_dir),
                           ("requirements file", self.requirements or ".")):
            check_relative(what, path)
        for key, value in self.labels:
            check_label(key, value)
        for name in self.build_args:
            check_build_arg(name)

    @property
    def spec(self) -> AppSpec:
        return self.settings.spec


def check_relative(what: str, path: str) -> str:
    """A path the Dockerfile names unquoted (COPY, RUN): plain names below the context."""
    parts = path.split("/")
    if path != "." and not all(
            part and part not in (".", "..") and part.isascii() and
            all(ch.isalnum() or ch in "._-" for ch in part) for part in parts):
        raise UsageError(f"{what} {path!r} is not a plain path inside the project",
                         "use letters, digits, '.', '_' and '-' only, e.g. .pyfarm")
    return path


_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*", re.ASCII)
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
RESERVED_LABELS = "io.pyfarm-docker."  # verify and report read these: the tool's own
RESERVED_ARGS = {"BASE": "--base", "SOURCE_DATE_EPOCH": "the SOURCE_DATE_EPOCH variable"}


def check_label(key: str, value: str) -> None:
    """A label key is written bare (``KEY="VALUE"``): plain characters only; the value
    goes through :func:`label_value`."""
    if not _LABEL_KEY.fullmatch(key):
        raise UsageError(f"label key {key!r} is not a plain name",
                         "use letters, digits, '.', '_', '/' and '-', e.g. org.example.team")
    if key.startswith(RESERVED_LABELS):
        raise UsageError(f"label {key} is pyfarm-docker's own", "choose another key")
    check_text(f"label {key}", value)


def check_build_arg(name: str) -> None:
    if not _ARG_NAME.fullmatch(name):
        raise UsageError(f"build argument {name!r} is not a variable name",
                         "use letters, digits and '_', e.g. PIP_INDEX_URL")
    if name in RESERVED_ARGS:
        raise UsageError(f"build argument {name} is set by pyfarm-docker",
                         f"use {RESERVED_ARGS[name]} instead")


def for_project(options: DockerfileOptions) -> DockerfileOptions:
    """Fill in how the project installs: requirements.txt, or itself as a package."""
    project = options.settings.project
    requirements = "requirements.txt" if (project / "requirements.txt").is_file() else None
    installable = (project / "pyproject.toml").is_file() or (project / "setup.py").is_file()
    return replace(options, requirements=requirements,
                   install_project=installable and requirements is None)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pyfarm_docker", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tojson"] = json.dumps
    env.filters["label"] = label_value
    return env


def label_value(value: str) -> str:
    """A LABEL value Docker reads back unchanged: double-quoted, with ``\\``, ``"`` and ``$``
    escaped (the three escapes Docker knows inside double quotes; ``$`` would expand a
    variable). Control characters have no escape there, so they are refused."""
    check_text("label value", value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


# The probe's URL or port is an argument of the code, never part of it.
_GET = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)"
_CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 4)"


def _healthcheck(spec: AppSpec, python: PurePosixPath) -> list[str]:
    """Exec form, with the image's own python: there is no shell or curl in it."""
    gets = [p.path for p in spec.probes if p.method == "GET"]
    if gets:
        return [str(python), "-c", _GET, f"http://127.0.0.1:{spec.port}{gets[0]}"]
    return [str(python), "-c", _CONNECT, str(spec.port)]


def render(options: DockerfileOptions) -> str:
    settings, spec = options.settings, options.spec
    contract = runtime.Runtime(settings.prefix)
    return _environment().get_template("Dockerfile.j2").render(
        version=__version__,
        base=settings.base,
        final=settings.final,
        assemble=_assemble(settings, options.provided),
        provided=options.provided,
        provided_file=PROVIDED_FILE,
        helpers=options.helpers,
        spec_file=SPEC_FILE,
        app_dir=options.app_dir,
        requirements=options.requirements,
        install_project=options.install_project,
        project_wheel=options.project_wheel,
        wheelhouse=options.wheelhouse,
        debug=settings.debug,
        buildkit=options.syntax == "buildkit",
        builder=runtime,
        layer_dirs=runtime.layer_dirs(),
        env=contract.env(),
        debug_path=dict(contract.env())["PATH"] + ":/busybox",
        user=runtime.USER,
        workdir=str(contract.workdir),
        title=settings.title,
        port=spec.port,
        healthcheck=_healthcheck(spec, contract.python) if spec.port else [],
        entrypoint=contract.entrypoint(spec.entry),
        run_args=list(spec.checked_args),
        labels=list({**dict(_labels(settings, contract)), **dict(options.labels)}.items()),
        build_args=list(options.build_args),
    )


def _assemble(settings: Settings, provided: bool = False) -> list[str]:
    """The assemble step, in exec form: the prefix is the user's."""
    return [str(runtime.BUILDER_TOOL), "assemble", str(runtime.BUILDER_TRACE),
            "-o", str(runtime.BUILDER_OUT), "--layers", "--prefix", str(settings.prefix),
            *(["--provided", str(runtime.BUILDER_PROVIDED)] if provided else []),
            *(["--prune"] if settings.prune else []),
            *(["--keep-tests"] if settings.keep_tests else []),
            *(["--keep-headers"] if settings.keep_headers else [])]


def _labels(settings: Settings, contract: runtime.Runtime) -> list[tuple[str, str]]:
    return [
        ("org.opencontainers.image.title", settings.title),
        ("org.opencontainers.image.description",
         f"{settings.title}, packed by pyfarm-docker {__version__}"),
        (runtime.LABEL_BASE, settings.base),
        (runtime.LABEL_MANIFEST, str(contract.manifest)),
        (runtime.LABEL_SPEC, settings.spec.dumps()),
    ]
