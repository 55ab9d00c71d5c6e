"""Child processes are traced too: spawn and forkserver pools, fork, subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyfarm_docker.builder.tracer import TraceOptions, run_trace
from pyfarm_docker.documents.trace import SysPathEntry, Trace

APP = """import multiprocessing, os, subprocess, sys

def work(x):
    import decimal, ctypes          # only ever imported in the children
    ctypes.CDLL("libz.so.1")
    return str(decimal.Decimal(x) / 4)

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
        print(pool.map(work, [1, 2]))
    pid = os.fork()
    if pid == 0:
        import fractions
        os._exit(0)
    os.waitpid(pid, 0)
    subprocess.run([sys.executable, "-c", "import colorsys"], check=True)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_child_only_modules_and_libraries_are_recorded(tmp_path: Path, method: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    trace = run_trace(TraceOptions((sys.executable, str(app), method), tmp_path / "t.json",
                                   cwd=tmp_path))
    assert trace == Trace.read(tmp_path / "t.json")
    assert {"decimal", "fractions", "colorsys"} <= set(trace.imports)
    assert "libz.so.1" in trace.dlopen
    # Workers end by SIGTERM, before atexit: the driver's samples of their maps, or the
    # native tracer, which sees the loader open the file, have it.
    assert any("_decimal" in m for m in [*trace.mapped, *trace.native.read])
    assert len(trace.processes) >= 4
    assert trace.sys_path[0] == SysPathEntry(str(tmp_path), "app")
