"""The tracer on every corpus case, in a host venv: the app's output is unchanged and
the trace holds what the case is known to need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support import corpusrun
from tests.support.cases import case_settings
from tests.support.paths import corpus_cases
from tests.support.venvs import case_venv

pytestmark = pytest.mark.host

Check = Callable[[dict[str, Any]], bool]


def _mapped(part: str) -> Check:
    return lambda t: any(part in m for m in t["mapped"])


def _dist(name: str) -> Check:
    return lambda t: name in {d["name"] for d in t["distributions"]}


def _opened(part: str) -> Check:
    return lambda t: any(part in f for f in t["files_opened"])


KNOWN: dict[str, list[Check]] = {
    "numpy_linalg": [_mapped("numpy.libs/libscipy_openblas"), _dist("numpy")],
    "lxml_xpath": [_mapped("lxml/etree."), _dist("lxml")],
    "ctypes_dlopen": [lambda t: "libz.so.1" in t["dlopen"], _mapped("libz.so")],
    "stdlib_tour": [_mapped("libssl.so"), _mapped("libffi.so"), _opened("zoneinfo/Europe/Paris"),
                    lambda t: any("CA bundle" in f["reason"] for f in t["files_implied"]),
                    lambda t: len(t["processes"]) >= 3],
    "flask_server": [_dist("Flask"), _dist("waitress"),
                     lambda t: [p["status"] for p in t["probes"]] == [200, 200]],
    "pillow_image": [_mapped("pillow.libs/libwebp"), _mapped("pillow.libs/libjpeg")],
    "pandas_frame": [_dist("pandas"), _mapped("pandas/_libs")],
    "module_entry": [_dist("PyYAML"), _opened("greeter/greeting.yaml"), _mapped("yaml/_yaml")],
}
CASES = corpus_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_trace_records_what_the_case_needs(case: Path, tmp_path: Path) -> None:
    app = corpusrun.copy_app(case, tmp_path / "src")
    spec = case_settings(app).spec
    python = str(case_venv(case / "requirements.txt") / "bin" / "python")
    (tmp_path / "spec.json").write_text(spec.dumps())
    traced = subprocess.run([sys.executable, "-m", "pyfarm_docker", "trace", "-o",
                             str(tmp_path / "trace.json"), "--spec", str(tmp_path / "spec.json"),
                             "--", python],
                            cwd=app, capture_output=True, text=True, timeout=300, check=False)
    assert traced.returncode == 0, traced.stderr
    if spec.kind == "script":
        plain = corpusrun.run_script([python, *spec.entry, *spec.traced_args], app)
        assert traced.stdout == plain.stdout
    trace = json.loads((tmp_path / "trace.json").read_text())
    failed = [i for i, check in enumerate(KNOWN.get(case.name, [])) if not check(trace)]
    assert failed == [], f"checks {failed} of {case.name} failed"
