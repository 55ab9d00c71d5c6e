"""Read-only questions about ELF files (pyelftools); nothing here writes a binary."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    """True for a regular file that starts with the ELF magic."""
    try:
        with path.open("rb") as f:
            return f.read(4) == _MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class ElfInfo:
    """The dynamic-linking facts of one ELF object."""

    path: str
    soname: str
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    interpreter: str
    machine: str
    elfclass: int

    def compatible(self, other: ElfInfo) -> bool:
        """The loader only accepts dependencies of the same class and machine."""
        return (self.machine, self.elfclass) == (other.machine, other.elfclass)


def _split(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(":") if p)


@functools.lru_cache(maxsize=None)
def read(path: str) -> ElfInfo:
    """Parse ``path``'s dynamic section; raises ELFError for files that are not ELF."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        tags: dict[str, list[str]] = {"DT_NEEDED": [], "DT_SONAME": [], "DT_RPATH": [],
                                      "DT_RUNPATH": []}
        interpreter = ""
        # Program headers only: what the loader reads, and a tenth of the section headers.
        for segment in elf.iter_segments():
            if isinstance(segment, InterpSegment):
                interpreter = segment.get_interp_name()
            elif isinstance(segment, DynamicSegment):
                for tag in segment.iter_tags():
                    _collect(tags, tag)
        return ElfInfo(
            path=path,
            soname=(tags["DT_SONAME"] or [""])[0],
            needed=tuple(tags["DT_NEEDED"]),
            rpath=_split(":".join(tags["DT_RPATH"])),
            runpath=_split(":".join(tags["DT_RUNPATH"])),
            interpreter=interpreter,
            machine=elf["e_machine"],
            elfclass=elf.elfclass,
        )


_TAG_ATTRS = {"DT_NEEDED": "needed", "DT_SONAME": "soname", "DT_RPATH": "rpath",
              "DT_RUNPATH": "runpath"}


def _collect(tags: dict[str, list[str]], tag: Any) -> None:
    attr = _TAG_ATTRS.get(tag.entry.d_tag)
    if attr is not None:
        tags[tag.entry.d_tag].append(getattr(tag, attr))


def try_read(path: str) -> ElfInfo | None:
    """``read`` for files that may not be ELF objects at all."""
    if not is_elf(Path(path)):
        return None
    try:
        return read(path)
    except (ELFError, OSError, ValueError):
        return None
