"""A project's lock file as pinned requirements with hashes, for ``pip download``.

Detection order: ``uv.lock``, ``poetry.lock``, ``pdm.lock``, ``pylock.toml`` (PEP 751).
uv.lock is exported by uv itself (``uv export --frozen``, which only reads the lock);
the others are TOML and are read here. Each gives ``name==version --hash=sha256:...``
lines for the packages the project's default (non-dev) dependencies need, with the
environment markers the lock records; pip then evaluates the markers for the target
and checks every downloaded file against its hashes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import PyfarmError, UsageError

__all__ = ["LOCK_FILES", "Locked", "detect", "normalize", "read"]

LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "pylock.toml")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Locked:
    """Requirements text from a lock file: every line pinned and hashed."""

    source: Path
    text: str

    @property
    def names(self) -> list[str]:
        return [m.group(1) for line in self.text.splitlines()
                if (m := _NAME.match(line)) and not line.lstrip().startswith("-")]


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def detect(project: Path) -> Path | None:
    """The project's lock file, if any (``pylock.*.toml`` counts as pylock.toml)."""
    for name in LOCK_FILES:
        if (project / name).is_file():
            return project / name
    named = sorted(project.glob("pylock.*.toml"))
    return named[0] if named else None


def load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python < 3.11
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    return data


def read(path: Path) -> Locked:
    """Pinned, hashed requirements from the lock file at ``path``."""
    name = path.name
    if name == "uv.lock":
        return Locked(path, uv_export(path.parent))
    data = load_toml(path)
    if name == "poetry.lock":
        text = poetry_requirements(data, _pyproject(path.parent), str(path))
    elif name == "pdm.lock":
        text = pdm_requirements(data, str(path))
    else:
        text = pylock_requirements(data, str(path))
    return Locked(path, text)


def _pyproject(project: Path) -> dict[str, Any]:
    path = project / "pyproject.toml"
    return load_toml(path) if path.is_file() else {}


# -- uv -----------------------------------------------------------------------------------

def uv_command() -> list[str]:
    """uv beside this interpreter (``pip install uv``), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("uv")
    if found:
        return [found]
    raise UsageError("the project has a uv.lock, and uv is not installed",
                     f"install it beside pyfarm-docker (`{sys.executable} -m pip install uv`),"
                     " or export the lock yourself (`uv export --frozen --no-dev "
                     "--no-emit-project -o requirements.lock`) and pass --requirements "
                     "requirements.lock")


def uv_export(project: Path) -> str:
    """``uv export --frozen``: the lock as requirements.txt; reads the lock, resolves
    nothing and downloads nothing."""
    cmd = [*uv_command(), "export", "--frozen", "--format", "requirements-txt", "--no-dev",
           "--no-emit-project", "--no-header", "--directory", str(project)]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["uv printed nothing"])[-1]
        raise PyfarmError(f"uv export of {project / 'uv.lock'} failed: {last}",
                          "run `uv lock` in the project if the lock is out of date")
    # Editable or path entries (workspace members) are the project's own: built apart.
    return "".join(line + "\n" for line in _join_continuations(proc.stdout)
                   if not line.startswith(("-e ", "./", "../", "/")))


def _join_continuations(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        lines.append((current + stripped).strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


# -- poetry -------------------------------------------------------------------------------

def _poetry_roots(pyproject: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """The project's main dependencies: name -> markers of the edges to it."""
    roots: dict[str, list[str | None]] = {}
    project = pyproject.get("project", {})
    for spec in project.get("dependencies", []) if isinstance(project, dict) else []:
        if isinstance(spec, str) and (m := _NAME.match(spec)):
            marker = spec.split(";", 1)[1].strip() if ";" in spec else None
            roots.setdefault(normalize(m.group(1)), []).append(marker)
    poetry = pyproject.get("tool", {}).get("poetry", {})
    deps = poetry.get("dependencies", {}) if isinstance(poetry, dict) else {}
    for name, spec in deps.items():
        if normalize(name) == "python":
            continue
        entries = spec if isinstance(spec, list) else [spec]
        for entry in entries:
            if isinstance(entry, dict) and entry.get("optional"):
                continue
            roots.setdefault(normalize(name), []).append(_poetry_marker(entry))
    return roots


def _poetry_marker(spec: object) -> str | None:
    """The marker of a poetry dependency spec: ``markers`` and ``python`` keys."""
    if not isinstance(spec, dict):
        return None
    parts = []
    if isinstance(spec.get("markers"), str):
        parts.append(spec["markers"])
    python = spec.get("python")
    if isinstance(python, str) and python.strip() not in ("*", ""):
        parts.extend(_python_marker(python))
    return " and ".join(f"({p})" for p in parts) if parts else None


