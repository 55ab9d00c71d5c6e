"""How the builder installs the app when its wheels are made on the host: the pins of
the dependencies' wheels, the project's own wheel, and console-script entries resolved
to the function they call."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from ..documents.spec import AppSpec, script_entry
from ..errors import UsageError
from . import wheelhouse
from .dockerfile import DockerfileOptions
from .target import Target

Report = Callable[[str], None]

_WHEEL_NAME = re.compile(r"[A-Za-z0-9._-]+\.whl")
_TARGET = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)(\s*\[.*\])?")


def prepare(project: Path, target: Target, report: Report, requirements: Path | None = None,
            index: wheelhouse.IndexOptions = wheelhouse.NO_INDEX,
            include: tuple[str, ...] = ()) -> wheelhouse.AppInstall:
    """The app's wheels for ``target``, made on this host (see :func:`wheelhouse.prepare_app`)."""
    app = wheelhouse.prepare_app(project, target, requirements, index, include)
    built = f"; the project built into {app.project_wheel.name}" if app.project_wheel else ""
    report(f"{len(app.wheels)} dependency wheel(s) from {app.source}{built}")
    return app


def with_app(options: DockerfileOptions, app: wheelhouse.AppInstall) -> DockerfileOptions:
    """The Dockerfile installs the pins from the wheelhouse, then the project's wheel."""
    wheel = app.project_wheel.name if app.project_wheel else None
    if wheel is not None and not _WHEEL_NAME.fullmatch(wheel):
        raise UsageError(f"the project's wheel {wheel!r} has a name the Dockerfile cannot carry",
                         "use a version without a local part ('+...')")
    settings = options.settings
    spec = resolve_script(settings.spec, [*app.wheels, *([app.project_wheel]
                                                          if app.project_wheel else [])])
    return replace(options, settings=replace(settings, spec=spec), wheelhouse=True,
                   requirements=f"{options.helpers}/{wheelhouse.PINS_NAME}" if app.pins
                   else None, install_project=False, project_wheel=wheel)


def write_app(helpers: Path, app: wheelhouse.AppInstall) -> None:
    """The pins and the project's wheel into the helpers directory (the dependencies'
    wheels are in its wheelhouse already)."""
    if app.pins:
        (helpers / wheelhouse.PINS_NAME).write_text(app.pins)
    if app.project_wheel is not None:
        (helpers / wheelhouse.PROJECT_DIR).mkdir(exist_ok=True)
        shutil.copy2(app.project_wheel, helpers / wheelhouse.PROJECT_DIR / app.project_wheel.name)


def finish(options: DockerfileOptions, app: wheelhouse.AppInstall | None,
           wheels: list[Path] | None) -> DockerfileOptions:
    """The Dockerfile options once the wheels are known: installed from the host's wheels
    (``app``), or as before; a console-script entry resolved either way."""
    if app is not None:
        return with_app(options, app)
    spec = resolve_script(options.spec, wheels or [], strict=False)
    return replace(options, settings=replace(options.settings, spec=spec))


def resolve_script(spec: AppSpec, wheels: Sequence[Path], strict: bool = True) -> AppSpec:
    """``--script NAME`` as the ``module:function`` its distribution declares, called by the
    image's own python (the farm has no console-script wrappers). When the wheels at hand
    are not all the app installs (``strict`` false: the project installs from its source in
    the builder), a script none of them declares is looked up when the app starts."""
    name = spec.script
    if name is None:
        return spec
    scripts = wheelhouse.console_scripts(wheels)
    if name not in scripts and not strict:
        return replace(spec, entry=script_entry(name))
    if name not in scripts:
        known = ", ".join(sorted(scripts)) or "none"
        raise UsageError(f"no installed distribution declares the console script {name!r}",
                         f"console scripts of the app's wheels: {known}")
    return replace(spec, entry=call_entry(name, scripts[name]))


def call_entry(name: str, target: str) -> tuple[str, ...]:
    """``python -c`` code that runs the entry point ``module:attr.path`` as its console
    script does: argv[0] is the script's name, the return value the exit status."""
    match = _TARGET.fullmatch(target.strip())
    if match is None:
        raise UsageError(f"console script {name!r} points at {target!r}, not module:function")
    module, attr = match.group(1), match.group(2)
    head, _, rest = attr.partition(".")
    call = f"{head}.{rest}" if rest else head
    code = (f"import sys; sys.argv[0] = {name!r}; from {module} import {head}; "
            f"sys.exit({call}())")
    return ("-c", code)


__all__ = ["call_entry", "finish", "prepare", "resolve_script", "script_entry", "with_app",
           "write_app"]
