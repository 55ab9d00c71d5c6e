"""bench/run.py, loaded as a module: it is a script, not part of the package."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from .paths import REPO


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
