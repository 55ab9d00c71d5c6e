"""Bad input to build and generate is one ERROR line with exit code 2, decided before any
engine is asked (DOCKER_HOST points nowhere: reaching it would be exit 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import UsageError


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    path = tmp_path / "app.py"
    path.write_text("print(1)\n")
    return path


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == UsageError.exit_code, err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")]
    return line


@pytest.mark.parametrize("command", [["build", "-t", "x:1"], ["generate", "--dockerfile-only"]])
def test_a_port_out_of_range(app: Path, capsys: pytest.CaptureFixture[str],
                             command: list[str]) -> None:
    line = _fails([command[0], str(app), *command[1:], "--port", "70000"], capsys)
    assert "port 70000 is not a TCP port (1-65535)" in line


@pytest.mark.parametrize("value", ["1e20", "-5", "²", "99999999999", " 5", "4294967296", ""])
def test_a_bad_source_date_epoch(app: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    line = _fails(["build", str(app), "-t", "x:1"], capsys)
    assert f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds" in line


@pytest.mark.parametrize("toml, words", [
    ("[tool]\npyfarm-docker = 3", "[tool.pyfarm-docker] must be a table"),
    ("tool = 1", ""),  # not a table at all: no settings there, nothing to refuse
    ('[tool.pyfarm-docker]\nprobes = "GET /"', "probes must be a list, not a string"),
    ("[tool.pyfarm-docker]\nport = 80\nprobes = [1]", "probes[0]: expected a JSON object"),
    ("[tool.pyfarm-docker]\nport = 80\nprobes = [{method = 1}]", "method must be a string"),
    ('[tool.pyfarm-docker]\nentry = "app.py"', "entry must be a list, not a string"),
    ("[tool.pyfarm-docker]\nargs = [1]", "args must be a list of strings"),
    ('[tool.pyfarm-docker]\ninclude = ".env"', "include must be a list, not a string"),
    ("[tool.pyfarm-docker]\nport = 1.5", "port must be an integer, not a number"),
    ("[tool.pyfarm-docker]\nport = true", "port must be an integer, not a boolean"),
    ('[tool.pyfarm-docker]\nkind = "daemon"', "kind must be one of script, server"),
    ('[tool.pyfarm-docker]\nprefix = ["/app"]', "prefix must be a string, not a list"),
    ('[tool.pyfarm-docker]\nbase = "python:3.12 AS evil"', "is not a valid image reference"),
    ('[tool.pyfarm-docker]\ninclude = ["../../etc/passwd"]', "is not a path inside the project"),
])
def test_wrong_types_in_pyproject(app: Path, capsys: pytest.CaptureFixture[str], toml: str,
                                  words: str) -> None:
    (app.parent / "pyproject.toml").write_text(toml + "\n")
    argv = ["generate", str(app.parent), "--dockerfile-only"]
    if not words:
        assert cli.main(argv) == 0
        return
    assert words in _fails(argv, capsys)


@pytest.mark.parametrize("flag, value", [
    ("--base", "Python:3.12"), ("--base", "python:3.12 AS evil"), ("--base", ""),
    ("--base", "python@sha256:deadbeef"), ("--final", "scratch\nRUN id"),
    ("--final", "-scratch"),
])
def test_a_reference_docker_rejects(app: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                    value: str) -> None:
    for command in (["build", str(app), "-t", "x:1"], ["generate", str(app), "--dockerfile-only"]):
        line = _fails([*command, f"{flag}={value}"], capsys)
        assert f"image {value!r} is not a valid image reference" in line


def test_output_naming_a_file(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(["generate", str(app), "-o", str(app)], capsys)
    assert f"{app} is not a directory" in line
    assert app.read_text() == "print(1)\n"


def test_include_of_nothing(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(["generate", str(app), "--include", "missing.txt"], capsys)
    assert "include 'missing.txt' matches nothing" in line
    assert not (app.parent / ".pyfarm").exists()
