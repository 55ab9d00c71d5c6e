"""A farm keeps its builder's user site setting: a venv builder adds no ~/.local site
directory, so neither does its farm (whose interpreter is not a venv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfarm_docker.builder.assemble import AssembleOptions, assemble
from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.runtime import Runtime
from tests.support import emptyroot
from tests.support.venvs import case_venv

pytestmark = pytest.mark.host
RUNTIME = Runtime()
APP = """import site
try:
    import usermod
except ImportError:
    usermod = None
print(site.ENABLE_USER_SITE, usermod is not None)
"""


def test_a_venv_builders_farm_has_no_user_site(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("")
    venv = case_venv(tmp_path / "requirements.txt")
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    run_trace(TraceOptions((str(venv / "bin" / "python"), "app.py"), tmp_path / "trace.json",
                           cwd=app))
    root = tmp_path / "root"
    assemble(AssembleOptions(tmp_path / "trace.json", root))
    (lib,) = (root / str(RUNTIME.prefix)[1:] / "python" / "lib").glob("python3.*[0-9]")
    user_site = root / "home/user/.local/lib" / lib.name / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "usermod.py").write_text("")
    done = emptyroot.run(root, [*RUNTIME.entrypoint(("app.py",))], str(RUNTIME.workdir),
                         {**dict(RUNTIME.env()), "HOME": "/home/user"})
    assert done.stdout.split() == ["False", "False"], done.stderr
