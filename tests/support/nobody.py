"""Run the CLI as uid 65534, a user outside the docker group (root passes every permission
check), wherever the checkout lives.

The checkout and its venv may be where uid 65534 cannot look (a clone under /root, mode
0700): then `python -m pyfarm_docker` as that user finds no module. So the package and
the files of every distribution it requires are copied into a world-readable directory
put on PYTHONPATH, and the interpreter is one of the same X.Y that uid 65534 can run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import pyfarm_docker

NOBODY = 65534
_SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@dataclass(frozen=True)
class Nobody:
    """An install of the tool that uid 65534 can read, in ``root``."""

    root: Path
    python: str

    @property
    def site(self) -> Path:
        return self.root / "site"

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``pyfarm-docker ARGV`` as uid 65534, from this install only."""
        env = dict(os.environ, PYTHONPATH=str(self.site), HOME=str(self.root))
        return subprocess.run([*_SETPRIV, self.python, "-s", "-m", "pyfarm_docker", *argv],
                              cwd=self.root, env=env, capture_output=True, text=True,
                              check=False)


def install(root: Path) -> Nobody:
    """Copy the tool into ``root`` (which uid 65534 must be able to reach) and find an
    interpreter for it."""
    site = root / "site"
    for dist in _requirements("pyfarm-docker"):
        for name in dist.files or []:
            source = Path(str(dist.locate_file(name)))
            if name.parts[0] == ".." or name.suffix == ".pth" or "__pycache__" in name.parts:
                continue  # scripts, the editable install's path hook, bytecode
            if source.is_file():
                (site / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, site / name)
    shutil.copytree(Path(pyfarm_docker.__file__).parent, site / "pyfarm_docker",
                    ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return Nobody(root, _python(root))


def _requirements(name: str) -> list[metadata.Distribution]:
    """``name``'s distribution and every one it requires, extras left out."""
    found: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _python(root: Path) -> str:
    """A CPython of this X.Y that uid 65534 can run: the compiled modules copied (cp3XX)
    need the same minor version. The system's comes first, then this venv's base."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [shutil.which(f"python{version}", path=d)
                  for d in ("/usr/local/bin", "/usr/bin", "/bin")]
    candidates += [getattr(sys, "_base_executable", None), os.path.realpath(sys.executable)]
    for python in candidates:
        if python is None:
            continue
        done = subprocess.run([*_SETPRIV, python, "-s", "-c",
                               "import ssl, sys; print('%d.%d' % sys.version_info[:2])"],
                              cwd=root, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == version:
            return python
    pytest.fail(f"no python{version} that uid {NOBODY} can run (tried {candidates})",
                pytrace=False)
