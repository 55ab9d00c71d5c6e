"""Corpus cases as the tool sees them: settings resolved from the case's folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions
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
