"""Host virtualenvs for corpus cases, cached by the hash of their requirements."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from .paths import CACHE, HOST_PYTHON


def case_venv(requirements: Path, python: str = HOST_PYTHON) -> Path:
    """A venv with ``requirements`` installed; built once per requirements content."""
    key = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()[:16]
    venv = CACHE / "venvs" / key
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    if requirements.read_text().strip():
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--only-binary=:all:", "-r", str(requirements)], check=True)
    (venv / ".complete").touch()
    return venv
