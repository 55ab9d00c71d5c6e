"""Host tier: trace each corpus case in a venv, assemble its farm, run the farm in an
empty root (no Docker) and compare with the normal run."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyfarm_docker import cli
from pyfarm_docker.builder.assemble import MARKER, AssembleOptions, assemble
from pyfarm_docker.builder.tracer import TraceOptions, run_trace, spec_command
from pyfarm_docker.documents.manifest import Manifest
from pyfarm_docker.documents.spec import AppSpec
from pyfarm_docker.documents.trace import Trace
from pyfarm_docker.driver import report
from pyfarm_docker.runtime import Runtime
from tests.support import corpusrun, emptyroot, spdx
from tests.support.cases import case_settings
from tests.support.paths import corpus_cases
from tests.support.venvs import case_venv

pytestmark = pytest.mark.host

CASES = corpus_cases()


RUNTIME = Runtime()


@dataclass(frozen=True)
class Farmed:
    """A corpus case traced in its venv and assembled into ``root``."""

    app: Path
    root: Path
    python: Path
    spec: AppSpec
    trace: Trace
    manifest: Manifest


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def farmed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Farmed:
    case: Path = request.param
    work = tmp_path_factory.mktemp(case.name)
    app = corpusrun.copy_app(case, work / "src")
    spec = case_settings(app).spec
    python = case_venv(case / "requirements.txt") / "bin" / "python"
    trace = run_trace(TraceOptions(spec_command(spec, (str(python),)), work / "trace.json",
                                   cwd=app, port=spec.port, probes=spec.probes))
    manifest = assemble(AssembleOptions(work / "trace.json", work / "root"))
    return Farmed(app, work / "root", python, spec, trace, manifest)


def _farm_command(root: Path, entry: tuple[str, ...], args: tuple[str, ...]) -> list[str]:
    """How the image runs the app (the runtime contract), inside an empty root."""
    return emptyroot.command(root, [*RUNTIME.entrypoint(entry), *args], str(RUNTIME.workdir),
                             dict(RUNTIME.env()))


def test_farm_behaves_like_the_app(farmed: Farmed) -> None:
    app, root, python, spec = farmed.app, farmed.root, farmed.python, farmed.spec
    normal_argv = [str(python), *spec.entry, *spec.checked_args]
    farm_cmd = _farm_command(root, spec.entry, spec.checked_args)
    if spec.kind == "server":
        expected = corpusrun.run_server(normal_argv, spec, app)
        got = corpusrun.run_server(farm_cmd, spec)
        assert expected.answers, expected.stderr
    else:
        expected = corpusrun.run_script(normal_argv, app)
        got = corpusrun.run_script(farm_cmd, app)
        assert expected.status == 0, expected.stderr
    assert corpusrun.comparable(got) == corpusrun.comparable(expected), got.stderr[-3000:]


def test_every_loaded_object_resolves_inside_the_farm(farmed: Farmed) -> None:
    """ld.so --list, run inside the empty root, finds every dependency in the farm."""
    root = farmed.root
    objects = [str(RUNTIME.python)] + [
        f.path for f in farmed.manifest.files
        if f.path.startswith("/app/reals/r/") and f.origin != "stdlib"
    ]
    for obj in objects:
        done = emptyroot.run(root, ["/lib64/ld-linux-x86-64.so.2", "--list", obj])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "not found" not in done.stdout, done.stdout
        resolved = re.findall(r"=> (\S+)", done.stdout)
        assert all(p.startswith("/app/") for p in resolved), done.stdout


def test_home_is_the_nonroot_users_own(farmed: Farmed) -> None:
    root = farmed.root
    home = (root / "home/nonroot").stat()
    assert (home.st_uid, home.st_gid, home.st_mode & 0o7777) == (65532, 65532, 0o700)
    code = "import pathlib; p = pathlib.Path.home() / 'note'; p.write_text('ok'); print(p)"
    done = emptyroot.run(root, [str(RUNTIME.python), "-c", code])
    (root / "home/nonroot/note").unlink(missing_ok=True)
    assert (done.returncode, done.stdout) == (0, "/home/nonroot/note\n"), done.stderr


def test_manifest_describes_every_file(farmed: Farmed) -> None:
    root = farmed.root
    manifest = Manifest.read(root / str(RUNTIME.manifest).lstrip("/"))
    assert manifest == farmed.manifest
    listed = {f.path for f in manifest.files}
    on_disk = {"/" + str(p.relative_to(root)) for p in root.rglob("*")
               if p.is_file() and not p.is_symlink()}
    harness = {"/etc/hosts"}  # the empty-root runner's mount point, as Docker's
    # The manifest does not list itself, nor the marker of an assemble output (not copied
    # into images: the layer directories hold the image's files).
    assert on_disk - listed - harness == {str(RUNTIME.manifest), "/" + MARKER}
    assert {f.layer for f in manifest.files} <= {"runtime", "big", "packages", "app"}


def test_pruned_farm_is_smaller_and_behaves_the_same(tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.name == "pandas_frame"]
    app = corpusrun.copy_app(case, tmp_path / "src")
    python = str(case_venv(case / "requirements.txt") / "bin" / "python")
    run_trace(TraceOptions((python, "app.py"), tmp_path / "trace.json", cwd=app))
    full = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "full"))
    pruned = assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "pruned", prune=True))

    def py_files(doc: Manifest) -> int:
        return sum(1 for f in doc.files if f.path.endswith(".py") and "/site-packages/" in f.path)

    assert py_files(pruned) < py_files(full) / 2
    expected = corpusrun.run_script([python, "app.py"], app)
    got = corpusrun.run_script(_farm_command(tmp_path / "pruned", ("app.py",), ()), app)
    assert (got.status, got.stdout) == (expected.status, expected.stdout), got.stderr[-2000:]


def test_sbom_lists_what_the_farm_ships(farmed: Farmed) -> None:
    root, trace = farmed.root, farmed.trace
    document = json.loads((root / str(RUNTIME.sbom).lstrip("/")).read_text())
    assert document["spdxVersion"] == "SPDX-2.3"
    listed = {(p["name"], p.get("versionInfo", "")) for p in document["packages"]}
    assert {(d.name, d.version) for d in trace.distributions} <= listed
    status = root / "var/lib/dpkg/status.d/libc6"
    assert "Package: libc6" in status.read_text()
    assert ("libc6", next(line.split(": ")[1] for line in status.read_text().splitlines()
                          if line.startswith("Version: "))) in listed


def test_report_accounts_for_every_byte(farmed: Farmed) -> None:
    summary = report.summarize(report.load_manifest(str(farmed.root)))
    manifest = farmed.manifest
    assert summary["total_bytes"] == sum(f.size for f in manifest.files)
    assert sum(g["bytes"] for g in summary["by_origin"]) == summary["total_bytes"]
    origins = {g["origin"] for g in summary["by_origin"]}
    assert {f"dist:{d.name}" for d in farmed.trace.distributions} <= origins
    assert "lib:libc.so.6" in origins
    assert summary["top_files"][0]["bytes"] == max(f.size for f in manifest.files)


def test_report_html_renders_its_treemap_in_chromium(tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.name == "numpy_linalg"]
    app = corpusrun.copy_app(case, tmp_path / "src")
    python = str(case_venv(case / "requirements.txt") / "bin" / "python")
    run_trace(TraceOptions((python, "app.py"), tmp_path / "trace.json", cwd=app))
    assemble(AssembleOptions(tmp_path / "trace.json", tmp_path / "root"))
    page = tmp_path / "report.html"
    assert cli.main(["report", str(tmp_path / "root"), "--html", str(page)]) == 0
    summary = report.summarize(report.load_manifest(str(tmp_path / "root")))
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    match = re.search(r'data-rendered="(\d+):(\d+)"', dom)
    assert match, dom[:500]
    drawn = sum(1 for g in summary["by_origin"] if g["bytes"] > 0)
    assert int(match.group(1)) == drawn
    assert int(match.group(2)) == pytest.approx(1200 * 700, rel=0.01)


def test_sbom_is_valid_spdx_and_lists_what_ships(farmed: Farmed, tmp_path: Path) -> None:
    """The SBOM validates with spdx-tools; CPython, every distribution (PEP 503 purl) and
    every shipped native library are in it; its namespace is the farm's own."""
    raw = (farmed.root / str(RUNTIME.sbom).lstrip("/")).read_bytes()
    assert spdx.problems(raw, tmp_path) == ""
    document = json.loads(raw)
    by_name = {p["name"]: p for p in document["packages"]}
    purls = spdx.purls(document)
    interp = farmed.trace.interpreter
    assert by_name["python"]["versionInfo"] == interp.version
    assert purls["SPDXRef-CPython"] == f"pkg:generic/python@{interp.version}"
    for dist in farmed.trace.distributions:
        normal = re.sub(r"[-_.]+", "-", dist.name).lower()
        assert f"pkg:pypi/{normal}@{dist.version}" in purls.values()
    for package in document["packages"][1:]:  # all but the image itself
        assert package["SPDXID"] in purls, package["name"]
    files = [f.path for f in farmed.manifest.files]
    assert spdx.unlisted_libraries(document, files) == []
    assert re.search(r"/[^/]+-[0-9a-f]{64}$", document["documentNamespace"])
