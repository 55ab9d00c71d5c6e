"""The test tiers say what they need: each tier's modules carry its marker, tests import
helpers only from tests/support, and a corpus without cases fails collection."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

TESTS = REPO / "tests"
MARKERS = {"unit": None, "host": "host", "docker": "docker"}


def _modules(tier: str) -> list[Path]:
    return sorted((TESTS / tier).glob("test_*.py"))


def _tier_marker(module: Path) -> str | None:
    """The marker of ``pytestmark = pytest.mark.NAME`` at module level, if any."""
    for node in ast.parse(module.read_text()).body:
        if (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets]
                == ["pytestmark"] and isinstance(node.value, ast.Attribute)):
            return node.value.attr
    return None


@pytest.mark.parametrize("tier", list(MARKERS))
def test_every_module_of_a_tier_carries_its_marker(tier: str) -> None:
    modules = _modules(tier)
    assert modules
    wrong = {m.name: _tier_marker(m) for m in modules if _tier_marker(m) != MARKERS[tier]}
    assert wrong == {}


def test_tests_import_helpers_only_from_support() -> None:
    found = []
    for module in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{module.relative_to(TESTS)}: {name}" for name in names
                      if name.startswith("tests.") and not name.startswith("tests.support")]
    assert found == []


@pytest.mark.parametrize("corpus", ["empty", "missing"])
def test_a_corpus_without_cases_fails_collection(tmp_path: Path, corpus: str) -> None:
    path = tmp_path / "corpus"
    if corpus == "empty":
        path.mkdir()
        (path / "notes").mkdir()  # a folder without requirements.txt is no case
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "tests/host/test_trace_corpus.py"],
                          cwd=REPO, env=dict(os.environ, PYFARM_CORPUS=str(path)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout
    assert f"the corpus {path} " in done.stdout
    assert "PYFARM_CORPUS" in done.stdout
    assert "skipped" not in done.stdout
