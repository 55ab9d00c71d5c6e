"""Parse the event log written by the trace shim into one record per process."""

from __future__ import annotations

from dataclasses import dataclass, field

_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n"}


def unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        out.append(_UNESCAPE.get(next(chars, ""), "") if ch == "\\" else ch)
    return "".join(out)


@dataclass
class ProcessRecord:
    """What one traced process reported about itself."""

    pid: int
    ppid: int = 0
    executable: str = ""
    argv: list[str] = field(default_factory=list)
    sys_path: list[str] = field(default_factory=list)
    modules: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    mapped: set[str] = field(default_factory=set)
    dlopen: set[str] = field(default_factory=set)
    exited: bool = False


def _apply(rec: ProcessRecord, event: str, fields: list[str]) -> None:
    if event == "start":
        rec.ppid, rec.executable, rec.argv = int(fields[0]), fields[1], fields[2:]
    elif event == "argv":
        rec.argv = fields
    elif event == "sys_path":
        rec.sys_path = fields
    elif event == "module":
        rec.modules[fields[0]] = (fields[1], fields[2:])
    elif event == "import":
        rec.imports.add(fields[0])
    elif event == "open":
        rec.opened.add(fields[0])
    elif event == "map":
        rec.mapped.add(fields[0])
    elif event == "dlopen":
        rec.dlopen.add(fields[0])
    elif event == "exit":
        rec.exited = True


def parse_lines(lines: list[str], records: dict[int, ProcessRecord]) -> None:
    """Fold log lines into ``records`` (keyed by pid); a torn last line is ignored."""
    for line in lines:
        if not line.endswith("\n"):
            continue
        parts = [unescape(p) for p in line[:-1].split("\t")]
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        _apply(records.setdefault(pid, ProcessRecord(pid)), parts[1], parts[2:])

