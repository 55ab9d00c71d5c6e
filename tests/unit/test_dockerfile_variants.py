"""Every template variant renders a Dockerfile that hadolint accepts, and only the
buildkit variant uses syntax the legacy builder lacks."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pyfarm_docker.documents.spec import AppSpec, Probe
from pyfarm_docker.driver.dockerfile import SYNTAXES, DockerfileOptions, render
from pyfarm_docker.driver.settings import Settings

HADOLINT = Path(sys.executable).parent / "hadolint"

SPECS = {
    "script": AppSpec(),
    "module": AppSpec(entry=("-m", "greeter"), args=("committed",)),
    "server": AppSpec(entry=("app.py",), port=8080,
                      probes=(Probe.parse("GET /health 200"),
                              Probe.parse('POST /sum {"a": 1, "b": 2}'))),
}
INSTALLS = {  # requirements file, install the project itself
    "requirements": ("requirements.txt", False),
    "project": (None, True),
    "nothing": (None, False),
}


def _variants() -> list[tuple[str, DockerfileOptions]]:
    variants = []
    for (spec_name, spec), (install, (req, project)), syntax, wheelhouse, extras in (
            itertools.product(SPECS.items(), INSTALLS.items(), SYNTAXES, (False, True),
                              ("plain", "prune+debug+distroless"))):
        settings = Settings(Path("/demo"), spec, "demo", base="local/python:3.11-bookworm")
        if extras != "plain":
            settings = replace(settings, prune=True, debug=True,
                               final="gcr.io/distroless/base-debian12:nonroot")
        options = DockerfileOptions(settings, requirements=req, install_project=project,
                                    wheelhouse=wheelhouse, syntax=syntax)
        name = f"{spec_name}-{install}-{syntax}-{'wheelhouse' if wheelhouse else 'index'}-{extras}"
        variants.append((name, options))
    return variants


VARIANTS = _variants()


@pytest.mark.parametrize("options", [v for _, v in VARIANTS], ids=[n for n, _ in VARIANTS])
def test_hadolint_accepts_every_variant(options: DockerfileOptions, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render(options))
    done = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    """The linter test above can fail: a Dockerfile with known faults is rejected."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:latest\nRUN cd /tmp && apt-get install curl\n")
    done = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "latest" tag


@pytest.mark.parametrize("options", [v for _, v in VARIANTS], ids=[n for n, _ in VARIANTS])
def test_only_the_buildkit_variant_mounts(options: DockerfileOptions) -> None:
    text = render(options)
    if options.syntax == "portable":
        assert "--mount" not in text and "COPY --link" not in text
        assert "no BuildKit needed" in text
        return
    assert "COPY --link" not in text.replace("COPY --link is left out", "")
    assert "# syntax=" not in text.replace('"# syntax=" line', "")
    if options.requirements or options.install_project:
        assert "RUN --mount=type=cache,target=/root/.cache/pip" in text
    assert ("--mount=type=bind,source=.pyfarm/wheelhouse" in text) == (
        options.wheelhouse and bool(options.requirements or options.install_project))
    assert "COPY .pyfarm/wheelhouse/" not in text and "COPY .pyfarm/tool/" not in text
