"""Where a project's wheels come from, against the real package index (host tier): an
sdist-only pure-Python dependency is built into a wheel on the host, also when a lock
pins it by its sdist's hash; a lock whose hash does not match stops the build; a
dependency with native code and no wheel for the target is a one-line error naming it
and the target's tags; the project itself is built by its own backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker.driver import projectinstall, wheelhouse
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import PyfarmError, UsageError

pytestmark = pytest.mark.host

DOCOPT_SDIST = "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"
PROJECT = """[project]
name = "tool"
version = "0.2"
dependencies = ["docopt==0.6.2"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


def _project(tmp_path: Path, lock: str | None = None) -> Path:
    project = tmp_path / "tool"
    (project / "src" / "tool").mkdir(parents=True)
    (project / "src" / "tool" / "__init__.py").write_text("import docopt\n")
    (project / "pyproject.toml").write_text(PROJECT)
    if lock is not None:
        (project / "pdm.lock").write_text(lock)
    return project


def _lock(digest: str) -> str:
    return f"""[metadata]
groups = ["default"]
lock_version = "4.5.0"

[[package]]
name = "docopt"
version = "0.6.2"
groups = ["default"]
files = [
    {{file = "docopt-0.6.2.tar.gz", hash = "sha256:{digest}"}},
]
"""


def _isolated_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pyfarm_docker.driver import caches
    monkeypatch.setattr(caches, "WHEELHOUSES", tmp_path / "wheelhouses")
    monkeypatch.setattr(caches, "ROOT", tmp_path / "cache")


def test_sdist_only_dependency_built_on_the_host(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated_cache(monkeypatch, tmp_path)
    app = projectinstall.prepare(_project(tmp_path), Target("3.12"), lambda _: None)
    assert [w.name for w in app.wheels] == ["docopt-0.6.2-py2.py3-none-any.whl"]
    assert app.pins == "docopt==0.6.2\n"
    assert app.project_wheel is not None
    assert app.project_wheel.name.startswith("tool-0.2-")
    assert wheelhouse.requires_dist(app.project_wheel) == ["docopt==0.6.2"]
    assert app.source == "the project's metadata"
    assert not (tmp_path / "tool" / "build").exists(), "the build wrote into the project"


def test_locked_sdist_hash_checked_then_built(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated_cache(monkeypatch, tmp_path)
    app = projectinstall.prepare(_project(tmp_path, _lock(DOCOPT_SDIST)), Target("3.11"),
                                 lambda _: None)
    assert app.source == "pdm.lock"
    assert [w.name for w in app.wheels] == ["docopt-0.6.2-py2.py3-none-any.whl"]


def test_lock_with_a_wrong_hash_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated_cache(monkeypatch, tmp_path)
    with pytest.raises(PyfarmError) as err:
        projectinstall.prepare(_project(tmp_path, _lock("0" * 64)), Target("3.11"),
                               lambda _: None)
    assert "hash" in err.value.message.lower()
    assert "\n" not in err.value.message


def test_native_dependency_without_a_wheel_for_the_target(tmp_path: Path) -> None:
    """MarkupSafe 2.1.5 has wheels up to CPython 3.12 and C sources in its sdist."""
    with pytest.raises(UsageError) as err:
        wheelhouse.download(["markupsafe==2.1.5"], tmp_path / "wh", Target("3.14", (2, 36)),
                            built=tmp_path / "built")
    message = err.value.message
    assert message.startswith("No matching distribution found for markupsafe==2.1.5: no "
                              "wheel for CPython 3.14 on x86_64")
    assert "cp314-cp314" in message and "manylinux_2_36_x86_64" in message
    assert "native code" in message and "\n" not in message


def test_requirements_flag_overrides_the_lock(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated_cache(monkeypatch, tmp_path)
    project = _project(tmp_path, _lock("0" * 64))  # the lock would fail: it is not read
    pins = tmp_path / "prod.txt"
    pins.write_text("docopt==0.6.2\nsix==1.17.0\n")
    app = projectinstall.prepare(project, Target("3.11"), lambda _: None, requirements=pins)
    assert app.source == str(pins)
    assert app.pins == "docopt==0.6.2\nsix==1.17.0\n"
