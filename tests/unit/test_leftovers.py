"""Unit: leftovers removes exactly what appeared under HOME since the snapshot, and never
follows a symlink out of it."""

from __future__ import annotations

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
