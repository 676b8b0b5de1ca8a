"""Reading saved traces back: load, validate against langsmith's run schema, list, build the tree.

A trace is what `tracing.jsonl.JsonlTracer` writes: `<root>/<trace_id>/runs.jsonl` (one finished run
per line, LangSmith's run format), `meta.json` and `images/`. This module only reads, and imports
neither LangGraph nor langchain-core (the `lookcloser trace` commands start fast).

`validate_trace` is what makes "LangSmith can ingest this" checkable offline: every record must
parse as `langsmith.schemas.Run` with no unknown fields, and the runs must form one consistent
tree (trace_id is the root id, parent links resolve, each dotted_order is its parent's plus the
run's own `<start_time>Z<id>` segment).
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

from lookcloser.errors import LookCloserError

__all__ = ["IMAGES_DIR", "META_FILE", "RUNS_FILE", "TRACE_FORMAT", "RunNode", "TraceError", "TraceSummary",
           "build_tree", "list_traces", "load_trace", "read_meta", "root_run", "run_seconds", "summarize",
           "trace_file", "validate_trace"]

#: The trace layout `tracing.jsonl` writes (the same names; kept here so reading needs no langchain-core).
RUNS_FILE = "runs.jsonl"
META_FILE = "meta.json"
IMAGES_DIR = "images"
TRACE_FORMAT = "lookcloser-trace/2"

logger = logging.getLogger("lookcloser.tracing")

REQUIRED_FIELDS = ("id", "trace_id", "dotted_order", "name", "run_type", "inputs", "start_time")
_SEGMENT = re.compile(r"^(\d{8}T\d{6}\d{6})Z([0-9a-fA-F-]{36})$")


class TraceError(LookCloserError, ValueError):
    """A trace directory is missing, unreadable or inconsistent; the message names the file or run."""


def _run_label(record: dict[str, Any]) -> str:
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
    runs = path / RUNS_FILE
    if not runs.is_file():
        raise TraceError(f"'{path}' has no {RUNS_FILE}: not a trace directory (or the trace wrote no run yet)")
    return runs


def load_trace(trace_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All finished runs of one trace, sorted by dotted_order (execution order, parents first).

    A last line cut short by a crash (no trailing newline, not valid JSON) is skipped with a
    warning; any other bad line raises TraceError naming the line.
    """
    path = trace_file(trace_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text (byte {exc.start}): not a trace log") from exc
    except OSError as exc:
        raise TraceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    lines = text.split("\n")
    runs: list[dict[str, Any]] = []
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
    runs.sort(key=lambda r: str(r.get("dotted_order", "")))
    return runs


def _parse_time(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise TraceError(f"{_run_label(record)}: {key} {value!r} is not an ISO-8601 time") from exc


def _check_schema(record: dict[str, Any], complete: bool) -> None:
    """The record against langsmith's own pydantic model of a run."""
    from langsmith import schemas  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    label = _run_label(record)
    missing = [name for name in REQUIRED_FIELDS if record.get(name) in (None, "")]
    if complete and record.get("end_time") is None:
        missing.append("end_time")
    if missing:
        raise TraceError(f"{label}: missing required field(s) {', '.join(missing)}")
    unknown = sorted(set(record) - set(schemas.Run.model_fields))
    if unknown:
        raise TraceError(f"{label}: field(s) {', '.join(unknown)} are not in langsmith's run schema")
    allowed_types = {member.value for member in schemas.RunTypeEnum}
    if record["run_type"] not in allowed_types:
        raise TraceError(f"{label}: run_type {record['run_type']!r} is not one of {sorted(allowed_types)}")
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


def _segment_of(record: dict[str, Any], segment: str) -> tuple[str, str]:
    match = _SEGMENT.match(segment)
    if not match:
        raise TraceError(f"{_run_label(record)}: dotted_order segment {segment!r} is not <YYYYmmddTHHMMSSffffff>Z<uuid>")
    return match.group(1), match.group(2)


def validate_trace(runs: Iterable[dict[str, Any]] | str | os.PathLike, *, complete: bool = True) -> None:
    """Raise TraceError naming the first offending run; return None when the trace is consistent.
    `runs`: the records, or a trace directory to load them from.

    `complete=False` checks each record and the links between the runs present, without asking
    for the root or every parent (for a trace cut short by a crash).
    """
    runs = load_trace(runs) if isinstance(runs, (str, os.PathLike)) else list(runs)
    if not runs:
        raise TraceError("trace has no runs")
    by_id: dict[str, dict[str, Any]] = {}
    for record in runs:
        _check_schema(record, complete)
        run_id = str(uuid.UUID(str(record["id"])))
        if run_id in by_id:
            raise TraceError(f"{_run_label(record)}: id appears twice in the trace")
        by_id[run_id] = record

    roots = [r for r in runs if not r.get("parent_run_id")]
    trace_ids = {str(r["trace_id"]) for r in runs}
    if len(trace_ids) != 1:
        raise TraceError(f"runs belong to {len(trace_ids)} traces ({', '.join(sorted(trace_ids))}); expected one")
    trace_id = trace_ids.pop()
    if complete and len(roots) != 1:
        names = ", ".join(_run_label(r) for r in roots) or "none"
        raise TraceError(f"a trace needs exactly one root run (no parent_run_id), found {len(roots)}: {names}")
    for root in roots:
        if str(root["id"]) != trace_id:
            raise TraceError(f"{_run_label(root)}: root run id differs from trace_id {trace_id}")

    for record in runs:
        label = _run_label(record)
        segments = str(record["dotted_order"]).split(".")
        stamp, segment_id = _segment_of(record, segments[-1])
        if segment_id != str(record["id"]):
            raise TraceError(f"{label}: dotted_order ends in id {segment_id}, not the run's own id")
        start = _parse_time(record, "start_time")
        end = _parse_time(record, "end_time")
        if start.strftime("%Y%m%dT%H%M%S%f") != stamp:
            raise TraceError(f"{label}: dotted_order time {stamp} differs from start_time {record['start_time']}")
        if end is not None and end < start:
            raise TraceError(f"{label}: end_time {record['end_time']} is before start_time {record['start_time']}")
        _, first_id = _segment_of(record, segments[0])
        if first_id != trace_id:
            raise TraceError(f"{label}: dotted_order starts at {first_id}, not at the trace root {trace_id}")
        parent_id = record.get("parent_run_id")
        if not parent_id:
            if len(segments) != 1:
                raise TraceError(f"{label}: a root run's dotted_order must have one segment, has {len(segments)}")
            continue
        parent = by_id.get(str(parent_id))
        if parent is None:
            if complete:
                raise TraceError(f"{label}: parent_run_id {parent_id} is not a run of this trace")
            if len(segments) < 2 or _segment_of(record, segments[-2])[1] != str(parent_id):
                raise TraceError(f"{label}: dotted_order does not end with its parent {parent_id}")
            continue
        if str(record["dotted_order"]) != f"{parent['dotted_order']}.{segments[-1]}":
            raise TraceError(f"{label}: dotted_order is not its parent's dotted_order plus its own segment")
        if start < _parse_time(parent, "start_time"):
            raise TraceError(f"{label}: starts before its parent {_run_label(parent)}")
        # A child may end after its parent: a tool call that outlived its node's time limit does.


@dataclass
class RunNode:
    """A run with its children in execution order (for the viewer and the report)."""

    run: dict[str, Any]
    children: list["RunNode"] = field(default_factory=list)

    def walk(self) -> Iterable["RunNode"]:
        yield self
        for child in self.children:
            yield from child.walk()


def build_tree(runs: list[dict[str, Any]]) -> list[RunNode]:
    """Roots (normally one) with children attached; orphans of a crashed trace become roots."""
    nodes = {str(r["id"]): RunNode(r) for r in runs}
    roots: list[RunNode] = []
    for record in sorted(runs, key=lambda r: str(r.get("dotted_order", ""))):
        node = nodes[str(record["id"])]
        parent = nodes.get(str(record.get("parent_run_id")))
        (parent.children if parent is not None else roots).append(node)
    return roots


def root_run(runs: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The run without a parent (the graph run); None for a trace whose root never finished."""
    return next((r for r in runs if not r.get("parent_run_id")), None)


def run_seconds(record: dict[str, Any]) -> float | None:
    start, end = _parse_time(record, "start_time"), _parse_time(record, "end_time")
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


def read_meta(trace_dir: str | os.PathLike) -> dict[str, Any] | None:
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


def _meta_time(meta: dict[str, Any], key: str) -> datetime | None:
    try:
        return datetime.fromisoformat(str(meta[key])) if meta.get(key) else None
    except ValueError:
        return None


def summarize(trace_dir: str | os.PathLike) -> TraceSummary:
    """One line's worth about a trace: from meta.json, counting runs.jsonl while a trace is (or was
    left) running; from runs.jsonl alone when meta.json is absent."""
    directory = Path(trace_dir)
    meta = read_meta(directory)
    if meta is not None:
        count = meta.get("runs")
        if meta.get("status") == "running" and (directory / RUNS_FILE).is_file():
            count = len(load_trace(directory))  # still running, or killed: meta.json only knows the start
        return TraceSummary(directory, str(meta.get("trace_id", directory.name)), meta.get("name"),
                            str(meta.get("status", "?")), _meta_time(meta, "start_time"),
                            _meta_time(meta, "end_time"), count)
    runs = load_trace(directory)
    root = root_run(runs)
    first = root or (runs[0] if runs else None)
    status = "running?" if root is None else ("error" if root.get("error") else "success")
    return TraceSummary(directory, str((first or {}).get("trace_id", directory.name)), (root or {}).get("name"),
                        status, _parse_time(first, "start_time") if first else None,
                        _parse_time(root, "end_time") if root else None, len(runs))


def list_traces(root: str | os.PathLike) -> list[TraceSummary]:
    """Every trace directory directly under `root` (holding runs.jsonl or meta.json), newest first.
    A trace that cannot be read is listed with status `unreadable: <reason>`."""
    root = Path(root)
    if not root.exists():
        raise TraceError(f"traces folder '{root}' does not exist")
    if not root.is_dir():
        raise TraceError(f"'{root}' is not a folder")
    found: list[TraceSummary] = []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir() or not any((directory / name).is_file() for name in (RUNS_FILE, META_FILE)):
            continue
        try:
            found.append(summarize(directory))
        except TraceError as exc:
            found.append(TraceSummary(directory, directory.name, None, f"unreadable: {exc}", None, None, None))
    found.sort(key=lambda s: s.start_time.timestamp() if s.start_time else 0.0, reverse=True)
    return found
