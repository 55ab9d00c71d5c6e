"""Where the tests find the repo, the shared corpus and their caches."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PYFARM_TEST_CACHE", REPO / ".cache"))
CORPUS = Path(os.environ.get("PYFARM_CORPUS", REPO.parent / "shared" / "corpus")).resolve()
HOST_PYTHON = os.environ.get("PYFARM_TEST_PYTHON", "/root/.pyenv/versions/3.11.7/bin/python3.11")


def corpus_cases() -> list[Path]:
    """Every case folder of the corpus (an app.py or a package, and requirements.txt)."""
    return sorted(p for p in CORPUS.iterdir() if (p / "requirements.txt").exists())
