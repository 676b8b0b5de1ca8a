"""Tracing: LangSmith-format run records written locally (see core.py)."""

from lookcloser.tracing.core import RUNS_FILE, Run, TraceWriter, current_run, start_trace, trace_run

__all__ = ["RUNS_FILE", "Run", "TraceWriter", "current_run", "start_trace", "trace_run"]
