"""Host tier (needs loopback): a server whose connection dies answers no HTTP at all;
the traced run says so in one line instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import TraceError

pytestmark = pytest.mark.host


def test_a_server_that_resets_the_connection(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").write_text(
        "import socket, struct\ns = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 18977))\n"
        "s.listen()\nwhile True:\n    c, _ = s.accept()\n    c.recv(100)\n"
        "    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
        "    c.close()\n")
    code = cli.main(["trace", "-o", str(tmp_path / "t.json"), "--port", "18977", "--probe",
                     "GET /health", "--", sys.executable, str(tmp_path / "app.py")])
    err = capsys.readouterr().err
    assert code == TraceError.exit_code
    assert "GET /health: no HTTP answer" in err
