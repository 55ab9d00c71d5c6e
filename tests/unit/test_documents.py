"""Malformed pipeline documents are one-line errors with exit code 2, and well-formed ones
round-trip through their dataclasses unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.documents.trace import Trace
from pyfarm_docker.errors import UsageError


@pytest.fixture(scope="module")
def trace_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("trace")
    (work / "app.py").write_text("import json\nprint(json.dumps([1]))\n")
    trace = run_trace(TraceOptions((sys.executable, "app.py"), work / "trace.json", cwd=work))
    data: dict[str, object] = json.loads((work / "trace.json").read_text())
    assert Trace.read(work / "trace.json") == trace
    return data


def _assemble(trace: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["assemble", str(trace), "-o", str(out)])
    return code, capsys.readouterr().err


def _broken(data: dict[str, object], change: str) -> object:
    broken = dict(data)
    if change == "no interpreter":
        del broken["interpreter"]
    elif change == "imports not a list":
        broken["imports"] = "json"
    elif change == "version_info strings":
        broken["interpreter"] = {**data["interpreter"], "version_info": ["3", "11"]}  # type: ignore[dict-item]
    elif change == "old schema":
        broken["schema_version"] = 1  # before the native tracer's records
    elif change == "native not an object":
        broken["native"] = ["/etc/ssl/openssl.cnf"]
    return broken


@pytest.mark.parametrize("change, words", [
    ("no interpreter", "missing key 'interpreter'"),
    ("imports not a list", "imports must be a list, not a string"),
    ("version_info strings", "version_info must be a list of integers"),
    ("old schema", "has trace schema 1, this tool reads only 2"),
    ("native not an object", "native must be an object"),
])
def test_malformed_trace(trace_json: dict[str, object], tmp_path: Path, change: str, words: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(_broken(trace_json, change)))
    code, err = _assemble(path, tmp_path / "out", capsys)
    assert code == UsageError.exit_code
    assert words in err and err.count("\n") <= 2, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, words", [
    ("[]", "expected a JSON object, not a list"),
    ("{", "is not JSON"),
    (None, "is a directory"),
])
def test_trace_that_is_not_an_object(tmp_path: Path, content: str | None, words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.json"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    code, err = _assemble(path, tmp_path / "out", capsys)
    assert (code, words in err) == (UsageError.exit_code, True), err


def test_manifest_without_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "farm/app/.pyfarm").mkdir(parents=True)
    (tmp_path / "farm/app/.pyfarm/manifest.json").write_text(json.dumps(
        {"schema_version": 1, "prefix": "/app", "python": "/app/python/bin/python", "env": {}}))
    assert cli.main(["report", str(tmp_path / "farm")]) == UsageError.exit_code
    assert "missing key 'files'" in capsys.readouterr().err


def test_trace_round_trips(trace_json: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace_json))
    again = tmp_path / "again.json"
    Trace.read(path).write(again)
    assert json.loads(again.read_text()) == trace_json
