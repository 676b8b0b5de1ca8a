"""`results.jsonl`: one line per finished item, appended and flushed as it finishes.

Why a plain append-only file: a killed run loses only the items still in flight, `--resume` needs
nothing but the ids already written, and threads, Ray actors and a later resumed run all write the
same file. A line cut short by a kill is ignored on reading (and rewritten when the run resumes).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from lookcloser.eval.datasets import DatasetError

__all__ = ["ResultsFile", "read_rows"]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The complete rows of a results file, last row per id winning (a resumed item may be retried)."""
    path = Path(path)
    if not path.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    for row in _lines(path):
        rows[str(row["id"])] = row
    return list(rows.values())


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that item was not finished
            if isinstance(row, dict) and "id" in row:
                yield row


class ResultsFile:
    """Appends rows to DIR/results.jsonl, thread-safe, one flushed line per row.

    resume=False refuses a directory that already holds results (so a finished run is never mixed
    with a new one by accident); resume=True keeps them and reports their ids as done.
    """

    NAME = "results.jsonl"

    def __init__(self, out_dir: str | Path, *, resume: bool) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / self.NAME
        if self.path.exists() and self.path.stat().st_size > 0 and not resume:
            raise DatasetError(f"{self.path} already holds results; pass --resume to continue that run, "
                               "or choose another --out directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = {str(r["id"]) for r in read_rows(self.path)}
        self._trim_partial_line()
        self._lock = threading.Lock()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _trim_partial_line(self) -> None:
        """A kill can leave a last line without its newline: end it so the next row starts clean."""
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            self.done.add(str(row["id"]))

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
