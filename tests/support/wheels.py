"""Write real (installable) wheels from a dict of files, for the tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(dest: Path, name: str, files: dict[str, bytes], tag: str = "py3-none-any"
               ) -> Path:
    info = f"{name}-1.0.dist-info"
    entries = dict(files)
    entries[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
    entries[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: false\n"
                                f"Tag: {tag}\n").encode()
    record = [f"{n},sha256={_digest(d)},{len(d)}" for n, d in entries.items()]
    entries[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = dest / f"{name}-1.0-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for n, d in entries.items():
            info_entry = zipfile.ZipInfo(n)
            info_entry.external_attr = 0o755 << 16
            archive.writestr(info_entry, d)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