def _python_marker(constraint: str) -> list[str]:
    """Poetry's python constraint (``>=3.8,<4``, ``^3.9``, ``~3.10``) as markers."""
    out = []
    for part in re.split(r"[,\s]+", constraint.strip()):
        m = re.fullmatch(r"(\^|~=?|>=|<=|==|!=|>|<)?\s*(\d+(?:\.\d+)*)(?:\.\*)?", part)
        if not m:
            continue
        op, version = m.group(1) or "==", m.group(2)
        if op in ("^", "~", "~="):
            major = version.split(".")[0]
            out.append(f"python_full_version >= '{version}'")
            upper = (f"{int(major) + 1}" if op == "^" or version.count(".") == 0
                     else f"{major}.{int(version.split('.')[1]) + 1}")
            out.append(f"python_full_version < '{upper}'")
        elif op == "==" and part.endswith(".*"):
            out.append(f"python_version == '{version}'")
        else:
            out.append(f"python_full_version {op} '{version}'")
    return out


def _combine(markers: Iterable[str | None]) -> str | None:
    """One marker for a package reached by several edges: none if any edge is unconditional."""
    found = list(dict.fromkeys(markers))
    if not found or None in found:
        return None
    if len(found) == 1:
        return found[0]
    return " or ".join(f"({m})" for m in found if m)


def poetry_requirements(lock: Mapping[str, Any], pyproject: Mapping[str, Any],
                        where: str) -> str:
    """poetry.lock's packages the project's main dependencies reach, pinned and hashed.
    Lock format 2.1 (Poetry 2) names each package's groups and markers; 2.0 does not,
    so the graph is walked from pyproject's main dependencies."""
    packages = {normalize(p["name"]): p for p in _tables(lock, "package", where)}
    pending = _poetry_roots(pyproject)
    if not pending:  # no pyproject to start from: every package in the main group
        pending = {n: [p.get("markers") if isinstance(p.get("markers"), str) else None]
                   for n, p in packages.items() if "main" in p.get("groups", ["main"])}
    edges: dict[str, list[str | None]] = {}
    todo = list(pending.items())
    while todo:
        name, markers = todo.pop()
        if name not in packages:
            continue  # a root that is not locked (e.g. an optional extra)
        first = name not in edges
        edges.setdefault(name, []).extend(markers)
        if not first:
            continue
        for dep, spec in (packages[name].get("dependencies") or {}).items():
            entries = spec if isinstance(spec, list) else [spec]
            if any(isinstance(e, dict) and e.get("optional") for e in entries):
                continue
            todo.append((normalize(dep), [_poetry_marker(e) for e in entries]))
    lines = []
    for name in sorted(edges):
        package = packages[name]
        hashes = [f["hash"] for f in package.get("files", []) if isinstance(f, dict)
                  and isinstance(f.get("hash"), str)]
        lines.append(_line(package["name"], package["version"], hashes, _combine(edges[name]),
                           where))
    return "".join(lines)


# -- pdm ------------------------------------------------------------------------------------

def pdm_requirements(lock: Mapping[str, Any], where: str) -> str:
    """pdm.lock's packages in its default group, pinned and hashed."""
    lines = []
    for package in _tables(lock, "package", where):
        if "default" not in package.get("groups", ["default"]):
            continue
        hashes = [f["hash"] for f in package.get("files", []) if isinstance(f, dict)
                  and isinstance(f.get("hash"), str)]
        marker = package.get("marker")
        lines.append(_line(package["name"], package["version"], hashes,
                           marker if isinstance(marker, str) else None, where))
    return "".join(sorted(lines))


# -- PEP 751 --------------------------------------------------------------------------------

def pylock_requirements(lock: Mapping[str, Any], where: str) -> str:
    """pylock.toml's packages for the default install: a package whose marker depends on
    extras or dependency groups belongs to an optional part and is left out."""
    lines = []
    for package in _tables(lock, "packages", where):
        marker = package.get("marker")
        if isinstance(marker, str) and re.search(r"\b(extras|dependency_groups)\b", marker):
            continue
        if "version" not in package:
            raise UsageError(f"{where}: package {package.get('name')!r} has no version "
                             "(a VCS or directory source)",
                             "pass a requirements file with --requirements instead")
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package
                                                else [])]
        hashes = [f"{algo}:{value}" for f in files if isinstance(f, dict)
                  for algo, value in (f.get("hashes") or {}).items() if algo == "sha256"]
        lines.append(_line(package["name"], package["version"], hashes,
                           marker if isinstance(marker, str) else None, where))
    return "".join(sorted(lines))


def _tables(lock: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    tables = lock.get(key, [])
    if not isinstance(tables, list) or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) for t in tables):
        raise UsageError(f"{where}: [[{key}]] entries must be tables with a name")
    return tables


def _line(name: str, version: object, hashes: list[str], marker: str | None,
          where: str) -> str:
    if not isinstance(version, str) or not re.fullmatch(r"[A-Za-z0-9.+!_-]+", version):
        raise UsageError(f"{where}: package {name!r} has no usable version ({version!r})")
    if not _NAME.fullmatch(name):
        raise UsageError(f"{where}: {name!r} is not a package name")
    text = f"{name}=={version}"
    if marker:
        text += f" ; {marker}"
    for digest in hashes:
        text += f" --hash={digest}"
    return text + "\n"
