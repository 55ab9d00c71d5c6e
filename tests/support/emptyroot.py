"""Run a program inside a directory that holds nothing but an assembled farm.

A private mount and PID namespace (unshare) gets a fresh /proc, a tiny /dev and
the host's /etc/hosts (Docker provides those too); the program runs chrooted
there as uid/gid 65532 with an empty environment plus what the image would set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Mapping, Sequence

_SETUP = r"""
set -e
root=$1; shift
mkdir -p "$root/proc" "$root/dev/shm" "$root/etc"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
mkdir -m 1777 "$root/dev/shm"
for node in null zero urandom random; do
    touch "$root/dev/$node"; mount --bind "/dev/$node" "$root/dev/$node"
done
touch "$root/etc/hosts"; mount --bind /etc/hosts "$root/etc/hosts"
exec "$@"
"""


def command(root: Path, argv: Sequence[str], cwd: str = "/",
            env: Mapping[str, str] | None = None) -> list[str]:
    """The host command line that runs ``argv`` inside ``root``."""
    variables = [f"{k}={v}" for k, v in (env or {}).items()]
    inner = ["env", "-i", *variables, "unshare", f"--root={root}", f"--wd={cwd}",
             "--setuid=65532", "--setgid=65532", *argv]
    return ["unshare", "--mount", "--pid", "--fork", "--kill-child",
            "sh", "-c", _SETUP, "sh", str(root), *inner]


def run(root: Path, argv: Sequence[str], cwd: str = "/", env: Mapping[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(root, argv, cwd, env), capture_output=True, text=True,
                          timeout=timeout, check=False)
