"""The runtime contract: what the final image sets and where the farm puts things.

Defined once and used by the Dockerfile template, the assembler (essentials, layers,
manifest), verify, report and the host test tier, so all of them agree on how the
farm runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from . import defaults

NONROOT = 65532
USER = f"{NONROOT}:{NONROOT}"
LAYERS = ("runtime", "big", "packages", "app")
CA_BUNDLE = PurePosixPath("/etc/ssl/certs/ca-certificates.crt")

LABEL_SPEC = "io.pyfarm-docker.spec"
LABEL_MANIFEST = "io.pyfarm-docker.manifest"
LABEL_BASE = "io.pyfarm-docker.base"

# The builder stage (see templates/Dockerfile.j2): where the app and the tool live there.
BUILDER_VENV = PurePosixPath("/opt/venv")
BUILDER_PYTHON = BUILDER_VENV / "bin" / "python"
BUILDER_SOURCE = PurePosixPath("/src")
BUILDER_TOOL = PurePosixPath("/pyfarm/venv/bin/pyfarm-docker")
BUILDER_TOOL_PYTHON = PurePosixPath("/pyfarm/venv/bin/python")
BUILDER_SPEC = PurePosixPath("/pyfarm/spec.json")
BUILDER_TRACE = PurePosixPath("/pyfarm/trace.json")
BUILDER_OUT = PurePosixPath("/pyfarm/out")
BUILDER_PROVIDED = PurePosixPath("/pyfarm/provided.json")  # the final base's files


def layer_dirs() -> tuple[str, ...]:
    """Directory names of the layers in assemble's ``--layers`` output, in COPY order."""
    return tuple(f"{n}-{name}" for n, name in enumerate(LAYERS, start=1))


@dataclass(frozen=True)
class Runtime:
    """Where the farm lives in the image and how the image runs it."""

    prefix: PurePosixPath = defaults.PREFIX

    @property
    def python(self) -> PurePosixPath:
        return self.prefix / "python" / "bin" / "python"

    @property
    def app_dir(self) -> PurePosixPath:
        return self.prefix / "app"

    @property
    def workdir(self) -> PurePosixPath:
        return self.app_dir

    @property
    def manifest(self) -> PurePosixPath:
        return self.prefix / ".pyfarm" / "manifest.json"

    @property
    def sbom(self) -> PurePosixPath:
        return self.prefix / ".pyfarm" / "sbom.spdx.json"

    @property
    def library_dir(self) -> PurePosixPath:
        """Libraries found by bare name: listed in the image's ld.so.cache."""
        return self.prefix / "ld_library_paths" / "l"

    def env(self) -> tuple[tuple[str, str], ...]:
        """The final image's environment."""
        return (("LANG", "C.UTF-8"),
                ("SSL_CERT_FILE", str(CA_BUNDLE)),
                ("PYTHONDONTWRITEBYTECODE", "1"),
                ("PATH", f"{self.prefix}/python/bin:/usr/bin:/bin"))

    def entrypoint(self, entry: tuple[str, ...]) -> list[str]:
        """The exec-form ENTRYPOINT for an app started as ``python ENTRY...``."""
        if entry[:1] in (("-m",), ("-c",)):
            return [str(self.python), *entry]
        return [str(self.python), str(self.app_dir / entry[0]), *entry[1:]]
