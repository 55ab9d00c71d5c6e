"""ELF reading, loader-order resolution and the patcher, on objects gcc builds here (host
tier: it needs the C compiler)."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import pytest

from pyfarm_docker.builder import elf, ldso, patch
from pyfarm_docker.builder.plan import RpathEdit
from tests.support.native import shared_library

pytestmark = pytest.mark.host


@pytest.fixture
def two_libs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return (shared_library(tmp_path / "a" / "libdup.so.1", "libdup.so.1", 1),
            shared_library(tmp_path / "b" / "libdup.so.1", "libdup.so.1", 2))


def _user(tmp_path: Path, lib: Path, flags: list[str]) -> Path:
    import subprocess

    src = tmp_path / "user.c"
    src.write_text("int dup_value(void); int use(void) { return dup_value(); }\n")
    out = tmp_path / "libuser.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), str(lib), *flags],
                   check=True)
    return out


def test_read_reports_needed_soname_and_rpath(tmp_path: Path,
                                              two_libs: tuple[Path, Path]) -> None:
    user = _user(tmp_path, two_libs[0], ["-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/a"])
    info = elf.read(str(user))
    assert "libdup.so.1" in info.needed
    assert info.rpath == ("$ORIGIN/a",) and info.runpath == ()
    assert elf.read(str(two_libs[0])).soname == "libdup.so.1"
    assert elf.try_read(__file__) is None


def test_rpath_wins_over_ld_library_path(tmp_path: Path, two_libs: tuple[Path, Path]) -> None:
    user = _user(tmp_path, two_libs[0], ["-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/a"])
    resolver = ldso.Resolver(cache={}, ld_library_path=(str(tmp_path / "b"),))
    assert resolver.resolve("libdup.so.1", elf.read(str(user))) == str(tmp_path / "a/libdup.so.1")


def test_runpath_comes_after_ld_library_path(tmp_path: Path,
                                             two_libs: tuple[Path, Path]) -> None:
    user = _user(tmp_path, two_libs[0], ["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/a"])
    resolver = ldso.Resolver(cache={}, ld_library_path=(str(tmp_path / "b"),))
    assert resolver.resolve("libdup.so.1", elf.read(str(user))) == str(tmp_path / "b/libdup.so.1")


def test_rpath_of_the_loader_is_inherited_but_not_runpath(
    tmp_path: Path, two_libs: tuple[Path, Path]
) -> None:
    user = elf.read(str(_user(tmp_path, two_libs[0], ["-Wl,--disable-new-dtags"])))
    parent_rpath = elf.ElfInfo("/x/exe", "", (), (str(tmp_path / "b"),), (), "", "EM_X86_64", 64)
    parent_runpath = elf.ElfInfo("/x/exe", "", (), (), (str(tmp_path / "b"),), "", "EM_X86_64",
                                 64)
    resolver = ldso.Resolver(cache={})
    assert resolver.resolve("libdup.so.1", user, (parent_rpath,)) == str(
        tmp_path / "b/libdup.so.1")
    assert resolver.resolve("libdup.so.1", user, (parent_runpath,)) is None


def test_patcher_writes_rpath_not_runpath(tmp_path: Path, two_libs: tuple[Path, Path]) -> None:
    user = _user(tmp_path, two_libs[0], ["-Wl,--enable-new-dtags", "-Wl,-rpath,/nowhere"])
    root = tmp_path / "root"
    (root / "lib").mkdir(parents=True)
    shutil.copy(user, root / "lib" / "libuser.so")
    edit = RpathEdit(PurePosixPath("lib/libuser.so"), "/app/symlinks/libuser.so")
    assert patch.describe([edit]) == ["set RPATH of /lib/libuser.so to /app/symlinks/libuser.so"]
    patch.apply([edit], root, patch.Patchelf())
    info = elf.read(str(root / "lib" / "libuser.so"))
    assert info.rpath == ("/app/symlinks/libuser.so",)
    assert info.runpath == ()
    assert info.needed == elf.read(str(user)).needed


def test_closure_fills_deps_found_through_a_later_loader(
    tmp_path: Path, two_libs: tuple[Path, Path]
) -> None:
    """Like scipy.libs' libgfortran: no RPATH of its own, its loader's DT_RPATH finds its dep."""
    import subprocess

    user = _user(tmp_path, two_libs[0], [])  # libuser.so needs libdup.so.1, no RPATH
    parent_src = tmp_path / "parent.c"
    parent_src.write_text("int use(void); int run(void) { return use(); }\n")
    parent = tmp_path / "libparent.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(parent), str(parent_src), str(user),
                    "-Wl,--disable-new-dtags", f"-Wl,-rpath,{tmp_path}:{tmp_path / 'a'}"],
                   check=True)
    graph = ldso.closure([str(user), str(parent)], ldso.Resolver(cache={}))
    assert graph[str(user)].deps["libdup.so.1"] == str(tmp_path / "a" / "libdup.so.1")
