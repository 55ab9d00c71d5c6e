"""Render the Dockerfile from the Jinja templates shipped in the package."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

import jinja2

from . import __version__
from .appspec import AppSpec
from .plan import DEFAULT_PREFIX

DEFAULT_BASE = "python:3.12-slim"
DEFAULT_FINAL = "scratch"
APP_PYTHON = "/opt/venv/bin/python"
SYNTAXES = ("portable", "buildkit")


@dataclass(frozen=True)
class DockerfileOptions:
    """Everything the Dockerfile depends on; paths are relative to the build context."""

    spec: AppSpec
    title: str
    base: str = DEFAULT_BASE
    final: str = DEFAULT_FINAL
    prefix: PurePosixPath = DEFAULT_PREFIX
    helpers: str = ".pyfarm"
    app_dir: str = "."
    requirements: str | None = None
    install_project: bool = False
    wheelhouse: bool = False
    prune: bool = False
    debug: bool = False
    syntax: str = "portable"  # or "buildkit": RUN --mount, which the legacy builder lacks


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pyfarm_docker", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tojson"] = json.dumps
    return env


def _trace_flags(spec: AppSpec) -> list[str]:
    flags: list[str] = []
    if spec.port is not None:
        flags += ["--port", str(spec.port)]
    for probe in spec.probes:
        spec_text = probe.label()
        if probe.expect_status is not None:
            spec_text += f" {probe.expect_status}"
        if probe.body_json is not None:
            spec_text += " " + json.dumps(probe.body_json, separators=(",", ":"))
        flags += ["--probe", shlex.quote(spec_text)]
    return [" ".join(flags[i:i + 2]) for i in range(0, len(flags), 2)]


def _entrypoint(spec: AppSpec, prefix: PurePosixPath) -> list[str]:
    python = str(prefix / "python" / "bin" / "python")
    if spec.module is not None:
        return [python, *spec.entry]
    return [python, str(prefix / "app" / spec.entry[0]), *spec.entry[1:]]


def _healthcheck(spec: AppSpec, prefix: PurePosixPath) -> list[str]:
    """Exec form, with the image's own python: there is no shell or curl in it."""
    gets = [p.path for p in spec.probes if p.method == "GET"]
    if gets:
        code = (f"import urllib.request; urllib.request.urlopen("
                f"'http://127.0.0.1:{spec.port}{gets[0]}', timeout=4)")
    else:
        code = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), 4)"
    return [str(prefix / "python" / "bin" / "python"), "-c", code]


def render(options: DockerfileOptions) -> str:
    spec = options.spec
    return _environment().get_template("Dockerfile.j2").render(
        version=__version__,
        base=options.base,
        final=options.final,
        prefix=str(options.prefix),
        helpers=options.helpers,
        app_dir=options.app_dir,
        requirements=options.requirements,
        install_project=options.install_project,
        wheelhouse=options.wheelhouse,
        prune=options.prune,
        debug=options.debug,
        buildkit=options.syntax == "buildkit",
        trace_flags=_trace_flags(spec),
        app_python=APP_PYTHON,
        traced_command=" ".join(shlex.quote(a) for a in (*spec.entry, *spec.traced_args)),
        title=options.title,
        port=spec.port,
        healthcheck=_healthcheck(spec, options.prefix) if spec.port else [],
        entrypoint=_entrypoint(spec, options.prefix),
        run_args=list(spec.checked_args),
        spec_label=spec.to_label(),
    )
