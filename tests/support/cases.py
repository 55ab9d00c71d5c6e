"""Corpus cases as the tool sees them: settings resolved from the case's folder, and built."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions, BuildResult, build_image
from pyfarm_docker.driver.settings import Flags, Settings, resolve


def case_settings(case: Path, base: str | None = None, **changes: Any) -> Settings:
    """What ``pyfarm-docker build CASE`` would decide (case.json, pyproject, defaults)."""
    settings = resolve(Flags(path=case, base=base))
    return replace(settings, **changes) if changes else settings


def build_options(case: Path, tag: str, base: str, settings: dict[str, Any] | None = None,
                  **options: Any) -> BuildOptions:
    """BuildOptions for a corpus case on ``base``; ``options`` are BuildOptions fields."""
    dockerfile = DockerfileOptions(case_settings(case, base, **(settings or {})))
    return BuildOptions(dockerfile=dockerfile, tag=tag, **options)


def build_case(case: Path, base: str, engine: str = "docker") -> BuildResult:
    """``case`` built offline on ``base`` and verified, as pyfarm-test/CASE:BASE-TAG; the
    tag is the same every run, so Docker's cache makes a rebuild cheap."""
    suffix = "" if engine == "docker" else f"-{engine}"
    tag = f"pyfarm-test/{case.name.replace('_', '-')}:{base.split(':')[1]}{suffix}"
    options = build_options(case, tag, base, verify=True, network="none", engine=engine)
    return build_image(options, report=lambda _: None)
