"""scripts/check-corpus prints its table and the 'N passed, N failed' line when cases fail
(a failed case has no sizes or times; the table used to crash on them)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-corpus"


@pytest.fixture(scope="module")
def check_corpus() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("check_corpus", str(SCRIPT))
    spec = importlib.util.spec_from_loader("check_corpus", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_table_shows_failed_and_passed_cases(check_corpus: ModuleType) -> None:
    failed = {"case": "broken_app", "ok": False, "reason": "entry file app.py does not exist",
              "builder_bytes": None, "final_bytes": None, "build_s": 0.1,
              "start_ms_builder": None, "start_ms_final": None}
    passed = {"case": "hello", "ok": True, "reason": "", "builder_bytes": 200_000_000,
              "final_bytes": 50_000_000, "build_s": 31.5, "start_ms_builder": 40,
              "start_ms_final": 35}
    lines = check_corpus.table([failed, passed]).splitlines()
    assert len(lines) == 3
    assert lines[1].split()[:2] == ["broken_app", "NO"]
    assert "-/-" in lines[1] and lines[1].endswith("entry file app.py does not exist")
    assert lines[2].split()[:6] == ["hello", "yes", "50.0", "200.0", "0.25", "31.5"]
    assert "40/35" in lines[2]


def test_a_failing_case_still_gets_the_table_and_the_summary(
        check_corpus: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real failing case: a directory without its app fails before any engine is asked."""
    case = tmp_path / "no_app"
    case.mkdir()
    assert check_corpus.main([str(case)]) == 1
    out = capsys.readouterr().out.splitlines()
    row = json.loads(out[0])
    assert row["case"] == "no_app" and row["ok"] is False
    assert "does not exist" in row["reason"]
    assert out[1].startswith("case ")
    assert out[2].split()[:2] == ["no_app", "NO"]
    assert out[-1] == "0 passed, 1 failed"
