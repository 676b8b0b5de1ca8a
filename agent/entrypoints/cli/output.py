"""What the commands print, shared by several of them: the two consoles (results on stdout, notes, progress
and errors on stderr, so `--json` output stays clean), one-line notes, the progress bar, the findings table
and the --save-vis drawing.

Light at import (rich only): Pillow and the drawing code are imported inside `_save_vis`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.text import Text

from lookcloser.core.errors import LookCloserError

err = Console(stderr=True)
out = Console()


def _one_line(message: str) -> str:
    """A message on one line (a traceback's or a model's newlines would break `error: ...` and the notes)."""
    return " ".join(str(message).split())


def _note(message: str) -> None:
    err.print(Text(_one_line(message), style="dim"), soft_wrap=True)


@contextmanager
def _progress(label: str, total: int | None = None) -> Iterator[tuple[Any, Any]]:
    """A progress bar with ETA on stderr; yields (on_start(total, done), on_row(row)) callbacks."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,  # noqa: PLC0415
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn(f"{label} {{task.fields[status]}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(label, total=total, status="")
        counts = {"errors": 0}

        def on_start(total: int, done: int) -> None:
            # The ETA must reflect this session's pace, not the items finished by an earlier run.
            progress.reset(task, total=total, completed=done)

        def on_row(row: dict[str, Any]) -> None:
            counts["errors"] += bool(row.get("error"))
            progress.update(task, advance=1, status=f"({counts['errors']} errors)" if counts["errors"] else "")

        yield on_start, on_row


def _print_findings(findings: list) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table("name", "kind", "status", "box", "score", "text", "tool", title="findings")
    for f in findings:
        row = f.to_json()
        table.add_row(row["name"], row["kind"], row["status"], str(row["box"] or ""),
                      "" if row["score"] is None else f"{row['score']:.2f}", row["text"] or "",
                      row["tool"] + (f" ({row['error']})" if row["error"] else ""))
    out.print(table)


def _save_vis(image_path: Path, findings: list, path: Path) -> str | None:
    """Draw and write the visualisation; the error message when that fails (the result still prints)."""
    try:
        from lookcloser.imaging.load import load_image  # noqa: PLC0415
        from lookcloser.imaging.draw import draw_findings  # noqa: PLC0415

        image = load_image(image_path)
        if any(f.search for f in findings):  # the V* searcher's record: draw its path too
            from lookcloser.tools.vstar.visualize import draw_search  # noqa: PLC0415

            drawn = draw_search(image, findings)
        else:
            drawn = draw_findings(image, findings)
        path.parent.mkdir(parents=True, exist_ok=True)
        drawn.save(path)
    except (LookCloserError, OSError, ValueError) as exc:
        return f"could not write the visualisation to {path}: {exc}"
    _note(f"visualisation written to {path}")
    return None
