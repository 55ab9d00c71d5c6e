"""Build hook: compile the native file tracer (csrc/fstrace.c) into the package.

It is linked statically, so the builder stage of any glibc or musl base image can run it
without installing anything there; that makes the wheel a platform wheel (Linux, this
machine's architecture) though the Python code is pure.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("csrc") / "fstrace.c"
TARGET = Path("pyfarm_docker") / "builder" / "libexec" / "pyfarm-fstrace"


def compile_helper(root: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("pyfarm-docker needs a C compiler and static libc to build its "
                           "tracer: apt-get install gcc libc6-dev")
    target = root / TARGET
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-static", "-o", str(target),
                    str(root / SOURCE)], check=True)
    return target


class NativeHelperHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        target = compile_helper(Path(self.root))
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-linux_{platform.machine()}"
        if version != "editable":
            build_data["force_include"][str(target)] = str(TARGET)
