"""Bad input gets one ERROR line naming the problem, a hint, and a documented exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import DockerError, TraceError, UsageError


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _app(tmp_path: Path, body: str) -> Path:
    app = tmp_path / "app.py"
    app.write_text(body)
    return app


def _error_line(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")]
    return line


def test_missing_entry_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["build", str(tmp_path / "nope.py"), "-t", "x"], capsys)
    assert code == UsageError.exit_code
    assert "nope.py does not exist" in _error_line(err)
    assert "hint:" in err


def test_entry_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").mkdir()
    code, err = _run(["generate", str(tmp_path), "--dockerfile-only"], capsys)
    assert code == UsageError.exit_code
    assert "is a directory" in _error_line(err)


def test_invalid_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "print(1)\n")
    code, err = _run(["build", str(app), "-t", "Not A Tag!"], capsys)
    assert code == UsageError.exit_code
    assert "not a valid image reference" in _error_line(err)


@pytest.mark.parametrize("toml, words", [
    ('port = "80"', "[tool.pyfarm-docker]: port must be an integer"),
    ('colour = "red"', "unknown key 'colour'"),
    ("base = 3", "base must be a string"),
    ('prune = "yes"', "prune must be a boolean"),
])
def test_invalid_pyproject_config(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  toml: str, words: str) -> None:
    _app(tmp_path, "print(1)\n")
    (tmp_path / "pyproject.toml").write_text(f"[tool.pyfarm-docker]\n{toml}\n")
    code, err = _run(["generate", str(tmp_path), "--dockerfile-only"], capsys)
    assert code == UsageError.exit_code
    assert words in _error_line(err)


def test_assemble_refuses_a_non_empty_output(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.json"
    app = _app(tmp_path, "print('hi')\n")
    assert cli.main(["trace", "-o", str(trace), "--", sys.executable, str(app)]) == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = _run(["assemble", str(trace), "-o", str(out)], capsys)
    assert code == UsageError.exit_code
    assert "--force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_trace_of_a_crashing_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "import sys\nprint('boom detail', file=sys.stderr)\nsys.exit(3)\n")
    code, err = _run(["trace", "-o", str(tmp_path / "t.json"), "--", sys.executable, str(app)],
                     capsys)
    assert code == TraceError.exit_code
    assert "exited with status 3" in _error_line(err)
    assert "boom detail" in err
    assert not (tmp_path / "t.json").exists()


def test_allowed_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "import sys\nsys.exit(3)\n")
    code, _ = _run(["trace", "--allow-exit-code", "3", "-o", str(tmp_path / "t.json"), "--",
                    sys.executable, str(app)], capsys)
    assert code == 0


def test_trace_of_a_segfault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "import ctypes\nctypes.string_at(0)\n")
    code, err = _run(["trace", "-o", str(tmp_path / "t.json"), "--", sys.executable, str(app)],
                     capsys)
    assert code == TraceError.exit_code
    assert "killed by signal 11" in _error_line(err)


def test_trace_of_a_hanging_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "import time\ntime.sleep(60)\n")
    code, err = _run(["trace", "--timeout", "1", "-o", str(tmp_path / "t.json"), "--",
                      sys.executable, str(app)], capsys)
    assert code == TraceError.exit_code
    assert "did not finish within 1s" in _error_line(err)


def test_server_that_never_opens_its_port(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, "import time\ntime.sleep(60)\n")
    code, err = _run(["trace", "--port", "18931", "--ready-timeout", "1", "-o",
                      str(tmp_path / "t.json"), "--", sys.executable, str(app)], capsys)
    assert code == TraceError.exit_code
    assert "never opened 127.0.0.1:18931" in _error_line(err)


def test_no_docker_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    app = _app(tmp_path, "print(1)\n")
    code, err = _run(["build", str(app), "-t", "x:1", "--engine", "docker"], capsys)
    assert code == DockerError.exit_code
    assert "no Docker daemon answers" in _error_line(err)


def test_no_engine_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: no Docker daemon and no podman on PATH names both ways out."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    monkeypatch.setenv("PATH", str(tmp_path))
    app = _app(tmp_path, "print(1)\n")
    code, err = _run(["build", str(app), "-t", "x:1"], capsys)
    assert code == DockerError.exit_code
    assert "no Docker daemon answers" in _error_line(err)
    assert "--engine podman" in err


@pytest.mark.parametrize("argv, words", [
    (["--engine", "kaniko"], "unknown engine 'kaniko'"),
    (["--output", "zip:out"], "is not oci:DIR or tar:FILE"),
    (["--output", "oci:/nonexistent/dir/out"], "/nonexistent/dir does not exist"),
])
def test_bad_engine_or_output_fails_before_any_build(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: list[str], words: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")  # never reached
    app = _app(tmp_path, "print(1)\n")
    code, err = _run(["build", str(app), "-t", "x:1", *argv], capsys)
    assert code == UsageError.exit_code
    assert words in _error_line(err)


def test_output_refuses_a_foreign_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    app = _app(tmp_path, "print(1)\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code, err = _run(["build", str(app), "-t", "x:1", "--output", f"oci:{tmp_path}/out"],
                     capsys)
    assert code == UsageError.exit_code
    assert "not an OCI layout" in _error_line(err)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_unknown_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _app(tmp_path, "print(1)\n")
    code, err = _run(["generate", str(tmp_path), "--syntax", "kaniko", "--dockerfile-only"],
                     capsys)
    assert code == UsageError.exit_code
    assert "unknown --syntax 'kaniko'" in _error_line(err)


def test_generate_refuses_a_non_empty_helpers_dir(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _app(tmp_path, "print(1)\n")
    (tmp_path / ".pyfarm").mkdir()
    (tmp_path / ".pyfarm" / "notes.txt").write_text("mine")
    code, err = _run(["generate", str(tmp_path)], capsys)
    assert code == UsageError.exit_code
    assert "--force" in err
    assert [p.name for p in (tmp_path / ".pyfarm").iterdir()] == ["notes.txt"]
