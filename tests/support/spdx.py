"""SPDX documents checked by the spdx-tools validator (``pyspdxtools``, the test extra),
and what the SBOM must say of a farm."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

PYSPDXTOOLS = Path(sys.executable).parent / "pyspdxtools"
_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")


def problems(document: bytes | dict[str, Any], work: Path) -> str:
    """What the validator finds wrong with an SPDX 2.3 JSON document ("" when valid)."""
    path = work / "document.spdx.json"
    path.write_bytes(document if isinstance(document, bytes) else json.dumps(document).encode())
    done = subprocess.run([str(PYSPDXTOOLS), "-i", str(path)], capture_output=True, text=True,
                          timeout=300, check=False)
    return "" if done.returncode == 0 else (done.stdout + done.stderr)


def purls(document: dict[str, Any]) -> dict[str, str]:
    """SPDXID -> the package's purl."""
    return {p["SPDXID"]: ref["referenceLocator"] for p in document["packages"]
            for ref in p.get("externalRefs", []) if ref["referenceType"] == "purl"}


def unlisted_libraries(document: dict[str, Any], farm_files: list[str]) -> list[str]:
    """Native libraries of the farm (files below reals/r that are not extension modules)
    that no package of the document names: by its own package, or in the comment of the
    Debian package or CPython package that covers it."""
    named = set()
    for package in document["packages"]:
        named.add(package["name"].rsplit("/", 1)[-1])
        comment = package.get("comment", "")
        if comment.startswith("shipped native files: "):
            named.update(comment[len("shipped native files: "):].split(", "))
    libraries = [f.rsplit("/", 1)[-1] for f in farm_files
                 if "/reals/r/" in f"/{f}" and not _EXTENSION.search(f)]
    return sorted(name for name in libraries if name not in named)
