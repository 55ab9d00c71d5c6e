"""Bytecode for the modules the run imported, written by the traced interpreter itself
(its magic number, its cache tag). The builder's own ``.pyc`` is reused when it is still
valid for its source, re-headed as unchecked-hash (no stat of the source at import, the
same bytes for the same source); other modules are compiled. Modules the run did not
import keep only their ``.py`` and compile on first import, if ever."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ..errors import AssembleError

# Runs in the app's interpreter (CPython 3.8+, standard library only). Reads
# [[source in the builder (or, generated, the path in the image), .py in the farm,
# sourceless], ...] as JSON on stdin.
_WRITE_PYC = r"""
import importlib.util, json, marshal, os, sys

MAGIC = importlib.util.MAGIC_NUMBER

def cached_body(source, data):
    # The marshalled code of a timestamp-checked .pyc that matches ``source``, or None.
    try:
        with open(importlib.util.cache_from_source(source), "rb") as f:
            head, body = f.read(16), f.read()
        st = os.stat(source)
    except (OSError, NotImplementedError):
        return None
    fields = [int.from_bytes(head[n:n + 4], "little") for n in (4, 8, 12)]
    if head[:4] != MAGIC or fields != [0, int(st.st_mtime) & 0xFFFFFFFF, len(data)]:
        return None
    return body

for source, target, sourceless in json.load(sys.stdin):
    # The farm's copy: what the image holds. ``source`` names the code and finds the
    # builder's .pyc.
    with open(target, "rb") as f:
        data = f.read()
    body = cached_body(source, data)
    if body is None:
        body = marshal.dumps(compile(data, source, "exec", dont_inherit=True))
    if sourceless:
        flags, stamp, pyc = 0, (0).to_bytes(8, "little"), target[:-3] + ".pyc"
        os.unlink(target)
    else:
        flags, stamp = 1, importlib.util.source_hash(data)  # hash-based, not checked
        pyc = importlib.util.cache_from_source(target)
        os.makedirs(os.path.dirname(pyc), exist_ok=True)
    with open(pyc, "wb") as f:
        f.write(MAGIC + flags.to_bytes(4, "little") + stamp + body)
"""


def write_bytecode(python: str, jobs: list[tuple[str, Path, bool]]) -> None:
    """For each (builder source, .py in the farm, sourceless): write its .pyc beside it
    (``__pycache__``) or, sourceless, in its place."""
    payload = json.dumps([[source, str(target), sourceless] for source, target, sourceless
                          in jobs])
    # A fixed hash seed: older CPythons marshal sets in hash order. -S -s: no site, no
    # user site; not -I, which would ignore PYTHONHASHSEED.
    done = subprocess.run([python, "-S", "-s", "-c", _WRITE_PYC], input=payload,
                          capture_output=True, text=True, check=False,
                          env={"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"})
    if done.returncode != 0:
        raise AssembleError(f"writing .pyc failed: {done.stderr.strip()[-500:]}")
