"""Host tier: what a traced run writes in $HOME (an app's cache) is gone once `trace`
ends, so the builder image does not start faster than a fresh container would; what was
in HOME before the run stays, and a HOME that holds the app is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from tests.support.paths import HOST_PYTHON

pytestmark = pytest.mark.host

# Like matplotlib: read a cache if there is one, else build it (in a new directory).
APP = """import os, pathlib
home = pathlib.Path(os.environ["HOME"])
print((home / "settings.ini").read_text().strip())
cache = home / ".cache" / "app" / "fontlist.json"
if not cache.exists():
    cache.parent.mkdir(parents=True)
    cache.write_text("{}")
(home / "notes.txt").write_text("written by the run")
print("cache", cache.exists())
"""


def _trace(app_dir: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOME", str(home))
    (app_dir / "app.py").write_text(APP)
    trace = run_trace(TraceOptions((HOST_PYTHON, "app.py"), app_dir / "trace.json",
                                   cwd=app_dir))
    return "\n".join(trace.native.written)


def test_the_runs_cache_in_home_is_removed(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home, app_dir = tmp_path / "home", tmp_path / "src"
    home.mkdir()
    app_dir.mkdir()
    (home / "settings.ini").write_text("colour = blue\n")
    (home / ".cache").mkdir()
    (home / ".cache" / "other.txt").write_text("from before the run")
    written = _trace(app_dir, home, monkeypatch)
    assert str(home / ".cache/app/fontlist.json") in written  # the run did write it
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == [
        ".cache", ".cache/other.txt", "settings.ini"]
    assert (home / ".cache" / "other.txt").read_text() == "from before the run"
    assert (app_dir / "trace.json").is_file()


def test_a_home_holding_the_app_is_left_alone(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.ini").write_text("colour = red\n")
    _trace(tmp_path, tmp_path, monkeypatch)
    assert (tmp_path / ".cache" / "app" / "fontlist.json").is_file()
    assert (tmp_path / "notes.txt").is_file()
