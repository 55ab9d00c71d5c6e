"""Read-only questions about ELF files (pyelftools); nothing here writes a binary."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct.lib.container import Container
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


# The dynamic tags read, and the ElfInfo field each one fills.
_STRING_TAGS = {1: "needed", 14: "soname", 15: "rpath", 29: "runpath"}
_DT_NULL, _DT_STRTAB = 0, 5


@functools.lru_cache(maxsize=None)
def read(path: str) -> ElfInfo:
    """Parse ``path``'s dynamic section; raises ELFError for files that are not ELF."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        if elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"] > elf.stream_len:
            # Cut short: patchelf could not rewrite it either (it edits the section table).
            raise ELFError(f"{path}: the section header table runs past the end of the file")
        # Program headers only, what the loader reads: get_segment would build pyelftools'
        # DynamicSegment, which parses every section header to find the string table.
        headers = [struct_parse(elf.structs.Elf_Phdr, f, elf["e_phoff"] + n * elf["e_phentsize"])
                   for n in range(elf.num_segments())]
        strings: dict[str, list[str]] = {name: [] for name in _STRING_TAGS.values()}
        interpreter = ""
        for header in headers:
            if header["p_type"] == "PT_INTERP":
                interpreter = InterpSegment(header, f).get_interp_name()
            elif header["p_type"] == "PT_DYNAMIC" and header["p_filesz"]:
                _collect(f, elf, header, headers, strings)
        return ElfInfo(
            path=path,
            soname=(strings["soname"] or [""])[0],
            needed=tuple(strings["needed"]),
            rpath=_split(":".join(strings["rpath"])),
            runpath=_split(":".join(strings["runpath"])),
            interpreter=interpreter,
            machine=elf["e_machine"],
            elfclass=elf.elfclass,
        )


def _collect(f: BinaryIO, elf: ELFFile, dynamic: Container, headers: list[Container],
             strings: dict[str, list[str]]) -> None:
    """Append the values of PT_DYNAMIC's string tags to ``strings``, by field name."""
    order = "<" if elf.little_endian else ">"
    entry = struct.Struct(order + ("iI" if elf.elfclass == 32 else "qQ"))
    tags = list(_tags(f, dynamic["p_offset"], entry))
    wanted = [(_STRING_TAGS[tag], value) for tag, value in tags if tag in _STRING_TAGS]
    if not wanted:
        return
    address = next((value for tag, value in tags if tag == _DT_STRTAB), None)
    if address is None:
        raise ELFError("string tags without DT_STRTAB")
    table = _file_offset(headers, address)
    for name, offset in wanted:
        strings[name].append(_string(f, table + offset))


def _tags(f: BinaryIO, offset: int, entry: struct.Struct) -> Iterator[tuple[int, int]]:
    """(d_tag, d_val) pairs up to DT_NULL; like pyelftools, not bounded by p_filesz."""
    f.seek(offset)
    while True:
        raw = f.read(entry.size)
        if len(raw) < entry.size:
            raise ELFError(f"the dynamic table at {offset} runs past the end of the file")
        tag, value = entry.unpack(raw)
        yield tag, value
        if tag == _DT_NULL:
            return


def _file_offset(headers: list[Container], address: int) -> int:
    """Where the byte at virtual ``address`` lies in the file: the first PT_LOAD holding it."""
    for header in headers:
        start = header["p_vaddr"]
        if header["p_type"] == "PT_LOAD" and start <= address < start + header["p_filesz"]:
            return int(address - start + header["p_offset"])
    raise ELFError("DT_STRTAB lies in no loaded segment")


def _string(f: BinaryIO, offset: int) -> str:
    """The NUL-terminated string at ``offset``, empty when the file ends first, bytes that
    are not UTF-8 replaced: what pyelftools' string table sections return."""
    f.seek(offset)
    chunks = []
    while True:
        chunk = f.read(64)
        head, nul, _ = chunk.partition(b"\0")
        chunks.append(head)
        if nul:
            return b"".join(chunks).decode("utf-8", errors="replace")
        if len(chunk) < 64:
            return ""


def try_read(path: str) -> ElfInfo | None:
    """``read`` for files that may not be ELF objects at all."""
    if not is_elf(Path(path)):
        return None
    try:
        return read(path)
    except (ELFError, OSError, ValueError):
        return None
