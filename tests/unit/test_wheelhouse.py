"""Wheelhouse: platform tags (pure) and real `pip download`s from the package index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyfarm_docker.driver.target import Target
from pyfarm_docker.driver.wheelhouse import STAMP_NAME, download, main, platform_tags
from pyfarm_docker.errors import PyfarmError, UsageError


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


def test_pure_wheel(tmp_path: Path) -> None:
    wheels = download(["six"], tmp_path / "wh", Target("3.11"))
    assert [w.name.split("-")[0] for w in wheels] == ["six"]
    assert wheels[0].name.endswith("-none-any.whl")
    assert wheels[0].parent == tmp_path / "wh"


def test_numpy_manylinux_wheel_for_target_python(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy>=2,<3\n")
    wheels = download(["-r", str(req)], tmp_path / "wh", Target("3.11"))
    names = [w.name for w in wheels]
    assert len(names) == 1, names
    assert names[0].startswith("numpy-2.")
    assert "-cp311-cp311-" in names[0]
    assert "manylinux" in names[0]
    assert names[0].endswith("_x86_64.whl")


def test_empty_requirements_file(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# nothing to install\n")
    assert download(["-r", str(req)], tmp_path / "wh", Target("3.12")) == []
    assert (tmp_path / "wh").is_dir()


def test_unknown_package_names_it(tmp_path: Path) -> None:
    name = "pyfarm-no-such-package-zq7x"
    with pytest.raises(PyfarmError) as info:
        download([name], tmp_path / "wh", Target("3.11"))
    assert name in info.value.message
    assert "No matching distribution" in info.value.message
    assert info.value.hint


def test_missing_requirements_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.txt"):
        download(["-r", str(tmp_path / "nope.txt")], tmp_path / "wh", Target("3.11"))


def test_second_call_uses_cache(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six\n")
    dest = tmp_path / "wh"
    first = download(["-r", str(req)], dest, Target("3.11"))
    stamp = dest / STAMP_NAME
    before = stamp.stat().st_mtime_ns
    assert json.loads(stamp.read_text())["wheels"] == [w.name for w in first]

    # Same arguments and file contents: pip is not run, so the stamp is not rewritten.
    assert download(["-r", str(req)], dest, Target("3.11")) == first
    assert stamp.stat().st_mtime_ns == before

    # Another target or changed file contents invalidate the stamp.
    download(["-r", str(req)], dest, Target("3.12"))
    after_target = stamp.stat().st_mtime_ns
    assert after_target != before
    req.write_text("six  # changed\n")
    download(["-r", str(req)], dest, Target("3.12"))
    assert stamp.stat().st_mtime_ns != after_target


def test_nested_requirements_file_is_part_of_the_key(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six\n")
    req = tmp_path / "requirements.txt"
    req.write_text("-r base.txt\n")
    dest = tmp_path / "wh"
    download(["-r", str(req)], dest, Target("3.11"))
    stamp = dest / STAMP_NAME
    before = stamp.stat().st_mtime_ns
    download(["-r", str(req)], dest, Target("3.11"))
    assert stamp.stat().st_mtime_ns == before
    (tmp_path / "base.txt").write_text("six==1.17.0\n")
    download(["-r", str(req)], dest, Target("3.11"))
    assert stamp.stat().st_mtime_ns != before


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("six\n")
    assert main(["-r", str(req), "-o", str(tmp_path / "wh"), "--python", "3.11"]) == 0
    assert "1 wheel(s)" in capsys.readouterr().err
    rc = main(["pyfarm-no-such-package-zq7x", "-o", str(tmp_path / "wh"), "--python", "3.11"])
    assert rc == UsageError.exit_code
    assert "pyfarm-no-such-package-zq7x" in capsys.readouterr().err
