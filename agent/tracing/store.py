"""Reading saved traces back: load, validate against langsmith's run schema, list, build the tree.

A trace is what `tracing.jsonl.JsonlTracer` writes: `<root>/<trace_id>/runs.jsonl` (one finished run per
line, LangSmith's run format), `meta.json` and `images/`. This module only reads, and imports neither
LangGraph nor langchain-core, so the `lookcloser trace` commands start fast. `validate_trace` makes
"LangSmith can ingest this" checkable offline, for a file edited or cut short after it was written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from lookcloser.core.errors import LookCloserError

__all__ = ["IMAGES_DIR", "META_FILE", "RUNS_FILE", "TRACE_FORMAT", "RunNode", "TraceError", "TraceSummary",
           "build_tree", "list_traces", "load_trace", "read_meta", "root_run", "run_seconds", "summarize",
           "trace_file", "validate_trace"]

#: The layout of a trace directory (the writer, `tracing.jsonl`, uses these too).
RUNS_FILE, META_FILE, IMAGES_DIR = "runs.jsonl", "meta.json", "images"
TRACE_FORMAT = "lookcloser-trace/2"
REQUIRED_FIELDS = ("id", "trace_id", "dotted_order", "name", "run_type", "inputs", "start_time")
_SEGMENT = re.compile(r"^(\d{8}T\d{6}\d{6})Z([0-9a-fA-F-]{36})$")

logger = logging.getLogger("lookcloser.tracing")
Record = dict[str, Any]


class TraceError(LookCloserError, ValueError):
    """A trace directory is missing, unreadable or inconsistent; the message names the file or run."""


def _label(record: Record) -> str:
    return f"run {record.get('name', '?')!r} (id {record.get('id', '?')})"


def trace_file(trace_dir: str | os.PathLike) -> Path:
    """The runs.jsonl of a trace directory, with a one-line error when it is not there."""
    path = Path(trace_dir)
    if path.is_file() and path.name == RUNS_FILE:
        return path
    if not path.exists():
        raise TraceError(f"trace directory '{path}' does not exist")
    if not path.is_dir():
        raise TraceError(f"'{path}' is not a trace directory (expected a folder holding {RUNS_FILE})")
    if not (path / RUNS_FILE).is_file():
        raise TraceError(f"'{path}' has no {RUNS_FILE}: not a trace directory (or the trace wrote no run yet)")
    return path / RUNS_FILE


def load_trace(trace_dir: str | os.PathLike) -> list[Record]:
    """All finished runs of one trace, sorted by dotted_order (execution order, parents first). A last line
    cut short by a crash is skipped with a warning; any other bad line raises TraceError naming the line."""
    path = trace_file(trace_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text (byte {exc.start}): not a trace log") from exc
    except OSError as exc:
        raise TraceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    lines = text.split("\n")
    runs: list[Record] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                logger.warning("%s: skipping line %d, cut short (the process likely died mid-write)", path, number)
                continue
            raise TraceError(f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise TraceError(f"{path}: line {number} is a JSON {type(record).__name__}, expected a run object")
        runs.append(record)
    return sorted(runs, key=lambda r: str(r.get("dotted_order", "")))


def _time(record: Record, key: str) -> datetime | None:
    value = record.get(key)
    try:
        return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise TraceError(f"{_label(record)}: {key} {value!r} is not an ISO-8601 time") from exc


def _check_schema(record: Record, complete: bool) -> None:
    """The record against langsmith's own pydantic model of a run (and its run types)."""
    from langsmith import schemas  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    label = _label(record)
    missing = [name for name in REQUIRED_FIELDS if record.get(name) in (None, "")]
    missing += ["end_time"] if complete and record.get("end_time") is None else []
    if missing:
        raise TraceError(f"{label}: missing required field(s) {', '.join(missing)}")
    unknown = sorted(set(record) - set(schemas.Run.model_fields))
    if unknown:
        raise TraceError(f"{label}: field(s) {', '.join(unknown)} are not in langsmith's run schema")
    allowed = sorted(member.value for member in schemas.RunTypeEnum)
    if record["run_type"] not in allowed:
        raise TraceError(f"{label}: run_type {record['run_type']!r} is not one of {allowed}")
    extra = record.get("extra")
    if extra is not None and not (isinstance(extra, dict) and isinstance(extra.get("metadata", {}), dict)):
        raise TraceError(f"{label}: extra must be an object and extra.metadata an object")
    try:
        schemas.Run(**record)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TraceError(f"{label}: does not match langsmith.schemas.Run ({problems})") from exc
    except TypeError as exc:
        raise TraceError(f"{label}: does not match langsmith.schemas.Run ({exc})") from exc


