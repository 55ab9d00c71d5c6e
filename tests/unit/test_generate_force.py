"""`generate --force` replaces only a helpers directory the tool wrote (it holds the
marker file), never the root, the current or a home directory, the project or a directory
holding an input. All refused before anything is written (or downloaded: the writing
half, which downloads the builder's wheels, is in tests/host/test_generate_writes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import generate
from pyfarm_docker.driver.staging import MARKER
from pyfarm_docker.errors import UsageError


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print(1)\n")
    return root


def _generate(project: Path, capsys: pytest.CaptureFixture[str], *flags: str
              ) -> tuple[int, str]:
    code = cli.main(["generate", str(project), "--python", "3.11", *flags])
    return code, capsys.readouterr().err


def _error(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")]
    return line


def _listing(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_force_refuses_a_directory_the_tool_did_not_write(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = project / "deploy"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, err = _generate(project, capsys, "-o", str(mine), "--force")
    assert code == UsageError.exit_code
    assert f"will not replace {mine}: pyfarm-docker did not write it" in _error(err)
    assert _listing(mine) == ["notes.txt"]


def test_force_refuses_the_project_itself(project: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (project / MARKER).write_text("")  # even with a marker
    code, err = _generate(project, capsys, "-o", str(project), "--force")
    assert code == UsageError.exit_code
    assert "will not write the helpers into the project directory" in _error(err)
    assert _listing(project) == [MARKER, "app.py"]


def test_force_refuses_the_current_directory(project: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    here = project / "here"
    here.mkdir()
    (here / MARKER).write_text("")
    (here / "work.txt").write_text("in progress")
    monkeypatch.chdir(here)
    code, err = _generate(project, capsys, "-o", ".", "--force")
    assert code == UsageError.exit_code
    assert f"will not replace {here}: it is the current directory" in _error(err)
    assert _listing(here) == [MARKER, "work.txt"]


def test_force_refuses_a_home_directory(project: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = project / "home"
    home.mkdir()
    (home / MARKER).write_text("")
    (home / ".bashrc").write_text("")
    monkeypatch.setenv("HOME", str(home))
    code, err = _generate(project, capsys, "-o", str(home), "--force")
    assert code == UsageError.exit_code
    assert f"it is a home directory ({home})" in _error(err)
    assert _listing(home) == [".bashrc", MARKER]


def test_force_refuses_a_directory_holding_an_input(project: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The wheelhouse of an earlier `generate --download`, passed back in with --wheelhouse."""
    wheelhouse = project / ".pyfarm" / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    (project / ".pyfarm" / MARKER).write_text("")
    (wheelhouse / "dep-1.0-py3-none-any.whl").write_text("")
    code, err = _generate(project, capsys, "--wheelhouse", str(wheelhouse), "--force")
    assert code == UsageError.exit_code
    assert f"it holds {wheelhouse}, an input of this run" in _error(err)
    assert (wheelhouse / "dep-1.0-py3-none-any.whl").is_file()

    code, err = _generate(project, capsys, "-m", "pkg", "-o", str(project / "pkg"))
    assert code == UsageError.exit_code  # no module pkg: refused before anything is written
    (project / "pkg").mkdir()
    (project / "pkg" / "__main__.py").write_text("print(1)\n")
    (project / "pkg" / MARKER).write_text("")
    code, err = _generate(project, capsys, "-m", "pkg", "-o", str(project / "pkg"), "--force")
    assert code == UsageError.exit_code
    assert "an input of this run" in _error(err)
    assert (project / "pkg" / "__main__.py").is_file()


def test_output_naming_a_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _generate(project, capsys, "-o", str(project / "app.py"), "--force")
    assert code == UsageError.exit_code
    assert f"{project / 'app.py'} is not a directory" in _error(err)
    assert (project / "app.py").read_text() == "print(1)\n"


def test_the_root_directory_is_protected() -> None:
    assert generate._protected(Path("/"), []) == "it is the root directory"
