"""Render the Dockerfile from the Jinja templates shipped in the package."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

import jinja2

from .. import __version__, runtime
from ..documents.spec import AppSpec
from .settings import Settings

SYNTAXES = ("portable", "buildkit")
SPEC_FILE = "spec.json"  # in the helpers directory: the app spec the builder traces with


@dataclass(frozen=True)
class DockerfileOptions:
    """Everything the Dockerfile depends on; paths are relative to the build context."""

    settings: Settings
    helpers: str = ".pyfarm"
    app_dir: str = "."
    requirements: str | None = None
    install_project: bool = False
    wheelhouse: bool = False
    syntax: str = "portable"  # or "buildkit": RUN --mount, which the legacy builder lacks

    @property
    def spec(self) -> AppSpec:
        return self.settings.spec


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
    return env


def _healthcheck(spec: AppSpec, python: PurePosixPath) -> list[str]:
    """Exec form, with the image's own python: there is no shell or curl in it."""
    gets = [p.path for p in spec.probes if p.method == "GET"]
    if gets:
        code = (f"import urllib.request; urllib.request.urlopen("
                f"'http://127.0.0.1:{spec.port}{gets[0]}', timeout=4)")
    else:
        code = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), 4)"
    return [str(python), "-c", code]


def render(options: DockerfileOptions) -> str:
    settings, spec = options.settings, options.spec
    contract = runtime.Runtime(settings.prefix)
    return _environment().get_template("Dockerfile.j2").render(
        version=__version__,
        base=settings.base,
        final=settings.final,
        prefix=str(settings.prefix),
        helpers=options.helpers,
        spec_file=SPEC_FILE,
        app_dir=options.app_dir,
        requirements=options.requirements,
        install_project=options.install_project,
        wheelhouse=options.wheelhouse,
        prune=settings.prune,
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
        labels=_labels(settings, contract),
    )


def _labels(settings: Settings, contract: runtime.Runtime) -> list[tuple[str, str]]:
    return [
        ("org.opencontainers.image.title", settings.title),
        ("org.opencontainers.image.description",
         f"{settings.title}, packed by pyfarm-docker {__version__}"),
        (runtime.LABEL_BASE, settings.base),
        (runtime.LABEL_MANIFEST, str(contract.manifest)),
        (runtime.LABEL_SPEC, settings.spec.dumps()),
    ]
