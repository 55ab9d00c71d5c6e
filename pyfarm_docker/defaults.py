"""Every default the tool assumes about images, in one place."""

from __future__ import annotations

from pathlib import PurePosixPath

PREFIX = PurePosixPath("/app")
BASE = "python:3.12-slim"
FINAL = "scratch"
PYTHON = "3.12"  # python:3.12-slim's, for wheels when no base image is inspected
GLIBC = (2, 36)  # Debian bookworm's
GLIBC_TEXT = f"{GLIBC[0]}.{GLIBC[1]}"
MACHINE = "x86_64"
READY_TIMEOUT = 60.0  # seconds a server may take to open its port
