"""A static busybox for the debug variant, from Debian's busybox-static, cached."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import UsageError
from . import caches


def copy_busybox(dest: Path) -> None:
    cached = caches.BUSYBOX / "busybox"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            for command in (["apt-get", "download", "busybox-static"],
                            ["sh", "-c", "dpkg-deb -x busybox-static_*.deb root"]):
                done = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                                      check=False)
                if done.returncode != 0:
                    raise UsageError(f"cannot get busybox-static: {done.stderr.strip()}",
                                     "the debug variant needs Debian's busybox-static; "
                                     "run apt-get update first")
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(tmp, "root", "bin", "busybox"), cached)
    shutil.copy2(cached, dest)
