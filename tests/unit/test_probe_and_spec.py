from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyfarm_docker.appspec import from_mapping, load_case
from pyfarm_docker.errors import UsageError
from pyfarm_docker.probe import Answer, Probe, mismatch


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
    probe = Probe.from_dict({"method": "GET", "path": "/health", "expect_status": 200})
    assert "GET /health" in mismatch(probe, Answer(503, "down"))
    assert mismatch(probe, Answer(200, "ok")) == ""


def test_case_defaults(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")
    spec = load_case(tmp_path)
    assert spec.entry == ("app.py",) and spec.kind == "script" and spec.args == ()


def test_case_json_module_entry(tmp_path: Path) -> None:
    (tmp_path / "greeter").mkdir()
    (tmp_path / "greeter" / "__main__.py").write_text("")
    (tmp_path / "case.json").write_text(json.dumps(
        {"entry": ["-m", "greeter"], "args": ["x"], "trace_args": ["y"]}))
    spec = load_case(tmp_path)
    assert spec.module == "greeter"
    assert spec.traced_args == ("y",) and spec.checked_args == ("x",)


@pytest.mark.parametrize("data, words", [
    ({"port": "8080"}, "port must be a int"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"args": [1]}, "list of strings"),
])
def test_bad_config_is_named(data: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        from_mapping(data, "cfg")


def test_server_needs_a_port(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    with pytest.raises(UsageError, match="needs a port"):
        from_mapping({"kind": "server"}, "cfg").validate(tmp_path)


def test_entry_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "app.py").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        load_case(tmp_path)


def test_label_round_trips(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    spec = from_mapping({"kind": "server", "port": 80, "args": ["a"],
                         "probes": [{"path": "/x", "expect_status": 200}]}, "cfg")
    back = from_mapping(json.loads(spec.to_label()), "label")
    assert back == spec
