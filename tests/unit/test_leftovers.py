"""Unit: leftovers removes exactly what appeared under HOME since the snapshot, and never
follows a symlink out of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pyfarm_docker.builder import leftovers


def test_only_new_entries_go(tmp_path: Path) -> None:
    home, outside = tmp_path / "home", tmp_path / "outside"
    (home / "kept").mkdir(parents=True)
    outside.mkdir()
    (home / "kept" / "old.txt").write_text("old")
    before = leftovers.snapshot(home)
    assert before == frozenset({"kept", "kept/old.txt"})
    (home / "kept" / "new.txt").write_text("new")
    (home / "fresh" / "deep").mkdir(parents=True)
    (home / "fresh" / "deep" / "x").write_text("x")
    (outside / "precious").write_text("p")
    (home / "link").symlink_to(outside)
    removed = leftovers.remove_new(home, before)
    assert sorted(removed) == ["fresh", "kept/new.txt", "link"]
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == [
        "kept", "kept/old.txt"]
    assert (outside / "precious").read_text() == "p"


def test_home_related_to_the_app_is_not_tracked(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert leftovers.home_of_run(tmp_path / "src", tmp_path / "out" / "trace.json") is None
    monkeypatch.setenv("HOME", "/")
    assert leftovers.home_of_run(tmp_path / "src", tmp_path / "trace.json") is None
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert leftovers.home_of_run(tmp_path / "src", tmp_path / "src" / "trace.json") == (
        tmp_path / "home").resolve()


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
def test_what_cannot_be_removed_stays_and_the_rest_goes(tmp_path: Path) -> None:
    """An immutable new file (unremovable even for root) stays, unreported; the removal
    goes on and raises nothing."""
    before = leftovers.snapshot(tmp_path)
    assert before is not None
    (tmp_path / "stuck").write_text("x")
    (tmp_path / "loose").write_text("y")
    if subprocess.run(["chattr", "+i", str(tmp_path / "stuck")], check=False).returncode:
        pytest.skip("this file system has no immutable flag")
    try:
        assert leftovers.remove_new(tmp_path, before) == ["loose"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["stuck"]
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "stuck")], check=True)
