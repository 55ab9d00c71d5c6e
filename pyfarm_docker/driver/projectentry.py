"""The entry a project implies when none is given: ``app.py``, else the one console script
its pyproject.toml declares, else the one package of it with a ``__main__``. So
``pyfarm-docker build .`` in a uv, poetry or setuptools project needs no flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import locks

DEFAULT = ["app.py"]


def default_entry(project: Path) -> list[str]:
    if (project / "app.py").is_file():
        return DEFAULT
    path = project / "pyproject.toml"
    data: dict[str, Any] = locks.load_toml(path) if path.is_file() else {}
    scripts = _scripts(data)
    if len(scripts) == 1:
        return ["--script", scripts[0]]
    mains = sorted({p.parent.name for root in (project, project / "src")
                    for p in root.glob("*/__main__.py")
                    if (p.parent / "__init__.py").is_file()})
    if len(mains) == 1:
        return ["-m", mains[0]]
    return DEFAULT


def _scripts(data: dict[str, Any]) -> list[str]:
    project = data.get("project", {})
    scripts = project.get("scripts", {}) if isinstance(project, dict) else {}
    if not scripts:
        poetry = data.get("tool", {}).get("poetry", {})
        scripts = poetry.get("scripts", {}) if isinstance(poetry, dict) else {}
    return sorted(scripts) if isinstance(scripts, dict) else []
