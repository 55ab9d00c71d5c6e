"""verify --import-all on a real image: every shipped top-level module imports in the farm
of stdlib_tour, and a module planted to fail there (but not in the builder) is named."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from typing import IO, Any, Iterator

import pytest

from pyfarm_docker import cli
from pyfarm_docker.driver.imagebuild import BuildResult, build_image
from pyfarm_docker.errors import VerifyError
from tests.support.cases import build_options
from tests.support.paths import corpus_cases

pytestmark = pytest.mark.docker

DEBIAN = "local/python:3.11-bookworm"
TAG = "pyfarm-test/import-all:stdlib-tour"
PLANTED = "pyfarm-test/import-all:planted"
# wave: a pure-Python stdlib module stdlib_tour never imports, so only import-all can notice.
_WAVE = re.compile(r"lib/python3\.\d+/wave\.py$")
_WAVE_PYC = re.compile(r"lib/python3\.\d+/__pycache__/wave\.[^/]*pyc$")
_STDLIB_ZIP = re.compile(r"lib/python3\d+-untraced\.zip$")


def _options(**changes: Any) -> Any:
    (case,) = [c for c in corpus_cases() if c.name == "stdlib_tour"]
    return build_options(case, TAG, DEBIAN, network="none", verify=True, **changes)


@pytest.fixture(scope="module")
def built(client: Any, base_images: list[str]) -> BuildResult:
    """stdlib_tour on bookworm, verified (without import-all) and tagged with its builder."""
    return build_image(_options(), report=lambda _: None)


def _planted(client: Any, image: str, reference: str) -> str:
    """``image`` re-imported with its wave.py raising ImportError and wave's .pyc gone."""
    container = client.containers.create(image)
    try:
        exported = b"".join(container.export())
    finally:
        container.remove(force=True)
    out = io.BytesIO()
    planted = b"raise ImportError('planted by the test')\n"
    found = []
    with tarfile.open(fileobj=io.BytesIO(exported)) as source, \
            tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if _WAVE_PYC.search(member.name):
                continue
            if _WAVE.search(member.name) and member.isfile():
                found.append(member.name)
                member.size = len(planted)
                target.addfile(member, io.BytesIO(planted))
                continue
            if _STDLIB_ZIP.search(member.name) and member.isfile():
                data = _replant_zip(source.extractfile(member), planted)  # type: ignore[arg-type]
                if data is not None:
                    found.append(f"{member.name}/wave.py")
                    member.size = len(data)
                    target.addfile(member, io.BytesIO(data))
                    continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    assert found, "the farm has no wave.py to plant into"
    config = client.images.get(image).attrs["Config"]
    changes = [f"ENTRYPOINT {json.dumps(config['Entrypoint'])}", f"USER {config['User']}",
               f"WORKDIR {config['WorkingDir']}", *(f"ENV {e}" for e in config["Env"]),
               *(f"LABEL {k}={json.dumps(v)}" for k, v in config["Labels"].items())]
    repo, tag = reference.split(":")
    client.api.import_image_from_data(out.getvalue(), repository=repo, tag=tag,
                                      changes=changes)
    return reference


def _replant_zip(archive: IO[bytes], planted: bytes) -> bytes | None:
    """The stdlib zip (where untouched stdlib modules ship) with its wave.py replaced, or
    None when it holds no wave.py."""
    out = io.BytesIO()
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(out, "w") as target:
        if "wave.py" not in source.namelist():
            return None
        for info in source.infolist():
            target.writestr(info, planted if info.filename == "wave.py" else source.read(info))
    return out.getvalue()


@pytest.fixture
def planted(client: Any, built: BuildResult) -> Iterator[str]:
    yield _planted(client, built.tag, PLANTED)
    client.images.remove(PLANTED, force=True)


def test_every_shipped_module_imports(built: BuildResult) -> None:
    """build --verify --import-all passes (the layers are cached by the fixture's build)."""
    result = build_image(_options(import_all=True), report=lambda _: None)
    assert result.verdict is not None and result.verdict.ok
    imports = result.verdict.imports
    assert imports is not None and imports.broken == {}
    imported = [name for name, r in imports.final.items() if r == "ok"]
    assert len(imported) > 100
    assert {"json", "sqlite3", "ssl", "zoneinfo", "email", "sys"} <= set(imported)
    assert "tkinter" not in imports.final and "antigravity" not in imports.final
    assert "app" not in imports.final  # the app's own script is never imported
    assert set(imports.builder) == set(imports.final)


def test_a_module_broken_only_in_the_image_is_named(
        client: Any, built: BuildResult, planted: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert built.builder_tag is not None
    assert cli.main(["verify", planted, "--like", built.builder_tag]) == 0  # the app is fine
    status = cli.main(["verify", planted, "--like", built.builder_tag, "--import-all"])
    assert status == VerifyError.exit_code
    err = capsys.readouterr().err
    assert "pass: stdout" in err and "FAIL: import-all" in err
    assert "wave: ImportError: planted by the test" in err
    for image in (planted, built.builder_tag):  # nothing left behind (others may run too)
        assert client.containers.list(all=True, filters={"ancestor": image}) == []
