"""elf.read reads PT_DYNAMIC itself (no section header parsed): it must give what
pyelftools' DynamicSegment gives, on this machine's objects and on objects linked here
(32-bit, RPATH and RUNPATH, no PT_DYNAMIC at all), and None from try_read on files that
are cut short or are not ELF."""

from __future__ import annotations

import _ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from pyfarm_docker.builder import elf

_FIELDS = {"DT_NEEDED": "needed", "DT_SONAME": "soname", "DT_RPATH": "rpath",
           "DT_RUNPATH": "runpath"}


def reference(path: str) -> elf.ElfInfo:
    """What elf.read returned when it walked pyelftools' segment objects."""
    found: dict[str, list[str]] = {name: [] for name in _FIELDS.values()}
    interpreter = ""
    with open(path, "rb") as f:
        elffile = ELFFile(f)
        for segment in elffile.iter_segments():
            if isinstance(segment, InterpSegment):
                interpreter = segment.get_interp_name()
            elif isinstance(segment, DynamicSegment):
                for tag in segment.iter_tags():
                    name = _FIELDS.get(tag.entry.d_tag)
                    if name is not None:
                        found[name].append(getattr(tag, name))
        return elf.ElfInfo(path, (found["soname"] or [""])[0], tuple(found["needed"]),
                           tuple(p for p in ":".join(found["rpath"]).split(":") if p),
                           tuple(p for p in ":".join(found["runpath"]).split(":") if p),
                           interpreter, elffile["e_machine"], elffile.elfclass)


def mapped_objects() -> list[str]:
    """The ELF files this process has mapped: the interpreter, libc, the loader..."""
    with open("/proc/self/maps") as maps:
        paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split()) == 6}
    return sorted(p for p in paths if p.startswith("/") and elf.is_elf(Path(p)))


def test_the_objects_of_this_process_read_as_pyelftools_reads_them() -> None:
    objects = {os.path.realpath(sys.executable), _ctypes.__file__, *mapped_objects()}
    assert any("libc.so" in p for p in objects)
    for path in sorted(objects):
        assert elf.read.__wrapped__(path) == reference(path), path


def test_the_static_loader_cache_tool_reads_as_before() -> None:
    ldconfig = Path("/sbin/ldconfig")
    if not elf.is_elf(ldconfig):
        pytest.skip("no ELF /sbin/ldconfig here")
    assert elf.read.__wrapped__(str(ldconfig)) == reference(str(ldconfig))


_CODE = ".text\n.globl _start\n_start:\n  ret\n"


def _link(tmp_path: Path, name: str, bits: int, *ld_args: str) -> str:
    """An object linked by binutils from a one-instruction source (skips without them)."""
    if shutil.which("as") is None or shutil.which("ld") is None:
        pytest.skip("binutils (as, ld) are not installed")
    source, obj = tmp_path / f"{name}.s", tmp_path / f"{name}.o"
    source.write_text(_CODE)
    emulation = ["-m", "elf_i386"] if bits == 32 else []
    subprocess.run(["as", f"--{bits}", "-o", str(obj), str(source)], check=True)
    subprocess.run(["ld", *emulation, "-o", str(tmp_path / name), str(obj), *ld_args],
                   check=True, cwd=tmp_path)
    return str(tmp_path / name)


@pytest.mark.parametrize("bits", [32, 64])
def test_linked_objects_read_as_pyelftools_reads_them(tmp_path: Path, bits: int) -> None:
    dep = _link(tmp_path, "libdep.so", bits, "-shared", "-soname", "libdep.so.1")
    rpath = _link(tmp_path, "librp.so", bits, "-shared", "-soname", "librp.so.2",
                  "-rpath", "$ORIGIN/a:/opt/b", "--disable-new-dtags", "libdep.so")
    runpath = _link(tmp_path, "librun.so", bits, "-shared", "--enable-new-dtags",
                    "-rpath", "/opt/c", "libdep.so", "librp.so")
    program = _link(tmp_path, "prog", bits, "-dynamic-linker", "/lib/ld-test.so.1",
                    "libdep.so")
    static = _link(tmp_path, "static", bits, "-static")
    for path in (dep, rpath, runpath, program, static):
        assert elf.read.__wrapped__(path) == reference(path), path
    assert elf.read.__wrapped__(rpath).rpath == ("$ORIGIN/a", "/opt/b")
    assert elf.read.__wrapped__(runpath).needed == ("libdep.so.1", "librp.so.2")
    assert elf.read.__wrapped__(program).interpreter == "/lib/ld-test.so.1"
    assert elf.read.__wrapped__(static).elfclass == bits


def test_files_cut_short_or_not_elf_are_not_read(tmp_path: Path) -> None:
    libc = next(p for p in mapped_objects() if "libc.so" in p)
    data = Path(libc).read_bytes()
    for n, length in enumerate((3, 16, 60, 1000, len(data) // 2, len(data) - 1)):
        cut = tmp_path / f"cut{n}"
        cut.write_bytes(data[:length])
        assert elf.try_read(str(cut)) is None, length
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    text = tmp_path / "text.so"
    text.write_text("INPUT(libc.so.6)\n")
    assert elf.try_read(str(garbage)) is None
    assert elf.try_read(str(text)) is None
    assert elf.try_read(str(tmp_path / "absent")) is None