def _segment(record: Record, segment: str) -> tuple[str, str]:
    match = _SEGMENT.match(segment)
    if not match:
        raise TraceError(f"{_label(record)}: dotted_order segment {segment!r} is not <YYYYmmddTHHMMSSffffff>Z<uuid>")
    return match.group(1), match.group(2)


def _check_links(record: Record, by_id: dict[str, Record], trace_id: str, complete: bool) -> None:
    """dotted_order = the parent's dotted_order + `<start_time>Z<id>`, rooted at the trace root. (A child may
    end after its parent: a tool call that outlived its node's time limit does.)"""
    segments = str(record["dotted_order"]).split(".")
    (stamp, own_id), first_id = _segment(record, segments[-1]), _segment(record, segments[0])[1]
    start, end = _time(record, "start_time"), _time(record, "end_time")
    parent_id = record.get("parent_run_id")
    parent = by_id.get(str(parent_id)) if parent_id else None
    ends_with_parent = len(segments) > 1 and _segment(record, segments[-2])[1] == str(parent_id)
    for holds, problem in (
            (own_id == str(record["id"]), f"dotted_order ends in id {own_id}, not the run's own id"),
            (start.strftime("%Y%m%dT%H%M%S%f") == stamp, f"dotted_order time {stamp} differs from start_time {start}"),
            (end is None or end >= start, f"end_time {record.get('end_time')} is before start_time {start}"),
            (first_id == trace_id, f"dotted_order starts at {first_id}, not at the trace root {trace_id}"),
            (parent_id or len(segments) == 1, f"a root run's dotted_order must have one segment, has {len(segments)}"),
            (not parent_id or parent or not complete, f"parent_run_id {parent_id} is not a run of this trace"),
            (not parent_id or parent or ends_with_parent, f"dotted_order does not end with its parent {parent_id}"),
            (not parent or record["dotted_order"] == f"{parent['dotted_order']}.{segments[-1]}",
             "dotted_order is not its parent's dotted_order plus its own segment"),
            (not parent or start >= _time(parent, "start_time"), f"starts before its parent {_label(parent or {})}")):
        if not holds:
            raise TraceError(f"{_label(record)}: {problem}")


def validate_trace(runs: Iterable[Record] | str | os.PathLike, *, complete: bool = True) -> None:
    """Raise TraceError naming the first offending run; None when the trace is consistent. `runs`: the records,
    or a trace directory. `complete=False` checks each record and the links between the runs present, without
    asking for the root or every parent (a trace cut short by a crash)."""
    runs = load_trace(runs) if isinstance(runs, (str, os.PathLike)) else list(runs)
    if not runs:
        raise TraceError("trace has no runs")
    by_id: dict[str, Record] = {}
    for record in runs:
        _check_schema(record, complete)
        run_id = str(uuid.UUID(str(record["id"])))
        if run_id in by_id:
            raise TraceError(f"{_label(record)}: id appears twice in the trace")
        by_id[run_id] = record
    trace_ids = sorted({str(r["trace_id"]) for r in runs})
    if len(trace_ids) != 1:
        raise TraceError(f"runs belong to {len(trace_ids)} traces ({', '.join(trace_ids)}); expected one")
    roots = [r for r in runs if not r.get("parent_run_id")]
    if complete and len(roots) != 1:
        names = ", ".join(_label(r) for r in roots) or "none"
        raise TraceError(f"a trace needs exactly one root run (no parent_run_id), found {len(roots)}: {names}")
    for root in roots:
        if str(root["id"]) != trace_ids[0]:
            raise TraceError(f"{_label(root)}: root run id differs from trace_id {trace_ids[0]}")
    for record in runs:
        _check_links(record, by_id, trace_ids[0], complete)


