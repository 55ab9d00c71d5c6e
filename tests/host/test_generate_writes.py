"""generate writing for real (host tier: it downloads the builder's own wheels): the
helpers carry the marker and are swapped in, --force replaces them, an interrupted run
leaves the old ones, and the project's .dockerignore gets the tool's block once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver import generate, projectfiles
from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.settings import Flags, resolve
from pyfarm_docker.driver.staging import MARKER
from pyfarm_docker.driver.target import Target
from pyfarm_docker.errors import UsageError

pytestmark = pytest.mark.host
USER_RULES = "docs/\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print(1)\n")
    (root / ".env.example").write_text("PASSWORD=\n")
    (root / ".dockerignore").write_text(USER_RULES)
    return root


def _generate(project: Path, capsys: pytest.CaptureFixture[str], *flags: str
              ) -> tuple[int, str]:
    code = cli.main(["generate", str(project), "--python", "3.11", *flags])
    return code, capsys.readouterr().err


def test_force_replaces_what_generate_wrote(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _generate(project, capsys)[0] == 0
    helpers = project / ".pyfarm"
    assert (helpers / MARKER).is_file()
    assert helpers.stat().st_mode & 0o777 == 0o755
    (helpers / "stale.txt").write_text("from an older run")
    code, err = _generate(project, capsys)
    assert code == UsageError.exit_code and "pass --force" in err
    assert _generate(project, capsys, "--force")[0] == 0
    assert not (helpers / "stale.txt").exists()
    assert (helpers / "Dockerfile").is_file()
    assert sorted(os.listdir(project)) == [".dockerignore", ".env.example", ".pyfarm", "app.py"]


def test_an_interrupted_run_leaves_the_old_helpers(project: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Writing the new helpers fails half way (a wheel that vanished): the old directory is
    as it was, and nothing is left beside it."""
    assert _generate(project, capsys)[0] == 0
    before = {p: p.read_bytes() for p in (project / ".pyfarm").rglob("*") if p.is_file()}
    options = DockerfileOptions(resolve(Flags(path=project)))
    with pytest.raises(FileNotFoundError):
        generate.generate(options, project / ".pyfarm", Target("3.11"),
                          [project / "gone-1.0-py3-none-any.whl"], force=True)
    after = {p: p.read_bytes() for p in (project / ".pyfarm").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(os.listdir(project)) == [".dockerignore", ".env.example", ".pyfarm", "app.py"]


def test_the_dockerignore_block_is_written_once_and_follows_the_includes(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _generate(project, capsys, "--include", ".env.example")
    assert code == 0, err
    assert f"wrote pyfarm-docker's block into {project / '.dockerignore'}" in err
    assert "all 3 files of the project go into the image" in err  # .dockerignore too
    text = (project / ".dockerignore").read_text()
    assert text.startswith(USER_RULES + "\n" + projectfiles.BLOCK_START)
    assert text.endswith("!/.pyfarm\n!/.env.example\n" + projectfiles.BLOCK_END + "\n")

    code, err = _generate(project, capsys, "--include", ".env.example", "--force")
    assert code == 0, err
    assert "wrote pyfarm-docker's block" not in err
    assert (project / ".dockerignore").read_text() == text

    code, err = _generate(project, capsys, "--force")  # the include dropped: its line goes
    assert code == 0, err
    assert "1 secret (.env.example)" in err
    assert (project / ".dockerignore").read_text() == text.replace("!/.env.example\n", "")


def test_from_elsewhere_the_current_directory_is_just_a_helpers_directory(
        project: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "ci").mkdir()
    monkeypatch.chdir(project / "ci")
    code, err = _generate(project, capsys, "-o", "helpers")
    assert code == 0, err
    assert (project / "ci" / "helpers" / MARKER).is_file()
    monkeypatch.chdir(project / "ci" / "helpers")
    code, err = _generate(project, capsys, "-o", ".", "--force")
    assert code == UsageError.exit_code
    assert "it is the current directory" in err
    monkeypatch.chdir(project)
    code, err = _generate(project, capsys, "-o", "ci/helpers", "--force")
    assert code == 0, err
