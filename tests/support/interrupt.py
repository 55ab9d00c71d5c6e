"""Ctrl-C a `build` while its builder runs the app."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .baseimages import DEBIAN


def interrupt_while_tracing(project: Path, tag: str, *flags: str) -> None:
    """Ctrl-C a `build` while its builder traces the app: exit 130, 'interrupted'.

    The trace step must not be cached, or the build finishes before the signal: give a
    project whose source no earlier build had (leftovers.Own.project does).
    """
    proc = subprocess.Popen([sys.executable, "-m", "pyfarm_docker", "build", str(project),
                             "--base", DEBIAN, "--network", "none", "-t", tag, *flags],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "pyfarm-docker trace" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, "".join(seen)[-3000:]
    rest = proc.stderr.read()
    assert "interrupted" in rest, "".join(seen)[-3000:] + rest[-3000:]
