"""Benchmark: image size and start-up against the builder, the touched set, a hand-written
slim multi-stage image and PyInstaller; trace/assemble/build times; incremental rebuilds.

Prints a table and writes bench/RESULTS.md. Targets are printed next to each figure
as pass/FAIL; nothing here is tuned to meet them.
Usage: python bench/run.py [CASE_DIR...]   (default: the corpus and bench/scale)
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyfarm_docker import serve
from pyfarm_docker.documents.spec import AppSpec
from pyfarm_docker.driver import engine, report, wheelhouse
from pyfarm_docker.driver.dockerfile import DockerfileOptions
from pyfarm_docker.driver.imagebuild import BuildOptions, BuildResult, build_image
from pyfarm_docker.driver.settings import Flags, resolve
from pyfarm_docker.driver.target import Target
from pyfarm_docker.runtime import BUILDER_PYTHON, BUILDER_SOURCE, LAYERS

HERE = Path(__file__).resolve().parent
BASE = "local/python:3.11-bookworm"
RUNS = 3
_STEP = re.compile(r"\[\s*([\d.]+)s\] step \d+/\d+ \((\w+)\): (.*)")
_SLIM = """FROM {base} AS build
COPY wheelhouse/ /wh/
COPY requirements.txt /r.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /wh -r /r.txt
FROM {base}
COPY --from=build /opt/venv /opt/venv
COPY app/ /src/
"""
# PyInstaller needs objdump and a shared libpython (Debian's python3 is static); the offline
# builder gets them as debs the host fetched (the host may be a security update ahead of the
# base, hence --force-depends).
_BINUTILS = ("binutils", "binutils-common", "binutils-x86-64-linux-gnu", "libbinutils",
             "libctf-nobfd0", "libctf0", "libgprofng0", "libjansson4")
_PYI = """FROM {base}
COPY debs/ /debs/
RUN dpkg --force-depends -i /debs/*.deb > /dev/null 2>&1
COPY wheelhouse/ /wh/
COPY requirements.txt /r.txt
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-index --find-links /wh \\
    -r /r.txt pyinstaller
COPY app/ /src/
WORKDIR /src
RUN /opt/venv/bin/pyinstaller --log-level WARN --onedir --noconfirm --distpath /out \\
        --name app {script} && du -sb /out/app | cut -f1 > /out/SIZE
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def step_seconds(lines: list[str], word: str) -> float | None:
    """How long the build step whose instruction contains ``word`` ran."""
    steps = [(float(m.group(1)), m.group(3)) for m in map(_STEP.search, lines) if m]
    for (start, text), (end, _) in zip(steps, steps[1:]):
        if word in text:
            return end - start
    return None


def build(case: Path, tag: str, no_cache: bool) -> tuple[BuildResult, list[str]]:
    lines: list[str] = []
    options = BuildOptions(DockerfileOptions(resolve(Flags(path=case, base=BASE))), tag=tag,
                           network="none", verify=True, no_cache=no_cache)
    return build_image(options, report=lines.append), lines


def touched_bytes(client: Any, builder: str) -> int:
    """Bytes of the regular files the traced run opened or mapped (the physical limit)."""
    code = ("import json, os; t = json.load(open('/pyfarm/trace.json'));"
            "paths = {os.path.realpath(p) for p in t['files_opened'] + t['mapped']};"
            "print(sum(os.path.getsize(p) for p in paths if os.path.isfile(p)))")
    out = client.containers.run(builder, ["python3", "-c", code], network_mode="none",
                                remove=True, entrypoint=[])
    return int(out)


def first_line_ms(argv: list[str], port: int | None) -> float:
    """Time to the first output line, or for a server to its open port."""
    name = f"pyfarm-bench-{time.monotonic_ns()}"
    started = time.monotonic()
    proc = subprocess.Popen([*argv[:2], "--name", name, *argv[2:]], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        if port is None:
            proc.stdout.readline()
        else:
            serve.wait_for_port(port, started + 60, lambda: proc.poll() is None)
        return (time.monotonic() - started) * 1000
    finally:
        # Killing `docker run` leaves its container running: remove it by name.
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        proc.kill()
        proc.wait()


def startup(image: str, builder: str, spec: AppSpec) -> tuple[float, float]:
    net = ["--network", "host" if spec.kind == "server" else "none"]
    final = ["docker", "run", "--rm", *net, image]
    plain = ["docker", "run", "--rm", *net, "-w", str(BUILDER_SOURCE), "--entrypoint",
             str(BUILDER_PYTHON), builder, *spec.entry, *spec.checked_args]
    f = statistics.median(first_line_ms(final, spec.port) for _ in range(RUNS))
    b = statistics.median(first_line_ms(plain, spec.port) for _ in range(RUNS))
    return b, f




def peer_context(case: Path, spec: AppSpec, target: Target, extra: list[str]) -> Path:
    ctx = Path(tempfile.mkdtemp(prefix="pyfarm-bench-"))
    shutil.copytree(case, ctx / "app")
    requirements = case / "requirements.txt"
    shutil.copy(requirements, ctx / "requirements.txt")
    wheels = ctx / "wheelhouse"
    wheels.mkdir()
    cache = Path.home() / ".cache/pyfarm-docker/bench-wheels" / f"{case.name}-{'-'.join(extra)}"
    args = ["-r", str(requirements), *extra] if requirements.read_text().strip() or extra else []
    for wheel in wheelhouse.download(args, cache, target):
        shutil.copy(wheel, wheels / wheel.name)
    (ctx / "debs").mkdir()
    if extra:
        subprocess.run(["apt-get", "download", "-qq", *_BINUTILS, f"libpython{target.python}"],
                       cwd=ctx / "debs", check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if spec.module:
        (ctx / "app" / "_entry.py").write_text(
            f"import runpy\nrunpy.run_module({spec.module!r}, run_name='__main__')\n")
    return ctx


def peer_image(client: Any, ctx: Path, dockerfile: str, tag: str) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    tracker = engine.StepTracker(lambda _: None)
    image = engine.build_stage(client, ctx, "Dockerfile", tracker, network="none")
    engine.tag(client, image, tag)
    return tag


def peers(client: Any, case: Path, spec: AppSpec) -> dict[str, int | None]:
    base = engine.probe_base(client, BASE)
    ctx = peer_context(case, spec, base, [])
    pyi_ctx = peer_context(case, spec, base, ["pyinstaller"])
    try:
        slim = peer_image(client, ctx, _SLIM.format(base=BASE), f"pyfarm-bench/slim-{case.name}")
        script = "_entry.py" if spec.module else spec.entry[0]
        try:
            pyi = peer_image(client, pyi_ctx, _PYI.format(base=BASE, script=script),
                             f"pyfarm-bench/pyi-{case.name}")
            pyi_bytes: int | None = int(engine.read_file(client, pyi, "/out/SIZE"))
        except Exception as exc:
            log(f"{case.name}: PyInstaller failed: {str(exc)[:300]}")
            pyi_bytes = None
        return {"slim_bytes": engine.image_size(client, slim), "pyinstaller_bytes": pyi_bytes}
    finally:
        shutil.rmtree(ctx)
        shutil.rmtree(pyi_ctx)


def incremental(case: Path, spec: AppSpec, before: BuildResult) -> int:
    """Bytes of the layers that change after editing one line of the app."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / case.name
        shutil.copytree(case, copy)
        target = copy / (spec.entry[0] if not spec.module else f"{spec.module}/__main__.py")
        target.write_text(target.read_text() + "# edited\n")
        after, _ = build(copy, "pyfarm-bench/edited", no_cache=False)
    client = engine.connect()
    old = client.images.get(before.image_id).attrs["RootFS"]["Layers"]
    new = client.images.get(after.image_id).attrs["RootFS"]["Layers"]
    manifest = report.load_manifest(after.tag)
    changed = {n for n, (a, b) in enumerate(zip(old, new)) if a != b}
    return sum(f.size for f in manifest.files if LAYERS.index(f.layer) in changed)


def bench_case(case: Path) -> dict[str, Any]:
    client = engine.connect()
    spec = resolve(Flags(path=case, base=BASE)).spec
    tag = f"pyfarm-bench/{case.name.replace('_', '-')}"
    log(f"{case.name}: cold build")
    cold, lines = build(case, tag, no_cache=True)
    log(f"{case.name}: warm build")
    warm_started = time.monotonic()
    build(case, tag, no_cache=False)
    warm_s = time.monotonic() - warm_started
    assert cold.builder_tag is not None
    summary = report.summarize(report.load_manifest(tag))
    essentials = sum(g["bytes"] for g in summary["by_origin"] if g["origin"] == "essential")
    log(f"{case.name}: start-up, peers, incremental")
    builder_ms, final_ms = startup(tag, cold.builder_tag, spec)
    return {
        "case": case.name, "final": cold.final_bytes, "builder": cold.builder_bytes,
        "farm": summary["total_bytes"], "pruned_est": summary["total_bytes"]
        - summary["prune_saves_bytes"], "touched": touched_bytes(client, cold.builder_tag)
        + essentials, "trace_s": step_seconds(lines, "pyfarm-docker trace"),
        "assemble_s": step_seconds(lines, "pyfarm-docker assemble"), "cold_s": cold.seconds,
        "warm_s": warm_s, "builder_ms": builder_ms, "final_ms": final_ms,
        "incremental": incremental(case, spec, cold), **peers(client, case, spec),
    }


def _ok(good: bool) -> str:
    return "pass" if good else "FAIL"


def row(r: dict[str, Any]) -> str:
    mb = 1e6
    ratio = r["final"] / r["builder"]
    touched = r["farm"] / r["touched"]
    pruned = r["pruned_est"] / r["touched"]
    pyi = r["pyinstaller_bytes"]
    pyi_cell = (f"{pyi / mb:.0f} ({_ok(r['farm'] < pyi)})" if pyi else "failed")
    start = r["final_ms"] / r["builder_ms"]
    return (f"| {r['case']} | {r['final'] / mb:.0f} / {r['builder'] / mb:.0f} = {ratio:.2f} "
            f"({_ok(ratio <= 0.25)}) | {touched:.2f}x ({_ok(touched <= 1.5)}) | {pruned:.2f}x "
            f"({_ok(pruned <= 1.1)}) | {r['slim_bytes'] / mb:.0f} | {pyi_cell} | "
            f"{r['final_ms']:.0f} / {r['builder_ms']:.0f} = {start:.2f} ({_ok(start <= 1.0)}) | "
            f"{r['trace_s']:.1f} + {r['assemble_s']:.1f} ({_ok(r['assemble_s'] <= 10)}) | "
            f"{r['cold_s']:.0f} / {r['warm_s']:.0f} | {r['incremental'] / mb:.2f} "
            f"({_ok(r['incremental'] <= 1e6)}) |")


HEADER = "\n".join([
    "| case | final / builder MB (<= 0.25) | farm / touched (<= 1.5x) "
    "| pruned (est.) / touched (<= 1.1x) | slim multi-stage MB "
    "| PyInstaller onedir MB (farm smaller) | start-up ms final / builder (<= 1.0) "
    "| trace + assemble s (assemble <= 10) | build s cold / warm | incremental MB (<= 1) |",
    "|---|---|---|---|---|---|---|---|---|---|",
])


def main(argv: list[str]) -> int:
    corpus = HERE.parent.parent / "shared" / "corpus"
    cases = [Path(a).resolve() for a in argv] or [
        *sorted(p for p in corpus.iterdir() if (p / "requirements.txt").exists()), HERE / "scale"]
    rows = []
    for case in cases:
        result = bench_case(case)
        print(json.dumps(result), flush=True)
        rows.append(result)
        write_results(rows)  # after each case: a long run that stops still leaves a table
    print("\n".join([HEADER, *map(row, rows)]))
    return 0


def write_results(rows: list[dict[str, Any]]) -> None:
    table = "\n".join([HEADER, *map(row, rows)])
    raw = "\n".join(json.dumps(r, sort_keys=True) for r in rows)
    (HERE / "RESULTS.md").write_text(
        "# Benchmark results\n\nMade by `make bench` (bench/run.py) on one machine, in one run "
        f"(base {BASE}).\nSizes are uncompressed; 'touched' counts the files the traced run "
        "opened or mapped plus the runtime essentials; 'pruned (est.)' is the farm less what "
        "`report` says --prune would save.\n\n" + table + "\n\nRaw figures:\n\n```\n"
        + raw + "\n```\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
