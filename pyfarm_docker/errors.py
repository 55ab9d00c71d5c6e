"""One error hierarchy: each error knows its exit code and a hint a user can act on."""

from __future__ import annotations


class PyfarmError(Exception):
    """Base of every error the tool reports; the CLI prints it as one line plus a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(PyfarmError):
    """Bad command line, config or input files."""

    exit_code = 2


class TraceError(PyfarmError):
    """The traced run of the app failed, hung or never became ready."""

    exit_code = 3


class AssembleError(PyfarmError):
    """The farm could not be assembled from a trace."""

    exit_code = 4


class DockerError(PyfarmError):
    """No Docker daemon, or the daemon refused a request."""

    exit_code = 5


class BuildError(PyfarmError):
    """The image build failed in one of its steps."""

    exit_code = 6


class VerifyError(PyfarmError):
    """The packed image does not behave like its builder."""

    exit_code = 7


class RegistryError(PyfarmError):
    """A registry refused a push, or none answered at its address."""

    exit_code = 8
