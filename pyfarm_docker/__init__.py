"""pyfarm-docker: turn a Python application into a minimal container image.

The pipeline, one module a step: ``trace`` (record a real run) -> ``plan``
(decide what goes where) -> ``farm`` (copy and link) -> ``patch`` (the only
writer of ELF files) -> ``dockerfile`` (render) -> ``engine`` (build) ->
``verify`` (compare the image with its builder).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
