"""trace of a server: a probe answered with another status than expected is an error, one
answered as expected is recorded (host tier: the server listens on the host's loopback,
which an empty network namespace does not even bring up)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.errors import TraceError

pytestmark = pytest.mark.host


def _trace(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["trace", *argv])
    return code, capsys.readouterr().err


def _error_line(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ERROR: ")]
    return line


SERVER = """import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.end_headers(); self.wfile.write(b"broken")
http.server.HTTPServer(("127.0.0.1", 18932), H).serve_forever()
"""


def test_probe_answered_with_the_wrong_status(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text(SERVER)
    code, err = _trace(["--port", "18932", "--probe", "GET /health", "-o",
                        str(tmp_path / "t.json"), "--", sys.executable, str(app)], capsys)
    assert code == TraceError.exit_code
    assert "GET /health: status 500, expected success" in _error_line(err)
    assert not (tmp_path / "t.json").exists()


def test_probe_with_the_status_it_expects(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text(SERVER.replace("18932", "18933"))
    code, _ = _trace(["--port", "18933", "--probe", "GET /health 500", "-o",
                      str(tmp_path / "t.json"), "--", sys.executable, str(app)], capsys)
    assert code == 0
    assert '"status": 500' in (tmp_path / "t.json").read_text()
