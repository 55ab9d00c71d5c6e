"""Where the tests find the repo, the shared corpus and their caches."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PYFARM_TEST_CACHE", REPO / ".cache"))
CORPUS = Path(os.environ.get("PYFARM_CORPUS", REPO.parent / "shared" / "corpus")).resolve()
HOST_PYTHON = os.environ.get("PYFARM_TEST_PYTHON", "/root/.pyenv/versions/3.11.7/bin/python3.11")
# Every CPython 3.8-3.13 that pyenv has here, one of each minor version.
PYENV_PYTHONS = sorted(
    p for minor in range(8, 14)
    for p in glob.glob(f"/root/.pyenv/versions/3.{minor}.*/bin/python3.{minor}")[:1]
)


def corpus_cases() -> list[Path]:
    """Every case folder of the corpus (an app.py or a package, and requirements.txt).

    No cases is an error, never an empty parameter set: pytest would skip every case
    and the run would pass having tested nothing. Called at collection, it fails there.
    """
    cases = sorted(p for p in CORPUS.iterdir() if (p / "requirements.txt").exists()) if (
        CORPUS.is_dir()) else []
    if not cases:
        where = "does not exist" if not CORPUS.is_dir() else "holds no case"
        pytest.fail(f"the corpus {CORPUS} {where} (a case is a folder with a "
                    "requirements.txt): set PYFARM_CORPUS to the corpus directory",
                    pytrace=False)
    return cases


def corpus_case(name: str) -> Path:
    """The corpus case called ``name``; a missing one fails saying so."""
    found = [case for case in corpus_cases() if case.name == name]
    if not found:
        pytest.fail(f"the corpus {CORPUS} has no case {name!r}", pytrace=False)
    return found[0]
