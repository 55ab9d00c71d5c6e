"""Progress from either engine's build log, and how other clients reach the engine."""

from __future__ import annotations

from pyfarm_docker.driver.engine import Engine, StepTracker

# Lines as the Docker legacy builder and podman (buildah) print them for the same file.
DOCKER_LOG = """Step 1/20 : ARG BASE=local/python:3.11-bookworm
Step 2/20 : FROM ${BASE} AS builder
 ---> 100494265323
Step 14/20 : FROM scratch AS final
Step 15/20 : COPY --from=builder /pyfarm/out/1-runtime/ /
"""
PODMAN_LOG = """[1/2] STEP 1/13: FROM local/python:3.11-bookworm AS builder
[1/2] STEP 2/13: ENV PIP_DISABLE_PIP_VERSION_CHECK=1
--> a96dd126191
[2/2] STEP 1/10: FROM scratch AS final
[2/2] STEP 2/10: COPY --from=builder /pyfarm/out/1-runtime/ /
[2/2] COMMIT pyfarm-test/st:podman
"""


def _steps(log: str) -> tuple[list[str], StepTracker]:
    seen: list[str] = []
    tracker = StepTracker(seen.append)
    tracker.feed(log)
    return [s.split("] ", 1)[1] for s in seen], tracker


def test_docker_steps_and_stages() -> None:
    steps, tracker = _steps(DOCKER_LOG)
    assert steps == [
        "step 1/20 (): ARG BASE=local/python:3.11-bookworm",
        "step 2/20 (builder): FROM ${BASE} AS builder",
        "step 14/20 (final): FROM scratch AS final",
        "step 15/20 (final): COPY --from=builder /pyfarm/out/1-runtime/ /",
    ]
    assert tracker.log[-1] == "Step 15/20 : COPY --from=builder /pyfarm/out/1-runtime/ /"


def test_podman_steps_and_stages() -> None:
    steps, tracker = _steps(PODMAN_LOG)
    assert steps == [
        "step 1/13 (builder): FROM local/python:3.11-bookworm AS builder",
        "step 2/13 (builder): ENV PIP_DISABLE_PIP_VERSION_CHECK=1",
        "step 1/10 (final): FROM scratch AS final",
        "step 2/10 (final): COPY --from=builder /pyfarm/out/1-runtime/ /",
    ]
    error = tracker.failure("no space left on device")
    assert "stage final, step 2/10" in error.message
    assert "[2/2] COMMIT" in error.message


def test_client_kw_points_other_clients_at_the_engine() -> None:
    assert Engine("docker", client=None).client_kw() == {}
    env = Engine("podman", client=None, host="unix:///tmp/p.sock").client_kw()["environment"]
    assert env["DOCKER_HOST"] == "unix:///tmp/p.sock"
