"""The app spec document, probes, and the one settings resolver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyfarm_docker.documents._read import Fields
from pyfarm_docker.documents.spec import AppSpec, Probe
from pyfarm_docker.driver.settings import Flags, resolve
from pyfarm_docker.errors import UsageError
from pyfarm_docker.serve import Answer, mismatch


def test_probe_parse_with_json_body() -> None:
    probe = Probe.parse('post /sum {"numbers": [1, 2]}')
    assert (probe.method, probe.path, probe.body_json) == ("POST", "/sum", {"numbers": [1, 2]})
    assert probe.expect_status is None


def test_probe_parse_with_status_and_body() -> None:
    probe = Probe.parse('POST /sum 201 {"n": 1}')
    assert (probe.expect_status, probe.body_json) == (201, {"n": 1})
    assert Probe.parse("GET /gone 404").expect_status == 404


@pytest.mark.parametrize("spec", ["GET", "GET health", "POST /x {not json"])
def test_bad_probes_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        Probe.parse(spec)


def test_answers_compare_json_as_json() -> None:
    assert Answer(200, '{"a": 1, "b": 2}').same_as(Answer(200, '{"b":2,"a":1}'))
    assert not Answer(200, "ok").same_as(Answer(200, "ok\n"))
    assert not Answer(200, "ok").same_as(Answer(500, "ok"))


def test_mismatch_names_the_probe() -> None:
    probe = Probe.from_json(Fields({"method": "GET", "path": "/health", "expect_status": 200},
                                   "probe"))
    assert "GET /health" in mismatch(probe, Answer(503, "down"))
    assert mismatch(probe, Answer(200, "ok")) == ""


def _app(tmp_path: Path, case: dict[str, object] | None = None, pyproject: str = "") -> Path:
    (tmp_path / "app.py").write_text("print(1)\n")
    if case is not None:
        (tmp_path / "case.json").write_text(json.dumps(case))
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    settings = resolve(Flags(path=_app(tmp_path)))
    spec = settings.spec
    assert spec.entry == ("app.py",) and spec.kind == "script" and spec.args == ()
    assert (settings.base, settings.final, str(settings.prefix)) == (
        "python:3.12-slim", "scratch", "/app")


def test_case_json_module_entry(tmp_path: Path) -> None:
    (tmp_path / "greeter").mkdir()
    (tmp_path / "greeter" / "__main__.py").write_text("")
    (tmp_path / "case.json").write_text(json.dumps(
        {"entry": ["-m", "greeter"], "args": ["x"], "trace_args": ["y"]}))
    spec = resolve(Flags(path=tmp_path)).spec
    assert spec.module == "greeter"
    assert spec.traced_args == ("y",) and spec.checked_args == ("x",)


def test_flags_beat_pyproject_beats_case_json(tmp_path: Path) -> None:
    _app(tmp_path, {"args": ["case"], "port": 1000},
         '[tool.pyfarm-docker]\nargs = ["pyproject"]\nbase = "b:1"\nport = 2000\n')
    assert resolve(Flags(path=tmp_path)).spec.args == ("pyproject",)
    assert resolve(Flags(path=tmp_path)).spec.port == 2000
    flagged = resolve(Flags(path=tmp_path, args=("flag",), port=3000))
    assert (flagged.spec.args, flagged.spec.port, flagged.base) == (("flag",), 3000, "b:1")


def test_server_settings_from_case_json(tmp_path: Path) -> None:
    """generate of a server project configured by its case.json used to render a script."""
    _app(tmp_path, {"kind": "server", "port": 8080,
                    "probes": [{"path": "/h", "expect_body": "ok"}]})
    spec = resolve(Flags(path=tmp_path / "app.py")).spec
    assert (spec.kind, spec.port) == ("server", 8080)
    assert spec.probes[0].expect_body == "ok"


def test_port_without_kind_is_a_server(tmp_path: Path) -> None:
    _app(tmp_path, pyproject="[tool.pyfarm-docker]\nport = 8080\n")
    spec = resolve(Flags(path=tmp_path)).spec
    assert spec.kind == "server"
    assert json.loads(spec.dumps())["kind"] == "server"  # the label says so too


def test_probe_without_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no port"):
        resolve(Flags(path=_app(tmp_path), probes=("GET /health",)))


@pytest.mark.parametrize("data, words", [
    ({"port": "8080"}, "port must be an integer, not a string"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"args": [1]}, "list of strings"),
    ({"kind": "server"}, "needs a port"),
    ({"kind": "script", "port": 80}, "a script has no port"),
    ({"port": 70000}, "not a TCP port"),
])
def test_bad_case_json_is_named(tmp_path: Path, data: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        resolve(Flags(path=_app(tmp_path, data)))


def test_bad_pyproject_types_are_named(tmp_path: Path) -> None:
    _app(tmp_path, pyproject="[tool.pyfarm-docker]\nprune = \"yes\"\n")
    with pytest.raises(UsageError, match="prune must be a boolean"):
        resolve(Flags(path=tmp_path))


def test_entry_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "app.py").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        resolve(Flags(path=tmp_path))


def test_spec_json_round_trips() -> None:
    spec = AppSpec(port=80, args=("a",), trace_args=("t",),
                   probes=(Probe("POST", "/x", {"n": 1}, 200, None, {"ok": True}),))
    assert AppSpec.loads(spec.dumps(), "label") == spec


@pytest.mark.parametrize("text", ["[]", '{"entry": "app.py"}', '{"probes": [{"method": "GET"}]}'])
def test_malformed_spec_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        AppSpec.loads(text, "spec")


def test_keep_tests_and_headers_reach_the_assemble_step(tmp_path: Path) -> None:
    from pyfarm_docker.driver.dockerfile import DockerfileOptions, render

    _app(tmp_path, pyproject="[tool.pyfarm-docker]\nkeep_headers = true\n")
    settings = resolve(Flags(path=tmp_path, keep_tests=True))
    assert (settings.keep_tests, settings.keep_headers, settings.prune) == (True, True, False)
    assemble = [line for line in render(DockerfileOptions(settings)).splitlines()
                if '"assemble"' in line]
    assert len(assemble) == 1 and '"--keep-tests", "--keep-headers"' in assemble[0]
    assert '"--keep-tests"' not in render(DockerfileOptions(resolve(Flags(path=tmp_path))))
