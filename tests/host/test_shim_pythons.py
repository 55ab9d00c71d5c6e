"""The shim runs inside the app's interpreter: every CPython 3.8-3.13 that pyenv has here
(host tier: it needs those interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import PYENV_PYTHONS

pytestmark = pytest.mark.host

PYTHONS = PYENV_PYTHONS
APP = """import json, sys
print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "main": __name__,
                  "shim_visible": any("_shim" in p for p in sys.path)}))
"""


def test_every_supported_python_is_here() -> None:
    assert len(PYTHONS) == 6, PYTHONS


@pytest.mark.parametrize("python", PYTHONS, ids=[Path(p).name for p in PYTHONS])
def test_traced_run_prints_what_a_plain_run_prints(python: str, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    plain = subprocess.run([python, str(app), "x"], capture_output=True, text=True, check=True)
    traced = subprocess.run([sys.executable, "-m", "pyfarm_docker", "trace", "-o",
                             str(tmp_path / "t.json"), "--", python, str(app), "x"],
                            capture_output=True, text=True, check=True)
    assert traced.stdout == plain.stdout
    assert json.loads(traced.stdout)["shim_visible"] is False
    trace = json.loads((tmp_path / "t.json").read_text())
    assert "json" in trace["imports"]
    assert trace["modules"]["json"]["file"].endswith("json/__init__.py")
    major_minor = Path(python).name.removeprefix("python").split(".")
    assert trace["interpreter"]["version_info"][:2] == [int(v) for v in major_minor]
