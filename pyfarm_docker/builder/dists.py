"""Installed distributions (``*.dist-info``) of a site directory and the files they own."""

from __future__ import annotations

import csv
import email.parser
import posixpath
from pathlib import Path, PurePosixPath

from ..documents.trace import Distribution


def _record_files(dist_info: Path) -> list[str]:
    record = dist_info / "RECORD"
    if not record.is_file():
        return [str(PurePosixPath(dist_info.name, p.name)) for p in sorted(dist_info.iterdir())]
    with record.open(newline="", encoding="utf-8") as f:
        rows = [row[0] for row in csv.reader(f) if row]
    # Scripts land in ../../bin: not part of what the site directory holds. A row that
    # leaves the site directory some other way is not trusted either.
    return sorted({r for r in rows if _inside(r)})


def _inside(row: str) -> bool:
    normal = posixpath.normpath(row)
    return not normal.startswith("/") and ".." not in normal.split("/")


def _read_distribution(site_dir: Path, dist_info: Path) -> Distribution:
    meta_file = dist_info / "METADATA"
    meta = email.parser.Parser().parsestr(
        meta_file.read_text(encoding="utf-8", errors="replace") if meta_file.exists() else ""
    )
    stem = dist_info.name[: -len(".dist-info")]
    return Distribution(
        name=meta.get("Name") or stem.split("-")[0],
        version=meta.get("Version") or "",
        site_dir=str(site_dir),
        dist_info=dist_info.name,
        files=tuple(_record_files(dist_info)),
    )


def scan(site_dir: Path) -> list[Distribution]:
    """Every ``*.dist-info`` in one site directory, sorted by directory name."""
    if not site_dir.is_dir():
        return []
    return [
        _read_distribution(site_dir, d)
        for d in sorted(site_dir.glob("*.dist-info"))
        if d.is_dir()
    ]


def top_level(relative: str) -> str:
    """The first path component: the name a distribution claims in its site dir."""
    # Strings, not PurePosixPath: called for every file of every distribution.
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    first = parts[0]
    if first == "__pycache__" and len(parts) > 1:
        return parts[1].split(".")[0]
    return first[: -len(".py")] if first.endswith(".py") else first


class Owners:
    """Answers which distribution owns a file below a site directory."""

    def __init__(self, dists: list[Distribution]) -> None:
        self._by_file: dict[str, Distribution] = {}
        self._by_top: dict[tuple[str, str], Distribution] = {}
        for dist in dists:
            for rel in dist.files:
                self._by_file[posixpath.normpath(posixpath.join(dist.site_dir, rel))] = dist
                self._by_top.setdefault((dist.site_dir, top_level(rel)), dist)

    def owner(self, site_dir: str, path: str) -> Distribution | None:
        found = self._by_file.get(path)
        if found is not None:
            return found
        rel = PurePosixPath(path).relative_to(site_dir)
        return self._by_top.get((site_dir, top_level(str(rel))))
