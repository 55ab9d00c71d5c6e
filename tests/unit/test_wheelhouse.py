"""Wheelhouse without the package index: platform tags, and the errors and the empty
download that come before pip would ask it (tests/host/test_wheelhouse_index.py asks it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker.driver.target import Target
from pyfarm_docker.driver.wheelhouse import download, platform_tags
from pyfarm_docker.errors import UsageError


def test_platform_tags_bookworm_x86_64() -> None:
    tags = platform_tags((2, 36), "x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-1] == "linux_x86_64"
    assert len(tags) == len(set(tags))
    # manylinux_2_G for G = 36 ... 5, three legacy aliases, linux.
    assert len(tags) == (36 - 5 + 1) + 3 + 1
    versioned = [t for t in tags if t.startswith("manylinux_2_")]
    assert [int(t.split("_")[2]) for t in versioned] == list(range(36, 4, -1))
    # Each legacy alias comes right after the glibc version it stands for.
    for legacy, glibc in (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5)):
        i = tags.index(f"{legacy}_x86_64")
        assert tags[i - 1] == f"manylinux_2_{glibc}_x86_64"
    assert "manylinux_2_28_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def test_platform_tags_other_machine_and_old_glibc() -> None:
    arm = platform_tags((2, 28), "aarch64")
    assert arm[0] == "manylinux_2_28_aarch64"
    assert arm[-3:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]
    assert not any("manylinux1" in t or "manylinux2010" in t for t in arm)
    assert platform_tags((2, 17))[:2] == ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    assert platform_tags((2, 4)) == ["linux_x86_64"]


def test_platform_tags_rejects_bad_input() -> None:
    with pytest.raises(UsageError):
        platform_tags((3, 1))
    with pytest.raises(UsageError):
        platform_tags((2, 36), "x86 64")


def test_bad_python_version(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="3-11"):
        download(["six"], tmp_path, Target("3-11"))


def test_empty_requirements_file(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# nothing to install\n")
    assert download(["-r", str(req)], tmp_path / "wh", Target("3.12")) == []
    assert (tmp_path / "wh").is_dir()


def test_missing_requirements_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.txt"):
        download(["-r", str(tmp_path / "nope.txt")], tmp_path / "wh", Target("3.11"))
