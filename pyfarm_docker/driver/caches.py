"""Where the driver caches downloads between runs (tool wheels, app wheelhouses, busybox)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path.home() / ".cache" / "pyfarm-docker"
TOOL_WHEELS = ROOT / "tool-wheels"
WHEELHOUSES = ROOT / "wheelhouses"
BUSYBOX = ROOT / "busybox"
