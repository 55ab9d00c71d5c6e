"""Real Python projects built end to end, offline, on Debian's Python 3.11, and verified:
a uv project (its uv.lock made here with uv) run by its console script, a poetry project
with a poetry.lock, a setuptools src layout with package data, importlib.metadata and a
dependency from a private index behind a token, and servers with worker processes
(`-m gunicorn -w 2`, `-m uvicorn --workers 2`). Each needs no entry flag: the project or
its [tool.pyfarm-docker] table says how it runs."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from pyfarm_docker import cli, runtime
from pyfarm_docker.driver import engine
from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from pyfarm_docker.driver.wheelhouse import IndexOptions
from tests.support.baseimages import DEBIAN, MAKE_BASE_IMAGE
from tests.support.cases import build_options
from tests.support.leftovers import Own, Project
from tests.support.poetrylock import POETRY_LOCK

pytestmark = pytest.mark.docker



def _project(own: Own, files: dict[str, str]) -> Project:
    """A project of this test's own: its directory and each source carry the marker."""
    marker = own.marker()
    path = own.work / marker
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        marked = f"# {marker}\n{text}" if name.endswith(".py") else text
        target.write_text(marked.replace("MARKER", marker))
    return Project(path, marker)


def _build(project: Project, **options: Any) -> BuildResult:
    result = build_image(build_options(project.path, project.tag, DEBIAN, verify=True,
                                       network="none", **options), report=lambda _: None)
    assert result.verdict is not None and all(c.ok for c in result.verdict.checks)
    return result


def _run(client: Any, image: str, *args: str) -> str:
    out: bytes = client.containers.run(image, list(args), network_mode="none", remove=True)
    return out.decode()


def _trace(client: Any, builder: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(engine.read_file(client, builder,
                                                       str(runtime.BUILDER_TRACE)))
    return data


def test_uv_project_runs_its_console_script(client: Any, own: Own) -> None:
    project = _project(own, {
        "pyproject.toml": """[project]
name = "uvapp"
version = "0.3.1"
requires-python = ">=3.9"
dependencies = ["attrs>=23"]

[project.scripts]
uvapp-hello = "uvapp.cli:main"

[dependency-groups]
dev = ["six"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.pyfarm-docker]
args = ["farm"]
""",
        "src/uvapp/__init__.py": "",
        "src/uvapp/cli.py": """import sys
from importlib.metadata import version
import attrs

@attrs.define
class Greeting:
    who: str

def main():
    print("uvapp", version("uvapp"), Greeting(sys.argv[1]), sys.argv[0])
    return 0
"""})
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "lock", "--directory", str(project.path)], check=True,
                   capture_output=True)
    result = _build(project)
    assert _run(client, result.tag) == "uvapp 0.3.1 Greeting(who='farm') uvapp-hello\n"
    code = ("import importlib.metadata as m, json; print(json.dumps([sorted(d.metadata['Name']"
            " for d in m.distributions()), m.distribution('uvapp').read_text('direct_url.json')"
            "]))")
    out = client.containers.run(f"{result.tag}-builder", ["-c", code], network_mode="none",
                                entrypoint=[str(runtime.BUILDER_PYTHON)], remove=True)
    names, direct_url = json.loads(out)
    assert "uvapp" in names and "attrs" in names
    assert "six" not in names, "a dev dependency was installed"
    assert "editable" not in (direct_url or ""), "installed editable"


def test_poetry_project_from_its_lock(client: Any, own: Own) -> None:
    project = _project(own, {
        "pyproject.toml": """[tool.poetry]
name = "poapp"
version = "1.2.0"
description = ""
authors = ["x <x@example.com>"]
packages = [{include = "poapp"}]

[tool.poetry.dependencies]
python = ">=3.9"
click = "^8.1"

[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"
""",
        "poetry.lock": POETRY_LOCK,
        "poapp/__init__.py": """import importlib.metadata as m
import click

@click.command()
@click.argument("who", default="world")
def main(who):
    click.echo(f"poapp {m.version('poapp')} click {m.version('click')} hello {who}")
""",
        "poapp/__main__.py": "from poapp import main\nmain()\n"})
    result = _build(project)
    assert _run(client, result.tag) == "poapp 1.2.0 click 8.1.7 hello world\n"