@dataclass
class RunNode:
    """A run with its children in execution order (for the viewer and the report)."""

    run: Record
    children: list["RunNode"] = field(default_factory=list)

    def walk(self) -> Iterable["RunNode"]:
        yield self
        for child in self.children:
            yield from child.walk()


def build_tree(runs: list[Record]) -> list[RunNode]:
    """Roots (normally one) with children attached; orphans of a crashed trace become roots."""
    nodes = {str(r["id"]): RunNode(r) for r in runs}
    roots: list[RunNode] = []
    for record in sorted(runs, key=lambda r: str(r.get("dotted_order", ""))):
        parent = nodes.get(str(record.get("parent_run_id")))
        (parent.children if parent is not None else roots).append(nodes[str(record["id"])])
    return roots


def root_run(runs: Iterable[Record]) -> Record | None:
    """The run without a parent (the graph run); None for a trace whose root never finished."""
    return next((r for r in runs if not r.get("parent_run_id")), None)


def run_seconds(record: Record) -> float | None:
    start, end = _time(record, "start_time"), _time(record, "end_time")
    return (end - start).total_seconds() if start and end else None


@dataclass
class TraceSummary:
    directory: Path
    trace_id: str
    name: str | None
    status: str
    start_time: datetime | None
    end_time: datetime | None
    runs: int | None


def read_meta(trace_dir: str | os.PathLike) -> Record | None:
    """meta.json of a trace as a dict; None when there is none."""
    path = Path(trace_dir) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise TraceError(f"{path}: expected a JSON object, found a {type(meta).__name__}")
    return meta


def summarize(trace_dir: str | os.PathLike) -> TraceSummary:
    """One line's worth about a trace: from meta.json (counting runs.jsonl while it is, or was left, running),
    or from runs.jsonl alone when meta.json is absent."""
    directory, meta = Path(trace_dir), read_meta(trace_dir)
    if meta is None:
        runs = load_trace(directory)
        root = root_run(runs)
        first = root or (runs[0] if runs else {})
        meta = {"trace_id": first.get("trace_id"), "name": (root or {}).get("name"), "runs": len(runs),
                "status": "running?" if root is None else ("error" if root.get("error") else "success"),
                "start_time": first.get("start_time"), "end_time": (root or {}).get("end_time")}
    elif meta.get("status") == "running" and (directory / RUNS_FILE).is_file():
        meta = {**meta, "runs": len(load_trace(directory))}  # meta.json only knows the start

    def when(key: str) -> datetime | None:
        try:
            return datetime.fromisoformat(str(meta[key]).replace("Z", "+00:00")) if meta.get(key) else None
        except ValueError:
            return None

    return TraceSummary(directory, str(meta.get("trace_id") or directory.name), meta.get("name"),
                        str(meta.get("status", "?")), when("start_time"), when("end_time"), meta.get("runs"))


def list_traces(root: str | os.PathLike) -> list[TraceSummary]:
    """Every trace directory directly under `root` (holding runs.jsonl or meta.json), newest first.
    A trace that cannot be read is listed with status `unreadable: <reason>`."""
    root = Path(root)
    if not root.is_dir():
        raise TraceError(f"traces folder '{root}' does not exist" if not root.exists() else f"'{root}' is not a folder")
    found: list[TraceSummary] = []
    for directory in sorted(root.iterdir()):
        if directory.is_dir() and any((directory / name).is_file() for name in (RUNS_FILE, META_FILE)):
            try:
                found.append(summarize(directory))
            except TraceError as exc:
                found.append(TraceSummary(directory, directory.name, None, f"unreadable: {exc}", None, None, None))
    return sorted(found, key=lambda s: s.start_time.timestamp() if s.start_time else 0.0, reverse=True)
