"""The builder base images the Docker tier builds on (scripts/make-base-image makes them)."""

from __future__ import annotations

from .paths import REPO

SCRIPTS = REPO / "scripts"
MAKE_BASE_IMAGE = SCRIPTS / "make-base-image"

DEBIAN = "local/python:3.11-bookworm"
# image -> (sys.version_info[:2], sys.prefix)
IMAGES = {
    DEBIAN: ((3, 11), "/usr"),
    "local/python:3.13-trixie": ((3, 13), "/usr"),
    "local/python:3.12-slim": ((3, 12), "/usr/local"),
}
OTHER_BASES = ["local/python:3.12-slim", "local/python:3.13-trixie"]