class _Index(http.server.BaseHTTPRequestHandler):
    """A private simple index (PEP 503) that wants a token."""

    wheel = b""
    wheel_name = ""
    token = ""

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"user:{self.token}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.end_headers()
            return
        if self.path.rstrip("/") == "/simple/privpkg":
            digest = hashlib.sha256(self.wheel).hexdigest()
            body = (f'<a href="/files/{self.wheel_name}#sha256={digest}">'
                    f"{self.wheel_name}</a>").encode()
        elif self.path == f"/files/{self.wheel_name}":
            body = self.wheel
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if self.path.startswith("/simple")
                         else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _private_wheel() -> tuple[str, bytes]:
    name = "privpkg-1.0-py3-none-any.whl"
    files = {"privpkg/__init__.py": "SECRET_SAUCE = 'private 1.0'\n",
             "privpkg-1.0.dist-info/METADATA":
                 "Metadata-Version: 2.1\nName: privpkg\nVersion: 1.0\n",
             "privpkg-1.0.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    def line(n: str, t: str) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b"=")
        return f"{n},sha256={digest.decode()},{len(t)}\n"

    record = "".join(line(n, t) for n, t in files.items()) + "privpkg-1.0.dist-info/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, t in {**files, "privpkg-1.0.dist-info/RECORD": record}.items():
            zf.writestr(n, t)
    return name, buf.getvalue()


@pytest.fixture
def private_index() -> Iterator[tuple[str, str]]:
    """(index URL with the token in it, the token)."""
    token = f"pyfarm-secret-{uuid.uuid4().hex}"
    name, wheel = _private_wheel()
    handler = type("Index", (_Index,), {"wheel": wheel, "wheel_name": name, "token": token})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://user:{token}@127.0.0.1:{server.server_address[1]}/simple", token
    finally:
        server.shutdown()
        server.server_close()


def _saved_bytes(client: Any, image: str) -> bytes:
    """Every file's bytes in every layer of the image, and its config (labels, history)."""
    out = io.BytesIO()
    for chunk in client.images.get(image).save(named=False):
        out.write(chunk)
    data = []
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            blob = stream.read()
            data.append(blob)
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                    for inner in layer.getmembers():
                        if not inner.isfile():
                            continue
                        f = layer.extractfile(inner)
                        if f is not None:
                            data.append(f.read())
    return b"\n".join(data)


def test_setuptools_src_layout_from_a_private_index(client: Any, own: Own,
                                                    private_index: tuple[str, str]) -> None:
    url, token = private_index
    project = _project(own, {
        "pyproject.toml": """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "greeter"
version = "2.5.0"
dependencies = ["privpkg==1.0"]

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
greeter = ["data/*.txt"]

[tool.pyfarm-docker]
entry = ["-m", "greeter"]
""",
        "requirements.txt": "",
        "src/greeter/__init__.py": "",
        "src/greeter/__main__.py": """from importlib import metadata, resources
import privpkg
text = resources.files("greeter").joinpath("data/greeting.txt").read_text().strip()
print(text, metadata.version("greeter"), privpkg.SECRET_SAUCE)
""",
        "src/greeter/data/greeting.txt": "hello from package data\n"})
    result = _build(project, index=IndexOptions(extra_index_urls=(url,)))
    assert _run(client, result.tag) == "hello from package data 2.5.0 private 1.0\n"
    for image in (result.tag, f"{result.tag}-builder"):
        assert token.encode() not in _saved_bytes(client, image), f"the token is in {image}"
    generated = project.path / ".pyfarm"
    assert cli.main(["generate", str(project.path), "--download", "--python", "3.11",
                     "--extra-index-url", url]) == 0
    assert (generated / "project" / "greeter-2.5.0-py3-none-any.whl").is_file()
    assert token not in (project.path / ".dockerignore").read_text()
    for path in generated.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"the token is in {path}"
    assert "privpkg==1.0" in (generated / "requirements.txt").read_text()
    shutil.rmtree(generated)


GUNICORN_APP = """import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"served": "MARKER"}']
"""


def test_gunicorn_with_two_workers(client: Any, own: Own) -> None:
    project = _project(own, {
        "pyproject.toml": """[tool.pyfarm-docker]
entry = ["-m", "gunicorn"]
args = ["-w", "2", "-b", "127.0.0.1:18160", "wsgiapp:application"]
port = 18160
probes = [{method = "GET", path = "/", expect_status = 200}]
""",
        "requirements.txt": "gunicorn==23.0.0\n",
        "wsgiapp.py": GUNICORN_APP})
    result = _build(project)
    trace = _trace(client, f"{result.tag}-builder")
    assert len(trace["processes"]) >= 3, trace["processes"]  # the arbiter and two workers
    # Only a worker imports the app (no --preload), and gunicorn's sync worker module.
    assert {"wsgiapp", "gunicorn.workers.sync"} <= set(trace["modules"])


ASGI_APP = """import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"served": "MARKER"}).encode()})
"""


def test_uvicorn_with_two_workers(client: Any, own: Own) -> None:
    project = _project(own, {
        "pyproject.toml": """[tool.pyfarm-docker]
entry = ["-m", "uvicorn"]
args = ["asgiapp:app", "--workers", "2", "--host", "127.0.0.1", "--port", "18161"]
port = 18161
probes = [{method = "GET", path = "/", expect_status = 200}]
""",
        "requirements.txt": "uvicorn==0.32.1\n",
        "asgiapp.py": ASGI_APP})
    result = _build(project)
    trace = _trace(client, f"{result.tag}-builder")
    spawned = [p for p in trace["processes"] if "multiprocessing" in " ".join(p["argv"])]
    assert len(spawned) >= 2, trace["processes"]  # two spawned workers
    # Only the spawned workers import the app and serve HTTP (h11).
    assert {"asgiapp", "h11"} <= set(trace["modules"])


FORKY = "local/python:3.14-forky"


@pytest.fixture(scope="module")
def forky_base() -> str:
    """Debian testing's base (CPython 3.14), made by scripts/make-base-image, cached by tag."""
    proc = subprocess.run([str(MAKE_BASE_IMAGE), FORKY], capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return FORKY


def test_newest_debian_cpython(client: Any, own: Own, forky_base: str) -> None:
    """The newest CPython Debian packages (3.14 in forky), from the project's metadata."""
    project = _project(own, {
        "pyproject.toml": """[project]
name = "newest"
version = "0.1"
dependencies = ["attrs"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
""",
        "src/newest/__init__.py": "",
        "src/newest/__main__.py": """import sys, attrs
from importlib.metadata import version
print(f"{sys.version_info[:2]} {sys.abiflags!r} newest {version('newest')}",
      attrs.has(type))
"""})
    result = build_image(build_options(project.path, project.tag, forky_base, verify=True,
                                       network="none"), report=lambda _: None)
    assert result.verdict is not None and all(c.ok for c in result.verdict.checks)
    assert _run(client, result.tag) == "(3, 14) '' newest 0.1 False\n"
